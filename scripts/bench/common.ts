/**
 * Shared plumbing for the benchmark scripts: undo steps run on exit, error or Ctrl-C; building dist/ when it
 * is stale; the machine description; waiting for a quiet machine; hashing files.
 *
 * (scripts/bench-record.ts predates this module and still has its own copies of these helpers.)
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../lab/proc.js';
import { runCmd, waitIdle } from './procs.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

export type Log = (msg: string) => void;

export function makeLog(tag: string): Log {
  return (msg) => void process.stderr.write(`${tag}: ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// cleanup

export interface Cleanups {
  /** Registers an undo step; steps run in reverse order on exit, error or signal. */
  defer(name: string, fn: () => Promise<void>): void;
  /** Runs every registered step once (later calls wait for the same run). */
  cleanupAll(): Promise<void>;
  /** True once SIGINT/SIGTERM/SIGHUP arrived. */
  interrupted(): boolean;
}

/**
 * Installs SIGINT/SIGTERM/SIGHUP handlers that run the undo steps and exit 130. A repeated Ctrl-C within 3 s
 * is ignored (terminal and relays deliver it more than once); a later one exits at once.
 */
export function installCleanups(log: Log, what: string): Cleanups {
  const steps: Array<{ name: string; fn: () => Promise<void> }> = [];
  let cleaning: Promise<void> | null = null;
  let interrupted = false;
  let firstSignalAt = 0;
  const cleanupAll = (): Promise<void> =>
    (cleaning ??= (async () => {
      while (steps.length) {
        const c = steps.pop()!;
        try {
          await c.fn();
        } catch (e) {
          log(`cleanup of ${c.name} failed: ${(e as Error).message}`);
        }
      }
    })());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (interrupted) {
        if (Date.now() - firstSignalAt > 3000) {
          log('second interrupt: exiting now (children are killed with us)');
          process.exit(130);
        }
        return;
      }
      interrupted = true;
      firstSignalAt = Date.now();
      log(`${sig}: stopping and cleaning up (${what})…`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  return {
    defer: (name, fn) => void steps.push({ name, fn }),
    cleanupAll,
    interrupted: () => interrupted,
  };
}

// ---------------------------------------------------------------------------------------------------------
// build

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (entry.name.endsWith(ext)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** `npm run build` when dist/ is missing or older than src/ (or the build config). */
export async function buildIfStale(log: Log): Promise<void> {
  const inputs = Math.max(
    newestMtime(path.join(ROOT, 'src'), '.ts'),
    newestMtime(path.join(ROOT, 'src'), '.tsx'),
    ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => statSync(path.join(ROOT, f)).mtimeMs),
  );
  const built = existsSync(CLI) ? statSync(CLI).mtimeMs : 0;
  if (built >= inputs) return;
  log(existsSync(CLI) ? 'dist/ is older than src/: npm run build' : 'dist/ missing: npm run build');
  const r = await runCmd('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`npm run build failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------------------
// machine

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await runCmd(cmd, args, { timeoutMs: 20_000 });
    return (r.stdout || r.stderr).trim().split('\n')[0] ?? '';
  } catch {
    return '?';
  }
}

export interface Machine {
  cpu: string;
  nproc: number;
  memoryBytes: number;
  kernel: string;
  node: string;
  os: string;
  tools: Record<string, string>;
  loadAvgAtStart: number[];
  loadAvgAtEnd?: number[];
}

/** '/proc/cpuinfo' model name, with family/model when the name is generic (VMs often say just 'AMD EPYC'). */
function cpuName(cpuinfo: string): string {
  const field = (k: string): string | undefined => new RegExp(`^${k}\\s*:\\s*(.+)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const name = field('model name') ?? os.cpus()[0]?.model ?? '?';
  const hv = / hypervisor( |$)/m.test(field('flags') ?? '') ? ', virtualized' : '';
  return `${name} (family ${field('cpu family') ?? '?'} model ${field('model') ?? '?'}${hv})`;
}

export const loadAvg = (): number[] => os.loadavg().map((v) => Math.round(v * 100) / 100);

/** The machine, with the first line of `<tool> --version` for each tool given. */
export async function machineInfo(tools: readonly string[]): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const versions: Record<string, string> = {};
  for (const t of tools) versions[t] = await firstLine(t, ['--version']);
  return {
    cpu: cpuName(cpuinfo),
    nproc: Number((await firstLine('nproc', [])) || os.availableParallelism()),
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    os: /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(osRelease)?.[1] ?? '?',
    tools: versions,
    loadAvgAtStart: loadAvg(),
  };
}

/**
 * Waits politely while the 1-minute load average is above `max` (another test run may be using the
 * machine), up to `timeoutMs`. Returns the load averages seen first and when the wait ended.
 */
export async function waitLoad(max: number, timeoutMs: number, log: Log, stop: () => boolean): Promise<{ first: number[]; last: number[]; waitedMs: number }> {
  const t0 = Date.now();
  const first = loadAvg();
  let last = first;
  let said = 0;
  while (last[0]! > max && Date.now() - t0 < timeoutMs && !stop()) {
    if (Date.now() - said > 30_000) {
      log(`load average ${last.join(' ')} > ${max}: waiting for the machine to calm down (≤ ${Math.round(timeoutMs / 60_000)} min)…`);
      said = Date.now();
    }
    await sleep(5000);
    last = loadAvg();
  }
  if (last[0]! > max) log(`load average still ${last.join(' ')} after ${Math.round((Date.now() - t0) / 1000)} s; measuring anyway`);
  return { first, last, waitedMs: Date.now() - t0 };
}

/** Before each timed run: flush dirty pages of the previous run, then wait (≤ timeoutMs) for < threshold busy CPUs. */
export async function quietBeforeRun(enabled: boolean, threshold: number, timeoutMs: number, log: Log): Promise<{ busyBefore: number; waitedMs: number }> {
  await runCmd('sync', []);
  if (!enabled) return { busyBefore: -1, waitedMs: 0 };
  const { busy, waitedMs } = await waitIdle(threshold, timeoutMs);
  if (busy >= threshold) log(`machine still ${Math.round(busy * 100)}% busy after ${Math.round(waitedMs / 1000)} s; measuring anyway`);
  return { busyBefore: Math.round(busy * 1000) / 1000, waitedMs };
}

// ---------------------------------------------------------------------------------------------------------
// who else is using the CPUs

/** CPU seconds used so far: the whole machine (user + nice + system, /proc/stat) and our own process tree. */
export interface CpuSnapshot {
  at: number;
  machine: number;
  own: number;
}

const HZ = 100; // USER_HZ

/**
 * Machine-wide busy CPU time and the CPU time of `rootPid` and all its descendants (utime + stime, plus
 * cutime + cstime of reaped children, so a curl or docker CLI that ran and exited is counted by its parent).
 */
export async function cpuSnapshot(rootPid = process.pid): Promise<CpuSnapshot> {
  const at = performance.now();
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const machine = (cpu[0]! + cpu[1]! + cpu[2]!) / HZ;
  const procs = new Map<number, { ppid: number; t: number }>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (!stat) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after the comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    procs.set(Number(name), { ppid: Number(f[1]), t: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / HZ });
  }
  const children = new Map<number, number[]>();
  for (const [pid, p] of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  let own = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop()!;
    own += procs.get(pid)?.t ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return { at, machine, own };
}

/**
 * CPUs (0 … nproc) used by processes that are not ours between two snapshots: machine busy time minus our
 * tree's, per second of wall clock. Kernel work done for our own traffic (softirq) is not in either number.
 */
export function foreignCpus(a: CpuSnapshot, b: CpuSnapshot): number {
  const wall = (b.at - a.at) / 1000;
  if (wall <= 0) return 0;
  return Math.max(0, (b.machine - a.machine - (b.own - a.own)) / wall);
}

// ---------------------------------------------------------------------------------------------------------
// misc

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A shell-quoted command line with temp paths shown as placeholders (longest first). */
export function shellLine(argv: readonly string[], replace: ReadonlyArray<readonly [string, string]> = []): string {
  let s = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  for (const [from, to] of [...replace].sort((a, b) => b[0].length - a[0].length)) if (from) s = s.split(from).join(to);
  return s;
}
