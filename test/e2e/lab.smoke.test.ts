/**
 * Smoke test of the test lab with real clients: skopeo talks to registry.test directly (private /etc/hosts
 * in a mount namespace), which exercises TLS with the lab CA, token auth, and the 307 redirect to the CDN.
 * Needs root, docker-registry, skopeo and unshare; skipped otherwise.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLab, type Lab } from '../../scripts/lab/index.js';
import { runWithHosts } from '../../scripts/lab/hosts-ns.js';
import { CLEAN_PATH, isRoot, which } from '../../scripts/lab/proc.js';

const PATH = `${process.env.PATH ?? ''}:${CLEAN_PATH}`;
const missing = ['docker-registry', 'skopeo', 'unshare'].filter((b) => !which(b, PATH));
const skipReason = !isRoot()
  ? 'lab smoke test needs root (binds :443 on 127.x addresses, mount namespaces)'
  : missing.length
    ? `lab smoke test needs ${missing.join(', ')}: apt-get install docker-registry skopeo util-linux`
    : '';
if (skipReason) console.warn(`SKIP: ${skipReason}`);

/** Raw HTTPS request to a lab service by address (SNI = its name), trusting only the lab CA. */
function labGet(lab: Lab, svc: 'cdn' | 'auth' | 'registry', path: string, headers: Record<string, string> = {}, method = 'GET') {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
    const req = request(
      { host: lab.ips[svc], port: lab.port, servername: lab.names[svc], ca: lab.caCertPem, path, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(skipReason !== '')(`test lab smoke${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let lab: Lab;
  let work: string;
  const skopeo = (args: string[]) => runWithHosts(lab.hostsFile, ['skopeo', ...args], { timeoutMs: 60_000 });

  beforeAll(async () => {
    // An ipBase of our own so this can run next to another lab (e.g. one started by the CLI).
    lab = await startLab({ ipBase: `127.77.${100 + (process.pid % 150)}` });
    work = await mkdtemp(join(tmpdir(), 'lab-smoke-'));
  }, 60_000);

  afterAll(async () => {
    await lab?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('serves the alpine manifest list over TLS with token auth (skopeo inspect --raw)', async () => {
    const alpine = lab.image('lab/alpine:3.9');
    const r = await skopeo(['inspect', '--raw', '--cert-dir', lab.certDir, `docker://${alpine.ref}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(`sha256:${createHash('sha256').update(r.stdout).digest('hex')}`).toBe(alpine.digest);
    const list = JSON.parse(r.stdout) as { mediaType: string; manifests: unknown[] };
    expect(list.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(list.manifests).toHaveLength(3);
    expect(lab.tokenRequests().some((t) => t.status === 200 && t.url.includes('repository%3Alab%2Falpine%3Apull'))).toBe(true);
  });

  it('copies lab/tiny via the CDN redirect (skopeo copy)', async () => {
    const tiny = lab.image('lab/tiny:latest');
    const dest = join(work, 'tiny');
    // dir: keeps manifest and config bytes as served (oci: would convert the Docker config).
    const r = await skopeo(['copy', '--src-cert-dir', lab.certDir, `docker://${tiny.ref}`, `dir:${dest}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(`sha256:${createHash('sha256').update(readFileSync(join(dest, 'manifest.json'))).digest('hex')}`).toBe(tiny.digest);
    for (const b of tiny.blobs) {
      const file = join(dest, b.digest.slice('sha256:'.length));
      expect(existsSync(file)).toBe(true);
      expect(`sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`).toBe(b.digest);
    }
    const cdn = lab.cdnRequests().filter((c) => c.status === 200);
    expect(cdn.length).toBeGreaterThanOrEqual(tiny.blobs.length);
    expect(cdn.every((c) => !c.hadAuthorization)).toBe(true);
    expect(cdn[0]?.url).toMatch(/^\/docker\/registry\/v2\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\/data$/);
  });

  it('refuses anonymous push and accepts push with credentials', async () => {
    const src = `dir:${join(work, 'tiny')}`;
    const anon = await skopeo(['copy', '--insecure-policy', '--dest-cert-dir', lab.certDir, src, `docker://${lab.names.registry}/smoke/anon:1`]);
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/denied|unauthorized/i);
    const bad = await skopeo(['copy', '--insecure-policy', '--dest-cert-dir', lab.certDir, '--dest-creds', `${lab.user}:wrong`, src, `docker://${lab.names.registry}/smoke/bad:1`]);
    expect(bad.code).not.toBe(0);
    const ok = await skopeo(['copy', '--insecure-policy', '--dest-cert-dir', lab.certDir, '--dest-creds', `${lab.user}:${lab.password}`, src, `docker://${lab.names.registry}/smoke/pushed:1`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(lab.secrets()).toContain(lab.password);
    expect(lab.tokenRequests().some((t) => t.subject === lab.user && t.granted.some((g) => g.actions.includes('push')))).toBe(true);
  });

  it('CDN answers HEAD, single ranges, 416, and nothing outside the blob tree', async () => {
    const layer = lab.image('lab/alpine:3.9').blobs.find((b) => b.mediaType.endsWith('tar.gzip'));
    if (!layer) throw new Error('no layer');
    const hex = layer.digest.slice('sha256:'.length);
    const path = `/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
    const head = await labGet(lab, 'cdn', path, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(layer.size));
    expect(head.headers['accept-ranges']).toBe('bytes');
    const part = await labGet(lab, 'cdn', path, { Range: 'bytes=10-19' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${layer.size}`);
    expect(part.body.length).toBe(10);
    const tail = await labGet(lab, 'cdn', path, { Range: `bytes=${layer.size - 5}-` });
    expect(tail.status).toBe(206);
    expect(tail.body.length).toBe(5);
    expect((await labGet(lab, 'cdn', path, { Range: `bytes=${layer.size}-` })).status).toBe(416);
    expect((await labGet(lab, 'cdn', '/docker/registry/v2/repositories/lab/alpine/_manifests/tags/3.9/current/link')).status).toBe(404);
    expect((await labGet(lab, 'cdn', `/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/../../../../../../etc/passwd`)).status).toBe(404);
  });
});
