/**
 * How faithfully does `regtape replay` answer? For a recording of each of docker, skopeo, podman and a
 * crane-like client, the share of recorded exchanges whose status, headers and body replay identically.
 *
 * 1. Starts the lab in its Docker-Hub-like mode (scripts/lab, `hubLike`: insufficient_scope for missing
 *    repositories, rate-limit headers, signed CDN redirects) and records, through the built CLI
 *    (`regtape record`), one session per client: pulls of lab/tiny, lab/alpine:3.9 (manifest list),
 *    lab/oci:1 (OCI index) as the client does them, plus a pull of a repository that does not exist.
 *    crane is not packaged for Debian: the crane-like client is a curl script doing what crane does
 *    (ping, token, HEAD then GET with crane's one-line Accept, blobs following the 307, tags/list).
 * 2. Stops the lab. For each recording, starts `startReplay()` and re-sends every recorded exchange
 *    (method, URL, recorded request headers) through proxy mode, and every registry exchange (not token,
 *    not CDN) at the mirror endpoint, and compares with what the recording holds:
 *    - status identical;
 *    - headers identical: the same (name, value) multiset, names case-insensitive, minus the ones that
 *      belong to a connection (Date, Connection, Keep-Alive, Transfer-Encoding);
 *    - body identical: the same sha256 (empty = empty).
 *    Token answers carry replay's own JWT by design, and mirror mode rewrites the challenge realm and the
 *    blob redirect Location by design: these show up as differences, named in the output.
 *
 *   sudo npx tsx scripts/replay-fidelity.ts [--json FILE]
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { startDockerd } from './lab/dockerd.js';
import { startLab, type Lab } from './lab/index.js';
import { buildIfStale, CLI, installCleanups, makeLog, preflight, ROOT, runMain } from './bench/common.js';
import { runCmd, startProcess } from './bench/procs.js';
import { startReplay } from '../src/replay/index.js';
import { Recording } from '../src/store/index.js';
import { flowUrl, type FlowRecord, type HeaderList } from '../src/flow/index.js';

const TAG = 'replay-fidelity';
const log = makeLog(TAG);
const cleanups = installCleanups(log, 'lab, recorders, dockerd, temp dirs');
const PER_CONNECTION = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);
const CRANE_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(',');

type Client = 'docker' | 'skopeo' | 'podman' | 'crane-like (curl)';

interface Env {
  lab: Lab;
  work: string;
  home: string;
  certDir: string;
  proxyUrl: string;
}

async function must(what: string, p: Promise<{ code: number | null; stderr: string }>, expectFailure = false): Promise<void> {
  const r = await p;
  if ((r.code === 0) === expectFailure) throw new Error(`${what}: exit ${r.code}${expectFailure ? ' (expected a failure)' : ''}\n${r.stderr}`);
}

/** What each client does while recording. */
const SESSIONS: Record<Client, (e: Env) => Promise<void>> = {
  docker: async (e) => {
    const d = await startDockerd({ proxyUrl: e.proxyUrl, caFile: path.join(e.home, 'ca.pem') });
    try {
      for (const i of ['lab/tiny:latest', 'lab/alpine:3.9', 'lab/oci:1']) await d.pull(e.lab.image(i).ref);
      await must('docker pull lab/nothing', d.docker(['pull', 'registry.test/lab/nothing:1']), true);
    } finally {
      await d.stop();
    }
  },
  skopeo: async (e) => {
    const env = { HTTPS_PROXY: e.proxyUrl, PATH: process.env.PATH };
    for (const i of ['lab/tiny:latest', 'lab/alpine:3.9', 'lab/oci:1']) {
      await must(`skopeo copy ${i}`, runCmd('skopeo', ['--insecure-policy', 'copy', '--all', '--src-cert-dir', e.certDir, `docker://${e.lab.image(i).ref}`, `oci:${path.join(e.work, 'skopeo-oci')}:${i.replace(/[/:]/g, '-')}`], { env }));
    }
    await must('skopeo inspect lab/nothing', runCmd('skopeo', ['--insecure-policy', 'inspect', '--raw', '--cert-dir', e.certDir, 'docker://registry.test/lab/nothing:1'], { env }), true);
  },
  podman: async (e) => {
    const root = path.join(e.work, 'podman');
    const args = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs'];
    const env = { HTTPS_PROXY: e.proxyUrl, PATH: process.env.PATH, HOME: root };
    for (const i of ['lab/tiny:latest', 'lab/alpine:3.9', 'lab/oci:1']) await must(`podman pull ${i}`, runCmd('podman', [...args, 'pull', '--cert-dir', e.certDir, e.lab.image(i).ref], { env }));
    await must('podman pull lab/nothing', runCmd('podman', [...args, 'pull', '--cert-dir', e.certDir, 'registry.test/lab/nothing:1'], { env }), true);
  },
  'crane-like (curl)': async (e) => {
    const curl = async (url: string, extra: string[] = []): Promise<string> => {
      const r = await runCmd('curl', ['-sS', '-x', e.proxyUrl, '--cacert', path.join(e.home, 'ca.pem'), ...extra, url]);
      if (r.code !== 0) throw new Error(`curl ${url}: ${r.stderr}`);
      return r.stdout;
    };
    await curl('https://registry.test/v2/');
    for (const repo of ['lab/tiny', 'lab/alpine', 'lab/nothing']) {
      const token = (JSON.parse(await curl(`https://auth.test/token?scope=repository:${repo}:pull&service=registry.test`)) as { token: string }).token;
      const auth = ['-H', `Authorization: Bearer ${token}`];
      const ref = `https://registry.test/v2/${repo}/manifests/${repo === 'lab/alpine' ? '3.9' : 'latest'}`;
      await curl(ref, [...auth, '-I', '-H', `Accept: ${CRANE_ACCEPT}`]);
      const body = await curl(ref, [...auth, '-H', `Accept: ${CRANE_ACCEPT}`]);
      if (repo === 'lab/nothing') continue;
      let m = JSON.parse(body) as { manifests?: Array<{ digest: string; platform?: { architecture: string } }>; config?: { digest: string }; layers?: Array<{ digest: string }> };
      if (m.manifests) {
        const child = m.manifests.find((x) => x.platform?.architecture === 'amd64')!;
        m = JSON.parse(await curl(`https://registry.test/v2/${repo}/manifests/${child.digest}`, [...auth, '-H', `Accept: ${CRANE_ACCEPT}`])) as typeof m;
      }
      for (const b of [m.config!, ...m.layers!]) await curl(`https://registry.test/v2/${repo}/blobs/${b.digest}`, [...auth, '-L', '-o', '/dev/null']);
      await curl(`https://registry.test/v2/${repo}/tags/list`, auth);
    }
  },
};

async function record(e: Omit<Env, 'proxyUrl'>, client: Client): Promise<string> {
  const db = path.join(e.work, `${client.replace(/\W+/g, '-')}.db`);
  const args = [CLI, 'record', '--listen', '127.0.0.1:0', '--out', db, '-q', ...e.lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', e.lab.caCertPath];
  const rec = await startProcess({ name: `record ${client}`, cmd: process.execPath, args, env: { ...process.env, REGTAPE_HOME: e.home }, cwd: ROOT, ready: /listening on (http:\/\/[\d.]+:\d+)/, logPath: path.join(e.work, 'record.log') });
  try {
    if (!fs.existsSync(e.certDir)) {
      fs.mkdirSync(e.certDir);
      fs.copyFileSync(path.join(e.home, 'ca.pem'), path.join(e.certDir, 'ca.crt'));
    }
    await SESSIONS[client]({ ...e, proxyUrl: rec.ready![1]! });
  } finally {
    await rec.stop('SIGINT', 15_000);
  }
  return db;
}

function headerSet(h: HeaderList | Record<string, string | string[] | undefined>): string[] {
  const pairs: Array<[string, string]> = Array.isArray(h) ? h : Object.entries(h).flatMap(([k, v]) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x])));
  return pairs.filter(([k]) => !PER_CONNECTION.has(k.toLowerCase())).map(([k, v]) => `${k.toLowerCase()}: ${v}`).sort();
}

interface Score {
  exchanges: number;
  status: number;
  headers: number;
  body: number;
  all: number;
  /** All three identical once the documented rewrites are allowed for (token JWT, mirror realm and Location). */
  allButRewrites: number;
  /** Why exchanges were not identical: "header x-y", "body (token)", … → count. */
  reasons: Record<string, number>;
}

/** The documented rewrites (README "what replay reproduces"): the realm and blob Location in mirror mode, the token answer. */
function rewritten(set: string[], role: string, mirror: boolean): string[] {
  return set
    .filter((x) => !(role === 'token' && /^(content-length|x-trace-id):/.test(x)) && !(mirror && role === 'blob-redirect' && x.startsWith('location:')))
    .map((x) => (mirror && x.startsWith('www-authenticate:') ? x.replace(/realm="[^"]*"/i, 'realm=""') : x));
}

function compare(f: FlowRecord, status: number, headers: Record<string, string | string[] | undefined>, body: Buffer, s: Score, mirror: boolean): void {
  const want = headerSet(f.response!.headers);
  const got = headerSet(headers);
  const okStatus = status === f.response!.status;
  const okHeaders = want.join('\n') === got.join('\n');
  const sha = body.length ? createHash('sha256').update(body).digest('hex') : null;
  const okBody = (f.request.method === 'HEAD' && !body.length) || sha === (f.responseBody?.sha256 ?? null);
  s.exchanges++;
  s.status += okStatus ? 1 : 0;
  s.headers += okHeaders ? 1 : 0;
  s.body += okBody ? 1 : 0;
  s.all += okStatus && okHeaders && okBody ? 1 : 0;
  const role = f.registry?.role ?? 'other';
  const sameButRewrites = rewritten(want, role, mirror).join('\n') === rewritten(got, role, mirror).join('\n');
  s.allButRewrites += okStatus && sameButRewrites && (okBody || role === 'token') ? 1 : 0;
  const note = (r: string) => (s.reasons[r] = (s.reasons[r] ?? 0) + 1);
  if (!okStatus) note(`status (${role}: ${f.response!.status} → ${status})`);
  if (!okBody) note(`body (${role})`);
  if (!okHeaders) {
    const names = new Set([...want.filter((x) => !got.includes(x)), ...got.filter((x) => !want.includes(x))].map((x) => x.slice(0, x.indexOf(':'))));
    for (const n of names) note(`header ${n} (${role})`);
  }
}

const DROP_REQUEST = new Set(['host', 'content-length', 'connection', 'proxy-connection', 'proxy-authorization', 'keep-alive', 'transfer-encoding']);

async function measure(db: string, home: string): Promise<{ proxy: Score; mirror: Score }> {
  const replay = await startReplay({ recording: db, home });
  const rec = Recording.open(db, { readonly: true });
  const proxy = new ProxyAgent({ uri: replay.proxyUrl!, requestTls: { ca: replay.caCertPem } });
  const direct = new Agent();
  const empty = (): Score => ({ exchanges: 0, status: 0, headers: 0, body: 0, all: 0, allButRewrites: 0, reasons: {} });
  const out = { proxy: empty(), mirror: empty() };
  try {
    for (const f of rec.list()) {
      if (f.state !== 'complete' || !f.response) continue;
      const headers: Record<string, string[]> = {};
      for (const [k, v] of f.request.headers) if (!DROP_REQUEST.has(k.toLowerCase())) (headers[k.toLowerCase()] ??= []).push(v);
      const send = async (url: string, dispatcher: Dispatcher) => {
        const r = await request(url, { method: f.request.method as Dispatcher.HttpMethod, headers, dispatcher });
        return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
      };
      const p = await send(flowUrl(f.request), proxy);
      compare(f, p.status, p.headers, p.body, out.proxy, false);
      const role = f.registry?.role;
      if (role && role !== 'token' && role !== 'cdn-blob') {
        const m = await send(`${replay.mirrorUrl}${f.request.target}`, direct);
        compare(f, m.status, m.headers, m.body, out.mirror, true);
      }
    }
  } finally {
    await proxy.close();
    await direct.close();
    rec.close();
    await replay.close();
  }
  return out;
}

const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)}%` : '-');

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { json: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: sudo npx tsx scripts/replay-fidelity.ts [--json FILE]\n(see the comment at the top of the file)\n');
    return 0;
  }
  if (!preflight(TAG, [['docker-registry', 'docker-registry'], ['dockerd', 'docker.io'], ['skopeo', 'skopeo'], ['podman', 'podman'], ['curl', 'curl'], ['unshare', 'util-linux']])) return 1;
  await buildIfStale(log);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-fidelity-'));
  cleanups.defer('temp dir', async () => fs.rmSync(work, { recursive: true, force: true }));
  const home = path.join(work, 'home');
  const lab = await startLab({ hubLike: true, ipBase: '127.96.0' });
  cleanups.defer('lab', () => lab.stop());
  const clients: Client[] = ['docker', 'skopeo', 'podman', 'crane-like (curl)'];
  const dbs: Partial<Record<Client, string>> = {};
  for (const c of clients) {
    log(`recording ${c}…`);
    dbs[c] = await record({ lab, work, home, certDir: path.join(work, 'certs') }, c);
  }
  await lab.stop();
  const results: Record<string, { proxy: Score; mirror: Score }> = {};
  for (const c of clients) results[c] = await measure(dbs[c]!, home);
  const lines = ['| client | mode | exchanges | status | headers | body | all three | all three, documented rewrites excepted |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const c of clients) {
    for (const mode of ['proxy', 'mirror'] as const) {
      const s = results[c]![mode];
      lines.push(`| ${c} | ${mode} | ${s.exchanges} | ${pct(s.status, s.exchanges)} | ${pct(s.headers, s.exchanges)} | ${pct(s.body, s.exchanges)} | ${pct(s.all, s.exchanges)} | ${pct(s.allButRewrites, s.exchanges)} |`);
    }
  }
  lines.push('', 'Differences (count of exchanges):');
  for (const c of clients) for (const mode of ['proxy', 'mirror'] as const) for (const [r, n] of Object.entries(results[c]![mode].reasons).sort()) lines.push(`- ${c}, ${mode}: ${r}: ${n}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (values.json) fs.writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
  return 0;
}

runMain(TAG, main, cleanups, log);
