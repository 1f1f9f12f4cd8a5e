/**
 * End to end with real parts: a Docker-Hub-like lab (docker-registry with TLS from a
 * test CA, token auth by our token server, blob GETs redirected to a CDN host), real
 * dockerd pulling through `regtape record` from its own mount namespace where the lab
 * names do not resolve (so only the proxy reaches them and dockerd verifies TLS
 * against regtape's CA alone), and skopeo through the proxy too.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd, type Dockerd } from '../../scripts/lab/dockerd.js';
import { startLab, type Lab } from '../../scripts/lab/index.js';
import { getHeader, type FlowRecord } from '../../src/flow/index.js';
import { Recording } from '../../src/store/index.js';
import { CLI, runCmd, spawnRecord, type RecorderProcess } from '../support/cli.js';
import { e2eRequirements } from '../support/e2e.js';

const missing = e2eRequirements(['docker-registry', 'dockerd', 'docker', 'skopeo', 'unshare']);


/** Count occurrences of any secret in a file, streaming (layers are 100 MB). */
async function findSecrets(file: string, secrets: Buffer[]): Promise<string[]> {
  const hits: string[] = [];
  const overlap = Math.max(...secrets.map((s) => s.length));
  let carry = Buffer.alloc(0);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 8 << 20 })) {
    const buf = Buffer.concat([carry, chunk as Buffer]);
    for (const s of secrets) if (buf.includes(s)) hits.push(`${path.basename(file)}: ${s.toString().slice(0, 12)}…`);
    carry = buf.subarray(Math.max(0, buf.length - overlap));
  }
  return hits;
}

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe.skipIf(missing.length > 0)('record: real dockerd and skopeo through regtape against a Docker-Hub-like lab', () => {
  let lab: Lab;
  let work: string;
  let home: string;
  let db: string;
  let recorder: RecorderProcess;
  let dockerd: Dockerd;
  let regtapeCa: string;
  let certDir: string;
  let recording: Recording;
  let flows: FlowRecord[];
  let stopResult: { code: number | null; stderr: string };
  const imageIds: Record<string, string> = {};

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-e2e-'));
    home = path.join(work, 'home');
    db = path.join(work, 'pull.db');
    lab = await startLab({ images: ['big100'], ipBase: '127.78.0' });
    recorder = await spawnRecord(['--out', db, ...lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', lab.caCertPath], { REGTAPE_HOME: home });
    regtapeCa = path.join(home, 'ca.pem');
    certDir = path.join(work, 'certs');
    fs.mkdirSync(certDir);
    fs.copyFileSync(regtapeCa, path.join(certDir, 'ca.crt'));
    // dockerd: HTTPS_PROXY = regtape, trusts ONLY regtape's CA, and cannot resolve the lab names.
    dockerd = await startDockerd({ proxyUrl: recorder.url, caFile: regtapeCa });
  });

  afterAll(async () => {
    recording?.close();
    await dockerd?.stop();
    if (recorder && recorder.proc.exitCode === null) await recorder.stop();
    await lab?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('dockerd pulls a multi-arch image through regtape', async () => {
    const ref = lab.image('lab/alpine:3.9').ref;
    await dockerd.pull(ref);
    imageIds.alpine = (await dockerd.imageId(ref))!;
    expect(imageIds.alpine).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('dockerd pulls an image with a 100 MB layer through regtape', async () => {
    const ref = lab.image('lab/big:100').ref;
    await dockerd.pull(ref);
    imageIds.big = (await dockerd.imageId(ref))!;
    expect(imageIds.big).toMatch(/^sha256:/);
  });

  it('docker login (Basic credentials to the token server) and an authenticated pull go through', async () => {
    const login = await dockerd.docker(['login', lab.names.registry, '-u', lab.user, '--password-stdin'], { input: lab.password });
    expect(login.stderr + login.stdout).toMatch(/Login Succeeded/);
    await dockerd.pull(lab.image('lab/tiny:latest').ref);
  });

  it('skopeo records through the proxy, and refuses it without the regtape CA', async () => {
    const env = { HTTPS_PROXY: recorder.url, HTTP_PROXY: recorder.url };
    const oci = lab.image('lab/oci:1');
    const raw = await runCmd('skopeo', ['inspect', '--raw', '--cert-dir', certDir, `docker://${oci.ref}`], env);
    expect(raw.stderr).toBe('');
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(oci.digest);
    const out = path.join(work, 'tiny-dir');
    const copy = await runCmd('skopeo', ['--insecure-policy', 'copy', '--src-cert-dir', certDir, `docker://${lab.image('lab/tiny:latest').ref}`, `dir:${out}`], env);
    expect(copy.code, copy.stderr).toBe(0);
    const untrusted = await runCmd('skopeo', ['inspect', '--raw', `docker://${oci.ref}`], env);
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toMatch(/x509|certificate/);
  });

  it('stops cleanly on Ctrl-C with a summary', async () => {
    stopResult = await recorder.stop('SIGINT');
    expect(stopResult.code).toBe(0);
    expect(stopResult.stderr).toMatch(/recorded \d+ flows/);
    recording = Recording.open(db, { readonly: true });
    flows = recording.list();
    expect(flows.length).toBeGreaterThan(10);
    expect(flows.filter((f) => f.state === 'open')).toEqual([]);
  });

  it('shows the Docker Hub shape: ping 401 → token 200 → manifest HEAD/GET → blob 307 → CDN 200', () => {
    const R = lab.names.registry;
    const first = (pred: (f: FlowRecord) => boolean) => flows.find(pred);
    const ping = first((f) => f.request.host === R && f.request.target === '/v2/' && f.response?.status === 401);
    const token = first((f) => f.request.host === lab.names.auth && f.request.target.startsWith('/token') && f.request.target.includes('lab%2Falpine') && f.response?.status === 200);
    const manifest = first((f) => f.request.host === R && /^\/v2\/lab\/alpine\/manifests\//.test(f.request.target) && (f.request.method === 'HEAD' || f.request.method === 'GET') && f.response?.status === 200);
    const redirect = first((f) => f.request.host === R && /^\/v2\/lab\/alpine\/blobs\/sha256:/.test(f.request.target) && f.response?.status === 307);
    const cdn = first((f) => f.request.host === lab.names.cdn && f.response?.status === 200 && f.request.method === 'GET');
    for (const f of [ping, token, manifest, redirect, cdn]) expect(f).toBeDefined();
    expect(getHeader(ping!.response!.headers, 'www-authenticate')).toMatch(/^Bearer realm="https:\/\/auth\.test\/token"/);
    expect(ping!.id).toBeLessThan(token!.id);
    expect(token!.id).toBeLessThan(manifest!.id);
    expect(manifest!.id).toBeLessThan(redirect!.id);
    expect(redirect!.id).toBeLessThan(cdn!.id);
    expect(getHeader(redirect!.response!.headers, 'location')).toMatch(/^https:\/\/cdn\.test\/docker\/registry\/v2\/blobs\/sha256\//);
    // The CDN request carries no Authorization (Go drops it across hosts), and nothing is left unclosed.
    expect(getHeader(cdn!.request.headers, 'authorization')).toBeUndefined();
    // The skopeo run without regtape's CA leaves its refused TLS handshake as an error flow (so `show` can say
    // "the client does not trust the CA"); every other flow is complete.
    const handshakes = flows.filter((f) => f.error?.startsWith('TLS handshake failed'));
    expect(handshakes.length).toBeGreaterThanOrEqual(1);
    expect(handshakes.every((f) => f.state === 'error' && f.response === null)).toBe(true);
    expect(flows.filter((f) => !handshakes.includes(f)).every((f) => f.state === 'complete')).toBe(true);
  });

  it('stores every body; each one fetched by digest hashes to the digest in its URL', async () => {
    let checked = 0;
    for (const f of flows) {
      const m = /sha256[:/](?:[0-9a-f]{2}\/)?([0-9a-f]{64})/.exec(f.request.target);
      if (!m || f.request.method !== 'GET' || f.response?.status !== 200) continue;
      expect(f.responseBody, `${f.request.host}${f.request.target}`).not.toBeNull();
      const h = createHash('sha256');
      for await (const c of recording.readBody(f.responseBody!.sha256!)) h.update(c as Buffer);
      expect(h.digest('hex'), `${f.request.host}${f.request.target}`).toBe(m[1]);
      expect(f.responseBody!.sha256).toBe(m[1]);
      checked++;
    }
    // alpine (list, amd64 manifest, config, layers), big (manifest, config, 100 MB layer), tiny, oci …
    expect(checked).toBeGreaterThanOrEqual(10);
    const big = Math.max(...listFiles(path.join(work, 'pull.blobs')).map((f) => fs.statSync(f).size));
    expect(big).toBeGreaterThanOrEqual(100 * 1000 * 1000);
  });

  it('recorded the manifests that give dockerd its image IDs', async () => {
    const alpine = lab.image('lab/alpine:3.9');
    const amd64 = alpine.manifests.find((m) => m.platform.architecture === 'amd64' && m.platform.os === 'linux')!;
    const mf = flows.find((f) => f.request.target === `/v2/lab/alpine/manifests/${amd64.digest}` && f.request.method === 'GET' && f.response?.status === 200)!;
    const manifest = JSON.parse((await recording.readBodyBuffer(mf.responseBody!.sha256!)).toString()) as { config: { digest: string } };
    expect(manifest.config.digest).toBe(imageIds.alpine);
  });

  it('leaves no password or token of the lab anywhere in the recording or the log, and says what it redacted', async () => {
    const secrets = lab.secrets().map((s) => Buffer.from(s));
    expect(secrets.length).toBeGreaterThan(3);
    expect(lab.secrets()).toContain(lab.password);
    recording.close();
    const files = [db, `${db}-wal`, `${db}-shm`, ...listFiles(path.join(work, 'pull.blobs'))].filter((f) => fs.existsSync(f));
    const hits: string[] = [];
    for (const f of files) hits.push(...(await findSecrets(f, secrets)));
    for (const s of secrets) if (stopResult.stderr.includes(s.toString())) hits.push(`stderr: ${s.toString().slice(0, 12)}…`);
    // Every export format and every view of the recording.
    const outputs: Record<string, string> = {};
    const har = path.join(work, 'audit.har');
    for (const [name, args] of [
      ['export --har', ['export', db, '--har', har]],
      ['export --curl', ['export', db, '--curl']],
      ['flows --json', ['flows', db, '--json']],
      ['show', ['show', db]],
      ['import', ['import', har, '--out', path.join(work, 'reimported.db')]],
    ] as const) {
      const r = await runCmd(process.execPath, [CLI, ...args], { NO_COLOR: '1' });
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      outputs[name] = r.stdout + r.stderr;
    }
    outputs['audit.har'] = fs.readFileSync(har, 'utf8');
    for (const [name, text] of Object.entries(outputs)) for (const s of secrets) if (text.includes(s.toString())) hits.push(`${name}: ${s.toString().slice(0, 12)}…`);
    for (const f of [path.join(work, 'reimported.db'), ...listFiles(path.join(work, 'reimported.blobs'))].filter((f) => fs.existsSync(f))) hits.push(...(await findSecrets(f, secrets)));
    expect(hits).toEqual([]);
    expect(Object.keys(outputs).length).toBe(6);
    // The shape is kept: schemes, the Basic user, decoded token claims.
    const auths = flows.flatMap((f) => f.request.headers.filter(([k]) => k.toLowerCase() === 'authorization').map(([, v]) => v));
    expect(auths.some((a) => /^Bearer REDACTED-[0-9a-f]{8}$/.test(a))).toBe(true);
    const basic = auths.find((a) => a.startsWith('Basic '));
    expect(basic).toBeDefined();
    expect(Buffer.from(basic!.slice(6), 'base64').toString()).toMatch(new RegExp(`^${lab.user}:REDACTED-[0-9a-f]{8}$`));
    const claims = flows.flatMap((f) => f.facts.tokens ?? []).find((t) => t.claims && Array.isArray((t.claims as { access?: unknown }).access));
    expect(claims?.claims?.iss).toBe(lab.tokenIssuer);
    expect(fs.statSync(db).mode & 0o777).toBe(0o600);
  });
});

describe.runIf(missing.length > 0)('record e2e prerequisites', () => {
  it('reports what is missing', () => {
    // CI installs everything (.ci/run); there a missing tool is a failure, not a skip.
    if (process.env.CI) throw new Error(`e2e prerequisites missing: ${missing.join(', ')}`);
    console.warn(`skipping e2e: ${missing.join(', ')} (run as root after: apt-get install docker.io docker-registry skopeo)`);
  });
});
