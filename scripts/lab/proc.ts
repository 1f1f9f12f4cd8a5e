/**
 * Small process helpers shared by the lab modules: run a command to completion, read a log tail, and make
 * sure children die with this process.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Result of {@link run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link run}. */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command (SIGKILL) after this many ms; the result then has code 124 like timeout(1). */
  timeoutMs?: number;
  /** Written to the command's stdin, then stdin is closed. */
  input?: string;
  /**
   * 'ignore': start the command with no stdin pipe at all (no write to race a fast-exiting command with
   * EPIPE; `input` is then not used). Default 'pipe'.
   */
  stdin?: 'pipe' | 'ignore';
}

/** A clean PATH for children started with a cleared environment. */
export const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Runs `cmd args` to completion and collects its output; never rejects for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.stdin ?? 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new Error(`${cmd} not found in PATH`) : e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: timedOut ? 124 : (code ?? (signal ? 128 : 1)),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (timedOut ? `\n[killed after ${opts.timeoutMs} ms]` : ''),
      });
    });
    // A command that exits before reading stdin (docker version, docker images …) makes this write fail with
    // EPIPE; without a listener that is an unhandled 'error' event that kills the whole process.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** Returns the last `maxBytes` of a file as text ('' when missing); used for error messages. */
export function tailFile(path: string, maxBytes = 4000): string {
  if (!existsSync(path)) return '';
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const tracked = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Spawns a long-running child in its own process group and makes sure it does not outlive this process:
 * it is started through `setpriv --pdeathsig <signal>` (util-linux; the kernel signals it when this process
 * dies, even by SIGKILL), and it is also SIGKILLed with its group from an 'exit' hook.
 */
export function spawnTracked(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions,
  pdeathsig: NodeJS.Signals = 'SIGKILL',
): ChildProcess {
  const setpriv = which('setpriv', `${process.env.PATH ?? ''}:${CLEAN_PATH}`);
  const child = setpriv
    ? spawn(setpriv, ['--pdeathsig', pdeathsig, '--', cmd, ...args], { ...opts, detached: true })
    : spawn(cmd, args, { ...opts, detached: true });
  tracked.add(child);
  child.on('exit', () => tracked.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of tracked) killGroup(c, 'SIGKILL');
    });
  }
  return child;
}

/** Sends `signal` to the child's process group (falls back to the child alone); ignores ESRCH. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Resolves when the child has exited (immediately if it already has). */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM the child's group, wait up to `graceMs`, then SIGKILL it and wait for the exit. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  killGroup(child, 'SIGTERM');
  if (await waitExit(child, graceMs)) return;
  killGroup(child, 'SIGKILL');
  await waitExit(child, 5000);
}

/** Promise-based sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when this process runs as root (uid 0). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Finds an executable by name in PATH (or returns the path if it is absolute and exists). */
export function which(name: string, path = process.env.PATH ?? CLEAN_PATH): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  for (const dir of path.split(':')) {
    if (dir && existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

const OWNER_FILE = '.owner-pid';

/** Records this process as the owner of a temp dir, for {@link sweepStaleDirs}. */
export function markOwner(dir: string): Promise<void> {
  return writeFile(join(dir, OWNER_FILE), String(process.pid));
}

/** True when a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp dirs `<parent>/<prefix>*` left behind by processes that died without cleaning up (their
 * owner pid is gone and they are older than a minute). Best effort; never throws.
 */
export async function sweepStaleDirs(parent: string, prefix: string): Promise<void> {
  try {
    for (const name of await readdir(parent)) {
      if (!name.startsWith(prefix)) continue;
      const dir = join(parent, name);
      const owner = Number((await readFile(join(dir, OWNER_FILE), 'utf8').catch(() => '')).trim());
      if (!owner || pidAlive(owner)) continue;
      const st = await stat(dir).catch(() => undefined);
      if (!st || Date.now() - st.mtimeMs < 60_000) continue;
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  } catch {
    /* best effort */
  }
}
