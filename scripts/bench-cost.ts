/**
 * The cost benchmark: what recording and replaying cost in CPU, GC, memory and event-loop time, measured in
 * ways that stay meaningful on a shared, noisy machine (CPU-seconds per GB of the process under test, GC
 * counts from inside it, its peak RSS), plus wall-clock speeds of alternating runs (min/median/max).
 * No root, no lab, no docker: our own HTTPS origin (scripts/bench/big-origin.ts), the built CLI and curl.
 *
 *   npx tsx scripts/bench-cost.ts [--mib 500] [--runs 5] [--only record,slow,replay,leaf] [--json FILE]
 *
 * Sections:
 *   record  curl of a --mib body: direct, through `regtape record` (stores + hashes every byte; the stored
 *           file is checked by size and sha256 after every run), through the pass-through proxy (same proxy
 *           code, stores nothing); variants alternate within each round.
 *   slow    the same through `regtape record` with a slow client (curl --limit-rate): peak RSS.
 *   replay  the recorded body served by `regtape replay --mirror` (GET /v2/…/blobs/<digest>) vs a plain
 *           Node file server over the same file, alternating.
 *   leaf    first TLS handshake through the recorder for --hosts new host names (each needs a fresh leaf
 *           certificate) vs handshakes for a known name: p50/p99, and the recorder's event-loop delay.
 *
 * The processes under test are started with `node --import scripts/bench/probe.mjs`: on SIGUSR2 the probe
 * writes the GC counts (by kind, with main-thread pause time), event-loop delay and CPU time since the last
 * snapshot. Process CPU (all threads) is read from /proc/PID/stat.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { BENCHMARKS_MD, buildIfStale, installCleanups, loadAvg, makeLog, ROOT, runMain, sha256File, UsageError } from './bench/common.js';
import { LeafFactory, loadOrCreateAuthority } from '../src/ca/index.js';
import { canConnect, cpuSeconds, freePort, procMem, resetPeak, runCmd, startProcess, waitFor, type BenchProcess } from './bench/procs.js';
import { replaceSection, summarize, type Summary } from './bench/report.js';
import { CLEAN_PATH } from './lab/proc.js';

const HELP = `Usage: npx tsx scripts/bench-cost.ts [options]

CPU-seconds per GB, GC, peak RSS and event-loop delay of regtape record and replay, with alternating
wall-clock runs. Needs curl. No root, no lab.

Options:
  --mib N        body size in MiB (default 500)
  --runs N       timed rounds (default 5); one untimed warm-up round first
  --only LIST    sections: record,slow,replay,leaf (default all)
  --slow-rate R  curl --limit-rate for the slow client (default 100M)
  --hosts N      new host names for the leaf section (default 300)
  --cpu-prof DIR run regtape record with --cpu-prof into DIR
  --json FILE    also write the raw numbers as JSON
  --node-flags S extra node flags for the processes under test (e.g. '--trace-gc'; output in their logs)
  --env K=V      extra environment for the processes under test (repeatable)
  --baseline DIR also measure the regtape built in DIR (e.g. an older commit: git archive REV | tar -x -C DIR,
                 node_modules linked, npx tsc -p tsconfig.build.json) as "… (before)", alternating with this one
  --write        put the tables into the "Cost" section of BENCHMARKS.md
  --keep 1       keep the work dir (process logs, recording)
  -h, --help     this help
`;

const log = makeLog('bench-cost');
const cleanups = installCleanups(log, 'processes, temp dirs');
const { defer } = cleanups;
const PROBE = path.join(ROOT, 'scripts', 'bench', 'probe.mjs');
const HOST = 'big.test';

interface Probe {
  seq: number;
  wallMs: number;
  cpu: { user: number; system: number };
  gc: Record<string, { count: number; ms: number }>;
  loopMs: { max: number; p99: number; mean: number };
  mem: { rss: number; heapUsed: number; external: number; arrayBuffers: number };
}

/** A process under test with the probe loaded. */
interface Probed {
  proc: BenchProcess;
  probeFile: string;
  seq: number;
  url?: string;
}

async function snapshot(p: Probed): Promise<Probe> {
  process.kill(p.proc.pid, 'SIGUSR2');
  const want = ++p.seq;
  return waitFor(
    `probe snapshot ${want} of ${p.proc.name}`,
    async () => {
      const s = await readFile(p.probeFile, 'utf8').catch(() => '');
      if (!s) return undefined;
      const j = JSON.parse(s) as Probe;
      return j.seq === want ? j : undefined;
    },
    10_000,
    20,
  );
}

/** Extra node flags for every process under test (--node-flags), e.g. --trace-gc. */
let nodeFlags: string[] = [];
/** Extra environment for every process under test (--env K=V). */
let extraEnv: Record<string, string> = {};

async function startProbed(work: string, name: string, args: string[], ready: RegExp, extraNode: string[] = [], cwd = ROOT): Promise<Probed> {
  extraNode = [...nodeFlags, ...extraNode];
  const probeFile = path.join(work, `${name}.probe.json`);
  const proc = await startProcess({
    name,
    cmd: process.execPath,
    args: [...extraNode, '--import', PROBE, ...args],
    env: { PATH: CLEAN_PATH, HOME: work, REGTAPE_HOME: path.join(work, 'home'), BENCH_PROBE_OUT: probeFile, ...extraEnv },
    cwd,
    ready,
    logPath: path.join(work, `${name}.log`),
  });
  defer(name, () => proc.stop('SIGINT', 30_000));
  const p: Probed = { proc, probeFile, seq: 0, url: proc.ready?.[1] };
  await snapshot(p); // start the first interval now
  return p;
}

const CURL_FORMAT = '%{http_code} %{size_download} %{speed_download} %{time_total}';

async function curl(args: readonly string[], url: string): Promise<{ bytes: number; mbps: number; seconds: number }> {
  const r = await runCmd('curl', ['-sS', '-o', '/dev/null', '--max-time', '600', '-w', CURL_FORMAT, ...args, url], { timeoutMs: 660_000 });
  const [code, size, speed, total] = r.stdout.trim().split(/\s+/);
  if (r.code !== 0 || code !== '200') throw new Error(`curl ${args.join(' ')} ${url}: exit ${r.code}, HTTP ${code}\n${r.stderr.trim()}`);
  return { bytes: Number(size), mbps: Number(speed) / 1e6, seconds: Number(total) };
}

/** CPU seconds per thread name (comm) of a process: main thread ('node' / 'MainThread'), libuv threadpool, V8 workers. */
async function threadCpu(pid: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = tid === String(pid) ? 'main' : comm.replace(/\d+$/, '').trim();
      out[key] = (out[key] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      /* thread gone */
    }
  }
  return out;
}

function perGB(a: Record<string, number>, b: Record<string, number>, bytes: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) out[k] = Math.round(((b[k]! - (a[k] ?? 0)) / (bytes / 1e9)) * 100) / 100;
  return out;
}

/** One measured run of a variant. */
interface Run {
  section: string;
  variant: string;
  round: number;
  mbps?: number;
  seconds?: number;
  /** CPU-seconds of the process under test (all threads, /proc) per GB (1e9 bytes) moved. */
  cpuPerGB?: number;
  /** From the probe: main-thread user/system seconds per GB, GC counts and pause ms per GB, loop delay. */
  probe?: Probe;
  gcPerGB?: { markCompact: number; scavenge: number; pauseMs: number };
  peakRss?: number;
  /** CPU-seconds per GB by thread (main, libuv threadpool, V8 workers…). */
  threads?: Record<string, number>;
  check?: string;
}

function gcPerGB(p: Probe, bytes: number): Run['gcPerGB'] {
  const gb = bytes / 1e9;
  const g = (k: string) => p.gc[k] ?? { count: 0, ms: 0 };
  const pause = Object.values(p.gc).reduce((a, b) => a + b.ms, 0);
  return { markCompact: g('markCompact').count / gb, scavenge: g('scavenge').count / gb, pauseMs: pause / gb };
}

/** Measures one transfer through (or from) a probed process. */
/** utime + stime + cutime + cstime of a process (seconds): a forking server's children included once reaped. */
async function treeCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

async function measured(
  section: string,
  variant: string,
  round: number,
  p: Probed | null,
  go: () => Promise<{ bytes: number; mbps: number; seconds: number }>,
  after?: () => Promise<string>,
  cpuPid?: number,
): Promise<Run> {
  const tree0 = cpuPid ? await treeCpuSeconds(cpuPid) : 0;
  if (p) {
    await resetPeak(p.proc.pid);
    await snapshot(p);
  }
  const cpu0 = p ? await cpuSeconds(p.proc.pid) : 0;
  const th0 = p ? await threadCpu(p.proc.pid) : {};
  const c = await go();
  const check = after ? await after() : `${c.bytes} B`;
  const run: Run = { section, variant, round, mbps: c.mbps, seconds: c.seconds, check };
  if (cpuPid) {
    await new Promise((r) => setTimeout(r, 100)); // let the parent reap the connection's child
    run.cpuPerGB = ((await treeCpuSeconds(cpuPid)) - tree0) / (c.bytes / 1e9);
  }
  if (p) {
    run.cpuPerGB = ((await cpuSeconds(p.proc.pid)) - cpu0) / (c.bytes / 1e9);
    run.threads = perGB(th0, await threadCpu(p.proc.pid), c.bytes);
    run.probe = await snapshot(p);
    run.gcPerGB = gcPerGB(run.probe, c.bytes);
    run.peakRss = (await procMem(p.proc.pid)).peak;
  }
  log(
    `${section} r${round} ${variant}: ${c.mbps.toFixed(0)} MB/s${run.cpuPerGB !== undefined ? `, ${run.cpuPerGB.toFixed(2)} CPU-s/GB` : ''}${run.gcPerGB ? `, GC ${run.gcPerGB!.markCompact.toFixed(1)} MC + ${run.gcPerGB!.scavenge.toFixed(0)} scav /GB (${run.gcPerGB!.pauseMs.toFixed(0)} ms pause/GB), loop max ${run.probe!.loopMs.max.toFixed(1)} ms, peak RSS ${(run.peakRss! / 1e6).toFixed(0)} MB, threads ${JSON.stringify(run.threads)}` : ''} — ${check}`,
  );
  return run;
}

function maxFlowId(db: string): number {
  if (!existsSync(db)) return 0;
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return (d.prepare('SELECT coalesce(max(id), 0) AS m FROM flows').get() as { m: number }).m;
  } finally {
    d.close();
  }
}

/**
 * Waits for a flow newer than `afterId` with this response body to be committed; checks it and the stored
 * file (size, sha256); removes the file unless `keep`, so the next run stores every byte again.
 */
async function verifyStored(db: string, afterId: number, sha: string, size: number, keep: boolean): Promise<string> {
  const row = await waitFor(
    'the flow to be committed',
    async () => {
      const d = new Database(db, { readonly: true, fileMustExist: true });
      try {
        return d.prepare("SELECT id, state, res_body_size AS size FROM flows WHERE id > ? AND res_body_sha256 = ? AND state != 'open' ORDER BY id DESC LIMIT 1").get(afterId, sha) as
          | { id: number; state: string; size: number }
          | undefined;
      } finally {
        d.close();
      }
    },
    120_000,
    20,
  );
  if (row.state !== 'complete' || row.size !== size) throw new Error(`flow ${row.id}: ${row.state}, body ${row.size} B; expected complete, ${size} B`);
  const file = path.join(db.replace(/\.db$/, '.blobs'), sha);
  const st = await stat(file);
  if (st.size !== size) throw new Error(`${file}: ${st.size} B, expected ${size}`);
  const h = await sha256File(file);
  if (h !== sha) throw new Error(`${file} hashes to ${h}`);
  if (!keep) await rm(file);
  return `flow ${row.id} complete, stored file size + sha256 ok`;
}

/** A build of regtape under test: this checkout, or a --baseline checkout (built) of an older commit. */
interface Build {
  /** '' for this checkout, ' (before)' for the baseline. */
  tag: string;
  root: string;
}

interface Ctx {
  work: string;
  size: number;
  sha: string;
  runs: number;
  origin: { port: number; caPath: string };
  runsOut: Run[];
  builds: Build[];
  cpuProf?: string;
  slowRate: string;
  hosts: number;
}

function recordArgs(ctx: Ctx, b: Build, out: string): string[] {
  return [path.join(b.root, 'dist', 'cli', 'main.js'), 'record', '-q', '--listen', '127.0.0.1:0', '--out', out, '--map', `${HOST}=127.0.0.1:${ctx.origin.port}`, '--upstream-ca', ctx.origin.caPath];
}

const LISTENING = /listening on (http:\/\/[\d.]+:\d+)/;

/** Rotate `items` by `round` so no variant always runs first. */
const rotate = <T,>(items: T[], round: number): T[] => items.map((_, i) => items[(i + round) % items.length]!);

interface RecordVariant {
  name: string;
  proc: Probed | null;
  args: string[];
  db?: string;
  /** CPU of a non-node process (socat) with its reaped children. */
  cpuPid?: number;
}

/**
 * The physical floor of a TLS-terminating relay on this machine: socat (C, OpenSSL) decrypting the
 * client's TLS and re-encrypting to the origin, storing nothing, with a leaf from the same CA.
 */
async function startSocat(ctx: Ctx): Promise<RecordVariant | null> {
  const bin = ['/usr/bin/socat', '/bin/socat'].find((b) => existsSync(b));
  if (!bin) {
    log('socat not installed (apt-get install socat): no TLS-relay floor row');
    return null;
  }
  const ca = loadOrCreateAuthority(path.join(ctx.work, 'home'));
  const leaf = new LeafFactory(ca).get(HOST);
  const certFile = path.join(ctx.work, 'socat-cert.pem');
  const keyFile = path.join(ctx.work, 'socat-key.pem');
  await writeFile(certFile, leaf.certPem + ca.certPem);
  await writeFile(keyFile, leaf.keyPem, { mode: 0o600 });
  const port = await freePort();
  const proc = await startProcess({
    name: 'socat',
    cmd: bin,
    args: [`OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,cert=${certFile},key=${keyFile},verify=0`, `OPENSSL:127.0.0.1:${ctx.origin.port},cafile=${ctx.origin.caPath},commonname=${HOST}`],
    env: { PATH: CLEAN_PATH },
    ready: async () => canConnect('127.0.0.1', port),
    logPath: path.join(ctx.work, 'socat.log'),
  });
  defer('socat', () => proc.stop('SIGTERM'));
  return { name: 'socat TLS relay (C: TLS twice, stores nothing)', proc: null, args: ['--connect-to', `${HOST}:443:127.0.0.1:${port}`, '--cacert', ca.certPath], cpuPid: proc.pid };
}

async function recordVariants(ctx: Ctx): Promise<RecordVariant[]> {
  const ca = path.join(ctx.work, 'home', 'ca.pem');
  const direct = ['--resolve', `${HOST}:443:127.0.0.1`, '--connect-to', `${HOST}:443:127.0.0.1:${ctx.origin.port}`, '--cacert', ctx.origin.caPath];
  const out: RecordVariant[] = [{ name: 'direct', proc: null, args: direct }];
  for (const [i, b] of ctx.builds.entries()) {
    const db = path.join(ctx.work, `rec${i}`, 'cost.db');
    const prof = ctx.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.join(ctx.cpuProf, `record${i}`)] : [];
    const rec = await startProbed(ctx.work, `regtape-record${i}`, recordArgs(ctx, b, db), LISTENING, prof, b.root);
    const ptArgs = ['--import', 'tsx', path.join(b.root, 'scripts', 'passthrough-proxy.ts'), '--listen', '127.0.0.1:0', '--map', `${HOST}=127.0.0.1:${ctx.origin.port}`, '--upstream-ca', ctx.origin.caPath];
    const pt = await startProbed(ctx.work, `passthrough${i}`, ptArgs, LISTENING, [], b.root);
    out.push({ name: `regtape record${b.tag}`, proc: rec, args: ['-x', rec.url!, '--cacert', ca], db });
    out.push({ name: `pass-through${b.tag}`, proc: pt, args: ['-x', pt.url!, '--cacert', ca] });
  }
  const socat = await startSocat(ctx);
  if (socat) out.push(socat);
  return out;
}

/** Alternating curls through every variant; returns the recordings (one per build), the last body kept. */
async function sectionRecord(ctx: Ctx, keepLast: boolean): Promise<string[]> {
  const variants = await recordVariants(ctx);
  const url = `https://${HOST}/v2/bench/big/blobs/sha256:${ctx.sha}`;
  for (let round = 0; round <= ctx.runs; round++) {
    const last = round === ctx.runs;
    for (const v of rotate(variants, round)) {
      const db = v.db;
      const after = db ? maxFlowId(db) : 0;
      const r = await measured('record', v.name, round, v.proc, () => curl(v.args, url), db ? () => verifyStored(db, after, ctx.sha, ctx.size, keepLast && last) : undefined, v.cpuPid);
      if (round > 0) ctx.runsOut.push(r);
    }
  }
  if (ctx.slowRate) {
    for (const v of variants.filter((x) => x.db)) {
      const db = v.db!;
      const after = maxFlowId(db);
      const r = await measured('slow', `${v.name}, curl --limit-rate ${ctx.slowRate}`, 1, v.proc, () => curl([...v.args, '--limit-rate', ctx.slowRate], url), () => verifyStored(db, after, ctx.sha, ctx.size, keepLast));
      ctx.runsOut.push(r);
    }
  }
  for (const v of variants) await v.proc?.proc.stop('SIGINT', 60_000);
  return variants.filter((x) => x.db).map((x) => x.db!);
}

async function sectionReplay(ctx: Ctx, dbs: string[]): Promise<void> {
  const blob = path.join(dbs[0]!.replace(/\.db$/, '.blobs'), ctx.sha);
  if (!existsSync(blob)) throw new Error(`replay: ${blob} missing`);
  const fsrv = await startProbed(ctx.work, 'file-server', ['--import', 'tsx', 'scripts/bench/file-server.ts', '--file', blob], /^(\{"port":\d+\})$/m);
  const variants: Array<{ name: string; proc: Probed; url: string }> = [
    { name: 'node file server (createReadStream → res)', proc: fsrv, url: `http://127.0.0.1:${(JSON.parse(fsrv.proc.ready![1]!) as { port: number }).port}/blob` },
  ];
  for (const [i, b] of ctx.builds.entries()) {
    const cli = path.join(b.root, 'dist', 'cli', 'main.js');
    const replay = await startProbed(ctx.work, `regtape-replay${i}`, [cli, 'replay', dbs[i]!, '--no-proxy', '--mirror', '127.0.0.1:0'], /mirror mode: registry endpoint (http:\/\/[\d.]+:\d+)/, [], b.root);
    variants.push({ name: `regtape replay --mirror${b.tag}`, proc: replay, url: `${replay.url}/v2/bench/big/blobs/sha256:${ctx.sha}` });
  }
  for (const v of variants) {
    const tmp = path.join(ctx.work, 'replayed');
    await runCmd('curl', ['-sS', '-L', '-o', tmp, v.url], { timeoutMs: 300_000 });
    const h = await sha256File(tmp);
    await rm(tmp);
    if (h !== ctx.sha) throw new Error(`${v.name}: ${v.url} served content hashing to ${h}`);
  }
  for (let round = 0; round <= ctx.runs; round++) {
    for (const v of rotate(variants, round)) {
      const r = await measured('replay', v.name, round, v.proc, () => curl(['-L'], v.url));
      if (round > 0) ctx.runsOut.push(r);
    }
  }
  for (const v of variants) await v.proc.proc.stop('SIGINT');
}

/** CONNECT + TLS handshake to `name` through the proxy; ms until the handshake is done. */
function handshake(proxyPort: number, name: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(proxyPort, '127.0.0.1', () => s.write(`CONNECT ${name}:443 HTTP/1.1\r\nHost: ${name}:443\r\n\r\n`));
    s.once('error', reject);
    let head = '';
    const onData = (b: Buffer) => {
      head += b.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (!/^HTTP\/1\.1 200/.test(head)) return reject(new Error(`CONNECT ${name}: ${head.split('\r\n')[0]}`));
      const t = tls.connect({ socket: s, servername: name, ca, ALPNProtocols: ['http/1.1'] }, () => {
        const ms = performance.now() - t0;
        t.destroy();
        resolve(ms);
      });
      t.once('error', reject);
    };
    s.on('data', onData);
  });
}

async function sectionLeaf(ctx: Ctx): Promise<void> {
  for (const [bi, b] of ctx.builds.entries()) {
    const db = path.join(ctx.work, `leaf${bi}`, 'leaf.db');
    const rec = await startProbed(ctx.work, `regtape-leaf${bi}`, recordArgs(ctx, b, db), LISTENING, [], b.root);
    const port = Number(new URL(rec.url!).port);
    const ca = await readFile(path.join(ctx.work, 'home', 'ca.pem'), 'utf8');
    await handshake(port, 'warm.leaf.test', ca);
    for (const [variant, name] of [
      [`new host (leaf issued)${b.tag}`, (i: number) => `h${i}-${bi}-${process.pid}.leaf.test`],
      [`known host (leaf cached)${b.tag}`, () => 'warm.leaf.test'],
    ] as const) {
      await snapshot(rec);
      const cpu0 = await cpuSeconds(rec.proc.pid);
      const ms: number[] = [];
      for (let i = 0; i < ctx.hosts; i++) ms.push(await handshake(port, name(i), ca));
      const probe = await snapshot(rec);
      const cpu = (await cpuSeconds(rec.proc.pid)) - cpu0;
      ms.sort((x, y) => x - y);
      const q = (x: number) => ms[Math.min(ms.length - 1, Math.floor(x * ms.length))]!;
      const run: Run = { section: 'leaf', variant, round: 1, probe, check: JSON.stringify({ n: ms.length, p50: q(0.5), p99: q(0.99), max: ms[ms.length - 1], cpuMsEach: (cpu * 1000) / ms.length }) };
      ctx.runsOut.push(run);
      log(`leaf ${variant}: n ${ms.length}, p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, max ${ms[ms.length - 1]!.toFixed(2)} ms, recorder CPU ${((cpu * 1000) / ms.length).toFixed(2)} ms each, loop max ${probe.loopMs.max.toFixed(1)} ms`);
    }
    await rec.proc.stop('SIGINT');
  }
}

// ---------------------------------------------------------------------------------------------------------

const f0 = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(0));
const f2 = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(2));
const range = (s: Summary | null, f: (v: number) => string) => (s ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : '–');

function table(runs: Run[]): string {
  const lines = [
    '| section | variant | n | MB/s median (min–max) | CPU-s per GB (all threads) | main thread CPU-s per GB | mark-compacts /GB | scavenges /GB | GC pause ms/GB | loop delay max ms | peak RSS MB |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const keys = [...new Set(runs.filter((r) => r.section !== 'leaf').map((r) => `${r.section}\u0000${r.variant}`))];
  for (const k of keys) {
    const [section, variant] = k.split('\u0000') as [string, string];
    const rs = runs.filter((r) => r.section === section && r.variant === variant);
    const pick = (fn: (r: Run) => number | undefined) => summarize(rs.map(fn).filter((v): v is number => v !== undefined));
    const mainCpu = (r: Run) => r.threads?.main;
    lines.push(
      `| ${section} | ${variant} | ${rs.length} | ${range(pick((r) => r.mbps), f0)} | ${range(pick((r) => r.cpuPerGB), f2)} | ${range(pick(mainCpu), f2)} | ${range(pick((r) => r.gcPerGB?.markCompact), f0)} | ${range(
        pick((r) => r.gcPerGB?.scavenge),
        f0,
      )} | ${range(pick((r) => r.gcPerGB?.pauseMs), f0)} | ${range(pick((r) => r.probe?.loopMs.max), f0)} | ${range(pick((r) => (r.peakRss === undefined ? undefined : r.peakRss / 1e6)), f0)} |`,
    );
  }
  const leaf = runs.filter((r) => r.section === 'leaf');
  if (leaf.length) {
    lines.push('', '| leaf | n | handshake p50 ms | p99 ms | max ms | recorder CPU ms per handshake | recorder loop delay max ms |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of leaf) {
      const c = JSON.parse(r.check!) as { n: number; p50: number; p99: number; max: number; cpuMsEach: number };
      lines.push(`| ${r.variant} | ${c.n} | ${f2(c.p50)} | ${f2(c.p99)} | ${f2(c.max)} | ${f2(c.cpuMsEach)} | ${f2(r.probe?.loopMs.max)} |`);
    }
  }
  return lines.join('\n');
}

/** Paired per-round ratio of two variants' speeds. */
function ratio(runs: Run[], section: string, a: string, b: string): string {
  const rounds = [...new Set(runs.filter((r) => r.section === section).map((r) => r.round))];
  const rs: number[] = [];
  for (const round of rounds) {
    const x = runs.find((r) => r.section === section && r.variant === a && r.round === round)?.mbps;
    const y = runs.find((r) => r.section === section && r.variant === b && r.round === round)?.mbps;
    if (x && y) rs.push(x / y);
  }
  const s = summarize(rs);
  return s ? `${a} / ${b} speed: median ${s.median.toFixed(2)} (per round ${s.min.toFixed(2)}–${s.max.toFixed(2)}, n ${s.n})` : '';
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mib: { type: 'string', default: '500' },
      runs: { type: 'string', default: '5' },
      only: { type: 'string', default: 'record,slow,replay,leaf' },
      'slow-rate': { type: 'string', default: '100M' },
      hosts: { type: 'string', default: '300' },
      'cpu-prof': { type: 'string' },
      json: { type: 'string' },
      'node-flags': { type: 'string' },
      env: { type: 'string', multiple: true, default: [] },
      keep: { type: 'string' },
      baseline: { type: 'string' },
      write: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const size = Number(values.mib) * 2 ** 20;
  const runs = Number(values.runs);
  if (!(size > 0) || !Number.isInteger(runs) || runs < 1) throw new UsageError('--mib and --runs must be positive');
  const only = values.only!.split(',');
  for (const o of only) if (!['record', 'slow', 'replay', 'leaf'].includes(o)) throw new UsageError(`--only: unknown section ${o}`);
  await buildIfStale(log);
  const builds: Build[] = [{ tag: '', root: ROOT }];
  if (values.baseline) {
    const base = path.resolve(values.baseline);
    if (!existsSync(path.join(base, 'dist', 'cli', 'main.js'))) throw new UsageError(`--baseline ${base}: no dist/cli/main.js there (build it first)`);
    builds.push({ tag: ' (before)', root: base });
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'rtcost-'));
  extraEnv = Object.fromEntries(values.env!.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  nodeFlags = values['node-flags'] ? values['node-flags'].split(/\s+/).filter(Boolean) : [];
  if (values.keep) log(`keeping the work dir ${work} (process logs)`);
  else defer('temp dir', () => rm(work, { recursive: true, force: true }));
  const t0 = Date.now();
  const load0 = loadAvg();
  const origin = await startProcess({
    name: 'origin',
    cmd: process.execPath,
    args: ['--import', 'tsx', 'scripts/bench/big-origin.ts', '--dir', path.join(work, 'origin-ca'), '--size', String(size), '--host', HOST],
    env: { PATH: CLEAN_PATH, HOME: work },
    cwd: ROOT,
    ready: /^\{"port".*\}$/m,
    logPath: path.join(work, 'origin.log'),
  });
  defer('origin', () => origin.stop('SIGTERM'));
  const info = JSON.parse(origin.ready![0]) as { port: number; caPath: string };
  const sha = (await import('./bench/pattern.js')).patternSha256(size);
  const ctx: Ctx = { work, size, sha, runs, origin: info, runsOut: [], builds, cpuProf: values['cpu-prof'] && path.resolve(values['cpu-prof']), slowRate: only.includes('slow') ? values['slow-rate']! : '', hosts: Number(values.hosts) };
  let dbs: string[] = [];
  if (only.includes('record') || only.includes('replay')) dbs = await sectionRecord(ctx, only.includes('replay'));
  if (only.includes('replay') && dbs.length) await sectionReplay(ctx, dbs);
  if (only.includes('leaf')) await sectionLeaf(ctx);
  const out = [
    `bench-cost: ${(size / 1e6).toFixed(0)} MB body, ${runs} round(s) after a warm-up; ${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, node ${process.version}; load ${load0.join(' ')} → ${loadAvg().join(' ')}; ${Math.round((Date.now() - t0) / 1000)} s`,
    '',
    table(ctx.runsOut),
    '',
    ratio(ctx.runsOut, 'record', 'socat TLS relay (C: TLS twice, stores nothing)', 'direct'),
    ratio(ctx.runsOut, 'record', 'pass-through', 'socat TLS relay (C: TLS twice, stores nothing)'),
    ...builds.flatMap((b) => [
      ratio(ctx.runsOut, 'record', `regtape record${b.tag}`, `pass-through${b.tag}`),
      ratio(ctx.runsOut, 'record', `regtape record${b.tag}`, 'direct'),
      ratio(ctx.runsOut, 'record', `pass-through${b.tag}`, 'direct'),
      ratio(ctx.runsOut, 'replay', `regtape replay --mirror${b.tag}`, 'node file server (createReadStream → res)'),
    ]),
  ].join('\n');
  process.stdout.write(`${out}\n`);
  if (values.write) {
    const md = [
      '## Cost: CPU, GC, memory and event loop per GB (record, replay, leaf certificates)',
      '',
      `Generated by \`npx tsx scripts/bench-cost.ts ${argv.join(' ')}\` on ${new Date(t0).toISOString().slice(0, 16).replace('T', ' ')} UTC. ${os.cpus().length} vCPU (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}. **The machine was shared with other work while this ran** (load average ${load0.join(' ')} at the start, ${loadAvg().join(' ')} at the end): MB/s are wall clock and move with the neighbours; CPU-seconds per GB of the process under test (all its threads, from /proc/PID/stat), its GC counts and its peak RSS move much less, so compare those.${builds.length > 1 ? ' "(before)" rows are the build given with --baseline (the commit before issue 15\'s work), run in the same rounds; variants rotate every round.' : ' Variants rotate every round.'}`,
      '',
      'Origin: scripts/bench/big-origin.ts (Node HTTPS, generated bytes, Content-Length), curl as the client, everything on loopback. regtape record stores and hashes every byte; each stored file is checked (size, sha256) after every run. The pass-through is the same proxy code storing nothing (scripts/passthrough-proxy.ts). socat (`OPENSSL-LISTEN … OPENSSL:origin`) is a TLS-terminating relay in C: decrypt, re-encrypt, store nothing — the floor of "TLS twice" on this machine. Replay: `regtape replay --no-proxy --mirror` serving the recorded body vs scripts/bench/file-server.ts (node:http + createReadStream, the same file). GC counts come from a PerformanceObserver preloaded into the process (scripts/bench/probe.mjs), pause = main-thread time; loop delay from monitorEventLoopDelay. Leaf: CONNECT + TLS handshake to the recorder for new host names (each needs a new leaf) vs a known one, sequentially.',
      '',
      '```',
      out,
      '```',
    ].join('\n');
    await replaceSection(BENCHMARKS_MD, 'bench-cost', md);
    log('wrote the Cost section of BENCHMARKS.md');
  }
  if (values.json) await writeFile(values.json, JSON.stringify({ date: new Date(t0).toISOString(), size, runs, load: [load0, loadAvg()], runs_: ctx.runsOut }, null, 1));
  return 0;
}

runMain('bench-cost', () => main(process.argv.slice(2)), cleanups, log);
