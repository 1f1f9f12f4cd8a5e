/**
 * `regtape ui --follow` beside a running recorder (see BENCHMARKS.md, bench-follow):
 *
 *   npx tsx scripts/bench-follow.ts [--clients 16] [--requests 400] [--runs 3] [--probes 10] [--no-write]
 *
 * 1. Recorder throughput with and without a follower: C clients × N requests through
 *    `regtape record` (the built CLI) to an HTTPS origin on loopback, runs alternating
 *    between "no follower" and "`regtape ui --follow` open in tmux (160×40)".
 * 2. Update latency of the follower: after each follower run, `probes` single requests
 *    with a unique path, one at a time; the time from the response arriving at the
 *    client to the path on the follower's screen (capture-pane polled every 10 ms).
 *
 * Bounded: every step has a timeout; tmux sessions and processes are cleaned up.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ProxyAgent, request } from 'undici';
import { CLI, BENCHMARKS_MD } from './bench/common.js';
import { replaceSection, summarize } from './bench/report.js';
import { startOrigin } from '../test/support/origin.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '16' },
    requests: { type: 'string', default: '400' },
    runs: { type: 'string', default: '3' },
    probes: { type: 'string', default: '10' },
    'no-write': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: npx tsx scripts/bench-follow.ts [--clients 16] [--requests 400] [--runs 3] [--probes 10] [--no-write]');
  process.exit(0);
}
const C = Number(values.clients);
const N = Number(values.requests);
const RUNS = Number(values.runs);
const PROBES = Number(values.probes);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-bench-follow-'));
const origin = await startOrigin(['follow.test'], (req, res) => {
  const body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', n: req.url });
  res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
const home = path.join(work, 'home');
const tmuxName = `regtape-bench-follow-${process.pid}`;
const children: ChildProcess[] = [];
const cleanup = () => {
  for (const c of children) c.kill('SIGKILL');
  try {
    execFileSync('tmux', ['kill-session', '-t', tmuxName], { stdio: 'ignore' });
  } catch {
    // not running
  }
};
process.on('exit', cleanup);

async function startRecorder(db: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [CLI, 'record', '-q', '--listen', '127.0.0.1:0', '--out', db, '--map', `follow.test=127.0.0.1:${origin.port}`, '--upstream-ca', origin.caPath], { env: { PATH: process.env.PATH!, REGTAPE_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(proc);
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`recorder did not start:\n${err}`)), 20_000);
    proc.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on (http:\/\/[\d.:]+)/.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
  return { proc, url };
}

const screen = () => execFileSync('tmux', ['capture-pane', '-p', '-t', tmuxName], { encoding: 'utf8' });

async function waitScreen(test: (s: string) => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (test(screen())) return performance.now();
    await sleep(10);
  }
  throw new Error(`timed out; the follower showed:\n${screen()}`);
}

async function load(url: string, ca: string): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async (_, c) => {
      const agent = new ProxyAgent({ uri: url, requestTls: { ca }, connections: 1 });
      for (let i = 0; i < N; i++) {
        const r = await request(`https://follow.test/v2/load/c${c}/manifests/r${i}`, { dispatcher: agent });
        await r.body.arrayBuffer();
      }
      await agent.close();
    }),
  );
  return (C * N) / ((performance.now() - t0) / 1000);
}

async function run(round: number, follow: boolean): Promise<{ rps: number; latencies: number[] }> {
  const db = path.join(work, `r${round}-${follow ? 'follow' : 'plain'}.db`);
  const { proc, url } = await startRecorder(db);
  const ca = fs.readFileSync(path.join(home, 'ca.pem'), 'utf8');
  const agent = new ProxyAgent({ uri: url, requestTls: { ca }, connections: 1 });
  await (await request('https://follow.test/v2/', { dispatcher: agent })).body.arrayBuffer();
  if (follow) {
    execFileSync('tmux', ['new-session', '-d', '-s', tmuxName, '-x', '160', '-y', '40', `env -u CI ${process.execPath} ${CLI} ui --follow ${db}; sleep 60`]);
    await waitScreen((s) => s.includes('FOLLOW'), 15_000);
  }
  const rps = await load(url, ca);
  const latencies: number[] = [];
  if (follow) {
    for (let i = 0; i < PROBES; i++) {
      const tag = `/v2/probe/manifests/p${round}x${i}`;
      const r = await request(`https://follow.test${tag}`, { dispatcher: agent });
      await r.body.arrayBuffer();
      const answered = performance.now();
      const seen = await waitScreen((s) => s.includes(`p${round}x${i}`), 10_000);
      latencies.push(seen - answered);
      await sleep(50);
    }
    execFileSync('tmux', ['kill-session', '-t', tmuxName], { stdio: 'ignore' });
  }
  await agent.close();
  proc.kill('SIGINT');
  await new Promise((r) => proc.once('exit', r));
  return { rps, latencies };
}

const plain: number[] = [];
const followed: number[] = [];
const latencies: number[] = [];
for (let r = 0; r < RUNS; r++) {
  for (const follow of r % 2 ? [true, false] : [false, true]) {
    const x = await run(r, follow);
    (follow ? followed : plain).push(x.rps);
    latencies.push(...x.latencies);
    console.error(`run ${r} ${follow ? 'follow' : 'plain '}: ${Math.round(x.rps)} requests/s${x.latencies.length ? `, latency median ${Math.round(summarize(x.latencies)!.median)} ms` : ''}`);
  }
}
await origin.close();
cleanup();
fs.rmSync(work, { recursive: true, force: true });

const p = summarize(plain)!;
const f = summarize(followed)!;
const l = summarize(latencies)!;
const sorted = [...latencies].sort((a, b) => a - b);
const p95 = sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))]!;
const result = { date: new Date().toISOString(), clients: C, requests: N, runs: RUNS, plainRps: plain.map(Math.round), followRps: followed.map(Math.round), ratio: f.median / p.median, latencyMs: { median: l.median, p95, max: sorted.at(-1) } };
console.log(JSON.stringify(result, null, 2));

if (!values['no-write']) {
  const cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  await replaceSection(
    BENCHMARKS_MD,
    'bench-follow',
    `## ui --follow beside a running recorder

\`npx tsx scripts/bench-follow.ts --clients ${C} --requests ${N} --runs ${RUNS} --probes ${PROBES}\` — ${result.date.slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length} vCPU (${cpu.trim()}), Node ${process.version}, load average at the end ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}.
${C} clients × ${N} small HTTPS requests (keep-alive CONNECT tunnels) through \`regtape record\` (the built CLI) to a Node origin on loopback;
runs alternate between no follower and \`regtape ui --follow\` open in tmux (160×40) on the same recording. The recorder, the origin, the
clients and the follower share the machine (and its 2 CPUs with other work).

| variant | requests/s, median (min–max) |
|---|---|
| record | ${Math.round(p.median)} (${Math.round(p.min)}–${Math.round(p.max)}) |
| record + ui --follow | ${Math.round(f.median)} (${Math.round(f.min)}–${Math.round(f.max)}) |

Ratio with follower / without: **${result.ratio.toFixed(2)}×** (the follower reads the recording read-only through SQLite's WAL; it takes no lock the writer waits for).

Update latency of the follower (${latencies.length} probes: from the response reaching the client to the flow on the follower's screen, capture-pane polled every 10 ms; the follower polls the recording every 200 ms): median **${Math.round(l.median)} ms**, p95 ${Math.round(p95)} ms, max ${Math.round(sorted.at(-1)!)} ms.`,
  );
}
