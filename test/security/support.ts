/**
 * Shared pieces of the hostile-input suite (test/security/): a real recorder (the same
 * startRecording the CLI uses) in front of a small HTTPS origin, and raw-socket clients
 * that send exactly the bytes an attacker would.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startRecording, type RecordOptions, type RecordSession } from '../../src/cli/record.js';
import { silentLogger, type Logger } from '../../src/log/index.js';
import { startOrigin, type Handler, type Origin } from '../support/origin.js';

export interface Lab {
  dir: string;
  origin: Origin;
  session: RecordSession;
  caPath: string;
  close(): Promise<void>;
}

/** A recorder (in-process) whose upstream for `hosts` is a local HTTPS origin answering with `handler`. */
export async function startLab(hosts: string[], handler: Handler, extra: Partial<RecordOptions> = {}, log: Logger = silentLogger, out?: string): Promise<Lab> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-sec-'));
  const origin = await startOrigin(hosts, handler);
  const session = await startRecording(
    {
      listen: '127.0.0.1:0',
      out: out ?? path.join(dir, 'r.db'),
      map: hosts.map((h) => `${h}=127.0.0.1:${origin.port}`),
      upstreamCa: [origin.caPath],
      quiet: true,
      home: path.join(dir, 'home'),
      ...extra,
    },
    log,
  );
  return {
    dir,
    origin,
    session,
    caPath: path.join(dir, 'home', 'ca.pem'),
    close: async () => {
      await session.stop();
      await origin.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Send raw bytes to host:port, collect what comes back until the peer closes or `waitMs` passes. */
export function rawExchange(port: number, bytes: Buffer | string, waitMs = 3000, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => s.write(bytes));
    let out = '';
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, waitMs);
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('error', done);
    s.on('close', done);
  });
}

/** curl through the lab's proxy, trusting its CA. */
export function curl(lab: Lab, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile('curl', ['-sS', '-x', lab.session.proxy.url, '--cacert', lab.caPath, ...args], { encoding: 'latin1', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** Wait until every ended exchange is committed and at least `n` flows exist. */
export async function settle(lab: Lab, n = 0, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await lab.session.recorder.drain();
    if (lab.session.recorder.inFlight === 0 && lab.session.recording.count() >= n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A logger that keeps every line (level-prefixed) for assertions. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (l: string) => (m: string) => void lines.push(`${l}: ${m}`);
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Open file descriptors of this process (the in-process proxy's). */
export function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}
