/**
 * The inspector benchmark (see BENCHMARKS.md, section bench-ui):
 *
 *   npx tsx scripts/bench-ui.ts [--flows 100000] [--runs 3] [--keep DIR] [--no-write]
 *
 * 1. Writes a recording of N flows with the store API (batched transactions): pulls of
 *    many repositories, each ping → token → manifest HEAD → index → image manifest →
 *    3 blob redirects → 3 CDN downloads, with registry facts, token claims and inline
 *    manifest/token bodies.
 * 2. Time to first paint of `regtape ui FILE` (the built CLI, dist/) in tmux at
 *    160×40: from spawning the command to the flow list on screen (capture-pane polled
 *    every 5 ms); and to "fully loaded" (the title bar stops saying loading).
 * 3. In-process, over all N flows: applying filters (the `f` command), a list frame
 *    (state → lines), paging keys, and the heap the rows take.
 *
 * Targets: first paint ≤ 1 s; a filter over 100k flows ≤ 200 ms.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { FlowRecord, HeaderList, RegistryFacts } from '../src/flow/index.js';
import { Recording, type StoredBody } from '../src/store/index.js';
import { applyFilter } from '../src/tui/commands.js';
import { BATCH, FIRST_BATCH } from '../src/tui/controller.js';
import { Controller, RecordingBackend, createEnv, renderFrame } from '../src/tui/index.js';
import { replaceSection, summarize, table } from './bench/report.js';
import { makeFacts } from '../test/support/flows.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/cli/main.js');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}
const FLOWS = Number(arg('flows', '100000'));
const RUNS = Number(arg('runs', '3'));
const WRITE = !process.argv.includes('--no-write');
/** capture-pane interval: each poll spawns tmux, so not too often on a small machine. */
const POLL_MS = 20;

// ------------------------------------------------------------------ the recording

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function stored(text: string): StoredBody {
  const buf = Buffer.from(text);
  return { ref: { sha256: sha(buf), size: buf.length, redacted: false }, inline: buf };
}

function facts(p: Partial<RegistryFacts> & Pick<RegistryFacts, 'role'>): RegistryFacts {
  return makeFacts({ registry: 'registry.test', auth: 'bearer', ...p });
}

const digestOf = (s: string) => `sha256:${sha(Buffer.from(s))}`;

/** Writes `n` flows; returns the seconds it took. */
export function generate(file: string, n: number): number {
  const t0 = performance.now();
  const rec = Recording.open(file, { create: true });
  rec.beginSession('bench-ui');
  let t = Date.UTC(2026, 0, 1);
  const reqHeaders: HeaderList = [
    ['Host', 'registry.test'],
    ['User-Agent', 'docker/20.10.24 go/go1.19.8'],
    ['Authorization', 'Bearer REDACTED-0badc0de'],
    ['Accept', 'application/vnd.docker.distribution.manifest.v2+json'],
    ['Accept', 'application/vnd.oci.image.index.v1+json'],
    ['Accept-Encoding', 'gzip'],
  ];
  const resHeaders = (type: string, len: number, digest?: string): HeaderList => [
    ['Content-Type', type],
    ['Content-Length', String(len)],
    ...(digest ? ([['Docker-Content-Digest', digest]] as HeaderList) : []),
    ['Docker-Distribution-Api-Version', 'registry/2.0'],
    ['Date', 'Thu, 01 Jan 2026 00:00:00 GMT'],
  ];
  let id = 0;
  const add = (
    method: string,
    host: string,
    target: string,
    status: number,
    registry: RegistryFacts,
    res: { type: string; body?: StoredBody; bytes?: number; digest?: string } = { type: 'application/json' },
    tokenClaims?: Record<string, unknown>,
  ) => {
    const start = (t += 3);
    const flow: FlowRecord = {
      id: 0,
      uuid: randomUUID(),
      state: 'complete',
      request: { method, scheme: 'https', host, port: 443, target, httpVersion: '1.1', headers: reqHeaders },
      requestBody: null,
      response: { status, reason: status === 200 ? 'OK' : status === 307 ? 'Temporary Redirect' : 'Unauthorized', httpVersion: '1.1', headers: resHeaders(res.type, res.body?.ref.size ?? res.bytes ?? 0, res.digest) },
      responseBody: res.body?.ref ?? null,
      timings: { start, connect: start + 1, tls: start + 2, requestSent: start + 2.2, firstByte: start + 4, end: start + 5 + ((res.bytes ?? 0) >> 20) },
      clientAddr: '127.0.0.1:40000',
      serverAddr: '127.0.0.2:443',
      error: null,
      requestBytes: 0,
      responseBytes: res.body?.ref.size ?? res.bytes ?? 0,
      facts: tokenClaims ? { tokens: [{ where: 'response.body:token', marker: 'REDACTED-0badc0de', claims: tokenClaims }], redactions: [{ where: 'response.body:token', marker: 'REDACTED-0badc0de' }] } : {},
      registry,
    };
    flow.id = rec.insertOpenFlow(flow);
    rec.finishFlow(flow, null, res.body ?? null);
    id++;
  };
  const unauthorized = stored('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}\n');
  const batch = (from: number) => rec.transaction(() => {
    for (let i = from; id < n && i < from + 500; i++) {
      const repo = `bench/app-${i % 997}`;
      const tag = `v${i}`;
      const config = digestOf(`config ${i}`);
      const layers = [digestOf(`layer a ${i}`), digestOf(`layer b ${i}`)];
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 1500, digest: config },
        layers: layers.map((d, k) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 3_000_000 * (k + 1), digest: d })),
      });
      const mDigest = `sha256:${sha(Buffer.from(manifest))}`;
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: manifest.length, digest: mDigest, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: 700, digest: digestOf(`arm ${i}`), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        ],
      });
      const iDigest = `sha256:${sha(Buffer.from(index))}`;
      const scope = [{ type: 'repository', name: repo, actions: ['pull'] }];
      const claims = { iss: 'bench-auth', sub: '', aud: 'registry.test', iat: 1767225600 + i, exp: 1767225900 + i, access: scope };
      add('GET', 'registry.test', '/v2/', 401, facts({ role: 'ping', auth: 'none' }), { type: 'application/json', body: unauthorized });
      add('GET', 'auth.test', `/token?scope=repository%3A${encodeURIComponent(repo)}%3Apull&service=registry.test`, 200, facts({ role: 'token', auth: 'none', scopesRequested: scope, scopesGranted: scope }), { type: 'application/json', body: stored(`{"token":"REDACTED-0badc0de","access_token":"REDACTED-0badc0de","expires_in":300,"issued_at":"2026-01-01T00:00:00Z","n":${i}}`) }, claims);
      add('HEAD', 'registry.test', `/v2/${repo}/manifests/${tag}`, 200, facts({ role: 'manifest', repo, reference: tag, digest: iDigest, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json' }), { type: 'application/vnd.docker.distribution.manifest.list.v2+json', digest: iDigest });
      add('GET', 'registry.test', `/v2/${repo}/manifests/${iDigest}`, 200, facts({ role: 'manifest', repo, reference: iDigest, digest: iDigest, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', digestCheck: 'ok' }), { type: 'application/vnd.docker.distribution.manifest.list.v2+json', body: stored(index), digest: iDigest });
      add('GET', 'registry.test', `/v2/${repo}/manifests/${mDigest}`, 200, facts({ role: 'manifest', repo, reference: mDigest, digest: mDigest, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digestCheck: 'ok' }), { type: 'application/vnd.docker.distribution.manifest.v2+json', body: stored(manifest), digest: mDigest });
      const redirects: number[] = [];
      for (const d of [config, ...layers]) {
        add('GET', 'registry.test', `/v2/${repo}/blobs/${d}`, 307, facts({ role: 'blob-redirect', repo, reference: d, digest: d, redirectTo: `https://cdn.test/blobs/${d.slice(7)}/data?verify=REDACTED-0badc0de` }), { type: 'text/html' });
        redirects.push(id);
      }
      [config, ...layers].forEach((d, k) => {
        add('GET', 'cdn.test', `/docker/registry/v2/blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}/data`, 200, facts({ role: 'cdn-blob', repo, reference: d, digest: d, redirectFrom: redirects[k]!, auth: 'none', mediaType: 'application/octet-stream' }), { type: 'application/octet-stream', bytes: k ? 3_000_000 * k : 1500 });
      });
      t += 60_000; // a new pull: operations split after 60 s of quiet
    }
  });
  for (let from = 0; id < n; from += 500) batch(from);
  rec.close();
  return (performance.now() - t0) / 1000;
}

// ------------------------------------------------------------------ first paint in tmux

function tmux(...args: string[]): string {
  return execFileSync('tmux', args, { encoding: 'utf8' });
}

/** Sleep without spawning a process (the poll loop must not steal CPU from the UI it measures). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function firstPaint(file: string): { paint: number; loaded: number } {
  const session = `regtape-bench-ui-${process.pid}`;
  const t0 = performance.now();
  // CI variables are unset so that ink draws every frame (the CLI hides them from ink too).
  tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '40', `env -u CI node ${CLI} ui ${file}; sleep 60`);
  let paint = 0;
  let loaded = 0;
  try {
    const deadline = t0 + 60_000;
    while (performance.now() < deadline) {
      const screen = tmux('capture-pane', '-p', '-t', session);
      const now = performance.now() - t0;
      if (!paint && /regtape .*flows/.test(screen) && /GET|HEAD/.test(screen)) paint = now;
      if (paint && !/loading/.test(screen.split('\n')[0] ?? '')) {
        loaded = now;
        break;
      }
      pause(POLL_MS);
    }
  } finally {
    tmux('kill-session', '-t', session);
  }
  return { paint, loaded };
}

// ------------------------------------------------------------------ in-process

const FILTERS = ['~repo bench/app-7$', '~d cdn.test', '~op manifest & ~c 200', '!~c 200', '~u blobs & ~m GET', '~mt oci', '~h docker-content-digest'];

/** A full GC, so heap numbers count live objects only. */
function gc(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

function inProcess(file: string) {
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rec = Recording.open(file, { readonly: true, untouched: true });
  const env = createEnv(new RecordingBackend(rec));
  const t0 = performance.now();
  const c = new Controller(env, { size: { cols: 160, rows: 40 } });
  c.loadAll();
  const loadMs = performance.now() - t0;
  gc();
  const heap = process.memoryUsage().heapUsed - heap0;
  const filters = FILTERS.map((expr) => {
    const times: number[] = [];
    let shown = 0;
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = applyFilter(c.state, env, expr);
      times.push(performance.now() - t);
      shown = r.state.view.length;
    }
    return { expr, ms: summarize(times)!, shown };
  });
  const frames: number[] = [];
  for (let i = 0; i < 50; i++) {
    c.key(i % 2 ? 'space' : 'G');
    const t = performance.now();
    renderFrame(c.state, env);
    frames.push(performance.now() - t);
  }
  const keys: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    c.key(['j', 'k', 'space', 'ctrl-b', 'G', 'g'][i % 6]!);
    keys.push(performance.now() - t);
  }
  const opsT = performance.now();
  const ops = env.model.operations().length;
  const opsMs = performance.now() - opsT;
  rec.close();
  return { loadMs, heap, filters, frame: summarize(frames)!, key: summarize(keys)!, rows: env.model.rows.length, ops, opsMs };
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} missing: run npm run build first`);
  const hasTmux = spawnSync('tmux', ['-V']).status === 0;
  const dir = arg('keep', '') || fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-bench-ui-'));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `flows-${FLOWS}.db`);
  let genSec = 0;
  if (!fs.existsSync(file)) {
    process.stderr.write(`writing ${FLOWS} flows to ${file}…\n`);
    genSec = generate(file, FLOWS);
  }
  const load = os.loadavg().map((v) => v.toFixed(2)).join(' ');
  const size = fs.statSync(file).size;
  process.stderr.write(`recording: ${(size / 1e6).toFixed(1)} MB${genSec ? `, written in ${genSec.toFixed(1)} s` : ''}\n`);

  const paints: number[] = [];
  const loads: number[] = [];
  if (hasTmux) {
    firstPaint(file); // warm the page cache and node's compile cache
    for (let i = 0; i < RUNS; i++) {
      const r = firstPaint(file);
      paints.push(r.paint);
      loads.push(r.loaded);
      process.stderr.write(`run ${i + 1}: first paint ${r.paint.toFixed(0)} ms, fully loaded ${r.loaded.toFixed(0)} ms\n`);
    }
  } else process.stderr.write('tmux not found: first paint not measured (apt-get install tmux)\n');

  const ip = inProcess(file);
  for (const f of ip.filters) process.stderr.write(`filter ${f.expr}: median ${f.ms.median.toFixed(1)} ms (${f.shown} shown)\n`);
  process.stderr.write(`frame ${ip.frame.median.toFixed(2)} ms, key ${ip.key.median.toFixed(2)} ms, heap ${(ip.heap / 1e6).toFixed(0)} MB, load ${ip.loadMs.toFixed(0)} ms\n`);

  const paint = summarize(paints);
  const loaded = summarize(loads);
  const typical = ip.filters.filter((f) => !f.expr.startsWith('~h'));
  const worstTypical = Math.max(...typical.map((f) => f.ms.median));
  const cpu = os.cpus();
  const ms = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(v < 10 ? 1 : 0)} ms`);
  const met = (ok: boolean) => (ok ? 'met' : '**MISSED**');
  const body = [
    '## Inspector (regtape ui)',
    '',
    `Generated by \`npx tsx scripts/bench-ui.ts\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. A recording of ${ip.rows.toLocaleString('en')} flows (${(size / 1e6).toFixed(1)} MB; ${ip.ops.toLocaleString('en')} pulls of ~1000 repositories, each ping, token, manifest HEAD, index, image manifest, 3 blob redirects and 3 CDN downloads, with registry facts and inline manifest and token bodies) written with the store API in batched transactions. First paint: the built CLI (\`node dist/cli/main.js ui FILE\`; read-only: at this size opened in place, SQLite’s empty -wal and -shm removed on exit) in tmux at 160×40, from spawning to the flow list on screen (capture-pane polled every ${POLL_MS} ms; includes node start-up and loading ink, react and yoga), after one untimed warm-up run; "fully loaded" is when the title bar stops saying loading (the first ${FIRST_BATCH} rows are read before the first frame, the rest in batches of ${BATCH.toLocaleString('en')} in the background, one per event-loop turn). The other numbers are in-process over all flows, median of 5 (filters) or 50 (frames, keys).`,
    '',
    `Machine: ${cpu[0]?.model.trim() ?? '?'}, ${cpu.length} vCPU, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}, node ${process.version}. Load average at start ${load} (other work shares the CPUs; start-up times scale with it).`,
    '',
    '### Targets',
    '',
    table(
      ['target', 'wanted', 'measured', ''],
      [
        ['time to first paint, 100k flows (median)', '≤ 1 s', paint ? ms(paint.median) : 'not measured (no tmux)', paint ? met(paint.median <= 1000) : '–'],
        ['filter over 100k flows (slowest of the non-header filters below, median)', '≤ 200 ms', ms(worstTypical), met(worstTypical <= 200)],
      ],
    ),
    '',
    '### Start-up',
    '',
    table(
      ['', 'median', 'min–max'],
      [
        ['first paint', paint ? ms(paint.median) : '–', paint ? `${ms(paint.min)}–${ms(paint.max)}` : '–'],
        ['fully loaded (all rows in the list)', loaded ? ms(loaded.median) : '–', loaded ? `${ms(loaded.min)}–${ms(loaded.max)}` : '–'],
        ['in-process load of all rows (no UI)', ms(ip.loadMs), ''],
      ],
      ['l', 'r', 'r'],
    ),
    '',
    `Heap held by ${ip.rows.toLocaleString('en')} light rows: ${(ip.heap / 1e6).toFixed(0)} MB (headers, facts and bodies stay in the recording and are read on demand).`,
    '',
    '### Filters over all flows (the `f` command: parse, filter, keep the focus)',
    '',
    table(
      ['filter', 'median', 'min–max', 'flows shown'],
      ip.filters.map((f) => [`\`${f.expr}\``, ms(f.ms.median), `${ms(f.ms.min)}–${ms(f.ms.max)}`, f.shown.toLocaleString('en')]),
      ['l', 'r', 'r', 'r'],
    ),
    '',
    'Header filters (`~h`, `~hq`, `~hs`, `~t`) read each flow\'s headers from the recording, so they cost more than filters over the list columns and registry facts; body filters (`~b`) read bodies too.',
    '',
    '### Drawing',
    '',
    table(
      ['', 'median', 'max'],
      [
        ['one list frame at 160×40 (state → lines; only the visible rows are formatted)', ms(ip.frame.median), ms(ip.frame.max)],
        ['one navigation key (j, k, space, ctrl-b, G, g)', ms(ip.key.median), ms(ip.key.max)],
        [`operations view (T): build ${ip.ops.toLocaleString('en')} operations, parsing every manifest`, ms(ip.opsMs), ''],
      ],
      ['l', 'r', 'r'],
    ),
    '',
    'Live mode (`regtape record --ui`) never runs UI work on the proxy path: the recorder\'s callback only queues the committed flow; the queue is applied to the view at most every 100 ms, in-flight byte counts are sampled every 500 ms, and ink draws at most 30 frames per second.',
  ].join('\n');
  if (WRITE) {
    await replaceSection(path.join(ROOT, 'BENCHMARKS.md'), 'bench-ui', body);
    process.stderr.write('BENCHMARKS.md: section bench-ui updated\n');
  } else process.stdout.write(`${body}\n`);
  if (!arg('keep', '')) fs.rmSync(dir, { recursive: true, force: true });
}

void main().catch((e: unknown) => {
  process.stderr.write(`bench-ui: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
