/**
 * The record benchmark: what recording costs, measured with real clients in the lab (scripts/lab/).
 *
 *   bash scripts/bench-record [--runs N] [--quick] …      (see --help)
 *
 * 1. `docker pull registry.test/lab/big:500` (one ~500 MB layer): direct, through `regtape record`
 *    (stores and hashes every byte), through the pass-through proxy (scripts/passthrough-proxy.ts: the
 *    same proxy code, no observer work) and through mitmdump (stores nothing);
 * 2. curl of the same blob from the CDN the same four ways;
 * 3. per run, each proxy's CPU time and peak RSS (VmHWM, reset through /proc/PID/clear_refs); and a 2 GiB
 *    body through regtape from our own origin at full speed and with a slow client.
 *
 * Variants alternate within each round (round r: direct, regtape, pass-through, mitmdump; then round r+1)
 * so drift on a shared machine hits them alike; one untimed warm-up round comes first (--no-warmup to
 * skip), and each run waits (≤ 60 s) for a quiet machine. Results go to stdout, to the `bench-record`
 * section of BENCHMARKS.md and to scripts/bench/results/record-<date>.json. Everything started here (lab,
 * dockerds, proxies, temp dirs of GBs) is removed on exit, error or Ctrl-C.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import {
  BENCHMARKS_MD,
  buildIfStale,
  CLI,
  docker,
  emptyImageStore,
  imageId,
  installCleanups,
  loadAvg,
  machineInfo as baseMachineInfo,
  makeLog,
  preflight,
  publishResults,
  quietBeforeRun,
  ROOT,
  runMain,
  sha256File,
  shellLine,
  UsageError,
} from './bench/common.js';
import { patternSha256 } from './bench/pattern.js';
import { canConnect, cpuSeconds, foreignCpuSeconds, freePort, procMem, processTicks, resetPeak, runCmd as run, startProcess, waitFor, type BenchProcess } from './bench/procs.js';
import { IDLE_THRESHOLD, IDLE_TIMEOUT_MS, IP_BASE, analyse, renderMarkdown, sampleLine, type Machine, type Results, type Sample } from './bench/record-report.js';
import { replaceSection } from './bench/report.js';
import { startDockerd, type Dockerd } from './lab/dockerd.js';
import { startLab, storageBlobPath, type ExtraImageSet, type Lab } from './lab/index.js';
import { CLEAN_PATH, markOwner, sweepStaleDirs } from './lab/proc.js';

const SECTION = 'bench-record';
const BIG_HOST = 'big.test';


const HELP = `Usage: bash scripts/bench-record [options]

Benchmarks \`regtape record\` against a direct connection, the pass-through proxy (same proxy code, stores
nothing) and mitmdump, with real docker pulls and curl downloads of a ~500 MB layer from the lab
(scripts/lab/), plus a 2 GiB body for peak memory. About 3–5 minutes on an idle 2-vCPU machine (longer on
a busy one: each run waits up to 60 s for quiet). Needs root and: apt-get install docker.io
docker-registry skopeo mitmproxy curl util-linux. Builds dist/ first when it is stale.

Options:
  --runs N        timed runs per variant (default 3); variants alternate within each round
  --quick         smoke test: lab/big:100, 1 run, 256 MiB big body; writes no files unless --write
  --no-warmup     skip the untimed warm-up round
  --no-wait-idle  do not wait (up to 60 s) before each run for the machine to be < 20% busy
  --only LIST     comma-separated subset of: pull,curl,big (files are then not written unless --write)
  --big-mib N     size of the big body in MiB (default 2048; --quick 256)
  --cpu-prof DIR  run the main regtape record process with node --cpu-prof, profiles into DIR
  --write         write BENCHMARKS.md and scripts/bench/results/ even for --quick/--only
  --no-write      print only
  --render FILE   measure nothing: re-render the Record section of BENCHMARKS.md from a results JSON
  -h, --help      this help

Output: tables on stdout; the "Record" section of BENCHMARKS.md (between <!-- ${SECTION}:start/end -->);
raw numbers in scripts/bench/results/record-<date>.json. Exit 2 when root or a package is missing.
`;

// ---------------------------------------------------------------------------------------------------------
// small helpers

const log = makeLog('bench-record');
const cleanups = installCleanups(log, 'dockerds, lab, proxies, temp dirs');
const { defer, cleanupAll, interrupted } = cleanups;

/**
 * CPU seconds to fault in 1 GiB of fresh memory (a child fills 512 MiB). Recording writes every body into
 * new page-cache pages, so this machine property shows up in regtape's numbers; it is high and variable in
 * VMs whose host backs guest memory lazily.
 */
async function memoryTouchCost(): Promise<number> {
  const script = 'const t = process.cpuUsage(); Buffer.alloc(512 << 20, 1); const u = process.cpuUsage(t); console.log((u.user + u.system) / 1e6)';
  const r = await run(process.execPath, ['-e', script], { timeoutMs: 60_000 });
  return Math.round(Number(r.stdout.trim()) * 2 * 100) / 100;
}

/** The machine (common.ts machineInfo) with the tool versions as the named fields of results schema 1. */
async function machineInfo(): Promise<Machine> {
  const m = await baseMachineInfo(['dockerd', 'mitmdump', 'curl', 'docker-registry']);
  return {
    cpu: m.cpu,
    nproc: m.nproc,
    memoryBytes: m.memoryBytes,
    kernel: m.kernel,
    node: m.node,
    os: m.os,
    docker: m.tools.dockerd!,
    mitmproxy: m.tools.mitmdump!,
    curl: m.tools.curl!,
    registry: m.tools['docker-registry']!,
    loadAvgAtStart: m.loadAvgAtStart,
    memTouchSecondsPerGiB: await memoryTouchCost(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// proxies

interface Proxy {
  name: string;
  proc: BenchProcess;
  url: string;
  /** CA that clients must trust. */
  caFile: string;
  /** The command as shown in the report. */
  command: string;
  idleRss: number;
}

interface Ctx {
  work: string;
  home: string;
  lab?: Lab;
  env: NodeJS.ProcessEnv;
}

/** Makes a command line readable in the report: temp paths become $T / $LAB. */
function shown(ctx: Ctx, argv: readonly string[], env = ''): string {
  const s = shellLine(argv, [
    [ctx.lab?.dir ?? '', '$LAB'],
    [ctx.work, '$T'],
    [ROOT + '/', ''],
  ]);
  return env ? `${env} ${s}` : s;
}

const LISTENING = /listening on (http:\/\/[\d.]+:\d+)/;

async function startRegtape(ctx: Ctx, name: string, out: string, map: readonly string[], upstreamCa: string, cpuProfDir?: string): Promise<Proxy> {
  const args = [
    ...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : []),
    CLI,
    'record',
    '--listen',
    '127.0.0.1:0',
    '--out',
    out,
    ...map.flatMap((m) => ['--map', m]),
    '--upstream-ca',
    upstreamCa,
  ];
  const proc = await startProcess({
    name,
    cmd: process.execPath,
    args,
    env: { ...ctx.env, REGTAPE_HOME: ctx.home },
    cwd: ROOT,
    ready: LISTENING,
    logPath: path.join(ctx.work, `${name}.log`),
  });
  // SIGINT is Ctrl-C: regtape commits what finished and closes the file (and writes --cpu-prof).
  defer(name, () => proc.stop('SIGINT', 60_000));
  return {
    name,
    proc,
    url: proc.ready![1]!,
    caFile: path.join(ctx.home, 'ca.pem'),
    command: shown(ctx, ['node', ...args], 'REGTAPE_HOME=$T/home'),
    idleRss: (await procMem(proc.pid)).rss,
  };
}

async function startPassthrough(ctx: Ctx, lab: Lab): Promise<Proxy> {
  const args = ['--import', 'tsx', 'scripts/passthrough-proxy.ts', '--listen', '127.0.0.1:0', ...lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', lab.caCertPath];
  const proc = await startProcess({
    name: 'passthrough',
    cmd: process.execPath,
    args,
    env: { ...ctx.env, REGTAPE_HOME: ctx.home },
    cwd: ROOT,
    ready: LISTENING,
    logPath: path.join(ctx.work, 'passthrough.log'),
  });
  defer('passthrough', () => proc.stop('SIGTERM'));
  return {
    name: 'passthrough',
    proc,
    url: proc.ready![1]!,
    caFile: path.join(ctx.home, 'ca.pem'),
    command: shown(ctx, ['node', ...args], 'REGTAPE_HOME=$T/home'),
    idleRss: (await procMem(proc.pid)).rss,
  };
}

async function startMitmdump(ctx: Ctx, lab: Lab): Promise<Proxy> {
  const port = await freePort();
  const confdir = path.join(ctx.work, 'mitm');
  await mkdir(confdir, { recursive: true });
  const caFile = path.join(confdir, 'mitmproxy-ca-cert.pem');
  const mitmArgs = [
    'mitmdump',
    '--listen-host',
    '127.0.0.1',
    '-p',
    String(port),
    '--set',
    'stream_large_bodies=1m',
    '--set',
    `confdir=${confdir}`,
    '--set',
    `ssl_verify_upstream_trusted_ca=${lab.caCertPath}`,
    '-q',
  ];
  // unshare without --fork execs: setpriv → unshare → sh → mitmdump (python) keep one PID, the one we read.
  const args = ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', lab.hostsFile, ...mitmArgs];
  const proc = await startProcess({
    name: 'mitmdump',
    cmd: 'unshare',
    args,
    env: { PATH: CLEAN_PATH, HOME: confdir, LANG: 'C.UTF-8' },
    ready: async () => existsSync(caFile) && (await canConnect('127.0.0.1', port)),
    logPath: path.join(ctx.work, 'mitmdump.log'),
  });
  defer('mitmdump', () => proc.stop('SIGINT'));
  const comm = (await readFile(`/proc/${proc.pid}/comm`, 'utf8').catch(() => '?')).trim();
  if (!/python|mitmdump/.test(comm)) log(`warning: mitmdump PID ${proc.pid} is '${comm}', its memory may not be mitmdump's`);
  return {
    name: 'mitmdump',
    proc,
    url: `http://127.0.0.1:${port}`,
    caFile,
    command: `unshare --mount --propagation private sh -c 'mount --bind $LAB/hosts /etc/hosts && exec ${shown(ctx, mitmArgs).replace(String(port), 'PORT')}'`,
    idleRss: (await procMem(proc.pid)).rss,
  };
}

// ---------------------------------------------------------------------------------------------------------
// checks

function maxFlowId(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT coalesce(max(id), 0) AS m FROM flows').get() as { m: number }).m;
  } finally {
    db.close();
  }
}

/**
 * Waits until the recording committed a flow (newer than `afterId`) whose response body is `sha256`, then
 * checks the flow is complete, the body file `<out>.blobs/<sha256>` has the right size and content, and
 * removes the file so the next run stores everything again. Returns a short description.
 */
async function verifyStored(dbPath: string, afterId: number, sha256: string, size: number): Promise<string> {
  const row = await waitCommitted(dbPath, afterId, sha256);
  if (row.state !== 'complete' || row.size !== size || row.bytes !== size) {
    throw new Error(`flow ${row.id}: state ${row.state}, body size ${row.size}, ${row.bytes} bytes; expected complete with ${size}`);
  }
  const file = path.join(dbPath.replace(/\.db$/, '.blobs'), sha256);
  const st = await stat(file).catch(() => null);
  if (!st) throw new Error(`flow ${row.id} references ${sha256} but ${file} does not exist`);
  if (st.size !== size) throw new Error(`${file}: ${st.size} bytes, expected ${size}`);
  const actual = await sha256File(file);
  if (actual !== sha256) throw new Error(`${file}: content hashes to ${actual}`);
  await rm(file);
  return `flow ${row.id} complete, body file ${sha256.slice(0, 12)}… ${size} B, content sha256 ok`;
}

/** Waits until the recording has committed a flow newer than `afterId` whose response body is `sha256`. */
function waitCommitted(dbPath: string, afterId: number, sha256: string): Promise<{ id: number; state: string; size: number; bytes: number }> {
  return waitFor(
    `the recording to commit body ${sha256.slice(0, 12)}…`,
    async () => {
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        return db
          .prepare('SELECT id, state, res_body_size AS size, res_bytes AS bytes FROM flows WHERE id > ? AND res_body_sha256 = ? ORDER BY id DESC LIMIT 1')
          .get(afterId, sha256) as { id: number; state: string; size: number; bytes: number } | undefined;
      } finally {
        db.close();
      }
    },
    120_000,
    50,
  );
}

// ---------------------------------------------------------------------------------------------------------
// measurements

let waitForIdle = true;

/** Before each timed run: flush dirty pages of the previous run, then wait for a quiet machine. */
const beforeRun = (): Promise<{ busyBefore: number; waitedMs: number }> => quietBeforeRun(waitForIdle, IDLE_THRESHOLD, IDLE_TIMEOUT_MS, log);

interface PullVariant {
  name: string;
  dockerd: Dockerd;
  proxy?: Proxy;
  /** regtape: where the recording is (checked after every run). */
  recording?: string;
}

async function runPulls(variants: PullVariant[], ref: string, layer: { sha256: string; size: number }, runs: number, warmup: boolean, samples: Sample[]): Promise<void> {
  for (let round = warmup ? 0 : 1; round <= runs; round++) {
    for (const v of variants) {
      if (interrupted()) return;
      await emptyImageStore(v.dockerd);
      const before = v.recording ? maxFlowId(v.recording) : 0;
      const quiet = await beforeRun();
      if (v.proxy) await resetPeak(v.proxy.proc.pid);
      const cpu0 = v.proxy ? await cpuSeconds(v.proxy.proc.pid) : 0;
      const snap0 = await processTicks();
      const t0 = performance.now();
      const r = await docker(v.dockerd, ['pull', ref], 15 * 60_000);
      const seconds = (performance.now() - t0) / 1000;
      const foreignCpu = foreignCpuSeconds(snap0, await processTicks());
      if (r.code !== 0) throw new Error(`docker pull ${ref} via ${v.name} failed (exit ${r.code}):\n${r.stderr.trim()}\n--- dockerd log tail:\n${v.dockerd.logTail(3000)}`);
      let check: string;
      let proxyCpu: number | undefined;
      if (v.recording) {
        await waitCommitted(v.recording, before, layer.sha256);
        proxyCpu = (await cpuSeconds(v.proxy!.proc.pid)) - cpu0;
        check = await verifyStored(v.recording, before, layer.sha256, layer.size);
      } else {
        if (v.proxy) proxyCpu = (await cpuSeconds(v.proxy.proc.pid)) - cpu0;
        const id = await imageId(v.dockerd, ref);
        if (!id) throw new Error(`${v.name}: docker pull succeeded but ${ref} is not there`);
        check = `image ${id.slice(0, 19)}…`;
      }
      const sample: Sample = { section: 'pull', variant: v.name, round, seconds, check, proxyCpu, foreignCpu, ...quiet };
      if (v.proxy) sample.proxyPeak = (await procMem(v.proxy.proc.pid)).peak;
      samples.push(sample);
      log(sampleLine(sample));
    }
  }
}

interface CurlVariant {
  name: string;
  args: string[];
  proxy?: Proxy;
  recording?: string;
}

const CURL_FORMAT = '%{http_code} %{size_download} %{speed_download} %{time_total} %{http_version}';

async function curlOnce(args: readonly string[], url: string, env: NodeJS.ProcessEnv): Promise<{ bytes: number; mbps: number; seconds: number; httpVersion: string }> {
  const r = await run('curl', ['-sS', '-o', '/dev/null', '--max-time', '900', '-w', CURL_FORMAT, ...args, url], { env, timeoutMs: 960_000 });
  const [code, size, speed, total, version] = r.stdout.trim().split(/\s+/);
  if (r.code !== 0 || code !== '200') throw new Error(`curl ${args.join(' ')} ${url}: exit ${r.code}, HTTP ${code}\n${r.stderr.trim()}`);
  return { bytes: Number(size), mbps: Number(speed) / 1e6, seconds: Number(total), httpVersion: version ?? '?' };
}

async function runCurls(variants: CurlVariant[], url: string, body: { sha256: string; size: number }, runs: number, warmup: boolean, env: NodeJS.ProcessEnv, samples: Sample[]): Promise<void> {
  for (let round = warmup ? 0 : 1; round <= runs; round++) {
    for (const v of variants) {
      if (interrupted()) return;
      const before = v.recording ? maxFlowId(v.recording) : 0;
      const quiet = await beforeRun();
      if (v.proxy) await resetPeak(v.proxy.proc.pid);
      const cpu0 = v.proxy ? await cpuSeconds(v.proxy.proc.pid) : 0;
      const snap0 = await processTicks();
      const c = await curlOnce(v.args, url, env);
      const foreignCpu = foreignCpuSeconds(snap0, await processTicks());
      if (c.bytes !== body.size) throw new Error(`curl via ${v.name}: ${c.bytes} bytes, expected ${body.size}`);
      if (v.recording) await waitCommitted(v.recording, before, body.sha256);
      const proxyCpu = v.proxy ? (await cpuSeconds(v.proxy.proc.pid)) - cpu0 : undefined;
      const check = v.recording ? await verifyStored(v.recording, before, body.sha256, body.size) : `${c.bytes} B`;
      const sample: Sample = { section: 'curl', variant: v.name, round, seconds: c.seconds, mbps: c.mbps, bytes: c.bytes, httpVersion: c.httpVersion, check, proxyCpu, foreignCpu, ...quiet };
      if (v.proxy) sample.proxyPeak = (await procMem(v.proxy.proc.pid)).peak;
      samples.push(sample);
      log(sampleLine(sample));
    }
  }
}

interface BigResult {
  size: number;
  sha256: string;
  regtapeCommand: string;
  originCommand: string;
  idleRss: number;
}

async function runBigBody(ctx: Ctx, sizeBytes: number, samples: Sample[]): Promise<BigResult> {
  log(`big body: hashing the expected ${sizeBytes} bytes…`);
  const sha256 = patternSha256(sizeBytes);
  const originArgs = ['--import', 'tsx', 'scripts/bench/big-origin.ts', '--dir', path.join(ctx.work, 'origin-ca'), '--size', String(sizeBytes), '--host', BIG_HOST];
  const origin = await startProcess({
    name: 'origin',
    cmd: process.execPath,
    args: originArgs,
    env: ctx.env,
    cwd: ROOT,
    ready: /^\{"port".*\}$/m,
    logPath: path.join(ctx.work, 'origin.log'),
  });
  defer('origin', () => origin.stop('SIGTERM'));
  const info = JSON.parse(origin.ready![0]) as { port: number; caPath: string };
  const out = path.join(ctx.work, 'big', 'big.db');
  const regtape = await startRegtape(ctx, 'regtape-big', out, [`${BIG_HOST}=127.0.0.1:${info.port}`], info.caPath);
  const url = `https://${BIG_HOST}/blob`;
  for (const mode of [
    { name: 'full speed', args: [] as string[] },
    { name: 'slow client (--limit-rate 100M)', args: ['--limit-rate', '100M'] },
  ]) {
    if (interrupted()) break;
    const before = maxFlowId(out);
    const quiet = await beforeRun();
    await resetPeak(regtape.proc.pid);
    const cpu0 = await cpuSeconds(regtape.proc.pid);
    const snap0 = await processTicks();
    const c = await curlOnce(['-x', regtape.url, '--cacert', regtape.caFile, ...mode.args], url, ctx.env);
    const foreignCpu = foreignCpuSeconds(snap0, await processTicks());
    if (c.bytes !== sizeBytes) throw new Error(`big body via regtape (${mode.name}): ${c.bytes} bytes, expected ${sizeBytes}`);
    await waitCommitted(out, before, sha256);
    const proxyCpu = (await cpuSeconds(regtape.proc.pid)) - cpu0;
    const check = await verifyStored(out, before, sha256, sizeBytes);
    const sample: Sample = { section: 'big', variant: mode.name, round: 1, seconds: c.seconds, mbps: c.mbps, bytes: c.bytes, httpVersion: c.httpVersion, check, proxyPeak: (await procMem(regtape.proc.pid)).peak, proxyCpu, foreignCpu, ...quiet };
    samples.push(sample);
    log(sampleLine(sample));
  }
  return {
    size: sizeBytes,
    sha256,
    regtapeCommand: regtape.command.replace(`127.0.0.1:${info.port}`, '127.0.0.1:ORIGIN_PORT'),
    originCommand: shown(ctx, ['node', ...originArgs]),
    idleRss: regtape.idleRss,
  };
}

// ---------------------------------------------------------------------------------------------------------
// main

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean' },
      'no-warmup': { type: 'boolean' },
      'no-wait-idle': { type: 'boolean' },
      only: { type: 'string' },
      'big-mib': { type: 'string' },
      'cpu-prof': { type: 'string' },
      write: { type: 'boolean' },
      'no-write': { type: 'boolean' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.render) return renderFrom(path.resolve(values.render));
  const quick = !!values.quick;
  const runs = values.runs !== undefined ? Number(values.runs) : quick ? 1 : 3;
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs ${values.runs}: expected a positive integer`);
  const bigMib = values['big-mib'] !== undefined ? Number(values['big-mib']) : quick ? 256 : 2048;
  if (!Number.isInteger(bigMib) || bigMib < 1) throw new UsageError(`--big-mib ${values['big-mib']}: expected a positive integer`);
  const sections = (values.only ?? 'pull,curl,big').split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of sections) if (!['pull', 'curl', 'big'].includes(x)) throw new UsageError(`--only: unknown section ${x} (pull, curl, big)`);
  const write = values['no-write'] ? false : values.write ? true : !quick && values.only === undefined;
  const warmup = !values['no-warmup'];
  waitForIdle = !values['no-wait-idle'];
  const cpuProf = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;

  const needs: Array<[string, string]> = [
    ['dockerd', 'docker.io'],
    ['docker', 'docker.io'],
    ['docker-registry', 'docker-registry'],
    ['skopeo', 'skopeo'],
    ['mitmdump', 'mitmproxy'],
    ['curl', 'curl'],
    ['unshare', 'util-linux'],
    ['setpriv', 'util-linux'],
  ];
  if (!preflight('bench-record', needs)) return 2;

  const started = Date.now();
  await buildIfStale(log);
  const machine = await machineInfo();
  log(`machine: ${machine.cpu}, ${machine.nproc} vCPU, node ${machine.node}, load ${machine.loadAvgAtStart.join(' ')}`);

  await sweepStaleDirs(os.tmpdir(), 'rtbench-');
  const work = await mkdtemp(path.join(os.tmpdir(), 'rtbench-'));
  await markOwner(work);
  defer('temp dir', () => rm(work, { recursive: true, force: true }));
  const ctx: Ctx = { work, home: path.join(work, 'home'), env: { PATH: CLEAN_PATH, HOME: work } };
  await mkdir(ctx.home, { recursive: true, mode: 0o700 });
  if (cpuProf) await mkdir(cpuProf, { recursive: true });

  const results: Results = {
    benchmark: 'record',
    schema: 1,
    date: new Date(started).toISOString(),
    durationSeconds: 0,
    command: ['bash scripts/bench-record', ...argv].join(' '),
    options: { runs, quick, warmup, waitIdle: waitForIdle, only: sections, bigBytes: bigMib * 2 ** 20 },
    machine,
    commands: {},
    idleRss: {},
    samples: [],
    summary: {},
    ratios: {},
    targets: [],
  };

  if (sections.includes('pull') || sections.includes('curl')) {
    const set: ExtraImageSet = quick ? 'big100' : 'big500';
    log(`starting the lab (${set}) on ${IP_BASE}.x…`);
    const lab = await startLab({ images: [set], ipBase: IP_BASE, onProgress: (msg) => log(`lab: ${msg}`) });
    defer('lab', () => lab.stop());
    ctx.lab = lab;
    const img = lab.image(quick ? 'lab/big:100' : 'lab/big:500');
    const layerRef = [...img.blobs].sort((a, b) => b.size - a.size)[0]!;
    const hex = layerRef.digest.replace(/^sha256:/, '');
    const layer = { sha256: hex, size: layerRef.size };
    const cdnUrl = `${lab.urls.cdn}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
    results.image = { ref: img.ref, layerDigest: layerRef.digest, layerSize: layerRef.size, cdnUrl };
    // The blob file is hard-linked from the image cache: read it once so no variant pays for the disk.
    await sha256File(storageBlobPath(lab.storageRoot, layerRef.digest)).then((h) => {
      if (h !== hex) throw new Error(`lab blob ${layerRef.digest} hashes to ${h}`);
    });

    const recording = path.join(work, 'rec', 'bench.db');
    const regtape = await startRegtape(ctx, 'regtape', recording, lab.map, lab.caCertPath, cpuProf);
    const pt = await startPassthrough(ctx, lab);
    const mitm = await startMitmdump(ctx, lab);
    results.commands['regtape record'] = regtape.command;
    results.commands['pass-through'] = pt.command;
    results.commands.mitmdump = mitm.command;
    results.idleRss.regtape = regtape.idleRss;
    results.idleRss.passthrough = pt.idleRss;
    results.idleRss.mitmdump = mitm.idleRss;
    log(`regtape ${regtape.url} (pid ${regtape.proc.pid}), pass-through ${pt.url} (pid ${pt.proc.pid}), mitmdump ${mitm.url} (pid ${mitm.proc.pid})`);

    if (sections.includes('pull')) {
      log('starting four dockerds (direct, via regtape, via pass-through, via mitmdump)…');
      const dDirect = await startDockerd({ hosts: lab.hostsFileLines, caFile: lab.caCertPath });
      defer('dockerd direct', () => dDirect.stop());
      const dRegtape = await startDockerd({ proxyUrl: regtape.url, caFile: regtape.caFile });
      defer('dockerd regtape', () => dRegtape.stop());
      const dPt = await startDockerd({ proxyUrl: pt.url, caFile: pt.caFile });
      defer('dockerd pass-through', () => dPt.stop());
      const dMitm = await startDockerd({ proxyUrl: mitm.url, caFile: mitm.caFile });
      defer('dockerd mitmdump', () => dMitm.stop());
      results.commands['docker pull'] = `docker -H unix://$DOCKERD/docker.sock pull ${img.ref}   # dockerd from startDockerd(): direct with the lab names in a private /etc/hosts; else HTTPS_PROXY=<proxy> and SSL_CERT_FILE=<proxy CA>`;
      await runPulls(
        [
          { name: 'direct', dockerd: dDirect },
          { name: 'regtape', dockerd: dRegtape, proxy: regtape, recording },
          { name: 'passthrough', dockerd: dPt, proxy: pt },
          { name: 'mitmdump', dockerd: dMitm, proxy: mitm },
        ],
        img.ref,
        layer,
        runs,
        warmup,
        results.samples,
      );
      // vfs keeps every layer unpacked: free the space now rather than at exit.
      for (const d of [dDirect, dRegtape, dPt, dMitm]) await emptyImageStore(d).catch(() => undefined);
    }

    if (sections.includes('curl') && !interrupted()) {
      const cdnHost = new URL(lab.urls.cdn).host;
      const direct = ['--resolve', `${cdnHost}:${lab.port}:${lab.ips.cdn}`, '--cacert', lab.caCertPath];
      results.commands.curl = `curl -sS -o /dev/null -w '%{speed_download}' [--resolve ${cdnHost}:${lab.port}:${lab.ips.cdn} --cacert $LAB/ca.pem | -x PROXY --cacert PROXY_CA] ${cdnUrl}`;
      await runCurls(
        [
          { name: 'direct', args: direct },
          { name: 'regtape', args: ['-x', regtape.url, '--cacert', regtape.caFile], proxy: regtape, recording },
          { name: 'passthrough', args: ['-x', pt.url, '--cacert', pt.caFile], proxy: pt },
          { name: 'mitmdump', args: ['-x', mitm.url, '--cacert', mitm.caFile], proxy: mitm },
        ],
        cdnUrl,
        layer,
        runs,
        warmup,
        ctx.env,
        results.samples,
      );
    }
  }

  if (sections.includes('big') && !interrupted()) {
    const big = await runBigBody(ctx, bigMib * 2 ** 20, results.samples);
    results.big = { size: big.size, sha256: big.sha256 };
    results.commands['regtape record (big body)'] = big.regtapeCommand;
    results.commands['big-body origin'] = big.originCommand;
    results.commands['big-body curl'] = `curl -sS -o /dev/null -x REGTAPE --cacert $T/home/ca.pem [--limit-rate 100M] https://${BIG_HOST}/blob`;
    results.idleRss['regtape-big'] = big.idleRss;
  }
  if (interrupted()) return 130;

  log('stopping proxies and dockerds…');
  await cleanupAll();
  results.durationSeconds = (Date.now() - started) / 1000;
  results.machine.loadAvgAtEnd = loadAvg();
  analyse(results);
  await publishResults({ kind: 'record', title: 'Record', section: SECTION, results, write, render: (file) => renderMarkdown(results, file), log });
  if (cpuProf) log(`CPU profile of the main regtape process: ${cpuProf}/*.cpuprofile`);
  log(`done in ${Math.round(results.durationSeconds)} s`);
  return 0;
}

/** --render: the Record section from saved raw numbers (after a change to the presentation, not the data). */
async function renderFrom(file: string): Promise<number> {
  const results = JSON.parse(await readFile(file, 'utf8')) as Results;
  if (results.benchmark !== 'record' || results.schema !== 1) throw new UsageError(`${file}: not a bench-record results file (schema 1)`);
  Object.assign(results, { summary: {}, ratios: {}, targets: [] });
  analyse(results);
  const md = renderMarkdown(results, path.relative(ROOT, file));
  process.stdout.write(`${md}\n`);
  await replaceSection(BENCHMARKS_MD, SECTION, md);
  log(`re-rendered the Record section of BENCHMARKS.md from ${path.relative(ROOT, file)}`);
  return 0;
}

runMain('bench-record', () => main(process.argv.slice(2)), cleanups, log);
