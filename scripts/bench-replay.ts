/**
 * The replay benchmark: is an offline replay as fast as the real registry?
 *
 *   bash scripts/bench-replay [--runs N] [--quick] …      (see --help)
 *
 * 1. Starts the lab (scripts/lab/) with lab/big:500 and records ONE `docker pull registry.test/lab/big:500`
 *    through the built CLI (`node dist/cli/main.js record`), as bench-record does;
 * 2. starts `regtape replay REC.db --listen … --mirror …` (the CLI, a separate process, the same
 *    REGTAPE_HOME so the CA is the recording's) and times `docker pull` from an empty image store, alternating
 *    a dockerd pulling straight from the lab (docker-registry + token server + CDN) with a dockerd whose
 *    HTTPS_PROXY is the replay; the image ID must equal the recorded one every time;
 * 3. raw download of the layer with curl: from the lab CDN, through the replay proxy (same URL), and from the
 *    replay's mirror endpoint (`/v2/<repo>/blobs/<digest>`, following its redirect);
 * 4. the replay process's CPU time and peak RSS (VmHWM, reset before each run) per run.
 *
 * Variants alternate within each round and the order rotates every round, so drift on a shared machine hits
 * them alike; one untimed warm-up round comes first. Results go to stdout, to the `bench-replay` section of
 * BENCHMARKS.md and to scripts/bench/results/replay-<date>.json. Everything started here (lab, dockerds, the
 * recorder, the replay, temp dirs) is removed on exit, error or Ctrl-C. All traffic stays on loopback.
 */
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Recording } from '../src/store/index.js';
import {
  buildIfStale,
  CLI,
  docker,
  emptyImageStore,
  imageId,
  cpuSnapshot,
  foreignCpus,
  installCleanups,
  loadAvg,
  machineInfo,
  makeLog,
  preflight,
  publishResults,
  quietBeforeRun,
  ROOT,
  runMain,
  sha256File,
  shellLine,
  UsageError,
  waitLoad,
  type Machine,
} from './bench/common.js';
import { cpuSeconds, procMem, resetPeak, runCmd, startProcess, type BenchProcess } from './bench/procs.js';
import { cpuCell, fmt, mb, medianCells, ratioOf, rssCell, summarize, table, type Ratio, type Summary } from './bench/report.js';
import { startDockerd, type Dockerd } from './lab/dockerd.js';
import { startLab, storageBlobPath, type ExtraImageSet, type Lab } from './lab/index.js';
import { CLEAN_PATH, markOwner, sweepStaleDirs } from './lab/proc.js';

const SECTION = 'bench-replay';
/** Distinct from the e2e tests (127.77/127.91) and bench-record (127.80): another run may share the machine. */
const IP_BASE = '127.86.0';
/** Issue 15: replayed docker pull time vs the registry. */
const TARGET_PULL_RATIO = 0.9;
/** Issue 15: mirror-mode blob download time vs the lab CDN (≤ 1.0× in time, i.e. speed ratio ≥ 1.0). */
const TARGET_MIRROR_TIME_RATIO = 1.0;
const IDLE_THRESHOLD = 0.2;
const IDLE_TIMEOUT_MS = 60_000;
const MAX_LOAD = 3;
/** A round is repeated when, during one of its runs, processes not started here used more than this many CPUs. */
const DEFAULT_MAX_FOREIGN = 0.25;
const DEFAULT_MAX_REDO = 4;

const HELP = `Usage: bash scripts/bench-replay [options]

Benchmarks \`regtape replay\` against the real registry it was recorded from: a ~500 MB docker pull from the
lab (scripts/lab/: docker-registry with token auth and CDN redirects) versus the same pull from a replay of
one recorded pull (proxy mode), alternating; plus curl downloads of the layer from the lab CDN, through the
replay proxy and from the replay's mirror endpoint. Target: replay no slower than the registry (median pull
time ratio ≤ ${TARGET_PULL_RATIO.toFixed(1)}×). About 3 minutes on an idle 2-vCPU machine. Waits first (≤ 10 min) while the load
average is > ${MAX_LOAD}. Needs root and: apt-get install docker.io docker-registry skopeo curl util-linux.
Builds dist/ first when it is stale.

Options:
  --runs N          timed rounds (default 3); variants alternate within each round, order rotating
  --quick           smoke test: lab/big:100, 1 round; writes no files unless --write
  --no-warmup       skip the untimed warm-up round
  --no-wait-idle    do not wait before each run (≤ 60 s) for the machine to be < 20% busy
  --no-wait-load    do not wait at the start while the load average is > ${MAX_LOAD}
  --max-foreign C   repeat a round when processes not started here used > C CPUs during one of its runs
                    (another benchmark on a shared machine; default ${DEFAULT_MAX_FOREIGN}); the discarded round is kept
                    in the JSON and counted in the report
  --max-redo N      at most N repeated rounds per section (default ${DEFAULT_MAX_REDO}; then measure anyway)
  --only LIST       comma-separated subset of: pull,curl (files are then not written unless --write)
  --cpu-prof DIR    run the replay process with node --cpu-prof; the profile lands in DIR when it stops
  --write           write BENCHMARKS.md and scripts/bench/results/ even for --quick/--only
  --no-write        print only
  -h, --help        this help

Output: tables on stdout; the "Replay" section of BENCHMARKS.md (between <!-- ${SECTION}:start/end -->);
raw numbers in scripts/bench/results/replay-<date>.json. Exit 2 when root or a package is missing.
`;

const log = makeLog('bench-replay');
const cleanups = installCleanups(log, 'dockerds, lab, recorder, replay, temp dirs');
const { defer, cleanupAll, interrupted } = cleanups;

// ---------------------------------------------------------------------------------------------------------
// types

interface Sample {
  section: 'pull' | 'curl';
  variant: string;
  /** 0 = warm-up (not in the statistics). */
  round: number;
  /** Position within the round (0 = first). */
  order: number;
  seconds: number;
  /** curl: speed_download / 1e6. */
  mbps?: number;
  bytes?: number;
  /** Peak RSS (VmHWM) of the replay process during this run (every variant: the replay is idle during the others). */
  replayPeak: number;
  /** CPU seconds (user + system, all threads) of the replay process during this run. */
  replayCpu: number;
  busyBefore: number;
  waitedMs: number;
  /** CPUs used by processes outside this benchmark's process tree during the run (see foreignCpus). */
  foreignCpus: number;
  /** Set when the round was repeated because of foreign load; not in the statistics. */
  discarded?: boolean;
  check: string;
}

interface Results {
  benchmark: 'replay';
  schema: 1;
  date: string;
  durationSeconds: number;
  command: string;
  options: { runs: number; quick: boolean; warmup: boolean; waitIdle: boolean; waitLoad: boolean; only: string[]; maxForeign: number; maxRedo: number };
  machine: Machine;
  loadWait: { first: number[]; last: number[]; waitedMs: number };
  image: { ref: string; id: string; layerDigest: string; layerSize: number; cdnUrl: string; mirrorUrl: string };
  recording: { pullSeconds: number; flows: number; dbBytes: number; layerFlow: string };
  replay: { idleRss: number; startSeconds: number; misses: number; unused: number; missList: unknown[] };
  commands: Record<string, string>;
  samples: Sample[];
  summary: Record<string, Summary | null>;
  ratios: Record<string, Ratio | null>;
  targets: Array<{ name: string; target: string; measured: string; met: boolean }>;
}

// ---------------------------------------------------------------------------------------------------------
// helpers

const CURL_FORMAT = '%{http_code} %{size_download} %{speed_download} %{time_total} %{num_redirects}';

async function curlOnce(args: readonly string[], url: string, out = '/dev/null'): Promise<{ bytes: number; mbps: number; seconds: number; redirects: number }> {
  const r = await runCmd('curl', ['-sS', '-o', out, '--max-time', '900', '-w', CURL_FORMAT, ...args, url], { env: { PATH: CLEAN_PATH, HOME: os.tmpdir() }, timeoutMs: 960_000 });
  const [code, size, speed, total, redirects] = r.stdout.trim().split(/\s+/);
  if (r.code !== 0 || code !== '200') throw new Error(`curl ${args.join(' ')} ${url}: exit ${r.code}, HTTP ${code}\n${r.stderr.trim()}`);
  return { bytes: Number(size), mbps: Number(speed) / 1e6, seconds: Number(total), redirects: Number(redirects) };
}

/** Round r's order: the variants rotated by r, so no variant is always first (right after the idle wait). */
function rotated<T>(xs: readonly T[], round: number): T[] {
  const k = round % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

// ---------------------------------------------------------------------------------------------------------
// analysis and report

function timed(samples: Sample[], section: Sample['section'], variant: string): Sample[] {
  return samples.filter((s) => s.section === section && s.variant === variant && s.round > 0 && !s.discarded);
}

function ratio(samples: Sample[], section: Sample['section'], a: string, b: string, value: (s: Sample) => number): Ratio | null {
  return ratioOf(timed(samples, section, a), timed(samples, section, b), value);
}

const PULL_VARIANTS = ['registry', 'replay-proxy'] as const;
const CURL_VARIANTS = ['cdn', 'replay-proxy', 'replay-mirror'] as const;
const LABEL: Record<string, string> = {
  'pull.registry': 'registry (docker-registry + token server + CDN, direct)',
  'pull.replay-proxy': '**regtape replay**, proxy mode (`HTTPS_PROXY`, regtape CA)',
  'curl.cdn': 'lab CDN, direct',
  'curl.replay-proxy': '**regtape replay**, proxy mode (`-x`, same CDN URL)',
  'curl.replay-mirror': '**regtape replay**, mirror mode (`/v2/…/blobs/<digest>`, `-L`)',
};

function analyse(r: Results): void {
  const s = r.samples;
  const secs = (x: Sample): number => x.seconds;
  const speed = (x: Sample): number => x.mbps!;
  for (const v of PULL_VARIANTS) {
    r.summary[`pull.${v}.seconds`] = summarize(timed(s, 'pull', v).map(secs));
    r.summary[`pull.${v}.replayPeak`] = summarize(timed(s, 'pull', v).map((x) => x.replayPeak));
    r.summary[`pull.${v}.replayCpu`] = summarize(timed(s, 'pull', v).map((x) => x.replayCpu));
  }
  for (const v of CURL_VARIANTS) {
    r.summary[`curl.${v}.mbps`] = summarize(timed(s, 'curl', v).map(speed));
    r.summary[`curl.${v}.replayPeak`] = summarize(timed(s, 'curl', v).map((x) => x.replayPeak));
    r.summary[`curl.${v}.replayCpu`] = summarize(timed(s, 'curl', v).map((x) => x.replayCpu));
  }
  r.ratios['pull.replay-proxy/registry'] = ratio(s, 'pull', 'replay-proxy', 'registry', secs);
  r.ratios['curl.replay-proxy/cdn'] = ratio(s, 'curl', 'replay-proxy', 'cdn', speed);
  r.ratios['curl.replay-mirror/cdn'] = ratio(s, 'curl', 'replay-mirror', 'cdn', speed);

  const pr = r.ratios['pull.replay-proxy/registry'];
  if (pr) {
    r.targets.push({
      name: 'docker pull: replay (proxy mode) vs registry, median/median',
      target: `≤ ${TARGET_PULL_RATIO.toFixed(2)}×`,
      measured: `${fmt(pr.ofMedians)}×${pr.paired && pr.paired.n > 1 ? ` (per round ${fmt(pr.paired.min)}–${fmt(pr.paired.max)})` : ''}`,
      met: pr.ofMedians <= TARGET_PULL_RATIO,
    });
  }
  const mr = r.ratios['curl.replay-mirror/cdn'];
  if (mr) {
    const time = 1 / mr.ofMedians;
    r.targets.push({
      name: 'raw blob download: replay mirror mode vs lab CDN, time (1 / speed ratio of medians)',
      target: `≤ ${TARGET_MIRROR_TIME_RATIO.toFixed(2)}×`,
      measured: `${fmt(time)}× (speed ${fmt(mr.ofMedians)}×)`,
      met: time <= TARGET_MIRROR_TIME_RATIO,
    });
  }
}

function renderMarkdown(r: Results, resultsFile: string | null): string {
  const m = r.machine;
  const perRound = (section: Sample['section'], a: string, b: string, value: (s: Sample) => number): string =>
    timed(r.samples, section, a)
      .map((s) => {
        const t = timed(r.samples, section, b).find((x) => x.round === s.round);
        return t ? `${fmt(value(s) / value(t))}` : '–';
      })
      .join(', ');
  const minutes = r.durationSeconds < 120 ? `${Math.round(r.durationSeconds)} s` : `${(r.durationSeconds / 60).toFixed(1)} min`;
  const out: string[] = [];
  out.push('## Replay');
  out.push('');
  out.push(
    `Is an offline replay as fast as the registry it was recorded from? Generated by \`${r.command}\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC (took ${minutes}). ` +
      `One \`docker pull ${r.image.ref}\` (layer ${mb(r.image.layerSize)}) was recorded through \`regtape record\` (${fmt(r.recording.pullSeconds)} s, ${r.recording.flows} flows), then served by \`regtape replay\` (the CLI, its own process). ` +
      `MB = 10^6 bytes; times are wall clock. Variants alternate within each round, the order rotating every round; ${r.options.runs} timed round(s)${r.options.warmup ? ' after one untimed warm-up round' : ''}. ` +
      `"Replay CPU" is user + system time of the replay process during the run; "replay peak RSS" its VmHWM, reset before each run (\`/proc/PID/clear_refs\`); idle ${mb(r.replay.idleRss)} after start-up (${fmt(r.replay.startSeconds, 1)} s to listening).` +
      `${resultsFile ? ` Raw numbers: \`${resultsFile}\`.` : ''}`,
  );
  out.push('');
  const busyRuns = r.samples.filter((x) => x.round > 0 && !x.discarded && x.busyBefore >= IDLE_THRESHOLD).length;
  const t = m.tools;
  out.push(
    `Machine: ${m.cpu}, ${m.nproc} vCPU, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${m.os}, ${m.kernel}, node ${m.node}; ${t.dockerd}; ${t['docker-registry']}; ${(t.curl ?? '?').split(' ').slice(0, 2).join(' ')}. ` +
      `Everything (lab, dockerd, replay, curl) shares the ${m.nproc} vCPUs on loopback, so numbers are noisy: load average ${r.loadWait.first.join(' ')} when started` +
      (r.loadWait.waitedMs > 5000 ? `, ${r.loadWait.last.join(' ')} after waiting ${Math.round(r.loadWait.waitedMs / 1000)} s for it to drop to ≤ ${MAX_LOAD}` : '') +
      `, ${m.loadAvgAtEnd?.join(' ') ?? '?'} at the end` +
      (r.options.waitIdle
        ? `; before each run the script waited (≤ ${IDLE_TIMEOUT_MS / 1000} s) for < ${IDLE_THRESHOLD * 100}% of the CPUs to be busy${busyRuns ? ` — ${busyRuns} timed run(s) started on a busier machine anyway` : ', which every timed run got'}.`
        : '; no idle wait (--no-wait-idle).'),
  );
  out.push('');
  const kept = r.samples.filter((x) => x.round > 0 && !x.discarded);
  const foreign = summarize(kept.map((x) => x.foreignCpus));
  const discardedRounds = new Set(r.samples.filter((x) => x.discarded).map((x) => `${x.section}.${x.round}`)).size;
  out.push(
    `Other tenants: during each run the script measures the CPU used by processes outside its own process tree (machine busy time from /proc/stat minus its tree's); a round in which that exceeded ${r.options.maxForeign} CPU in any run is discarded and repeated (at most ${r.options.maxRedo} repeats per section). ` +
      `${discardedRounds ? `${discardedRounds} round(s) were discarded (raw numbers in the JSON). ` : 'No round had to be repeated. '}` +
      (foreign ? `Foreign load in the kept runs: median ${fmt(foreign.median)} CPU, max ${fmt(foreign.max)}.` : ''),
  );
  out.push('');
  out.push('### Targets');
  out.push('');
  out.push(table(['target', 'wanted', 'measured', ''], r.targets.map((x) => [x.name, x.target, x.measured, x.met ? 'met' : '**MISSED**'])));
  const missed = r.targets.filter((x) => !x.met);
  if (missed.length) out.push('', `Missed: ${missed.map((x) => `${x.name} (${x.measured.replace(/ \(.*\)$/, '')}, wanted ${x.target})`).join('; ')}.`);
  out.push('');
  out.push(
    `Replay misses over the whole benchmark: ${r.replay.misses} (requests with no recorded answer, from \`--report\`); recorded flows never used: ${r.replay.unused}.`,
  );

  const pullRows = PULL_VARIANTS.filter((v) => r.summary[`pull.${v}.seconds`]).map((v) => {
    const [med, rg] = medianCells(r.summary[`pull.${v}.seconds`], 2, 's');
    const isReplay = v !== 'registry';
    return [
      LABEL[`pull.${v}`]!,
      med,
      rg,
      v === 'registry' ? '1.00×' : `${fmt(r.ratios[`pull.${v}/registry`]?.ofMedians)}× (per round ${perRound('pull', v, 'registry', (x) => x.seconds)})`,
      isReplay ? cpuCell(r.summary[`pull.${v}.replayCpu`]) : '–',
      isReplay ? rssCell(r.summary[`pull.${v}.replayPeak`]) : '–',
    ];
  });
  if (pullRows.length) {
    out.push('');
    out.push(`### docker pull ${r.image.ref} (layer ${mb(r.image.layerSize)})`);
    out.push('');
    out.push(
      `Each run starts from an empty image store (\`docker rmi -f\` + \`docker image prune -af\`), so every byte is downloaded and unpacked (vfs); the image ID is checked against the recorded one (\`${r.image.id.slice(0, 19)}…\`) after every pull. Two dockerds with the same flags: one resolves the lab names through a private /etc/hosts, the other has only \`HTTPS_PROXY\` = the replay and trusts only the regtape CA.`,
    );
    out.push('');
    out.push(table(['variant', 'median', 'min–max', 'time vs registry', 'replay CPU per pull', 'replay peak RSS'], pullRows, ['l', 'r', 'r', 'r', 'r', 'r']));
    const cpu = r.summary['pull.replay-proxy.replayCpu'];
    const secs = r.summary['pull.replay-proxy.seconds'];
    if (cpu && secs) {
      out.push('');
      out.push(
        `The replay process was busy for ${Math.round((100 * cpu.median) / secs.median)}% of a pull (median CPU / median time): the pull time is mostly dockerd's (download, digest check, gunzip, vfs unpack), so this ratio says "the replay is not the bottleneck" more than it ranks two servers; the raw downloads below compare the servers.`,
      );
    }
  }
  const curlRows = CURL_VARIANTS.filter((v) => r.summary[`curl.${v}.mbps`]).map((v) => {
    const [med, rg] = medianCells(r.summary[`curl.${v}.mbps`], 0, 'MB/s');
    const isReplay = v !== 'cdn';
    return [
      LABEL[`curl.${v}`]!,
      med,
      rg,
      v === 'cdn' ? '1.00×' : `${fmt(r.ratios[`curl.${v}/cdn`]?.ofMedians)}× (per round ${perRound('curl', v, 'cdn', (x) => x.mbps!)})`,
      isReplay ? cpuCell(r.summary[`curl.${v}.replayCpu`]) : '–',
      isReplay ? rssCell(r.summary[`curl.${v}.replayPeak`]) : '–',
    ];
  });
  if (curlRows.length) {
    out.push('');
    out.push(`### curl of the layer (${mb(r.image.layerSize)}; curl's \`%{speed_download}\`)`);
    out.push('');
    out.push(
      'The lab CDN is `scripts/lab/cdn-server.ts` (node, HTTPS) serving the registry storage; the replay serves the recorded body file. Each replay path was checked once (untimed) to deliver the layer byte for byte (sha256).',
    );
    out.push('');
    out.push(table(['source', 'median', 'min–max', 'speed vs CDN', 'replay CPU per download', 'replay peak RSS'], curlRows, ['l', 'r', 'r', 'r', 'r', 'r']));
  }
  out.push('');
  out.push('### How it was measured');
  out.push('');
  out.push('```sh');
  out.push(`${r.command}   # needs root; apt-get install docker.io docker-registry skopeo curl`);
  out.push('```');
  out.push('');
  out.push(
    `Lab: \`startLab({ images: ['${r.options.quick ? 'big100' : 'big500'}'], ipBase: '${IP_BASE}' })\` (scripts/lab/): distribution 2.8 with token auth, blobs redirected (307) to our CDN. $T is the benchmark's temp dir, $LAB the lab's, PORT a free port.`,
  );
  out.push('');
  for (const [k, v] of Object.entries(r.commands)) out.push(`- ${k}: \`${v}\``);
  return out.join('\n');
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
      'no-wait-load': { type: 'boolean' },
      only: { type: 'string' },
      'max-foreign': { type: 'string' },
      'max-redo': { type: 'string' },
      'cpu-prof': { type: 'string' },
      write: { type: 'boolean' },
      'no-write': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const quick = !!values.quick;
  const runs = values.runs !== undefined ? Number(values.runs) : quick ? 1 : 3;
  if (!Number.isInteger(runs) || runs < 1) throw new UsageError(`--runs ${values.runs}: expected a positive integer`);
  const sections = (values.only ?? 'pull,curl').split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of sections) if (!['pull', 'curl'].includes(x)) throw new UsageError(`--only: unknown section ${x} (pull, curl)`);
  const write = values['no-write'] ? false : values.write ? true : !quick && values.only === undefined;
  const warmup = !values['no-warmup'];
  const waitForIdle = !values['no-wait-idle'];
  const cpuProf = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
  const maxForeign = values['max-foreign'] !== undefined ? Number(values['max-foreign']) : DEFAULT_MAX_FOREIGN;
  if (!(maxForeign > 0)) throw new UsageError(`--max-foreign ${values['max-foreign']}: expected a positive number of CPUs`);
  const maxRedo = values['max-redo'] !== undefined ? Number(values['max-redo']) : DEFAULT_MAX_REDO;
  if (!Number.isInteger(maxRedo) || maxRedo < 0) throw new UsageError(`--max-redo ${values['max-redo']}: expected a non-negative integer`);

  const needs: Array<[string, string]> = [
    ['dockerd', 'docker.io'],
    ['docker', 'docker.io'],
    ['docker-registry', 'docker-registry'],
    ['skopeo', 'skopeo'],
    ['curl', 'curl'],
    ['unshare', 'util-linux'],
  ];
  if (!preflight('bench-replay', needs)) return 2;

  const started = Date.now();
  const loadWait = values['no-wait-load'] ? { first: loadAvg(), last: loadAvg(), waitedMs: 0 } : await waitLoad(MAX_LOAD, 10 * 60_000, log, interrupted);
  log(`load average at start: ${loadWait.first.join(' ')}${loadWait.waitedMs > 5000 ? ` (${loadWait.last.join(' ')} after waiting ${Math.round(loadWait.waitedMs / 1000)} s)` : ''}`);
  if (interrupted()) return 130;
  await buildIfStale(log);
  const machine = await machineInfo(['dockerd', 'docker-registry', 'curl']);
  machine.loadAvgAtStart = loadWait.first;
  log(`machine: ${machine.cpu}, ${machine.nproc} vCPU, node ${machine.node}`);

  await sweepStaleDirs(os.tmpdir(), 'rtbrep-');
  const work = await mkdtemp(path.join(os.tmpdir(), 'rtbrep-'));
  await markOwner(work);
  defer('temp dir', () => rm(work, { recursive: true, force: true }));
  const home = path.join(work, 'home');
  await mkdir(home, { recursive: true, mode: 0o700 });
  if (cpuProf) await mkdir(cpuProf, { recursive: true });
  const env: NodeJS.ProcessEnv = { PATH: CLEAN_PATH, HOME: work, REGTAPE_HOME: home };
  const regtapeCa = path.join(home, 'ca.pem');

  const set: ExtraImageSet = quick ? 'big100' : 'big500';
  log(`starting the lab (${set}) on ${IP_BASE}.x…`);
  const lab: Lab = await startLab({ images: [set], ipBase: IP_BASE, onProgress: (msg) => log(`lab: ${msg}`) });
  defer('lab', () => lab.stop());
  const show = (argv: readonly string[]): string =>
    shellLine(argv, [
      [lab.dir, '$LAB'],
      [work, '$T'],
      [ROOT + '/', ''],
    ]);
  const img = lab.image(quick ? 'lab/big:100' : 'lab/big:500');
  const layerRef = [...img.blobs].sort((a, b) => b.size - a.size)[0]!;
  const hex = layerRef.digest.replace(/^sha256:/, '');
  const cdnUrl = `${lab.urls.cdn}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
  // The blob file is hard-linked from the image cache: read it once so the first variant does not pay for the disk.
  const labHash = await sha256File(storageBlobPath(lab.storageRoot, layerRef.digest));
  if (labHash !== hex) throw new Error(`lab blob ${layerRef.digest} hashes to ${labHash}`);

  // ---- 1. record one pull through the CLI recorder
  const recording = path.join(work, 'rec', 'big.db');
  const recordArgs = [CLI, 'record', '--listen', '127.0.0.1:0', '--out', recording, ...lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', lab.caCertPath];
  log('recording one pull through regtape record…');
  const recorder = await startProcess({ name: 'record', cmd: process.execPath, args: recordArgs, env, cwd: ROOT, ready: /listening on (http:\/\/[\d.]+:\d+)/, logPath: path.join(work, 'record.log') });
  defer('recorder', () => recorder.stop('SIGINT', 60_000));
  const recDockerd = await startDockerd({ proxyUrl: recorder.ready![1]!, caFile: regtapeCa });
  defer('dockerd (recording)', () => recDockerd.stop());
  let t0 = performance.now();
  const recPull = await docker(recDockerd, ['pull', img.ref], 15 * 60_000);
  const recordPullSeconds = (performance.now() - t0) / 1000;
  if (recPull.code !== 0) throw new Error(`recording: docker pull ${img.ref} failed (exit ${recPull.code}):\n${recPull.stderr.trim()}\n--- dockerd log tail:\n${recDockerd.logTail(3000)}\n--- regtape record:\n${recorder.tail()}`);
  const recordedId = await imageId(recDockerd, img.ref);
  if (!recordedId) throw new Error(`recording: docker pull succeeded but ${img.ref} is not there`);
  await recDockerd.stop();
  await recorder.stop('SIGINT', 60_000);
  if (recorder.child.exitCode !== 0) throw new Error(`regtape record exited with ${recorder.child.exitCode ?? recorder.child.signalCode}:\n${recorder.tail()}`);
  const rec = Recording.open(recording, { readonly: true });
  let flows: number;
  let layerFlow: { id: number; state: string; size: number; url: string } | undefined;
  try {
    flows = rec.count();
    const f = [...rec.iterate()].find((x) => x.state === 'complete' && x.responseBody?.sha256 === hex);
    layerFlow = f && { id: f.id, state: f.state, size: f.responseBody!.size, url: `${f.request.method} ${f.request.host}${f.request.target}` };
  } finally {
    rec.close();
  }
  if (!layerFlow || layerFlow.size !== layerRef.size) throw new Error(`the recording has no complete flow with the layer ${layerRef.digest} (${layerRef.size} B): ${JSON.stringify(layerFlow)}`);
  const bodyFile = path.join(recording.replace(/\.db$/, '.blobs'), hex);
  if ((await stat(bodyFile)).size !== layerRef.size) throw new Error(`${bodyFile}: wrong size`);
  log(`recorded ${flows} flows in ${fmt(recordPullSeconds)} s; image ${recordedId}; layer in flow ${layerFlow.id}`);

  // ---- 2. the replay (CLI, own process) with proxy and mirror mode
  const report = path.join(work, 'replay-report.json');
  const replayArgs = [
    ...(cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf] : []),
    CLI,
    'replay',
    recording,
    '--listen',
    '127.0.0.1:0',
    '--mirror',
    '127.0.0.1:0',
    '--report',
    report,
  ];
  t0 = performance.now();
  const replay: BenchProcess = await startProcess({
    name: 'replay',
    cmd: process.execPath,
    args: replayArgs,
    env,
    cwd: ROOT,
    ready: /listening on (http:\/\/[\d.]+:\d+)[\s\S]*registry endpoint (http:\/\/[\d.]+:\d+)/,
    logPath: path.join(work, 'replay.log'),
  });
  const replayStart = (performance.now() - t0) / 1000;
  // SIGINT is Ctrl-C: the replay writes --report (and --cpu-prof) and exits.
  defer('replay', () => replay.stop('SIGINT', 30_000));
  const proxyUrl = replay.ready![1]!;
  const mirrorUrl = replay.ready![2]!;
  const idleRss = (await procMem(replay.pid)).rss;
  const mirrorBlobUrl = `${mirrorUrl}/v2/${img.repo}/blobs/${layerRef.digest}`;
  log(`replay pid ${replay.pid}: proxy ${proxyUrl}, mirror ${mirrorUrl}, idle RSS ${mb(idleRss)}`);

  const results: Results = {
    benchmark: 'replay',
    schema: 1,
    date: new Date(started).toISOString(),
    durationSeconds: 0,
    command: ['bash scripts/bench-replay', ...argv].join(' '),
    options: { runs, quick, warmup, waitIdle: waitForIdle, waitLoad: !values['no-wait-load'], only: sections, maxForeign, maxRedo },
    machine,
    loadWait,
    image: { ref: img.ref, id: recordedId, layerDigest: layerRef.digest, layerSize: layerRef.size, cdnUrl, mirrorUrl: `MIRROR/v2/${img.repo}/blobs/${layerRef.digest}` },
    recording: { pullSeconds: recordPullSeconds, flows, dbBytes: (await stat(recording)).size, layerFlow: `flow ${layerFlow.id} ${layerFlow.url}` },
    replay: { idleRss, startSeconds: replayStart, misses: -1, unused: -1, missList: [] },
    commands: {
      'regtape record (once)': `REGTAPE_HOME=$T/home ${show(['node', ...recordArgs])}`,
      'regtape replay': `REGTAPE_HOME=$T/home ${show(['node', ...replayArgs.filter((a, i, all) => !(cpuProf && (a === '--cpu-prof' || a === '--cpu-prof-dir' || all[i - 1] === '--cpu-prof-dir')))])}`,
    },
    samples: [],
    summary: {},
    ratios: {},
    targets: [],
  };

  type Measured<T> = { value: T; seconds: number; replayPeak: number; replayCpu: number; busyBefore: number; waitedMs: number; foreignCpus: number };
  const measure = async <T>(fn: () => Promise<T>): Promise<Measured<T>> => {
    const quiet = await quietBeforeRun(waitForIdle, IDLE_THRESHOLD, IDLE_TIMEOUT_MS, log);
    await resetPeak(replay.pid);
    const cpu0 = await cpuSeconds(replay.pid);
    const snap0 = await cpuSnapshot();
    const t = performance.now();
    const value = await fn();
    const seconds = (performance.now() - t) / 1000;
    const snap1 = await cpuSnapshot();
    const replayCpu = (await cpuSeconds(replay.pid)) - cpu0;
    const replayPeak = (await procMem(replay.pid)).peak;
    return { value, seconds, replayPeak, replayCpu, foreignCpus: Math.round(foreignCpus(snap0, snap1) * 1000) / 1000, ...quiet };
  };
  const sampleLine = (s: Sample): string =>
    `${s.section} ${s.round === 0 ? 'warm-up' : `round ${s.round}`} ${s.variant}: ${s.mbps !== undefined ? `${fmt(s.mbps, 0)} MB/s (${fmt(s.seconds)} s)` : `${fmt(s.seconds)} s`}` +
    `, replay CPU ${fmt(s.replayCpu)} s, peak RSS ${mb(s.replayPeak)}${s.busyBefore >= 0 ? `, busy before ${Math.round(s.busyBefore * 100)}%` : ''}, foreign ${fmt(s.foreignCpus)} CPU`;

  /**
   * Runs the warm-up round and `runs` timed rounds of `variants` (order rotating per round). A timed round
   * during which other processes used more than `maxForeign` CPUs in any run is marked discarded and
   * repeated, at most `maxRedo` times for the section.
   */
  const runRounds = async <V extends { name: string }>(section: Sample['section'], variants: readonly V[], one: (v: V, round: number, order: number) => Promise<Sample>): Promise<boolean> => {
    let redo = 0;
    for (let round = warmup ? 0 : 1; round <= runs; round++) {
      const these: Sample[] = [];
      for (const [order, v] of rotated(variants, round + redo).entries()) {
        if (interrupted()) return false;
        const s = await one(v, round, order);
        these.push(s);
        results.samples.push(s);
        log(sampleLine(s));
      }
      const worst = Math.max(...these.map((x) => x.foreignCpus));
      if (round > 0 && worst > maxForeign) {
        if (redo < maxRedo) {
          for (const x of these) x.discarded = true;
          redo++;
          log(`${section} round ${round}: other processes used up to ${fmt(worst)} CPU (> ${maxForeign}); discarding and repeating it (${redo}/${maxRedo})`);
          round--;
        } else log(`${section} round ${round}: other processes used up to ${fmt(worst)} CPU, but --max-redo ${maxRedo} is used up; keeping it`);
      }
    }
    return true;
  };

  // ---- 3. docker pulls, alternating
  if (sections.includes('pull')) {
    log('starting two dockerds (registry direct, via replay)…');
    const dRegistry = await startDockerd({ hosts: lab.hostsFileLines, caFile: lab.caCertPath });
    defer('dockerd registry', () => dRegistry.stop());
    const dReplay = await startDockerd({ proxyUrl, caFile: regtapeCa });
    defer('dockerd replay', () => dReplay.stop());
    results.commands['docker pull'] = `docker -H unix://$DOCKERD/docker.sock pull ${img.ref}   # dockerd from startDockerd() (vfs): registry = the lab names in a private /etc/hosts; replay = HTTPS_PROXY=<replay> and SSL_CERT_FILE=$T/home/ca.pem`;
    const variants: Array<{ name: (typeof PULL_VARIANTS)[number]; d: Dockerd }> = [
      { name: 'registry', d: dRegistry },
      { name: 'replay-proxy', d: dReplay },
    ];
    const done = await runRounds('pull', variants, async (v, round, order) => {
      await emptyImageStore(v.d);
      const m = await measure(() => docker(v.d, ['pull', img.ref], 15 * 60_000));
      if (m.value.code !== 0) throw new Error(`docker pull ${img.ref} via ${v.name} failed (exit ${m.value.code}):\n${m.value.stderr.trim()}\n--- dockerd log tail:\n${v.d.logTail(3000)}`);
      const id = await imageId(v.d, img.ref);
      if (id !== recordedId) throw new Error(`${v.name}: image ID ${id ?? '(none)'} after the pull, recorded ${recordedId}`);
      return {
        section: 'pull',
        variant: v.name,
        round,
        order,
        seconds: m.seconds,
        replayPeak: m.replayPeak,
        replayCpu: m.replayCpu,
        busyBefore: m.busyBefore,
        waitedMs: m.waitedMs,
        foreignCpus: m.foreignCpus,
        check: `image ${id.slice(0, 19)}… = recorded`,
      };
    });
    if (!done) return 130;
    // vfs keeps every layer unpacked: free the space now rather than at exit.
    for (const d of [dRegistry, dReplay]) await emptyImageStore(d).catch(() => undefined);
    await dRegistry.stop();
    await dReplay.stop();
  }

  // ---- 4. raw downloads
  if (sections.includes('curl') && !interrupted()) {
    const cdnHost = new URL(lab.urls.cdn).host;
    const variants: Array<{ name: (typeof CURL_VARIANTS)[number]; args: string[]; url: string }> = [
      { name: 'cdn', args: ['--resolve', `${cdnHost}:${lab.port}:${lab.ips.cdn}`, '--cacert', lab.caCertPath], url: cdnUrl },
      { name: 'replay-proxy', args: ['-x', proxyUrl, '--cacert', regtapeCa], url: cdnUrl },
      { name: 'replay-mirror', args: ['-L', '-H', 'Authorization: Bearer x'], url: mirrorBlobUrl },
    ];
    results.commands.curl = `curl -sS -o /dev/null -w '%{speed_download}' --resolve ${cdnHost}:${lab.port}:${lab.ips.cdn} --cacert $LAB/ca.pem ${cdnUrl}   # lab CDN`;
    results.commands['curl (replay proxy)'] = `curl -sS -o /dev/null -w '%{speed_download}' -x http://127.0.0.1:PORT --cacert $T/home/ca.pem ${cdnUrl}`;
    results.commands['curl (replay mirror)'] = `curl -sS -o /dev/null -w '%{speed_download}' -L -H 'Authorization: Bearer x' http://127.0.0.1:PORT/v2/${img.repo}/blobs/${layerRef.digest}`;
    // Untimed: each replay path delivers the layer byte for byte.
    for (const v of variants.filter((x) => x.name !== 'cdn')) {
      const file = path.join(work, `check-${v.name}`);
      const c = await curlOnce(v.args, v.url, file);
      const h = await sha256File(file);
      await rm(file, { force: true });
      if (c.bytes !== layerRef.size || h !== hex) throw new Error(`curl via ${v.name}: ${c.bytes} bytes hashing to ${h}; expected ${layerRef.size} bytes, ${hex}`);
      log(`curl via ${v.name}: ${c.bytes} B, sha256 ok${c.redirects ? `, ${c.redirects} redirect(s)` : ''}`);
    }
    const done = await runRounds('curl', variants, async (v, round, order) => {
      const m = await measure(() => curlOnce(v.args, v.url));
      if (m.value.bytes !== layerRef.size) throw new Error(`curl via ${v.name}: ${m.value.bytes} bytes, expected ${layerRef.size}`);
      return {
        section: 'curl',
        variant: v.name,
        round,
        order,
        seconds: m.value.seconds,
        mbps: m.value.mbps,
        bytes: m.value.bytes,
        replayPeak: m.replayPeak,
        replayCpu: m.replayCpu,
        busyBefore: m.busyBefore,
        waitedMs: m.waitedMs,
        foreignCpus: m.foreignCpus,
        check: `${m.value.bytes} B${m.value.redirects ? `, ${m.value.redirects} redirect(s)` : ''}`,
      };
    });
    if (!done) return 130;
  }
  if (interrupted()) return 130;

  // ---- 5. stop the replay (writes --report), then everything else
  await replay.stop('SIGINT', 30_000);
  try {
    const rep = JSON.parse(await readFile(report, 'utf8')) as { misses: unknown[]; unused: unknown[] };
    results.replay.misses = rep.misses.length;
    results.replay.unused = rep.unused.length;
    results.replay.missList = rep.misses.slice(0, 20);
    if (rep.misses.length) log(`warning: the replay had ${rep.misses.length} miss(es): ${JSON.stringify(rep.misses.slice(0, 3))}`);
  } catch (e) {
    log(`warning: no replay report (${(e as Error).message}); replay log tail:\n${replay.tail()}`);
  }
  log('stopping dockerds and the lab…');
  await cleanupAll();
  results.durationSeconds = (Date.now() - started) / 1000;
  results.machine.loadAvgAtEnd = loadAvg();
  analyse(results);
  await publishResults({ kind: 'replay', title: 'Replay', section: SECTION, results, write, render: (file) => renderMarkdown(results, file), log });
  if (cpuProf) log(`CPU profile of the replay process: ${cpuProf}/*.cpuprofile`);
  log(`done in ${Math.round(results.durationSeconds)} s`);
  return 0;
}

runMain('bench-replay', () => main(process.argv.slice(2)), cleanups, log);
