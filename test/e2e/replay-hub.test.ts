/**
 * Replay answers like the registry did, failures included (issue 13), against a Docker-Hub-like lab
 * (`hubLike`: tokens without pull for missing repositories → 401 insufficient_scope, rate-limit headers
 * on manifest answers, 307 to signed CDN URLs). Record dockerd and skopeo pulls — of images that
 * exist and of a repository that does not — stop the lab, then replay in both modes: the missing
 * repository fails with the message the client printed live, manifest headers are the live ones,
 * `--strict` passes for the recorded run and fails for a run asking for something new.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerd } from '../../scripts/lab/dockerd.js';
import { startLab, type Lab } from '../../scripts/lab/index.js';
import { startReplay, type ReplayHandle } from '../../src/index.js';
import { runCmd, spawnRecord, spawnReplay } from '../support/cli.js';
import { e2eRequirements } from '../support/e2e.js';

const missing = e2eRequirements(['docker-registry', 'dockerd', 'docker', 'skopeo', 'unshare']);
const DOCKER_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
];
/** Headers that differ per connection or per answer by nature. */
const PER_RUN = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

function headerMap(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !PER_RUN.has(k.toLowerCase())) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** skopeo's error line without its time= prefix, the mirror's address written as the registry's name. */
function skopeoError(stderr: string, mirrorHost?: string): string {
  const line = stderr.trim().split('\n').at(-1) ?? '';
  const msg = /msg="(.*)"\s*$/.exec(line)?.[1] ?? line;
  return mirrorHost ? msg.split(mirrorHost).join('registry.test') : msg;
}

describe.skipIf(missing.length > 0)('replay of a Hub-like registry: failures, headers, --strict', () => {
  let lab: Lab;
  let work: string;
  let home: string;
  let db: string;
  let replay: ReplayHandle;
  const live: { dockerMissing: string; skopeoMissing: string; headers: Record<string, string>; tinyId: string } = { dockerMissing: '', skopeoMissing: '', headers: {}, tinyId: '' };
  const certDir = () => path.join(work, 'certs');
  let tiny: string;
  let nothing: string;

  /** GET the tiny manifest with a token, through a proxy trusting `ca` (or at a mirror). */
  async function manifestHeaders(base: string, via: Dispatcher): Promise<Record<string, string>> {
    const tokenBase = base.startsWith('https://registry.test') ? 'https://auth.test/token' : `${base}/regtape/token/registry.test`;
    const t = await request(`${tokenBase}?service=registry.test&scope=${encodeURIComponent('repository:lab/tiny:pull')}`, { dispatcher: via });
    const token = ((await t.body.json()) as { token: string }).token;
    const r = await request(`${base}/v2/lab/tiny/manifests/latest`, { headers: { authorization: `Bearer ${token}`, accept: DOCKER_ACCEPT }, dispatcher: via });
    await r.body.dump();
    expect(r.statusCode).toBe(200);
    return headerMap(r.headers);
  }

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-replay-hub-'));
    home = path.join(work, 'home');
    db = path.join(work, 'hub.db');
    lab = await startLab({ hubLike: true, ipBase: '127.95.0' });
    tiny = lab.image('lab/tiny:latest').ref;
    nothing = `${lab.names.registry}/lab/nothing:1`;
    const rec = await spawnRecord(['--out', db, '-q', ...lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', lab.caCertPath], { REGTAPE_HOME: home });
    fs.mkdirSync(certDir());
    fs.copyFileSync(path.join(home, 'ca.pem'), path.join(certDir(), 'ca.crt'));
    const d = await startDockerd({ proxyUrl: rec.url, caFile: path.join(home, 'ca.pem') });
    try {
      await d.pull(tiny);
      live.tinyId = (await d.imageId(tiny))!;
      const r = await d.docker(['pull', nothing]);
      expect(r.code).not.toBe(0);
      live.dockerMissing = r.stderr.trim();
    } finally {
      await d.stop();
    }
    const env = { HTTPS_PROXY: rec.url };
    const copy = await runCmd('skopeo', ['--insecure-policy', 'copy', '--src-cert-dir', certDir(), `docker://${lab.image('lab/oci:1').ref}`, `oci:${path.join(work, 'live-oci')}:x`], env);
    expect(copy.code, copy.stderr).toBe(0);
    const miss = await runCmd('skopeo', ['--insecure-policy', 'inspect', '--raw', '--cert-dir', certDir(), `docker://${nothing}`], env);
    expect(miss.code).not.toBe(0);
    live.skopeoMissing = skopeoError(miss.stderr);
    const via = new ProxyAgent({ uri: rec.url, requestTls: { ca: fs.readFileSync(path.join(home, 'ca.pem'), 'utf8') } });
    live.headers = await manifestHeaders('https://registry.test', via);
    await via.close();
    expect((await rec.stop()).code).toBe(0);
    await lab.stop(); // the network is gone
    replay = await startReplay({ recording: db, home });
  });

  afterAll(async () => {
    await replay?.close();
    await lab?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('the lab behaved like Hub while recording', () => {
    expect(live.dockerMissing).toMatch(/pull access denied for registry\.test\/lab\/nothing, repository does not exist or may require 'docker login'/);
    expect(live.skopeoMissing).toMatch(/requested access to the resource is denied/);
    expect(live.headers['ratelimit-limit']).toBe('100;w=21600');
    expect(live.headers['ratelimit-remaining']).toMatch(/^\d+;w=21600$/);
    expect(live.headers['docker-ratelimit-source']).toBeTruthy();
  });

  it('proxy mode: dockerd pulls the image and fails on the missing repository with the live message', async () => {
    const d = await startDockerd({ proxyUrl: replay.proxyUrl!, caFile: replay.caCertPath });
    try {
      await d.pull(tiny);
      expect(await d.imageId(tiny)).toBe(live.tinyId);
      const r = await d.docker(['pull', nothing]);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim()).toBe(live.dockerMissing);
    } finally {
      await d.stop();
    }
    expect(replay.misses()).toEqual([]);
  });

  it('proxy mode: skopeo fails on the missing repository with the live message', async () => {
    const r = await runCmd('skopeo', ['--insecure-policy', 'inspect', '--raw', '--cert-dir', certDir(), `docker://${nothing}`], { HTTPS_PROXY: replay.proxyUrl! });
    expect(r.code).not.toBe(0);
    expect(skopeoError(r.stderr)).toBe(live.skopeoMissing);
  });

  it('mirror mode: skopeo copies the OCI image and fails on the missing repository with the live message', async () => {
    const mirrorHost = replay.mirrorUrl!.replace(/^http:\/\//, '');
    const conf = path.join(work, 'registries.conf');
    fs.writeFileSync(conf, `[[registry]]\nprefix = "registry.test"\nlocation = "${mirrorHost}"\ninsecure = true\n`);
    const ok = await runCmd('skopeo', ['--registries-conf', conf, '--insecure-policy', 'copy', `docker://${lab.image('lab/oci:1').ref}`, `oci:${path.join(work, 'mirror-oci')}:x`]);
    expect(ok.code, ok.stderr).toBe(0);
    const r = await runCmd('skopeo', ['--registries-conf', conf, '--insecure-policy', 'inspect', '--raw', `docker://${nothing}`]);
    expect(r.code).not.toBe(0);
    expect(skopeoError(r.stderr, mirrorHost)).toBe(live.skopeoMissing);
    expect(replay.misses()).toEqual([]);
  });

  it('manifest headers are the live ones (rate-limit headers included), in both modes', async () => {
    const via = new ProxyAgent({ uri: replay.proxyUrl!, requestTls: { ca: replay.caCertPem } });
    const direct = new Agent();
    try {
      expect(await manifestHeaders('https://registry.test', via)).toEqual(live.headers);
      expect(await manifestHeaders(replay.mirrorUrl!, direct)).toEqual(live.headers);
    } finally {
      await via.close();
      await direct.close();
    }
  });

  it('--strict passes for the recorded run (dockerd, proxy mode) and fails for a run asking for something new (skopeo, mirror mode)', async () => {
    const report = path.join(work, 'pass.json');
    const pass = await spawnReplay([db, '--listen', '127.0.0.1:0', '--strict', '--report', report], { REGTAPE_HOME: home });
    const d = await startDockerd({ proxyUrl: pass.proxyUrl!, caFile: path.join(home, 'ca.pem') });
    try {
      await d.pull(tiny);
      expect((await d.docker(['pull', nothing])).stderr.trim()).toBe(live.dockerMissing);
    } finally {
      await d.stop();
    }
    const passCode = await new Promise<number | null>((resolve) => {
      pass.proc.once('exit', resolve);
      pass.proc.kill('SIGINT');
    });
    expect(passCode, pass.stderr()).toBe(0);

    const failReport = path.join(work, 'fail.json');
    const fail = await spawnReplay([db, '--no-proxy', '--mirror', '127.0.0.1:0', '--strict', '--report', failReport], { REGTAPE_HOME: home });
    const conf = path.join(work, 'strict-registries.conf');
    fs.writeFileSync(conf, `[[registry]]\nprefix = "registry.test"\nlocation = "${fail.mirrorUrl.replace(/^http:\/\//, '')}"\ninsecure = true\n`);
    const r = await runCmd('skopeo', ['--registries-conf', conf, '--insecure-policy', 'inspect', '--raw', `docker://registry.test/lab/alpine:3.9`]);
    expect(r.code).not.toBe(0);
    const failCode = await new Promise<number | null>((resolve) => {
      fail.proc.once('exit', resolve);
      fail.proc.kill('SIGINT');
    });
    expect(failCode).toBe(1);
    const rep = JSON.parse(fs.readFileSync(failReport, 'utf8')) as { misses: Array<{ url: string; mode: string; explanation: string }> };
    expect(rep.misses.length).toBeGreaterThan(0);
    expect(rep.misses[0]!.url).toContain('/v2/lab/alpine/manifests/3.9');
    expect(rep.misses[0]!.explanation).toMatch(/repository lab\/alpine was never recorded/);
  });
});
