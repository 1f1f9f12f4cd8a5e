import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplay, type ReplayHandle } from '../../src/replay/index.js';
import { parseChallenge } from '../../src/registry/index.js';
import { Recording } from '../../src/store/index.js';
import { buildPullRecording, CHALLENGE, digestOf, DOCKERD_ACCEPTS, MT, REALM, REGISTRY, sha256hex, type Fixture } from '../support/replay-fixture.js';
import { patternBytes } from '../support/origin.js';

/**
 * Replay matching (registry-protocol.md §3–§6), in-process: a synthetic recording of a
 * Docker-Hub-like pull, served by startReplay() and driven over real HTTP, through the
 * HTTPS proxy (undici ProxyAgent trusting the replay CA) and at the mirror endpoint.
 */

let tmp: string;
let fx: Fixture;
let replay: ReplayHandle;
let viaProxy: ProxyAgent;
let direct: Agent;

const REG = `https://${REGISTRY}`;
const BEARER = 'Bearer not-the-recorded-token';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** One header, repeated values joined with ', '. */
  h(name: string): string | undefined;
  json(): { errors: Array<{ code: string; message: string; detail: { closest: string | null; differences: string[] } | null }> };
}

interface SendOptions {
  method?: string;
  /** Flat [name, value, name, value …]: repeated names go out as separate header lines. */
  headers?: string[];
  body?: Buffer | string;
  dispatcher?: Dispatcher;
}

async function send(url: string, o: SendOptions = {}): Promise<Reply> {
  const dispatcher = o.dispatcher ?? (url.startsWith(replay.mirrorUrl!) ? direct : viaProxy);
  // Name → values: undici's ProxyAgent turns a flat header array into an object (last value
  // wins), an object with array values goes out as one header line per value.
  const flat = o.headers ?? [];
  const lines: Record<string, string[]> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) (lines[flat[i]!.toLowerCase()] ??= []).push(flat[i + 1]!);
  const headers = Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, v.length === 1 ? v[0]! : v]));
  const r = await request(url, { method: (o.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: o.body, dispatcher });
  const body = Buffer.from(await r.body.arrayBuffer());
  return {
    status: r.statusCode,
    headers: r.headers,
    body,
    h: (name) => {
      const v = r.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    json: () => JSON.parse(body.toString('utf8')) as ReturnType<Reply['json']>,
  };
}

/** curl through the replay proxy: an independent client whose repeated -H lines go out as separate header lines. */
function curlViaProxy(url: string, headers: string[]): Promise<{ status: number; head: string; body: Buffer }> {
  const out = path.join(tmp, `curl-${Math.random().toString(36).slice(2)}`);
  const args = ['-sS', '-x', replay.proxyUrl!, '--cacert', replay.caCertPath, '-D', '-', '-o', out, ...headers.flatMap((h) => ['-H', h]), url];
  return new Promise((resolve, reject) => {
    execFile('curl', args, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr}`));
      const status = Number(/^HTTP\/[\d.]+ (\d{3})/m.exec(stdout)?.[1]);
      const body = fs.readFileSync(out);
      fs.rmSync(out, { force: true });
      resolve({ status, head: stdout, body });
    });
  });
}

/** Headers dockerd sends: six Accept lines (in the given order) and a bearer token. */
function dockerd(order = DOCKERD_ACCEPTS, auth: string | null = BEARER): string[] {
  return [...order.flatMap((a) => ['Accept', a]), ...(auth ? ['Authorization', auth] : [])];
}

function jwtPart(t: string, i: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(t.split('.')[i]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
function jwtPayload(t: string): { iat: number; exp: number; access: unknown } & Record<string, unknown> {
  return jwtPart(t, 1) as { iat: number; exp: number; access: unknown };
}
function jwtHeader(t: string): Record<string, unknown> {
  return jwtPart(t, 0);
}

function authed(...extra: string[]): string[] {
  return ['Authorization', BEARER, ...extra];
}

function shuffled<T>(a: readonly T[], seed: number): T[] {
  const out = [...a];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-replay-test-'));
  fx = await buildPullRecording(path.join(tmp, 'pull.db'));
  replay = await startReplay({ recording: fx.path, home: path.join(tmp, 'ca') });
  viaProxy = new ProxyAgent({ uri: replay.proxyUrl!, requestTls: { ca: replay.caCertPem } });
  direct = new Agent();
});

afterAll(async () => {
  await viaProxy?.close();
  await direct?.close();
  await replay?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('content negotiation (§3): Accept is a set', () => {
  it('six separate Accept lines in any order and one comma-joined line get the same manifest', async () => {
    const { list } = fx.manifests;
    const framings: string[][] = [
      dockerd(),
      dockerd([...DOCKERD_ACCEPTS].reverse()),
      dockerd(shuffled(DOCKERD_ACCEPTS, 7)),
      dockerd(shuffled(DOCKERD_ACCEPTS, 99)),
      // containerd: one line, ", " separated, with */*
      ['Accept', `${MT.v2}, ${MT.list}, ${MT.ociManifest}, ${MT.ociIndex}, */*`, 'Authorization', BEARER],
      // crane: one line, "," no spaces; and a parameter and odd case on one member
      ['Accept', [...DOCKERD_ACCEPTS.slice(0, -1), 'Application/JSON; q=0.5'].join(','), 'Authorization', BEARER],
    ];
    for (const headers of framings) {
      const r = await send(`${REG}/v2/lab/img/manifests/1`, { headers });
      expect(r.status, headers.join(' ')).toBe(200);
      expect(r.h('content-type')).toBe(MT.list);
      expect(r.h('docker-content-digest')).toBe(list.digest);
      expect(r.body.equals(list.bytes)).toBe(true);
    }
  });

  it('the same with curl: six -H Accept lines vs one joined line', async () => {
    const { list } = fx.manifests;
    const six = await curlViaProxy(`${REG}/v2/lab/img/manifests/1`, [...shuffled(DOCKERD_ACCEPTS, 5).map((a) => `Accept: ${a}`), `Authorization: ${BEARER}`]);
    const one = await curlViaProxy(`${REG}/v2/lab/img/manifests/1`, [`Accept: ${DOCKERD_ACCEPTS.join(', ')}`, `Authorization: ${BEARER}`]);
    for (const r of [six, one]) {
      expect(r.status).toBe(200);
      expect(r.head).toMatch(new RegExp(`^docker-content-digest: ${list.digest}\r?$`, 'im'));
      expect(r.body.equals(list.bytes)).toBe(true);
    }
  });

  it('by tag with the list type accepted: the manifest list', async () => {
    const r = await send(`${REG}/v2/lab/img/manifests/1`, { headers: authed('Accept', MT.list) });
    expect(r.status).toBe(200);
    expect(r.h('content-type')).toBe(MT.list);
    expect(r.h('docker-content-digest')).toBe(fx.manifests.list.digest);
    expect(digestOf(r.body)).toBe(fx.manifests.list.digest);
  });

  it('by tag without the list type (v2 manifest types only): the linux/amd64 child', async () => {
    const { amd64 } = fx.manifests;
    for (const headers of [authed('Accept', MT.v2), authed('Accept', MT.v2, 'Accept', MT.prettyjws, 'Accept', MT.json)]) {
      const r = await send(`${REG}/v2/lab/img/manifests/1`, { headers });
      expect(r.status).toBe(200);
      expect(r.h('content-type')).toBe(MT.v2);
      expect(r.h('docker-content-digest')).toBe(amd64.digest);
      expect(digestOf(r.body)).toBe(amd64.digest);
      expect(r.body.equals(amd64.bytes)).toBe(true);
    }
  });

  it('by digest: never rewritten, even when the list type is not accepted', async () => {
    const { list, arm64 } = fx.manifests;
    const r = await send(`${REG}/v2/lab/img/manifests/${list.digest}`, { headers: authed('Accept', MT.v2) });
    expect(r.status).toBe(200);
    expect(r.h('content-type')).toBe(MT.list);
    expect(r.h('docker-content-digest')).toBe(list.digest);
    expect(r.body.equals(list.bytes)).toBe(true);
    // A child by digest is itself, whatever the Accept set (containerd fetch: "<type>, */*").
    const c = await send(`${REG}/v2/lab/img/manifests/${arm64.digest}`, { headers: authed('Accept', `${MT.v2}, */*`) });
    expect(c.status).toBe(200);
    expect(c.h('docker-content-digest')).toBe(arm64.digest);
    expect(c.body.equals(arm64.bytes)).toBe(true);
  });

  it('an OCI manifest asked for without OCI types: 404 MANIFEST_UNKNOWN with the distribution message', async () => {
    const { oci } = fx.manifests;
    const ok = await send(`${REG}/v2/lab/oci/manifests/1`, { headers: dockerd() });
    expect(ok.status).toBe(200);
    expect(ok.h('content-type')).toBe(MT.ociManifest);
    expect(ok.body.equals(oci.bytes)).toBe(true);

    const noOci = authed('Accept', MT.v2, 'Accept', MT.list, 'Accept', MT.prettyjws, 'Accept', MT.json);
    const r = await send(`${REG}/v2/lab/oci/manifests/1`, { headers: noOci });
    expect(r.status).toBe(404);
    expect(r.h('content-type')).toMatch(/^application\/json/);
    expect(r.json().errors[0]).toMatchObject({ code: 'MANIFEST_UNKNOWN', message: 'OCI manifest found, but accept header does not support OCI manifests' });
    const head = await send(`${REG}/v2/lab/oci/manifests/1`, { method: 'HEAD', headers: noOci });
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
    // No Accept at all: distribution answers the same 404.
    const none = await send(`${REG}/v2/lab/oci/manifests/1`, { headers: authed() });
    expect(none.status).toBe(404);
    expect(none.json().errors[0]!.code).toBe('MANIFEST_UNKNOWN');
  });
});

describe('HEAD manifest', () => {
  it('has Content-Type, Content-Length and Docker-Content-Digest, and no body', async () => {
    const { list } = fx.manifests;
    const r = await send(`${REG}/v2/lab/img/manifests/1`, { method: 'HEAD', headers: dockerd(shuffled(DOCKERD_ACCEPTS, 3)) });
    expect(r.status).toBe(200);
    expect(r.h('content-type')).toBe(MT.list);
    expect(r.h('content-length')).toBe(String(list.bytes.length));
    expect(r.h('docker-content-digest')).toBe(list.digest);
    expect(r.h('etag')).toBe(`"${list.digest}"`);
    expect(r.body.length).toBe(0);
  });

  it('If-None-Match with the manifest digest (quoted or not) answers 304; another value is ignored', async () => {
    const { list } = fx.manifests;
    for (const inm of [`"${list.digest}"`, list.digest, `W/"${list.digest}"`]) {
      for (const method of ['GET', 'HEAD']) {
        const r = await send(`${REG}/v2/lab/img/manifests/1`, { method, headers: [...dockerd(), 'If-None-Match', inm] });
        expect(r.status, `${method} ${inm}`).toBe(304);
        expect(r.body.length).toBe(0);
      }
    }
    const other = await send(`${REG}/v2/lab/img/manifests/1`, { headers: [...dockerd(), 'If-None-Match', `"sha256:${'0'.repeat(64)}"`] });
    expect(other.status).toBe(200);
    expect(other.body.equals(list.bytes)).toBe(true);
  });
});

describe('auth by class (§6)', () => {
  it('proxy: a manifest GET without Authorization gets a Bearer challenge with the recorded realm', async () => {
    const r = await send(`${REG}/v2/lab/img/manifests/1`, { headers: dockerd(DOCKERD_ACCEPTS, null) });
    expect(r.status).toBe(401);
    const c = parseChallenge(r.h('www-authenticate')!);
    expect(c).toMatchObject({ scheme: 'bearer', params: { realm: REALM, service: REGISTRY, scope: 'repository:lab/img:pull' } });
    expect(r.json().errors[0]!.code).toBe('UNAUTHORIZED');
    // The ping without auth: the recorded challenge, as recorded.
    const ping = await send(`${REG}/v2/`);
    expect(ping.status).toBe(401);
    expect(ping.h('www-authenticate')).toBe(CHALLENGE);
  });

  it('mirror: the challenge realm points at the mirror itself, and that realm hands out a token', async () => {
    const m = replay.mirrorUrl!;
    const r = await send(`${m}/v2/lab/img/manifests/1`, { headers: dockerd(DOCKERD_ACCEPTS, null) });
    expect(r.status).toBe(401);
    const c = parseChallenge(r.h('www-authenticate')!)!;
    expect(c.scheme).toBe('bearer');
    expect(c.params.realm!.startsWith(`${m}/regtape/token/`)).toBe(true);
    expect(c.params).toMatchObject({ service: REGISTRY, scope: 'repository:lab/img:pull' });
    const tok = await send(`${c.params.realm}?service=${c.params.service}&scope=${encodeURIComponent(c.params.scope!)}`);
    expect(tok.status).toBe(200);
    const td = JSON.parse(tok.body.toString()) as { token: string; access_token: string; expires_in: number };
    expect(td.expires_in).toBe(300);
    expect(td.token).toBe(td.access_token);
    expect(jwtPayload(td.token).access).toEqual([{ type: 'repository', name: 'lab/img', actions: ['pull'], parameters: { pull_limit: '100', pull_limit_interval: '21600' } }]);
    // The recorded ping challenge is rewritten to the mirror too, and its realm works.
    const ping = await send(`${m}/v2/`);
    expect(ping.status).toBe(401);
    const pc = parseChallenge(ping.h('www-authenticate')!)!;
    expect(pc.params.realm!.startsWith(`${m}/regtape/token/`)).toBe(true);
    expect((await send(pc.params.realm!)).status).toBe(200);
  });

  it('any Bearer value, or Basic, gets the 200 (proxy and mirror)', async () => {
    for (const base of [REG, replay.mirrorUrl!]) {
      for (const auth of ['Bearer anything', 'bearer x.y.z', `Basic ${Buffer.from('AWS:secret').toString('base64')}`]) {
        const r = await send(`${base}/v2/lab/img/manifests/1`, { headers: dockerd(DOCKERD_ACCEPTS, auth) });
        expect(r.status, `${base} ${auth}`).toBe(200);
        expect(r.body.equals(fx.manifests.list.bytes)).toBe(true);
      }
    }
  });
});

describe('token endpoint (§2, §6)', () => {
  it('answers every request with a JWT of its own (recorded scopes, exp in the future), a fresh issued_at and the recorded expires_in', async () => {
    const urls = [
      `https://auth.test/token?scope=${encodeURIComponent('repository:lab/img:pull')}&service=registry.test`,
      `https://auth.test/token?service=registry.test&scope=${encodeURIComponent('repository:lab/img:pull')}`,
      `https://auth.test/token?account=alice&client_id=docker&offline_token=true&service=registry.test&scope=${encodeURIComponent('repository:lab/other:push,pull')}`,
    ];
    for (const u of urls) {
      const before = Date.now();
      const r = await send(u);
      expect(r.status).toBe(200);
      expect(r.h('content-type')).toBe('application/json; charset=utf-8');
      expect(Number(r.h('content-length'))).toBe(r.body.length);
      const doc = JSON.parse(r.body.toString()) as { token: string; access_token: string; expires_in: number; issued_at: string };
      expect(doc.expires_in).toBe(300);
      expect(doc.token).toBe(doc.access_token);
      expect(doc.token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      expect(doc.token).not.toContain('REDACTED');
      const issued = Date.parse(doc.issued_at);
      expect(issued).toBeGreaterThanOrEqual(before - 1000);
      expect(issued).toBeLessThanOrEqual(Date.now() + 1000);
      const claims = jwtPayload(doc.token);
      // exp - iat = expires_in, and issued_at is iat: consistent for a client that decodes either.
      expect(claims.exp - claims.iat).toBe(300);
      expect(Math.abs(claims.iat * 1000 - issued)).toBeLessThan(1500);
      expect(claims.exp * 1000).toBeGreaterThan(Date.now());
      // Recorded claims are kept (iss, aud, access with Hub's parameters) for the recorded scope; a new scope gets what it asked for.
      if (u.includes('lab%2Fimg')) {
        expect(claims).toMatchObject({ iss: 'auth.test', aud: REGISTRY });
        expect(claims.access).toEqual([{ type: 'repository', name: 'lab/img', actions: ['pull'], parameters: { pull_limit: '100', pull_limit_interval: '21600' } }]);
      } else expect(claims.access).toEqual([{ type: 'repository', name: 'lab/other', actions: ['push', 'pull'] }]);
      expect(jwtHeader(doc.token)).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    }
  });
});

describe('blob download (§4)', () => {
  it('proxy: a blob GET is the recorded 307 with the recorded Location', async () => {
    const b = fx.blobs.amd64Layer;
    const r = await send(`${REG}/v2/lab/img/blobs/${b.digest}`, { headers: authed() });
    expect(r.status).toBe(307);
    expect(r.h('location')).toBe(b.cdnUrl);
    expect(r.body.length).toBe(0);
  });

  it('CDN: any verify= value (or none) gets the stored bytes', async () => {
    for (const b of [fx.blobs.amd64Layer, fx.blobs.ociConfig]) {
      const u = new URL(b.cdnUrl);
      for (const search of [u.search, '?verify=1700000000-OTHER%3D', '']) {
        const r = await send(`${u.origin}${u.pathname}${search}`);
        expect(r.status, search).toBe(200);
        expect(r.h('content-length')).toBe(String(b.bytes.length));
        expect(r.body.equals(b.bytes)).toBe(true);
      }
    }
  });

  it('Range: 206 with Content-Range for bytes=10-19 and bytes=-5; 416 past the end', async () => {
    for (const b of [fx.blobs.amd64Layer, fx.blobs.arm64Layer]) {
      const size = b.bytes.length;
      const a = await send(b.cdnUrl, { headers: ['Range', 'bytes=10-19'] });
      expect(a.status).toBe(206);
      expect(a.h('content-range')).toBe(`bytes 10-19/${size}`);
      expect(a.h('content-length')).toBe('10');
      expect(a.body.equals(b.bytes.subarray(10, 20))).toBe(true);

      const tail = await send(b.cdnUrl, { headers: ['Range', 'bytes=-5'] });
      expect(tail.status).toBe(206);
      expect(tail.h('content-range')).toBe(`bytes ${size - 5}-${size - 1}/${size}`);
      expect(tail.body.equals(b.bytes.subarray(size - 5))).toBe(true);

      const resume = await send(b.cdnUrl, { headers: ['Range', `bytes=${size - 100}-`] });
      expect(resume.status).toBe(206);
      expect(resume.h('content-range')).toBe(`bytes ${size - 100}-${size - 1}/${size}`);
      expect(resume.body.equals(b.bytes.subarray(size - 100))).toBe(true);

      const past = await send(b.cdnUrl, { headers: ['Range', `bytes=${size}-`] });
      expect(past.status).toBe(416);
      expect(past.h('content-range')).toBe(`bytes */${size}`);
      expect(past.body.length).toBe(0);
    }
  });

  it('HEAD blob: the registry redirects, the CDN answers Content-Length = size, its recorded headers, and no body', async () => {
    const b = fx.blobs.amd64Layer;
    const r = await send(`${REG}/v2/lab/img/blobs/${b.digest}`, { method: 'HEAD', headers: authed() });
    expect(r.status).toBe(307);
    const cdn = await send(r.h('location')!, { method: 'HEAD' });
    expect(cdn.status).toBe(200);
    expect(cdn.h('content-length')).toBe(String(b.bytes.length));
    // The CDN's own headers as recorded (its ETag is not the digest; it sends no Docker-Content-Digest).
    expect(cdn.h('etag')).toBe('"5d41402abc4b2a76b9719d911017c592"');
    expect(cdn.h('server')).toBe('cloudflare');
    expect(cdn.h('docker-content-digest')).toBeUndefined();
    expect(cdn.body.length).toBe(0);
  });

  it('mirror: the blob GET redirects to the mirror, which serves the bytes (ranges and HEAD too)', async () => {
    const m = replay.mirrorUrl!;
    const b = fx.blobs.amd64Layer;
    const r = await send(`${m}/v2/lab/img/blobs/${b.digest}`, { headers: authed() });
    expect(r.status).toBe(307);
    expect(r.h('location')).toBe(`${m}/regtape/blobs/${b.digest}`);
    const got = await send(r.h('location')!);
    expect(got.status).toBe(200);
    expect(got.body.equals(b.bytes)).toBe(true);
    expect(sha256hex(got.body)).toBe(b.digest.slice(7));
    const part = await send(r.h('location')!, { headers: ['Range', 'bytes=10-19'] });
    expect(part.status).toBe(206);
    expect(part.h('content-range')).toBe(`bytes 10-19/${b.bytes.length}`);
    const head = await send(r.h('location')!, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.h('content-length')).toBe(String(b.bytes.length));
  });
});

describe('concurrency (§6: by key, never by sequence)', () => {
  it('20 concurrent identical manifest GETs and 10 concurrent blob GETs all get identical answers', async () => {
    const stable = (r: Reply) => ({ status: r.status, type: r.h('content-type'), digest: r.h('docker-content-digest'), length: r.h('content-length'), sha: sha256hex(r.body) });
    const manifests = await Promise.all(Array.from({ length: 20 }, () => send(`${REG}/v2/lab/img/manifests/1`, { headers: dockerd() })));
    const first = stable(manifests[0]!);
    expect(first).toMatchObject({ status: 200, digest: fx.manifests.list.digest, sha: fx.manifests.list.digest.slice(7) });
    for (const r of manifests) expect(stable(r)).toEqual(first);

    const b = fx.blobs.amd64Layer;
    const blobs = await Promise.all([
      ...Array.from({ length: 10 }, () => send(b.cdnUrl)),
      ...Array.from({ length: 10 }, () => send(`${replay.mirrorUrl}/regtape/blobs/${b.digest}`)),
    ]);
    for (const r of blobs) {
      expect(r.status).toBe(200);
      expect(r.body.equals(b.bytes)).toBe(true);
    }
    const redirects = await Promise.all(Array.from({ length: 10 }, () => send(`${REG}/v2/lab/img/blobs/${b.digest}`, { headers: authed() })));
    for (const r of redirects) expect([r.status, r.h('location')]).toEqual([307, b.cdnUrl]);
  });
});

describe('misses', () => {
  it('a tag never recorded: 404 MANIFEST_UNKNOWN naming the closest recorded request and what differs', async () => {
    const r = await send(`${REG}/v2/lab/img/manifests/2`, { headers: dockerd() });
    expect(r.status).toBe(404);
    expect(r.h('x-regtape-replay')).toBe('miss');
    const e = r.json().errors[0]!;
    expect(e.code).toBe('MANIFEST_UNKNOWN');
    expect(e.detail!.closest).toBe(`GET https://registry.test/v2/lab/img/manifests/1 (flow ${fx.flows.list})`);
    expect(e.detail!.differences.join('; ')).toMatch(/reference \(2 vs recorded 1\)/);
    const miss = replay.misses().find((x) => x.url === 'https://registry.test/v2/lab/img/manifests/2');
    expect(miss).toMatchObject({ method: 'GET', closest: e.detail!.closest });
    expect(miss!.differences.some((d) => d.startsWith('reference'))).toBe(true);
  });

  it('unused() lists recorded flows no request used, and not the ones served', async () => {
    const fresh = await startReplay({ recording: fx.path, home: path.join(tmp, 'ca'), listen: false });
    try {
      const m = fresh.mirrorUrl!;
      expect((await send(`${m}/v2/lab/img/manifests/1`, { headers: dockerd(), dispatcher: direct })).status).toBe(200);
      expect((await send(`${m}/regtape/blobs/${fx.blobs.amd64Layer.digest}`, { dispatcher: direct })).status).toBe(200);
      const ids = fresh.unused().map((u) => u.id);
      expect(ids).toContain(fx.flows.unused);
      expect(ids).toContain(fx.flows.tagsList);
      expect(ids).toContain(fx.flows.arm64);
      expect(ids).not.toContain(fx.flows.list);
      expect(ids).not.toContain(fx.flows.amd64LayerCdn);
      expect(ids).not.toContain(fx.flows.ping); // pings are never reported
      expect(fresh.unused().find((u) => u.id === fx.flows.unused)).toEqual({ id: fx.flows.unused, method: 'GET', url: 'https://registry.test/v2/lab/unused/manifests/1' });
      expect(fresh.misses()).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it('replaying every recorded request leaves no flow unused', async () => {
    const fresh = await startReplay({ recording: fx.path, home: path.join(tmp, 'ca'), mirror: false });
    const agent = new ProxyAgent({ uri: fresh.proxyUrl!, requestTls: { ca: fresh.caCertPem } });
    try {
      const rec = Recording.open(fx.path, { readonly: true });
      const flows = rec.list();
      rec.close();
      for (const f of flows) {
        const headers = f.request.headers.filter(([k]) => k.toLowerCase() !== 'host').flat();
        const r = await send(`https://${f.request.host}${f.request.target}`, { method: f.request.method, headers, dispatcher: agent });
        expect(r.status, `${f.request.method} ${f.request.target}`).toBe(f.response!.status);
      }
      expect(fresh.misses()).toEqual([]);
      expect(fresh.unused()).toEqual([]);
    } finally {
      await agent.close();
      await fresh.close();
    }
  });

  it('proxy: a host never recorded is a regtape miss, and nothing connects out', async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      for (const url of [`https://127.0.0.1:${port}/v2/`, `https://127.0.0.1:${port}/v2/lab/img/manifests/1`, 'https://unrecorded.test/v2/lab/img/blobs/sha256:' + 'a'.repeat(64)]) {
        const r = await send(url, { headers: dockerd() });
        expect(r.status, url).toBe(404);
        expect(r.h('x-regtape-replay')).toBe('miss');
        expect(replay.misses().some((x) => x.url === url)).toBe(true);
      }
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe.each(['mirror', 'proxy'] as const)('push replay (%s)', (mode) => {
  const base = () => (mode === 'mirror' ? replay.mirrorUrl! : REG);
  // Pushed blobs are known by digest, whatever the repository: different bytes per mode.
  const seed = mode === 'mirror' ? 0 : 100;
  const repo = `lab/new-${mode}`;
  const abs = (loc: string) => new URL(loc, base()).toString();

  it('upload in two chunks, digest checked, HEAD after; wrong digest refused', async () => {
    const a = patternBytes(70_000, 21 + seed);
    const b = patternBytes(12_345, 22 + seed);
    const whole = Buffer.concat([a, b]);
    const digest = digestOf(whole);

    const before = await send(`${base()}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: authed() });
    expect(before.status).toBe(404);

    const start = await send(`${base()}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: authed('Content-Length', '0') });
    expect(start.status).toBe(202);
    expect(start.h('location')).toMatch(new RegExp(`/v2/${repo}/blobs/uploads/[0-9a-f-]{36}$`));
    expect(start.h('docker-upload-uuid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(start.h('location')).toContain(start.h('docker-upload-uuid')!);
    const loc = abs(start.h('location')!);

    const p1 = await send(loc, { method: 'PATCH', headers: authed('Content-Type', 'application/octet-stream'), body: a });
    expect(p1.status).toBe(202);
    expect(p1.h('range')).toBe(`0-${a.length - 1}`);
    const p2 = await send(abs(p1.h('location')!), { method: 'PATCH', headers: authed('Content-Type', 'application/octet-stream'), body: b });
    expect(p2.status).toBe(202);
    expect(p2.h('range')).toBe(`0-${whole.length - 1}`);
    const status = await send(abs(p2.h('location')!), { headers: authed() });
    expect(status.status).toBe(204);
    expect(status.h('range')).toBe(`0-${whole.length - 1}`);

    const put = await send(`${abs(p2.h('location')!)}?digest=${encodeURIComponent(digest)}`, { method: 'PUT', headers: authed() });
    expect(put.status).toBe(201);
    expect(put.h('docker-content-digest')).toBe(digest);
    expect(put.h('location')).toBe(`/v2/${repo}/blobs/${digest}`);

    const head = await send(`${base()}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: authed() });
    expect(head.status).toBe(200);
    expect(head.h('content-length')).toBe(String(whole.length));
    expect(head.h('docker-content-digest')).toBe(digest);

    const again = await send(`${base()}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: authed() });
    expect(again.status).toBe(202);
    const wrong = await send(`${abs(again.h('location')!)}?digest=${encodeURIComponent(digestOf(a))}`, { method: 'PUT', headers: authed('Content-Type', 'application/octet-stream'), body: b });
    expect(wrong.status).toBe(400);
    expect(wrong.json().errors[0]!.code).toBe('DIGEST_INVALID');

    // containerd: POST, then one PUT ?digest= carrying the whole body.
    const c = await send(`${base()}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: authed() });
    const one = await send(`${abs(c.h('location')!)}?digest=${encodeURIComponent(digestOf(a))}`, { method: 'PUT', headers: authed('Content-Type', 'application/octet-stream'), body: a });
    expect(one.status).toBe(201);
    expect(one.h('docker-content-digest')).toBe(digestOf(a));

    // Monolithic POST ?digest= (single request).
    const mono = await send(`${base()}/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(digestOf(b))}`, { method: 'POST', headers: authed('Content-Type', 'application/octet-stream'), body: b });
    expect(mono.status).toBe(201);
    expect(mono.h('docker-content-digest')).toBe(digestOf(b));
  });

  it('mount: a recorded blob → 201; an unknown one → 202 session, which DELETE cancels (204)', async () => {
    const known = fx.blobs.amd64Layer.digest;
    const m = await send(`${base()}/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(known)}&from=lab%2Fimg`, { method: 'POST', headers: authed() });
    expect(m.status).toBe(201);
    expect(m.h('docker-content-digest')).toBe(known);
    expect(m.h('location')).toBe(`/v2/${repo}/blobs/${known}`);

    const unknown = `sha256:${'e'.repeat(64)}`;
    const f = await send(`${base()}/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(unknown)}&from=lab%2Fimg`, { method: 'POST', headers: authed() });
    expect(f.status).toBe(202);
    expect(f.h('docker-upload-uuid')).toBeTruthy();
    const loc = abs(f.h('location')!);
    const del = await send(loc, { method: 'DELETE', headers: authed() });
    expect(del.status).toBe(204);
    const gone = await send(loc, { method: 'PATCH', headers: authed(), body: 'x' });
    expect(gone.status).toBe(404);
    expect(gone.json().errors[0]!.code).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('PUT manifest → 201 with its sha256; GET by tag and by digest return the exact bytes', async () => {
    const body = Buffer.from(`{\n   "schemaVersion": 2,\n   "mediaType": "${MT.v2}",\n   "config": {"mediaType": "${MT.dockerConfig}", "size": 1, "digest": "sha256:${'1'.repeat(64)}"},\n   "layers": [],\n   "annotations": {"mode": "${mode}"}\n}`);
    const digest = digestOf(body);
    const put = await send(`${base()}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: authed('Content-Type', MT.v2), body });
    expect(put.status).toBe(201);
    expect(put.h('docker-content-digest')).toBe(digest);
    expect(put.h('location')).toBe(`/v2/${repo}/manifests/${digest}`);
    for (const ref of ['v1', digest]) {
      const r = await send(`${base()}/v2/${repo}/manifests/${ref}`, { headers: dockerd() });
      expect(r.status).toBe(200);
      expect(r.h('content-type')).toBe(MT.v2);
      expect(r.h('docker-content-digest')).toBe(digest);
      expect(r.body.equals(body)).toBe(true);
    }
    const wrong = await send(`${base()}/v2/${repo}/manifests/sha256:${'2'.repeat(64)}`, { method: 'PUT', headers: authed('Content-Type', MT.v2), body });
    expect(wrong.status).toBe(400);
    expect(wrong.json().errors[0]!.code).toBe('DIGEST_INVALID');
  });

  it('push without Authorization is challenged for push,pull', async () => {
    const r = await send(`${base()}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(r.status).toBe(401);
    expect(parseChallenge(r.h('www-authenticate')!)!.params.scope).toBe(`repository:${repo}:push,pull`);
  });
});

describe("Docker Hub's library/ convention", () => {
  it('mirror mode maps alpine to the recorded library/alpine; proxy mode does not rewrite', async () => {
    const { alpine } = fx.manifests;
    const r = await send(`${replay.mirrorUrl}/v2/alpine/manifests/latest`, { headers: dockerd() });
    expect(r.status).toBe(200);
    expect(r.h('docker-content-digest')).toBe(alpine.digest);
    expect(r.body.equals(alpine.bytes)).toBe(true);
    const full = await send(`${replay.mirrorUrl}/v2/library/alpine/manifests/latest`, { headers: dockerd() });
    expect(full.body.equals(alpine.bytes)).toBe(true);
    // The client named the registry: `alpine` is a different repository there.
    const p = await send(`${REG}/v2/alpine/manifests/latest`, { headers: dockerd() });
    expect(p.status).toBe(404);
    expect(p.h('x-regtape-replay')).toBe('miss');
  });
});
