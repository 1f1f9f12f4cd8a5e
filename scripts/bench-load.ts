/**
 * Load benchmark: C concurrent clients × N requests each through `regtape record` (the
 * real CLI, a separate process) to an HTTPS origin on loopback, via CONNECT with
 * keep-alive. Checks that the recording holds exactly C×N flows (0 lost) and reports
 * throughput and the recorder's peak RSS. Bounded: it stops by itself.
 *
 *   npx tsx scripts/bench-load.ts [--clients 64] [--requests 1000] [--no-write]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ProxyAgent, request } from 'undici';
import { Recording } from '../src/store/index.js';
import { startOrigin } from '../test/support/origin.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '64' },
    requests: { type: 'string', default: '1000' },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: npx tsx scripts/bench-load.ts [--clients 64] [--requests 1000] [--no-write]\nWrites a section to BENCHMARKS.md unless --no-write.');
  process.exit(0);
}
const C = Number(values.clients);
const N = Number(values.requests);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-bench-load-'));
const origin = await startOrigin(['load.test'], (req, res) => {
  // Registry-like small answers: a 401 challenge, a manifest, a token.
  if (req.url === '/v2/') {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="https://load.test/token",service="load.test"' });
    return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  }
  const body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', n: req.url });
  res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
const db = path.join(work, 'load.db');
const home = path.join(work, 'home');
// BENCH_NODE_FLAGS: node flags for the recorder only (e.g. '--cpu-prof --cpu-prof-dir=/tmp/p').
const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const rec = spawn(process.execPath, [...nodeFlags, path.join(ROOT, 'dist/cli/main.js'), 'record', '-q', '--listen', '127.0.0.1:0', '--out', db, '--map', `load.test=127.0.0.1:${origin.port}`, '--upstream-ca', origin.caPath], {
  env: { PATH: process.env.PATH!, REGTAPE_HOME: home },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let err = '';
rec.stderr!.on('data', (c: Buffer) => (err += c.toString()));
const url = await new Promise<string>((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`recorder did not start:\n${err}`)), 20_000);
  rec.stderr!.on('data', () => {
    const m = /listening on (http:\/\/[\d.:]+)/.exec(err);
    if (m) {
      clearTimeout(t);
      resolve(m[1]!);
    }
  });
});
const ca = fs.readFileSync(path.join(home, 'ca.pem'), 'utf8');

let peakRss = 0;
/** RSS of the recorder every second (MB), for the "RSS over time" line. */
const rssSeries: number[] = [];
let ticks = 0;
const cpuOf = (): number => {
  try {
    const st = fs.readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
};
const rssTimer = setInterval(() => {
  try {
    const status = fs.readFileSync(`/proc/${rec.pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    if (ticks++ % 5 === 0) rssSeries.push(Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1000));
  } catch {
    // exited
  }
}, 200);
const cpuStart = cpuOf();
const loadStart = os.loadavg().map((v) => Math.round(v * 100) / 100);

let failures = 0;
const failureReasons = new Map<string, number>();
const latencies: number[] = [];
const t0 = performance.now();
await Promise.all(
  Array.from({ length: C }, async (_, c) => {
    // One keep-alive connection per client (a CONNECT tunnel), like a registry client.
    const agent = new ProxyAgent({ uri: url, requestTls: { ca }, connections: 1 });
    for (let i = 0; i < N; i++) {
      const path_ = i % 10 === 0 ? '/v2/' : `/v2/load/c${c}/manifests/r${i}`;
      const s = performance.now();
      try {
        const r = await request(`https://load.test${path_}`, { dispatcher: agent, headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
        await r.body.arrayBuffer();
        if (r.statusCode !== 200 && r.statusCode !== 401) {
          failures++;
          failureReasons.set(`status ${r.statusCode}`, (failureReasons.get(`status ${r.statusCode}`) ?? 0) + 1);
        }
      } catch (e) {
        failures++;
        const k = `${(e as { code?: string }).code ?? ''} ${(e as Error).message}`.trim();
        failureReasons.set(k, (failureReasons.get(k) ?? 0) + 1);
      }
      latencies.push(performance.now() - s);
    }
    await agent.close();
  }),
);
const seconds = (performance.now() - t0) / 1000;
const recorderCpu = cpuOf() - cpuStart;
rec.kill('SIGINT');
await new Promise((r) => rec.once('exit', r));
clearInterval(rssTimer);
await origin.close();

const r = Recording.open(db, { readonly: true });
const flows = r.count();
const counts = r.stateCounts();
const complete = counts.filter((c) => c.state === 'complete').reduce((n, c) => n + c.n, 0);
const notComplete = counts.filter((c) => c.state !== 'complete');
r.close();
latencies.sort((a, b) => a - b);
const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
const sent = C * N;
const result = {
  date: new Date().toISOString(),
  clients: C,
  requestsPerClient: N,
  sent,
  failures,
  flowsRecorded: flows,
  complete,
  lost: sent - flows,
  seconds: Number(seconds.toFixed(2)),
  requestsPerSecond: Math.round(sent / seconds),
  latencyMs: { p50: p(0.5), p95: p(0.95), p99: p(0.99) },
  recorderPeakRssMB: Math.round(peakRss / 1e6),
  recorderCpuSeconds: Number(recorderCpu.toFixed(2)),
  recorderCpuMsPerRequest: Number(((recorderCpu * 1000) / (C * N)).toFixed(3)),
  recorderRssMBEverySecond: rssSeries,
  clientFailures: Object.fromEntries(failureReasons),
  notCompleteFlows: notComplete,
};
console.log(JSON.stringify(result, null, 2));
fs.rmSync(work, { recursive: true, force: true });

if (!values['no-write']) {
  const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  const section = `<!-- bench-load:start -->
## Load: ${C} clients × ${N} requests through the recorder

\`npx tsx scripts/bench-load.ts --clients ${C} --requests ${N}\` — ${result.date.slice(0, 10)}, ${os.cpus().length} vCPU (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.
HTTPS through CONNECT with one keep-alive tunnel per client, to a Node HTTPS origin on loopback (small registry-like
answers: 1 in 10 a 401 challenge, the rest 200 manifests). The recorder, the origin and the clients share the machine
(load average ${loadStart.join(' ')} at the start: other work shared it too). Every flow counted here was committed:
the recording is opened after the recorder exited and every row is read back.

| sent | failed | flows recorded | complete | lost | time | requests/s | latency p50 / p95 / p99 | recorder CPU per request | recorder peak RSS |
|---|---|---|---|---|---|---|---|---|---|
| ${sent} | ${failures} | ${flows} | ${complete} | **${result.lost}** | ${result.seconds} s | ${result.requestsPerSecond} | ${result.latencyMs.p50} / ${result.latencyMs.p95} / ${result.latencyMs.p99} ms | ${result.recorderCpuMsPerRequest} ms | ${result.recorderPeakRssMB} MB |

Recorder RSS every 10 s (MB): ${rssSeries.filter((_, i) => i % 10 === 0).join(' ')}
${failures ? `\nClient-side failures: ${JSON.stringify(result.clientFailures)}; flows not complete: ${JSON.stringify(notComplete)}.\n` : ''}<!-- bench-load:end -->`;
  const file = path.join(ROOT, 'BENCHMARKS.md');
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  text = /<!-- bench-load:start -->[\s\S]*<!-- bench-load:end -->/.test(text)
    ? text.replace(/<!-- bench-load:start -->[\s\S]*<!-- bench-load:end -->/, section)
    : `${text.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(file, text);
}
if (result.lost !== 0 || failures !== 0) process.exitCode = 1;
