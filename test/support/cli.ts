import { execFile, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI (npm test builds first), run as a user would. */
export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

export interface RecorderProcess {
  proc: ChildProcess;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** SIGINT (Ctrl-C) and wait for exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; stderr: string }>;
}

/** Start `regtape record` with a free port and wait for its "listening on" line. */
export async function spawnRecord(args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<RecorderProcess> {
  const proc = spawn(process.execPath, [CLI, 'record', '--listen', '127.0.0.1:0', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  proc.stdout!.resume();
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`regtape record did not start in ${timeoutMs} ms:\n${err}`)), timeoutMs);
    const check = () => {
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`regtape record exited with ${code}:\n${err}`));
    });
  });
  return {
    proc,
    url,
    stderr: () => err,
    stop: (signal = 'SIGINT') =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve({ code: proc.exitCode, stderr: err });
        proc.once('exit', (code) => resolve({ code, stderr: err }));
        proc.kill(signal);
      }),
  };
}

/** Run a command with a clean environment (PATH, HOME) plus `env`; never rejects. */
export function runCmd(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { PATH: process.env.PATH!, HOME: os.tmpdir(), ...env }, maxBuffer: 32 << 20, timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Start `regtape replay` (the CLI) and wait for its mirror endpoint line. */
export async function spawnReplay(args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<{ proc: ChildProcess; mirrorUrl: string; proxyUrl: string | null; stderr(): string }> {
  const proc = spawn(process.execPath, [CLI, 'replay', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  // Started when it says how to stop it (after the proxy and mirror lines).
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`regtape replay did not start:\n${err}`)), timeoutMs);
    proc.stderr!.on('data', () => {
      if (/Ctrl-C to stop/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`regtape replay exited with ${code}:\n${err}`));
    });
  });
  const mirrorUrl = /registry endpoint (https?:\/\/[\d.:]+)/.exec(err)?.[1] ?? '';
  const proxyUrl = /proxy mode: listening on (http:\/\/[\d.:]+)/.exec(err)?.[1] ?? null;
  return { proc, mirrorUrl, proxyUrl, stderr: () => err };
}
