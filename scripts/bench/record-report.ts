/**
 * The record benchmark's data model, analysis (medians, ratios, targets) and its markdown section.
 * scripts/bench-record.ts measures; this file only computes and renders.
 */
import type { Machine as BaseMachine } from './common.js';
import { cpuCell, fmt, mb, medianCells, ratioOf, rssCell, summarize, table, type Ratio, type Summary } from './report.js';

export const IP_BASE = '127.80.0';

/** Issue 15's targets (the "Record at wire speed" table). */
export const TARGETS = {
  pullRatio: 1.05,
  pullVsPassthrough: 1.03,
  rawVsPassthrough: 0.9,
  rawVsMitmdump: 1.3,
  passthroughPullRatio: 1.08,
  bigPeakBytes: 150e6,
};

/** Idle check before every run: wait (≤ IDLE_TIMEOUT_MS) until < IDLE_THRESHOLD of the CPUs are busy. */
export const IDLE_THRESHOLD = 0.2;
export const IDLE_TIMEOUT_MS = 60_000;
/** Foreign CPU during a run above which the report names the run as disturbed. */
export const FOREIGN_NOTABLE = 0.5;

/** The machine the numbers come from (schema 1: the tool versions as named fields, not `tools`). */
export interface Machine extends Omit<BaseMachine, 'tools'> {
  docker: string;
  mitmproxy: string;
  curl: string;
  registry: string;
  /** CPU seconds to fault in 1 GiB of fresh memory (see memoryTouchCost in bench-record.ts). */
  memTouchSecondsPerGiB: number;
}

/** One timed (or warm-up) run of one variant. */
export interface Sample {
  section: 'pull' | 'curl' | 'big';
  variant: string;
  /** 0 = warm-up (not in the statistics). */
  round: number;
  seconds: number;
  /** curl: speed_download / 1e6. */
  mbps?: number;
  bytes?: number;
  httpVersion?: string;
  /** Peak RSS (VmHWM) of the proxy during this run, bytes. */
  proxyPeak?: number;
  /** CPU seconds (user + system, all threads) the proxy used during this run, up to the commit of the body. */
  proxyCpu?: number;
  /** Fraction of all CPUs busy just before the run (see waitIdle; -1 with --no-wait-idle), and how long we waited. */
  busyBefore: number;
  waitedMs: number;
  /** CPU seconds that processes outside the benchmark used during the run (other tenants; a lower bound). */
  foreignCpu: number;
  check: string;
}

/** One line per run on stderr while the benchmark runs. */
export function sampleLine(s: Sample): string {
  const what = s.mbps !== undefined ? `${fmt(s.mbps, 0)} MB/s (${fmt(s.seconds, 2)} s)` : `${fmt(s.seconds, 2)} s`;
  const proxy = s.proxyPeak ? `, proxy peak RSS ${mb(s.proxyPeak)}, CPU ${fmt(s.proxyCpu)} s` : '';
  const busy = s.busyBefore >= 0 ? `; machine ${Math.round(s.busyBefore * 100)}% busy before${s.waitedMs > 1000 ? `, waited ${Math.round(s.waitedMs / 1000)} s` : ''}` : '';
  const others = `others used ${fmt(s.foreignCpu, 1)} CPU-s during the run${busy}`;
  return `${s.section} ${s.round === 0 ? 'warm-up' : `round ${s.round}`} ${s.variant}: ${what}${proxy} (${others})`;
}

/** Everything a run produced: written as scripts/bench/results/record-<date>.json. */
export interface Results {
  benchmark: 'record';
  schema: 1;
  date: string;
  durationSeconds: number;
  command: string;
  options: { runs: number; quick: boolean; warmup: boolean; waitIdle: boolean; only: string[]; bigBytes: number };
  machine: Machine;
  image?: { ref: string; layerDigest: string; layerSize: number; cdnUrl: string };
  commands: Record<string, string>;
  idleRss: Record<string, number>;
  samples: Sample[];
  big?: { size: number; sha256: string };
  summary: Record<string, Summary | null>;
  ratios: Record<string, Ratio | null>;
  targets: Array<{ name: string; target: string; measured: string; met: boolean }>;
}

export function timed(samples: Sample[], section: Sample['section'], variant: string): Sample[] {
  return samples.filter((s) => s.section === section && s.variant === variant && s.round > 0);
}

export function ratio(samples: Sample[], section: Sample['section'], a: string, b: string, value: (s: Sample) => number): Ratio | null {
  return ratioOf(timed(samples, section, a), timed(samples, section, b), value);
}

export const PULL_VARIANTS = ['direct', 'regtape', 'passthrough', 'mitmdump'];
export const CURL_VARIANTS = ['direct', 'regtape', 'passthrough', 'mitmdump'];
export const LABEL: Record<string, string> = {
  direct: 'direct (no proxy)',
  regtape: '**regtape record** (stores + hashes every byte)',
  passthrough: 'pass-through (the same proxy code, from src/ under tsx; stores nothing)',
  mitmdump: 'mitmdump 8.1 `stream_large_bodies=1m` (stores nothing)',
};

export function analyse(r: Results): void {
  const s = r.samples;
  for (const v of PULL_VARIANTS) r.summary[`pull.${v}.seconds`] = summarize(timed(s, 'pull', v).map((x) => x.seconds));
  for (const v of CURL_VARIANTS) r.summary[`curl.${v}.mbps`] = summarize(timed(s, 'curl', v).map((x) => x.mbps!));
  for (const v of ['regtape', 'passthrough', 'mitmdump']) r.summary[`pull.${v}.peakRss`] = summarize(timed(s, 'pull', v).map((x) => x.proxyPeak!));
  for (const v of ['regtape', 'passthrough', 'mitmdump']) r.summary[`curl.${v}.peakRss`] = summarize(timed(s, 'curl', v).map((x) => x.proxyPeak!));
  for (const v of ['regtape', 'passthrough', 'mitmdump']) r.summary[`pull.${v}.cpu`] = summarize(timed(s, 'pull', v).map((x) => x.proxyCpu!));
  for (const v of ['regtape', 'passthrough', 'mitmdump']) r.summary[`curl.${v}.cpu`] = summarize(timed(s, 'curl', v).map((x) => x.proxyCpu!));
  const secs = (x: Sample): number => x.seconds;
  const speed = (x: Sample): number => x.mbps!;
  r.ratios['pull.regtape/direct'] = ratio(s, 'pull', 'regtape', 'direct', secs);
  r.ratios['pull.mitmdump/direct'] = ratio(s, 'pull', 'mitmdump', 'direct', secs);
  r.ratios['pull.passthrough/direct'] = ratio(s, 'pull', 'passthrough', 'direct', secs);
  r.ratios['pull.regtape/passthrough'] = ratio(s, 'pull', 'regtape', 'passthrough', secs);
  r.ratios['curl.regtape/direct'] = ratio(s, 'curl', 'regtape', 'direct', speed);
  r.ratios['curl.regtape/passthrough'] = ratio(s, 'curl', 'regtape', 'passthrough', speed);
  r.ratios['curl.passthrough/direct'] = ratio(s, 'curl', 'passthrough', 'direct', speed);
  r.ratios['curl.mitmdump/direct'] = ratio(s, 'curl', 'mitmdump', 'direct', speed);
  r.ratios['curl.regtape/mitmdump'] = ratio(s, 'curl', 'regtape', 'mitmdump', speed);

  const add = (name: string, key: string, op: '≤' | '≥', want: number) => {
    const x = r.ratios[key];
    if (!x) return;
    const rounds = x.paired && x.paired.n > 1 ? ` (per round ${fmt(x.paired.min)}–${fmt(x.paired.max)})` : '';
    r.targets.push({ name, target: `${op} ${want.toFixed(2)}×`, measured: `${fmt(x.ofMedians)}×${rounds}`, met: op === '≤' ? x.ofMedians <= want : x.ofMedians >= want });
  };
  add('docker pull through regtape record, time vs direct (median/median)', 'pull.regtape/direct', '≤', TARGETS.pullRatio);
  add('docker pull through regtape record, time vs pass-through (median/median)', 'pull.regtape/passthrough', '≤', TARGETS.pullVsPassthrough);
  add('raw curl: regtape record speed vs pass-through (median/median)', 'curl.regtape/passthrough', '≥', TARGETS.rawVsPassthrough);
  add('raw curl: regtape record speed vs mitmdump storing nothing (median/median)', 'curl.regtape/mitmdump', '≥', TARGETS.rawVsMitmdump);
  add('docker pull through the pass-through proxy, time vs direct (the MITM floor)', 'pull.passthrough/direct', '≤', TARGETS.passthroughPullRatio);
  const big = s.filter((x) => x.section === 'big');
  if (big.length) {
    const peak = Math.max(...big.map((x) => x.proxyPeak!));
    const gib = (r.options.bigBytes / 2 ** 30).toFixed(r.options.bigBytes % 2 ** 30 ? 2 : 0);
    r.targets.push({ name: `${gib} GiB body through regtape: peak RSS (max of full speed and slow client)`, target: `≤ ${mb(TARGETS.bigPeakBytes)}`, measured: mb(peak), met: peak <= TARGETS.bigPeakBytes });
  }
}

export function renderMarkdown(r: Results, resultsFile: string | null): string {
  const m = r.machine;
  const ratioCell = (x: Ratio | null | undefined): string =>
    x ? `${fmt(x.ofMedians)}×${x.paired && x.paired.n > 1 ? ` (per round ${fmt(x.paired.min)}–${fmt(x.paired.max)})` : ''}` : '–';
  const out: string[] = [];
  out.push('## Record');
  out.push('');
  out.push(
    `What recording costs. Generated by \`${r.command}\` on ${r.date.slice(0, 16).replace('T', ' ')} UTC (took ${r.durationSeconds < 120 ? `${Math.round(r.durationSeconds)} s` : `${(r.durationSeconds / 60).toFixed(1)} min`}). ` +
      `MB = 10^6 bytes; times are wall clock. Variants alternate within each round; ${r.options.runs} timed round(s)` +
      `${r.options.warmup ? ' after one untimed warm-up round' : ''}. ` +
      `"Proxy CPU" is user + system time of the proxy process (all threads) from the start of a run until the body is committed; ` +
      `"peak RSS" is its VmHWM, reset before each run (\`/proc/PID/clear_refs\`), highest run shown.${resultsFile ? ` Raw numbers: \`${resultsFile}\`.` : ''}`,
  );
  out.push('');
  const busyRuns = r.samples.filter((x) => x.round > 0 && x.busyBefore >= IDLE_THRESHOLD).length;
  out.push(
    `Machine: ${m.cpu}, ${m.nproc} vCPU, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ${m.os}, ${m.kernel}, node ${m.node}; ${m.docker}; mitmproxy ${m.mitmproxy.replace(/^Mitmproxy:\s*/, '')}; ${m.curl.split(' ').slice(0, 2).join(' ')}; ${m.registry}. ` +
      `Faulting in fresh memory cost ${fmt(m.memTouchSecondsPerGiB)} CPU-s per GiB at the start (a child filling 512 MiB); stored bodies need new page-cache pages, so this VM property weighs on regtape and not on the proxies that store nothing. ` +
      `Everything (lab, dockerd, proxy, curl) shares the ${m.nproc} vCPUs on loopback, so numbers are noisy: load average ${m.loadAvgAtStart.join(' ')} at the start, ${m.loadAvgAtEnd?.join(' ') ?? '?'} at the end` +
      (r.options.waitIdle
        ? `; before each run the script waited (≤ ${IDLE_TIMEOUT_MS / 1000} s) until < ${IDLE_THRESHOLD * 100}% of the CPUs were busy${busyRuns ? ` (${busyRuns} timed run(s) started on a busier machine anyway)` : ' (every timed run started that way)'}.`
        : '; no idle wait (--no-wait-idle).'),
  );
  const timedRuns = r.samples.filter((x) => x.round > 0);
  const foreign = summarize(timedRuns.map((x) => x.foreignCpu));
  if (foreign) {
    const worst = timedRuns.filter((x) => x.foreignCpu >= FOREIGN_NOTABLE).sort((a, b) => b.foreignCpu - a.foreignCpu);
    out.push('');
    out.push(
      `Other tenants: processes outside the benchmark used ${fmt(foreign.median, 1)} CPU-s during the median timed run (max ${fmt(foreign.max, 1)})` +
        (worst.length
          ? `; ${worst.length} of ${timedRuns.length} timed runs lost ≥ ${FOREIGN_NOTABLE} CPU-s to them, worst ${worst
              .slice(0, 5)
              .map((x) => `${x.section} ${x.variant} round ${x.round} (${fmt(x.foreignCpu, 1)})`)
              .join(', ')}. Those runs stay in the statistics (a median absorbs one outlier per variant); the per-round ratios show which rounds they distorted.`
          : '.'),
    );
  }
  out.push('');
  out.push('### Targets');
  out.push('');
  out.push(table(['target', 'wanted', 'measured', ''], r.targets.map((t) => [t.name, t.target, t.measured, t.met ? 'met' : '**MISSED**'])));
  const missed = r.targets.filter((t) => !t.met);
  if (missed.length) out.push('', `Missed: ${missed.map((t) => `${t.name} (${t.measured}, wanted ${t.target})`).join('; ')}.`);
  if (r.image) {
    out.push('');
    out.push(`### docker pull ${r.image.ref} (layer ${mb(r.image.layerSize)})`);
    out.push('');
    out.push('Each run starts from an empty image store (`docker rmi -f` + `docker image prune -af`), so every byte is downloaded and unpacked (vfs). Through regtape every run writes a fresh body file, checked after the run (flow complete, file named by the layer digest, size and content sha256) and then deleted.');
    out.push('');
    const rows = PULL_VARIANTS.filter((v) => r.summary[`pull.${v}.seconds`]).map((v) => {
      const [med, rg] = medianCells(r.summary[`pull.${v}.seconds`], 2, 's');
      return [
        LABEL[v]!,
        med,
        rg,
        v === 'direct' ? '1.00×' : ratioCell(r.ratios[`pull.${v}/direct`]),
        v === 'direct' ? '–' : cpuCell(r.summary[`pull.${v}.cpu`]),
        v === 'direct' ? '–' : rssCell(r.summary[`pull.${v}.peakRss`], r.idleRss[v]),
      ];
    });
    if (rows.length) out.push(table(['variant', 'median', 'min–max', 'time vs direct', 'proxy CPU per pull', 'proxy peak RSS'], rows, ['l', 'r', 'r', 'r', 'r', 'r']));
    const curlRows = CURL_VARIANTS.filter((v) => r.summary[`curl.${v}.mbps`]).map((v) => {
      const [med, rg] = medianCells(r.summary[`curl.${v}.mbps`], 0, 'MB/s');
      const vsPt = v === 'regtape' ? ratioCell(r.ratios['curl.regtape/passthrough']) : v === 'passthrough' ? '1.00×' : '–';
      return [
        LABEL[v]!,
        med,
        rg,
        v === 'direct' ? '1.00×' : ratioCell(r.ratios[`curl.${v}/direct`]),
        vsPt,
        v === 'direct' ? '–' : cpuCell(r.summary[`curl.${v}.cpu`]),
        v === 'direct' ? '–' : rssCell(r.summary[`curl.${v}.peakRss`], r.idleRss[v]),
      ];
    });
    if (curlRows.length) {
      out.push('');
      out.push(`### curl of the same blob from the CDN (${mb(r.image.layerSize)}; curl's \`%{speed_download}\`)`);
      out.push('');
      out.push(table(['variant', 'median', 'min–max', 'speed vs direct', 'speed vs pass-through', 'proxy CPU per download', 'proxy peak RSS'], curlRows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']));
    }
  }
  const big = r.samples.filter((x) => x.section === 'big');
  if (big.length && r.big) {
    out.push('');
    out.push(`### ${(r.big.size / 2 ** 30).toFixed(r.big.size % 2 ** 30 ? 2 : 0)} GiB body through regtape record (memory)`);
    out.push('');
    out.push(`Our own HTTPS origin in a child process streams ${r.big.size} generated bytes with Content-Length (sha256 \`${r.big.sha256.slice(0, 16)}…\`); curl fetches it through a fresh \`regtape record\` (idle RSS ${mb(r.idleRss['regtape-big'])}).`);
    out.push('');
    out.push(
      table(
        ['client', 'MB/s', 'time', 'regtape CPU', 'regtape peak RSS', 'stored body'],
        big.map((x) => [
          x.variant,
          fmt(x.mbps, 0),
          `${fmt(x.seconds, 1)} s`,
          `${fmt(x.proxyCpu)} s`,
          `${mb(x.proxyPeak)} ${x.proxyPeak! <= TARGETS.bigPeakBytes ? '(≤ 150 MB)' : '(**> 150 MB**)'}`,
          x.check.includes('sha256 ok') ? 'sha256 + size ok' : x.check,
        ]),
        ['l', 'r', 'r', 'r', 'r', 'l'],
      ),
    );
  }
  out.push('');
  out.push('### How it was measured');
  out.push('');
  out.push('```sh');
  out.push(`${r.command}   # needs root; apt-get install docker.io docker-registry skopeo mitmproxy curl`);
  out.push('```');
  out.push('');
  out.push(`Lab: \`startLab({ images: ['${r.options.quick ? 'big100' : 'big500'}'], ipBase: '${IP_BASE}' })\` (scripts/lab/): distribution 2.8 with token auth, blobs redirected (307) to our CDN. $T is the benchmark's temp dir, $LAB the lab's.`);
  out.push('');
  for (const [k, v] of Object.entries(r.commands)) out.push(`- ${k}: \`${v}\``);
  return out.join('\n');
}

