import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplay, type ReplayHandle } from '../../src/replay/index.js';
import { parseChallenge } from '../../src/registry/index.js';
import { buildFailuresRecording, DOCKER_ONLY, type FailuresFixture } from '../support/replay-failures.js';
import { DOCKERD_ACCEPTS, MT, REALM } from '../support/replay-fixture.js';

/**
 * Replay answers like the registry did, failures included (issue 13): recorded non-success
 * answers matched with the protocol-aware rules, the last-answer-sticks policy and --prefer
 * success, recorded headers, the rate-limit countdown, Docker Hub's names.
 */

let tmp: string;
let fx: FailuresFixture;
let replay: ReplayHandle;
let preferSuccess: ReplayHandle;
let viaProxy: ProxyAgent;
let direct: Agent;
const BEARER = ['Authorization', 'Bearer whatever-the-client-has'];

interface Reply {
  status: number;
  body: Buffer;
  h(name: string): string | undefined;
}

async function send(url: string, headers: string[] = BEARER, method = 'GET', via?: Dispatcher): Promise<Reply> {
  const lines: Record<string, string[]> = {};
  for (let i = 0; i + 1 < headers.length; i += 2) (lines[headers[i]!.toLowerCase()] ??= []).push(headers[i + 1]!);
  const h = Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, v.length === 1 ? v[0]! : v]));
  const dispatcher = via ?? (url.startsWith('https://') ? viaProxy : direct);
  const r = await request(url, { method: method as Dispatcher.HttpMethod, headers: h, dispatcher });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, body, h: (n) => (Array.isArray(r.headers[n]) ? (r.headers[n] as string[]).join(', ') : (r.headers[n] as string | undefined)) };
}
const acceptLines = (types: string[]) => types.flatMap((t) => ['Accept', t]);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-fidelity-'));
  fx = await buildFailuresRecording(path.join(tmp, 'f.db'));
  replay = await startReplay({ recording: fx.path, home: path.join(tmp, 'ca'), registry: 'registry.test' });
  preferSuccess = await startReplay({ recording: fx.path, home: path.join(tmp, 'ca'), registry: 'registry.test', prefer: 'success', listen: false });
  viaProxy = new ProxyAgent({ uri: replay.proxyUrl!, requestTls: { ca: replay.caCertPem } });
  direct = new Agent();
});

afterAll(async () => {
  await viaProxy?.close();
  await direct?.close();
  await replay?.close();
  await preferSuccess?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const REG = 'https://registry.test';
const mirror = () => replay.mirrorUrl!;

describe('recorded non-success answers replay as recorded (status, body bytes, headers), in both modes', () => {
  const table: Array<{ name: string; path: string; headers?: string[]; status: number; body: keyof FailuresFixture['bodies']; header?: [string, RegExp] }> = [
    { name: '401 insufficient_scope for a missing repository', path: '/v2/lab/missing/manifests/latest', headers: [...BEARER, ...acceptLines(DOCKERD_ACCEPTS)], status: 401, body: 'insufficient', header: ['www-authenticate', /scope="repository:lab\/missing:pull",error="insufficient_scope"$/] },
    { name: '403 DENIED', path: '/v2/lab/private/manifests/1', status: 403, body: 'denied' },
    { name: '404 NAME_UNKNOWN', path: '/v2/lab/gone/manifests/1', status: 404, body: 'nameUnknown' },
    { name: '404 MANIFEST_UNKNOWN for a tag of a recorded repository', path: '/v2/lab/app/manifests/nope', status: 404, body: 'manifestUnknown' },
    { name: "distribution's OCI-index-vs-Accept 404, for the same Accept", path: '/v2/lab/ociidx/manifests/1', headers: [...BEARER, ...acceptLines([...DOCKER_ONLY].reverse())], status: 404, body: 'negotiation' },
    { name: '503 with Retry-After, recorded after a 200 (the last answer sticks)', path: '/v2/lab/flaky/manifests/1', status: 503, body: 'unavailable', header: ['retry-after', /^5$/] },
    { name: '429 TOOMANYREQUESTS with Retry-After and the rate-limit headers', path: '/v2/lab/limited/manifests/1', status: 429, body: 'tooMany', header: ['retry-after', /^3600$/] },
    { name: '500 on a blob', path: `/v2/lab/app/blobs/sha256:${'d'.repeat(64)}`, status: 500, body: 'internal' },
  ];
  for (const row of table) {
    for (const mode of ['proxy', 'mirror'] as const) {
      it(`${mode}: ${row.name}`, async () => {
        const r = await send(`${mode === 'proxy' ? REG : mirror()}${row.path}`, row.headers ?? BEARER);
        expect(r.status).toBe(row.status);
        expect(r.body.equals(fx.bodies[row.body]), r.body.toString()).toBe(true);
        if (row.header) expect(r.h(row.header[0])).toMatch(row.header[1]);
        if (row.status === 429) expect([r.h('ratelimit-remaining'), r.h('docker-ratelimit-source')]).toEqual(['0;w=21600', '192.0.2.7']);
        expect(r.h('x-regtape-replay')).toBeUndefined(); // a recorded answer, not something replay made up
      });
    }
  }

  it('HEAD gets the recorded GET failure without a body', async () => {
    const r = await send(`${REG}/v2/lab/gone/manifests/1`, BEARER, 'HEAD');
    expect(r.status).toBe(404);
    expect(r.body.length).toBe(0);
    expect(r.h('content-length')).toBe(String(fx.bodies.nameUnknown.length));
  });

  it('the recorded WWW-Authenticate keeps its realm in proxy mode; mirror mode points it at itself and keeps the rest', async () => {
    const p = await send(`${REG}/v2/lab/missing/manifests/latest`);
    expect(parseChallenge(p.h('www-authenticate')!)!.params.realm).toBe(REALM);
    const m = await send(`${mirror()}/v2/lab/missing/manifests/latest`);
    const c = parseChallenge(m.h('www-authenticate')!)!;
    expect(c.params.realm!.startsWith(`${mirror()}/regtape/token/`)).toBe(true);
    expect(c.params).toMatchObject({ service: 'registry.test', scope: 'repository:lab/missing:pull', error: 'insufficient_scope' });
  });

  it('a token request the token server refused (wrong credentials) gets the recorded 401', async () => {
    const r = await send(`https://auth.test/token?service=registry.test&scope=${encodeURIComponent('repository:lab/app:pull,push')}`, ['Authorization', 'Basic d3Jvbmc6d3Jvbmc=']);
    expect(r.status).toBe(401);
    expect(r.body.equals(fx.bodies.badCredentials)).toBe(true);
    expect(r.h('www-authenticate')).toBe('Basic realm="registry.test token server"');
  });

  it('a recorded HEAD whose body was never fetched still answers a HEAD (recorded length and digest); a GET is a miss', async () => {
    const head = await send(`${REG}/v2/lab/headonly/manifests/1`, BEARER, 'HEAD');
    expect([head.status, head.h('content-length'), head.h('docker-content-digest')]).toEqual([200, '1234', `sha256:${'4'.repeat(64)}`]);
    const before = replay.misses().length;
    expect((await send(`${REG}/v2/lab/headonly/manifests/1`)).status).toBe(404);
    expect(replay.misses().slice(before).map((m) => m.matcher)).toEqual(['tag']);
  });

  it('none of the recorded answers is a miss', () => {
    expect(replay.misses().filter((m) => !m.url.includes('/lab/headonly/'))).toEqual([]);
  });
});

describe('which answer wins when a request was answered differently at different times', () => {
  it('default (last one sticks): 429 then 200 replays as 200; 200 then 503 as 503', async () => {
    expect((await send(`${REG}/v2/lab/busy/manifests/1`)).status).toBe(200);
    expect((await send(`${REG}/v2/lab/flaky/manifests/1`)).status).toBe(503);
  });

  it('--prefer success: the last success, if there was one; failures without a success as recorded', async () => {
    const flaky = await send(`${preferSuccess.mirrorUrl}/v2/lab/flaky/manifests/1`);
    expect(flaky.status).toBe(200);
    expect(flaky.body.equals(fx.ok.bytes)).toBe(true);
    expect((await send(`${preferSuccess.mirrorUrl}/v2/lab/busy/manifests/1`)).status).toBe(200);
    expect((await send(`${preferSuccess.mirrorUrl}/v2/lab/gone/manifests/1`)).status).toBe(404);
  });
});

describe('recorded headers replay', () => {
  it('a manifest answer carries the recorded rate-limit, digest, type, ETag, API version and HSTS headers, a fresh Date and no hop-by-hop headers', async () => {
    const r = await send(`${REG}/v2/lab/app/manifests/1`, [...BEARER, ...acceptLines(DOCKERD_ACCEPTS)]);
    expect(r.status).toBe(200);
    expect({
      type: r.h('content-type'),
      digest: r.h('docker-content-digest'),
      etag: r.h('etag'),
      api: r.h('docker-distribution-api-version'),
      hsts: r.h('strict-transport-security'),
      limit: r.h('ratelimit-limit'),
      remaining: r.h('ratelimit-remaining'),
      source: r.h('docker-ratelimit-source'),
      length: r.h('content-length'),
    }).toEqual({
      type: MT.v2,
      digest: fx.ok.digest,
      etag: `"${fx.ok.digest}"`,
      api: 'registry/2.0',
      hsts: 'max-age=31536000',
      limit: '100;w=21600',
      remaining: '76;w=21600',
      source: '192.0.2.7',
      length: String(fx.ok.bytes.length),
    });
    expect(r.h('date')).not.toMatch(/2020/);
  });

  it('Link pagination and Warning come back as recorded (exact query match for tags/list)', async () => {
    const r = await send(`${mirror()}/v2/lab/app/tags/list?n=2`);
    expect(r.status).toBe(200);
    expect(r.h('link')).toBe('</v2/lab/app/tags/list?last=nope&n=2>; rel="next"');
    expect(r.h('warning')).toBe('299 - "this repository is deprecated"');
    expect(r.body.equals(fx.bodies.tags)).toBe(true);
  });
});

describe('--ratelimit-countdown', () => {
  it('counts manifest GETs down (HEAD does not count) and answers 429 TOOMANYREQUESTS with Retry-After at zero', async () => {
    const rl = await startReplay({ recording: fx.path, home: path.join(tmp, 'ca'), listen: false, registry: 'registry.test', ratelimitCountdown: 2 });
    try {
      const url = `${rl.mirrorUrl}/v2/lab/app/manifests/1`;
      expect((await send(url, BEARER, 'HEAD')).h('ratelimit-remaining')).toBe('2;w=21600');
      expect((await send(url)).h('ratelimit-remaining')).toBe('1;w=21600');
      expect((await send(url)).h('ratelimit-remaining')).toBe('0;w=21600');
      const over = await send(url);
      expect(over.status).toBe(429);
      expect(over.h('retry-after')).toBe('21600');
      expect(over.h('ratelimit-remaining')).toBe('0;w=21600');
      expect(JSON.parse(over.body.toString()).errors[0].code).toBe('TOOMANYREQUESTS');
      expect(rl.misses()).toEqual([]);
    } finally {
      await rl.close();
    }
  });

  it('without N it starts from the recorded ratelimit-remaining', async () => {
    const rl = await startReplay({ recording: fx.path, home: path.join(tmp, 'ca'), listen: false, registry: 'registry.test', ratelimitCountdown: true });
    try {
      expect((await send(`${rl.mirrorUrl}/v2/lab/app/manifests/1`)).h('ratelimit-remaining')).toBe('75;w=21600');
    } finally {
      await rl.close();
    }
  });
});

describe("Docker Hub's names are one registry", () => {
  it('recorded as registry-1.docker.io, asked for as index.docker.io (proxy) and as ns=docker.io / ns=index.docker.io (mirror)', async () => {
    for (const url of [
      'https://index.docker.io/v2/library/alpine/manifests/latest',
      'https://registry-1.docker.io/v2/library/alpine/manifests/latest',
      `${mirror()}/v2/library/alpine/manifests/latest?ns=docker.io`,
      `${mirror()}/v2/library/alpine/manifests/latest?ns=index.docker.io`,
    ]) {
      const r = await send(url, [...BEARER, ...acceptLines(DOCKERD_ACCEPTS)]);
      expect(r.status, url).toBe(200);
      expect(r.h('docker-content-digest')).toBe(fx.ok.digest);
    }
  });
});
