/**
 * Process helpers for the benchmarks: start a long-running child that announces itself on a log line, read
 * and reset its peak RSS, find a free loopback port, poll for a condition.
 */
import { type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { run, sleep, spawnTracked, stopChild, waitExit, type RunResult } from '../lab/proc.js';

/** A running helper process (proxy, origin). */
export interface BenchProcess {
  name: string;
  child: ChildProcess;
  /** PID whose memory we read (the process itself: every launcher here execs, so it is child.pid). */
  pid: number;
  /** The match of the readiness pattern (null when readiness was a check function). */
  ready: RegExpExecArray | null;
  /** Last output lines (stdout + stderr), for error messages. */
  tail(): string;
  /** Signal, wait up to `graceMs`, then SIGKILL the group. Idempotent. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  cmd: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Output (stdout or stderr) that says the process is ready, or a check polled every 100 ms. */
  ready: RegExp | (() => Promise<boolean>);
  /** Everything the process prints also goes here. */
  logPath: string;
  timeoutMs?: number;
}

/**
 * Spawns a tracked child (own process group, dies with us: see scripts/lab/proc.ts spawnTracked) and waits
 * until its output matches `readyPattern`.
 */
export async function startProcess(o: StartOptions): Promise<BenchProcess> {
  const spawnOpts: SpawnOptions = { env: o.env, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] };
  const child = spawnTracked(o.cmd, o.args, spawnOpts, 'SIGKILL');
  const log = createWriteStream(o.logPath, { flags: 'a' });
  let text = '';
  const onData = (b: Buffer): void => {
    log.write(b);
    text = (text + b.toString('utf8')).slice(-16_384);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.once('exit', () => log.end());
  const timeoutMs = o.timeoutMs ?? 30_000;
  const ready = await new Promise<RegExpExecArray | null>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`${o.name} did not start within ${timeoutMs} ms; output:\n${text}`)), timeoutMs);
    let settled = false;
    const pattern = o.ready instanceof RegExp ? o.ready : null;
    const check = (): void => {
      const m = pattern?.exec(text);
      if (m) finish(null, m);
    };
    if (!pattern) {
      const probe = o.ready as () => Promise<boolean>;
      const poll = (): void => {
        if (settled) return;
        probe().then(
          (ok) => (ok ? finish(null, null) : void setTimeout(poll, 100)),
          () => void setTimeout(poll, 100),
        );
      };
      poll();
    }
    const onExit = (code: number | null, sig: NodeJS.Signals | null): void =>
      finish(new Error(`${o.name} exited during start (code ${code}, signal ${sig}); output:\n${text}`));
    const onError = (e: Error): void => finish(new Error(`${o.name}: ${e.message}`));
    function finish(err: Error | null, m?: RegExpExecArray | null): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve(m ?? null);
    }
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', onExit);
    child.once('error', onError);
  }).catch(async (e: unknown) => {
    await stopChild(child, 2000);
    throw e;
  });
  let stopping: Promise<void> | undefined;
  return {
    name: o.name,
    child,
    pid: child.pid!,
    ready,
    tail: () => text.slice(-4000),
    stop: (signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        try {
          child.kill(signal);
        } catch {
          /* gone */
        }
        if (!(await waitExit(child, graceMs))) await stopChild(child, 1000);
      })()),
  };
}

/** Memory of a process from /proc/<pid>/status, in bytes. */
export interface ProcMem {
  /** VmHWM: peak resident set since start or the last {@link resetPeak}. */
  peak: number;
  /** VmRSS now. */
  rss: number;
}

export async function procMem(pid: number): Promise<ProcMem> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`no ${key} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { peak: kb('VmHWM'), rss: kb('VmRSS') };
}

/** Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0), so the next read is a per-run peak. */
export async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** True once something accepts TCP connections on host:port. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls `cond` every `everyMs` until it returns a value (not undefined/false) or `timeoutMs` passes. */
export async function waitFor<T>(what: string, cond: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Result of {@link runCmd}. */
export type CmdResult = RunResult;

/**
 * Runs a command to completion with stdin closed (`ignore`: no stdin pipe to race a fast-exiting command
 * with EPIPE) and collects its output; never rejects for a non-zero exit; code 124 after `timeoutMs`.
 * scripts/lab/proc.ts run() with `stdin: 'ignore'`.
 */
export function runCmd(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CmdResult> {
  return run(cmd, args, { ...opts, stdin: 'ignore' });
}

/** CPU time (user + system, all threads) a process has used so far, in seconds (/proc/PID/stat, USER_HZ 100). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Fraction (0–1) of all CPUs busy over `ms`, from /proc/stat. */
export async function machineBusy(ms: number): Promise<number> {
  const read = async (): Promise<{ idle: number; total: number }> => {
    const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: cpu[3]! + (cpu[4] ?? 0), total: cpu.reduce((a, b) => a + b, 0) };
  };
  const a = await read();
  await sleep(ms);
  const b = await read();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

/**
 * Waits until the machine looks idle (< `threshold` of all CPUs busy over 500 ms) so that other tenants of a
 * shared box disturb a run less; gives up after `timeoutMs`. Returns the last busy fraction and the wait.
 */
export async function waitIdle(threshold: number, timeoutMs: number): Promise<{ busy: number; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const busy = await machineBusy(500);
    if (busy < threshold || Date.now() - t0 > timeoutMs) return { busy, waitedMs: Date.now() - t0 };
  }
}

/** Per-process CPU ticks (utime + stime + cutime + cstime) and parent, for every process in /proc. */
export type ProcessTicks = Map<number, { ppid: number; ticks: number }>;

export async function processTicks(): Promise<ProcessTicks> {
  const snap: ProcessTicks = new Map();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields after the name: state ppid … utime(11) stime(12) cutime(13) cstime(14)
      snap.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      /* exited meanwhile */
    }
  }
  return snap;
}

/**
 * CPU seconds that user-space processes outside `rootPid`'s process tree used between two snapshots: what
 * other tenants of a shared machine took from a run. Kernel threads (writeback, softirq) are left out
 * because the run itself causes most of their work. Processes that came and went are counted when a live
 * parent reaped them (cutime); others are missed, so this is a lower bound.
 */
export function foreignCpuSeconds(before: ProcessTicks, after: ProcessTicks, rootPid = process.pid): number {
  const ours = new Set<number>([rootPid]);
  for (const snap of [before, after]) {
    for (let grew = true; grew; ) {
      grew = false;
      for (const [pid, p] of snap) {
        if (!ours.has(pid) && ours.has(p.ppid)) {
          ours.add(pid);
          grew = true;
        }
      }
    }
  }
  let ticks = 0;
  for (const [pid, p] of after) {
    if (ours.has(pid) || pid === 2 || p.ppid === 2) continue;
    ticks += Math.max(0, p.ticks - (before.get(pid)?.ticks ?? 0));
  }
  return ticks / 100;
}
