/**
 * Shared plumbing for the benchmark scripts (bench-record, bench-replay): undo steps run on exit, error or
 * Ctrl-C; the root/package check and the top-level exit handling; building dist/ when it is stale; the
 * machine description; waiting for a quiet machine; CPU used by other tenants; hashing files; printing and
 * saving the results (BENCHMARKS.md section and raw JSON).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dockerd } from '../lab/dockerd.js';
import { CLEAN_PATH, isRoot, sleep, which } from '../lab/proc.js';
import { processTicks, runCmd, waitIdle, type CmdResult } from './procs.js';
import { replaceSection } from './report.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
export const BENCHMARKS_MD = path.join(ROOT, 'BENCHMARKS.md');
export const RESULTS_DIR = path.join(ROOT, 'scripts', 'bench', 'results');

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
// start and exit

/** A bad command line: reported with a hint to --help, exit 2. */
export class UsageError extends Error {}

/**
 * Root and the commands a benchmark needs (`[binary, Debian package]`): false, after saying what is missing
 * on stderr, when either is not there.
 */
export function preflight(tag: string, needs: ReadonlyArray<readonly [string, string]>): boolean {
  if (!isRoot()) {
    process.stderr.write(`${tag}: needs root (dockerd, unshare/mount namespaces, the lab on :443)\n`);
    return false;
  }
  const searchPath = `${process.env.PATH ?? ''}:${CLEAN_PATH}`;
  const missing = [...new Set(needs.filter(([bin]) => !which(bin, searchPath)).map(([, pkg]) => pkg))];
  if (missing.length) {
    process.stderr.write(`${tag}: missing packages; install them with:\n  apt-get update && apt-get install -y ${missing.join(' ')}\n`);
    return false;
  }
  return true;
}

/**
 * Runs `main`, then the undo steps, and exits with its code: 2 for a usage error, 130 when interrupted, 1
 * (after logging the error) when it failed.
 */
export function runMain(tag: string, main: () => Promise<number>, cleanups: Cleanups, log: Log): void {
  const { cleanupAll, interrupted } = cleanups;
  main().then(
    async (code) => {
      await cleanupAll();
      process.exit(code);
    },
    async (e: unknown) => {
      if (e instanceof UsageError || (e as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
        process.stderr.write(`${tag}: ${(e as Error).message}\n(run with --help)\n`);
        process.exit(2);
      }
      if (!interrupted()) log(`FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      await cleanupAll();
      process.exit(interrupted() ? 130 : 1);
    },
  );
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
// docker

/** The docker CLI against one test dockerd, run by us (runCmd: no extra wrapper in the timing). */
export function docker(d: Dockerd, args: readonly string[], timeoutMs = 120_000): Promise<CmdResult> {
  return runCmd('docker', ['-H', `unix://${d.sock}`, ...args], { env: { PATH: CLEAN_PATH, HOME: d.dir, DOCKER_CONFIG: d.configDir }, timeoutMs });
}

export async function imageId(d: Dockerd, ref: string): Promise<string | undefined> {
  const r = await docker(d, ['image', 'inspect', '--format', '{{.Id}}', ref]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** `docker rmi -f` of every image and `docker image prune -af`, then checks the store is empty. */
export async function emptyImageStore(d: Dockerd): Promise<void> {
  const ids = [...new Set((await docker(d, ['images', '-aq'])).stdout.split(/\s+/).filter(Boolean))];
  if (ids.length) await docker(d, ['rmi', '-f', ...ids]);
  await docker(d, ['image', 'prune', '-af']);
  const left = (await docker(d, ['images', '-aq'])).stdout.trim();
  if (left) throw new Error(`images left after removal: ${left}`);
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
  const procs = await processTicks();
  const children = new Map<number, number[]>();
  for (const [pid, p] of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  let own = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop()!;
    own += (procs.get(pid)?.ticks ?? 0) / HZ;
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
// results

/**
 * Prints the markdown section `render(resultsFile)` on stdout; with `write`, also saves `results` as
 * scripts/bench/results/<kind>-<date>[-N].json and puts the section between the `section` markers of
 * BENCHMARKS.md.
 */
export async function publishResults(o: {
  kind: string;
  /** The section's heading, for the log line. */
  title: string;
  section: string;
  results: { date: string };
  write: boolean;
  render: (resultsFile: string | null) => string;
  log: Log;
}): Promise<void> {
  let file: string | null = null;
  if (o.write) {
    const base = `${o.kind}-${o.results.date.slice(0, 10)}`;
    file = path.join(RESULTS_DIR, `${base}.json`);
    for (let i = 2; existsSync(file); i++) file = path.join(RESULTS_DIR, `${base}-${i}.json`);
  }
  const md = o.render(file && path.relative(ROOT, file));
  process.stdout.write(`\n${md}\n\n`);
  if (file) {
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(file, `${JSON.stringify(o.results, null, 1)}\n`);
    await replaceSection(BENCHMARKS_MD, o.section, md);
    o.log(`wrote ${path.relative(ROOT, file)} and the ${o.title} section of BENCHMARKS.md`);
  } else o.log('not writing BENCHMARKS.md / results (--quick, --only or --no-write; --write to force)');
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
