/**
 * `npm run bench`: every row of issue 15's target table, measured by the scripts that own them, then the
 * table itself (measured vs target) on stdout and in the `bench-summary` section of BENCHMARKS.md.
 *
 *   npm run bench -- [--runs 5] [--only record,replay,load,cost] [--baseline DIR] [--no-write]
 *
 * Runs one after the other (each needs the machine to itself): bench-record (docker pull and curl through
 * regtape / pass-through / mitmdump, 2 GiB body; root + lab), bench-replay (replayed docker pull vs the
 * registry, mirror mode vs the lab CDN; root + lab), bench-load (64 clients × 1000 HTTPS requests) and
 * bench-cost (CPU-s per GB, GC, RSS, socat TLS-relay floor, leaf certificates). About 20–30 minutes on an
 * idle 2-vCPU machine.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCHMARKS_MD, RESULTS_DIR, ROOT } from './bench/common.js';
import { replaceSection } from './bench/report.js';

const HELP = `Usage: npm run bench -- [options]

Measures every row of issue 15's table (record, replay, load, cost) and prints measured vs target.
Needs root and: apt-get install docker.io docker-registry skopeo mitmproxy curl socat util-linux.

Options:
  --runs N        timed rounds per benchmark (default 5)
  --only LIST     subset of record,replay,load,cost (default all)
  --baseline DIR  bench-cost also measures the build in DIR as "(before)" (see bench-cost --help)
  --no-wait-idle  bench-record/bench-replay start each run at once instead of waiting (≤ 60 s) for a
                  quiet machine (on a machine that is never quiet)
  --use K=FILE    measure nothing for K (record, replay, load, cost): take its results from FILE (the
                  results JSON of bench-record/bench-replay, bench-load's printed JSON, bench-cost --json)
  --no-write      do not write BENCHMARKS.md sections / results files
  -h, --help      this help
`;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  process.stderr.write(`bench: ${cmd} ${args.join(' ')}\n`);
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    c.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      process.stdout.write(b);
    });
    c.on('exit', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

/** The newest scripts/bench/results/<kind>-*.json written after `since`. */
async function newestResults(kind: string, since: number): Promise<Json | null> {
  if (!existsSync(RESULTS_DIR)) return null;
  const files = readdirSync(RESULTS_DIR)
    .filter((f) => f.startsWith(`${kind}-`) && f.endsWith('.json'))
    .map((f) => path.join(RESULTS_DIR, f))
    .filter((f) => statSync(f).mtimeMs >= since)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return files[0] ? (JSON.parse(await readFile(files[0], 'utf8')) as Json) : null;
}

const f2 = (v: number | undefined | null): string => (v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toFixed(2));
const rounds = (r: Json | undefined): string => (r?.paired && r.paired.n > 1 ? ` (per round ${f2(r.paired.min)}–${f2(r.paired.max)})` : '');

interface Row {
  measure: string;
  target: string;
  measured: string;
  met: boolean | null;
}

function row(measure: string, target: string, value: number | undefined | null, ok: (v: number) => boolean, shown?: string): Row {
  const have = value !== undefined && value !== null && Number.isFinite(value);
  return { measure, target, measured: have ? (shown ?? f2(value)) : 'not measured', met: have ? ok(value) : null };
}

function costRuns(cost: Json | null, section: string, variant: string): Json[] {
  return ((cost?.runs_ as Json[] | undefined) ?? []).filter((r) => r.section === section && r.variant === variant);
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function table(rec: Json | null, rep: Json | null, load: Json | null, cost: Json | null): Row[] {
  const rr = rec?.ratios ?? {};
  const pr = rep?.ratios ?? {};
  const socat = 'socat TLS relay (C: TLS twice, stores nothing)';
  const speed = (v: string) => median(costRuns(cost, 'record', v).map((r) => r.mbps as number));
  const floor = speed(socat) && speed('direct') ? speed(socat)! / speed('direct')! : undefined;
  const ptVsSocat = speed('pass-through') && speed(socat) ? speed('pass-through')! / speed(socat)! : undefined;
  const slowPeak = (rec?.samples as Json[] | undefined)?.filter((s) => s.section === 'big').map((s) => s.proxyPeak as number);
  const leafNew = costRuns(cost, 'leaf', 'new host (leaf issued)')[0];
  const leaf = leafNew ? (JSON.parse(leafNew.check) as Json) : null;
  const mirror = pr['curl.replay-mirror/cdn']?.ofMedians as number | undefined;
  return [
    row('500 MB layer `docker pull` through `record`, time vs direct', '≤ 1.05', rr['pull.regtape/direct']?.ofMedians, (v) => v <= 1.05, `${f2(rr['pull.regtape/direct']?.ofMedians)}${rounds(rr['pull.regtape/direct'])}`),
    row('same, time vs the pass-through proxy', '≤ 1.03', rr['pull.regtape/passthrough']?.ofMedians, (v) => v <= 1.03, `${f2(rr['pull.regtape/passthrough']?.ofMedians)}${rounds(rr['pull.regtape/passthrough'])}`),
    row('raw 500 MB blob with curl: recording speed / pass-through speed', '≥ 0.90', rr['curl.regtape/passthrough']?.ofMedians, (v) => v >= 0.9, `${f2(rr['curl.regtape/passthrough']?.ofMedians)}${rounds(rr['curl.regtape/passthrough'])}`),
    row('same, regtape recording vs mitmdump storing nothing', '≥ 1.3', rr['curl.regtape/mitmdump']?.ofMedians, (v) => v >= 1.3, `${f2(rr['curl.regtape/mitmdump']?.ofMedians)}${rounds(rr['curl.regtape/mitmdump'])}`),
    row(
      'pass-through / direct, docker pull time (the MITM floor)',
      '≤ 1.08, or a measured floor',
      rr['pull.passthrough/direct']?.ofMedians,
      (v) => v <= 1.08,
      `${f2(rr['pull.passthrough/direct']?.ofMedians)}${rounds(rr['pull.passthrough/direct'])}; floor: socat TLS relay (C) reaches ${f2(floor)}× direct curl speed, our pass-through ${f2(ptVsSocat)}× socat's`,
    ),
    row('replay, 500 MB blob, mirror mode vs the lab CDN, time', '≤ 1.0', mirror ? 1 / mirror : undefined, (v) => v <= 1.0, `${f2(mirror ? 1 / mirror : undefined)} (speed ${f2(mirror)}×)`),
    row('replayed `docker pull` 500 MB vs pull from docker-registry, time', '≤ 0.90', pr['pull.replay-proxy/registry']?.ofMedians, (v) => v <= 0.9, `${f2(pr['pull.replay-proxy/registry']?.ofMedians)}${rounds(pr['pull.replay-proxy/registry'])}`),
    row('recorder peak RSS, 2 GiB body (full speed and slow client), MB', '≤ 150', slowPeak?.length ? Math.max(...slowPeak) / 1e6 : undefined, (v) => v <= 150, slowPeak?.length ? `${Math.round(Math.max(...slowPeak) / 1e6)}` : undefined),
    row('recorder peak RSS, 64 clients × 1000 HTTPS requests, MB', '≤ 250', load?.recorderPeakRssMB, (v) => v <= 250, `${load?.recorderPeakRssMB}`),
    row('first request to a new host (leaf certificate): CONNECT + TLS handshake p99, ms', '≤ 10', leaf?.p99, (v) => v <= 10, leaf ? `${f2(leaf.p99)} (p50 ${f2(leaf.p50)}, ${f2(leaf.cpuMsEach)} ms recorder CPU each)` : undefined),
    row('same: recorder event loop blocked at most, ms', '≤ 20', leafNew?.probe?.loopMs?.max, (v) => v <= 20),
    row('64 × 1000 small requests recorded, each committed: req/s', '≥ 2000, 0 lost', load?.requestsPerSecond, (v) => v >= 2000 && load?.lost === 0, load ? `${load.requestsPerSecond} req/s, ${load.lost} lost, ${load.recorderCpuMsPerRequest} ms recorder CPU per request` : undefined),
  ];
}

function render(rows: Row[], started: Date, load0: number[], minutes: number): string {
  const lines = [
    '## Summary: issue 15 targets',
    '',
    `Generated by \`npm run bench\` on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (${minutes.toFixed(0)} min), ${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ''}, node ${process.version}. Load average at the start ${load0.join(' ')} (other tenants share this machine: wall-clock ratios are noisy; see each section's min–max and the CPU-per-GB figures of the Cost section). Each value comes from the section named below it in this file.`,
    '',
    '| measure | target | measured | |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.measure} | ${r.target} | ${r.measured} | ${r.met === null ? 'not measured' : r.met ? 'met' : '**MISSED**'} |`),
  ];
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      only: { type: 'string', default: 'record,replay,load,cost' },
      baseline: { type: 'string' },
      'no-write': { type: 'boolean' },
      'no-wait-idle': { type: 'boolean' },
      use: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const use = new Map(values.use!.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
  const only = values.only!.split(',').filter((k) => !use.has(k));
  const fromFile = async (k: string): Promise<Json | null> => (use.has(k) ? (JSON.parse(await readFile(use.get(k)!, 'utf8')) as Json) : null);
  const runs = values.runs!;
  const write = !values['no-write'];
  const idle = values['no-wait-idle'] ? ['--no-wait-idle'] : [];
  const started = new Date();
  const load0 = os.loadavg().map((v) => Math.round(v * 100) / 100);
  const node = process.execPath;
  const tsx = ['--import', 'tsx'];
  let rec: Json | null = await fromFile('record');
  let rep: Json | null = await fromFile('replay');
  let load: Json | null = await fromFile('load');
  let cost: Json | null = await fromFile('cost');
  let failed = 0;
  if (only.includes('record')) {
    const r = await run(node, [...tsx, 'scripts/bench-record.ts', '--runs', runs, ...idle, ...(write ? ['--write'] : ['--no-write'])]);
    failed += r.code ? 1 : 0;
    rec = await newestResults('record', started.getTime());
  }
  if (only.includes('replay')) {
    const r = await run(node, [...tsx, 'scripts/bench-replay.ts', '--runs', runs, ...idle, ...(write ? ['--write'] : ['--no-write'])]);
    failed += r.code ? 1 : 0;
    rep = await newestResults('replay', started.getTime());
  }
  if (only.includes('load')) {
    const r = await run(node, [...tsx, 'scripts/bench-load.ts', '--clients', '64', '--requests', '1000', ...(write ? [] : ['--no-write'])]);
    failed += r.code ? 1 : 0;
    const m = /\{[\s\S]*\}/.exec(r.stdout);
    load = m ? (JSON.parse(m[0]) as Json) : null;
  }
  if (only.includes('cost')) {
    const json = path.join(os.tmpdir(), `regtape-bench-cost-${process.pid}.json`);
    const r = await run(node, [...tsx, 'scripts/bench-cost.ts', '--mib', '500', '--runs', runs, '--json', json, ...(values.baseline ? ['--baseline', values.baseline] : []), ...(write ? ['--write'] : [])]);
    failed += r.code ? 1 : 0;
    cost = existsSync(json) ? (JSON.parse(await readFile(json, 'utf8')) as Json) : null;
  }
  const md = render(table(rec, rep, load, cost), started, load0, (Date.now() - started.getTime()) / 60_000);
  process.stdout.write(`\n${md}\n`);
  if (write) await replaceSection(BENCHMARKS_MD, 'bench-summary', md);
  if (failed) process.stderr.write(`bench: ${failed} benchmark(s) failed (see above)\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
