import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harTimings, Sink, writeFileAtomically, writeHar } from '../../src/export/index.js';
import { parseFilter } from '../../src/filter/index.js';
import type { FlowRecord, HeaderList } from '../../src/flow/index.js';
import { importHar } from '../../src/import/index.js';
import { Recording, type StoredBody } from '../../src/store/index.js';
import { patternBytes } from '../support/origin.js';

const require = createRequire(import.meta.url);
const harValidator = require('har-validator') as { har(doc: unknown): Promise<unknown> };

interface HarDoc {
  log: {
    version: string;
    creator: { name: string };
    entries: Array<{
      startedDateTime: string;
      time: number;
      request: { method: string; url: string; headers: Array<{ name: string; value: string }>; queryString: Array<{ name: string; value: string }>; postData?: { mimeType: string; text?: string; encoding?: string; params?: unknown[] }; bodySize: number };
      response: { status: number; headers: Array<{ name: string; value: string }>; content: { size: number; mimeType: string; text?: string; encoding?: string; comment?: string; compression?: number }; _error?: string };
      timings: Record<string, number>;
      serverIPAddress?: string;
      _regtape: { uuid: string; state: string; responseBody: { sha256: string | null; size: number; omitted?: string } | null };
    }>;
  };
}

let tmp: string;
/** The recording under test and its flow ids by name. */
const fixture = { path: '', flows: {} as Record<string, number> };
const extra = fixture.flows;
const BIG = patternBytes(3 * 1024 * 1024 + 17, 99);

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function validate(doc: unknown): Promise<string[]> {
  try {
    await harValidator.har(doc);
    return [];
  } catch (e) {
    return ((e as { errors?: Array<{ dataPath?: string; message?: string }> }).errors ?? [{ message: String(e) }]).map((x) => `${x.dataPath ?? ''} ${x.message ?? ''}`);
  }
}

/** Add a flow through the store API, as the recorder does. */
async function addFlow(
  rec: Recording,
  spec: { method: string; host: string; target: string; reqHeaders: HeaderList; reqBody?: Buffer; status?: number; resHeaders?: HeaderList; resBody?: Buffer; error?: string; t: number; serverAddr?: string },
): Promise<number> {
  const store = async (b?: Buffer): Promise<StoredBody | null> => (b?.length ? rec.storeBody({ sha256: sha(b), size: b.length, buffer: b }, false) : null);
  const base: FlowRecord = {
    id: 0,
    uuid: randomUUID(),
    state: spec.status ? 'complete' : 'error',
    request: { method: spec.method, scheme: 'https', host: spec.host, port: 443, target: spec.target, httpVersion: '1.1', headers: spec.reqHeaders },
    requestBody: null,
    response: spec.status ? { status: spec.status, reason: 'OK', httpVersion: '1.1', headers: spec.resHeaders ?? [] } : null,
    responseBody: null,
    timings: spec.status ? { start: spec.t, connect: spec.t + 1.5, tls: spec.t + 4.25, requestSent: spec.t + 5, firstByte: spec.t + 9, end: spec.t + 12.5 } : { start: spec.t, end: spec.t + 30 },
    clientAddr: '127.0.0.1:50000',
    serverAddr: spec.serverAddr ?? '192.0.2.7:443',
    error: spec.error ?? null,
    requestBytes: spec.reqBody?.length ?? 0,
    responseBytes: spec.resBody?.length ?? 0,
    facts: {},
  };
  const id = rec.insertOpenFlow(base);
  const q = await store(spec.reqBody);
  const r = await store(spec.resBody);
  rec.finishFlow({ ...base, id, requestBody: q?.ref ?? null, responseBody: r?.ref ?? null }, q, r);
  return id;
}


const CONFIG = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
const LAYER = patternBytes(200_003, 11);
const SMALL_LAYER = patternBytes(5_000, 13);
const digestOf = (b: Buffer) => `sha256:${sha(b)}`;
const MANIFEST = Buffer.from(
  `${JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: CONFIG.length, digest: digestOf(CONFIG) },
      layers: [LAYER, SMALL_LAYER].map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: l.length, digest: digestOf(l) })),
    },
    null,
    3,
  )}\n`,
);
const ACCEPTS = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/json',
];

/** A dockerd-like pull of lab/img:1 as the recorder stores it (redacted: markers in place of secrets). */
async function addPull(rec: Recording, t: number): Promise<void> {
  const f = fixture.flows;
  const bearer: [string, string] = ['Authorization', 'Bearer REDACTED-5eed0001'];
  f.ping = await addFlow(rec, {
    method: 'GET',
    host: 'registry.test',
    target: '/v2/',
    reqHeaders: [['Host', 'registry.test']],
    status: 401,
    resHeaders: [
      ['Content-Type', 'application/json'],
      ['Www-Authenticate', 'Bearer realm="https://auth.test/token",service="registry.test"'],
      ['Date', 'Wed, 01 Jan 2020 00:00:00 GMT'],
    ],
    resBody: Buffer.from('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}\n'),
    t,
  });
  f.token = await addFlow(rec, {
    method: 'GET',
    host: 'auth.test',
    target: '/token?scope=repository%3Alab%2Fimg%3Apull&service=registry.test',
    reqHeaders: [['Host', 'auth.test']],
    status: 200,
    resHeaders: [['Content-Type', 'application/json']],
    resBody: Buffer.from('{"token":"REDACTED-5eed0001","access_token":"REDACTED-5eed0001","expires_in":300,"issued_at":"2020-01-01T00:00:00Z"}'),
    t: t + 10,
  });
  const manifestHeaders: HeaderList = [
    ['Content-Type', 'application/vnd.docker.distribution.manifest.v2+json'],
    ['Docker-Content-Digest', digestOf(MANIFEST)],
    ['Ratelimit-Remaining', '97;w=21600'],
  ];
  f.head = await addFlow(rec, { method: 'HEAD', host: 'registry.test', target: '/v2/lab/img/manifests/1', reqHeaders: [...ACCEPTS.map((a): [string, string] => ['Accept', a]), bearer], status: 200, resHeaders: manifestHeaders, t: t + 20 });
  f.list = await addFlow(rec, {
    method: 'GET',
    host: 'registry.test',
    target: '/v2/lab/img/manifests/1',
    reqHeaders: [...ACCEPTS.map((a): [string, string] => ['Accept', a]), bearer],
    status: 200,
    resHeaders: manifestHeaders,
    resBody: MANIFEST,
    t: t + 30,
  });
  let n = 0;
  for (const [name, blob] of [
    ['config', CONFIG],
    ['layer', LAYER],
    ['smallLayer', SMALL_LAYER],
  ] as const) {
    const hex = sha(blob);
    const cdn = `/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
    f[`${name}Redirect`] = await addFlow(rec, {
      method: 'GET',
      host: 'registry.test',
      target: `/v2/lab/img/blobs/sha256:${hex}`,
      reqHeaders: [bearer],
      status: 307,
      resHeaders: [['Location', `https://cdn.test${cdn}?verify=REDACTED-0000000${++n}&expires=REDACTED-1000000${n}`]],
      t: t + 40 + n * 10,
    });
    f[`${name}Cdn`] = await addFlow(rec, {
      method: 'GET',
      host: 'cdn.test',
      target: `${cdn}?verify=REDACTED-0000000${n}&expires=REDACTED-1000000${n}`,
      reqHeaders: [['Referer', `https://registry.test/v2/lab/img/blobs/sha256:${hex}`]],
      status: 200,
      resHeaders: [['Content-Type', 'application/octet-stream']],
      resBody: blob,
      t: t + 45 + n * 10,
    });
  }
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-har-'));
  fixture.path = path.join(tmp, 'pull.db');
  const rec = Recording.open(fixture.path, { create: true });
  rec.beginSession('test', {});
  const t = 1_800_000_000_000;
  await addPull(rec, t - 10_000);
  // A binary upload chunk (PATCH), a JSON body with Content-Encoding: gzip, a form POST,
  // a transport error, a 3 MiB body, and one with odd header values.
  extra.patch = await addFlow(rec, {
    method: 'PATCH',
    host: 'registry.test',
    target: '/v2/lab/img/blobs/uploads/abc?_state=REDACTED-0badf00d',
    reqHeaders: [
      ['Host', 'registry.test'],
      ['Content-Type', 'application/octet-stream'],
      ['Authorization', 'Bearer REDACTED-11112222'],
    ],
    reqBody: patternBytes(5000, 3),
    status: 202,
    resHeaders: [['Location', '/v2/lab/img/blobs/uploads/abc?_state=REDACTED-33334444']],
    t,
  });
  extra.gzip = await addFlow(rec, {
    method: 'GET',
    host: 'registry.test',
    target: '/v2/lab/img/tags/list?n=10&last=a%20b',
    reqHeaders: [['Accept-Encoding', 'gzip']],
    status: 200,
    resHeaders: [
      ['Content-Type', 'application/json'],
      ['Content-Encoding', 'gzip'],
    ],
    resBody: zlib.gzipSync(Buffer.from('{"name":"lab/img","tags":["1","2"]}')),
    t: t + 100,
  });
  extra.form = await addFlow(rec, {
    method: 'POST',
    host: 'auth.test',
    target: '/token',
    reqHeaders: [['Content-Type', 'application/x-www-form-urlencoded']],
    reqBody: Buffer.from('grant_type=password&username=u&password=REDACTED-aaaabbbb&scope=repository%3Alab%2Fimg%3Apull'),
    status: 200,
    resHeaders: [['Content-Type', 'application/json']],
    resBody: Buffer.from('{"access_token":"REDACTED-ccccdddd","expires_in":300}'),
    t: t + 200,
  });
  extra.error = await addFlow(rec, { method: 'GET', host: 'nowhere.test', target: '/v2/', reqHeaders: [], error: 'cannot resolve nowhere.test (ENOTFOUND)', t: t + 300, serverAddr: '' });
  extra.big = await addFlow(rec, { method: 'GET', host: 'cdn.test', target: '/big/data', reqHeaders: [], status: 200, resHeaders: [['Content-Type', 'application/octet-stream']], resBody: BIG, t: t + 400 });
  extra.odd = await addFlow(rec, {
    method: 'GET',
    host: 'registry.test',
    target: '/v2/',
    reqHeaders: [
      ['X-Empty', ''],
      ['X-Quote', `it's "quoted" \\ \u00e9\u4e2d`],
      ['X-Dup', '1'],
      ['x-dup', '2'],
    ],
    status: 200,
    resHeaders: [
      ['Set-Cookie', 'sid=REDACTED-12345678; Path=/; HttpOnly'],
      ['Set-Cookie', 'other=REDACTED-87654321; Secure'],
    ],
    resBody: Buffer.from('{}'),
    t: t + 500,
  });
  // A download cut off mid-body (aborted: no body stored), and a flow the recorder never finished (open).
  const aborted: FlowRecord = {
    id: 0,
    uuid: randomUUID(),
    state: 'aborted',
    request: { method: 'GET', scheme: 'https', host: 'cdn.test', port: 443, target: '/cut', httpVersion: '1.1', headers: [] },
    requestBody: null,
    response: { status: 200, reason: 'OK', httpVersion: '1.1', headers: [['Content-Length', '10000']] },
    responseBody: null,
    timings: { start: t + 600, requestSent: t + 601, firstByte: t + 602, end: t + 650 },
    clientAddr: null,
    serverAddr: null,
    error: 'client closed the connection after 5000 response bytes',
    requestBytes: 0,
    responseBytes: 5000,
    facts: {},
  };
  extra.aborted = rec.insertOpenFlow(aborted);
  rec.finishFlow({ ...aborted, id: extra.aborted }, null, null);
  extra.open = rec.insertOpenFlow({ uuid: randomUUID(), request: { ...aborted.request, target: '/never-finished' }, timings: { start: t + 700 }, clientAddr: '127.0.0.1:1' });
  rec.close();
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function exportHar(file: string, opts: Parameters<typeof writeHar>[2] = {}): Promise<{ doc: HarDoc; stats: Awaited<ReturnType<typeof writeHar>> }> {
  const rec = Recording.open(fixture.path, { readonly: true });
  try {
    const stats = await writeFileAtomically(file, (sink) => writeHar(rec, sink, opts));
    return { doc: JSON.parse(fs.readFileSync(file, 'utf8')) as HarDoc, stats };
  } finally {
    rec.close();
  }
}

describe('HAR export', () => {
  let doc: HarDoc;
  let flows: FlowRecord[];

  beforeAll(async () => {
    ({ doc } = await exportHar(path.join(tmp, 'all.har'), { maxBody: 100_000 }));
    const rec = Recording.open(fixture.path, { readonly: true });
    flows = rec.list();
    rec.close();
  });

  it('is valid HAR 1.2 (har-validator)', async () => {
    expect(doc.log.version).toBe('1.2');
    expect(doc.log.creator.name).toBe('regtape');
    expect(await validate(doc)).toEqual([]);
    expect(doc.log.entries).toHaveLength(flows.length);
  });

  it('keeps headers in wire order with duplicates, and the query string', () => {
    const list = doc.log.entries[fixture.flows.list! - 1]!;
    const accepts = list.request.headers.filter((h) => h.name === 'Accept').map((h) => h.value);
    expect(accepts).toHaveLength(6);
    expect(list.request.headers.map((h) => [h.name, h.value])).toEqual(flows[fixture.flows.list! - 1]!.request.headers);
    const odd = doc.log.entries[extra.odd! - 1]!;
    expect(odd.request.headers).toEqual([
      { name: 'X-Empty', value: '' },
      { name: 'X-Quote', value: `it's "quoted" \\ \u00e9\u4e2d` },
      { name: 'X-Dup', value: '1' },
      { name: 'x-dup', value: '2' },
    ]);
    const tags = doc.log.entries[extra.gzip! - 1]!;
    expect(tags.request.queryString).toEqual([
      { name: 'n', value: '10' },
      { name: 'last', value: 'a b' },
    ]);
    expect(tags.request.url).toBe('https://registry.test/v2/lab/img/tags/list?n=10&last=a%20b');
  });

  it('writes text as text, binary as base64, decoded Content-Encoding with its compression', () => {
    const token = doc.log.entries[fixture.flows.token! - 1]!;
    expect(token.response.content.text).toContain('"token"');
    expect(token.response.content.encoding).toBeUndefined();
    const small = doc.log.entries[fixture.flows.smallLayerCdn! - 1]!;
    expect(small.response.content.encoding).toBe('base64');
    expect(Buffer.from(small.response.content.text!, 'base64').equals(SMALL_LAYER)).toBe(true);
    const cfg = doc.log.entries[fixture.flows.configCdn! - 1]!;
    expect(cfg.response.content.text).toBe(CONFIG.toString());
    const patch = doc.log.entries[extra.patch! - 1]!;
    expect(patch.request.postData?.encoding).toBe('base64');
    expect(Buffer.from(patch.request.postData!.text!, 'base64').equals(patternBytes(5000, 3))).toBe(true);
    const gz = doc.log.entries[extra.gzip! - 1]!;
    expect(gz.response.content.text).toBe('{"name":"lab/img","tags":["1","2"]}');
    expect(gz.response.content.size).toBe(35);
    expect(gz.response.content.compression).toBe(35 - zlib.gzipSync(Buffer.from('{"name":"lab/img","tags":["1","2"]}')).length);
    const form = doc.log.entries[extra.form! - 1]!;
    expect(form.request.postData?.params).toContainEqual({ name: 'scope', value: 'repository:lab/img:pull' });
  });

  it('leaves out bodies over --max-body, saying why with their sha256 and size', () => {
    const layer = doc.log.entries[fixture.flows.layerCdn! - 1]!;
    const hex = sha(LAYER);
    expect(layer.response.content.text).toBeUndefined();
    expect(layer.response.content.size).toBe(200_003);
    expect(layer.response.content.comment).toContain(hex);
    expect(layer.response.content.comment).toContain('200003');
    expect(layer._regtape.responseBody).toMatchObject({ sha256: hex, size: 200_003, omitted: 'max-body' });
  });

  it('maps timings (connect includes ssl; unknown -1) and keeps a transport error as status 0', () => {
    const e = doc.log.entries[extra.patch! - 1]!;
    expect(e.timings).toEqual({ blocked: -1, dns: -1, connect: 4.25, ssl: 2.75, send: 0.75, wait: 4, receive: 3.5 });
    expect(e.time).toBe(12.5);
    expect(e.serverIPAddress).toBe('192.0.2.7');
    expect(new Date(e.startedDateTime).getTime()).toBe(1_800_000_000_000);
    const reused = harTimings({ start: 0, requestSent: 1, firstByte: 3, end: 10 });
    expect(reused).toMatchObject({ connect: -1, ssl: -1, send: 1, wait: 2, receive: 7 });
    const cut = doc.log.entries[extra.aborted! - 1]!;
    expect(cut._regtape.state).toBe('aborted');
    expect(cut.response.content.comment).toMatch(/not in the recording \(5000 bytes passed/);
    expect(doc.log.entries[extra.open! - 1]!._regtape.state).toBe('open');
    const err = doc.log.entries[extra.error! - 1]!;
    expect(err.response.status).toBe(0);
    expect(err.response._error).toMatch(/ENOTFOUND/);
    expect(err._regtape.state).toBe('error');
  });

  it('applies --filter and keeps the document valid', async () => {
    const { doc: only } = await exportHar(path.join(tmp, 'filtered.har'), { filter: parseFilter('~op manifest') });
    expect(only.log.entries.length).toBeGreaterThanOrEqual(2);
    expect(only.log.entries.every((e) => /\/manifests\//.test(e.request.url))).toBe(true);
    expect(await validate(only)).toEqual([]);
  });

  it('streams big bodies in bounded pieces instead of building the document in memory', async () => {
    const rec = Recording.open(fixture.path, { readonly: true });
    let biggest = 0;
    const parts: Buffer[] = [];
    const out = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        biggest = Math.max(biggest, chunk.length);
        parts.push(chunk);
        setImmediate(cb);
      },
    });
    const sink = new Sink(out);
    const stats = await writeHar(rec, sink, { maxBody: 64 << 20 });
    await sink.end();
    rec.close();
    expect(stats.bodiesOverLimit).toBe(0);
    // The 3 MiB body is 4 MiB of base64: it must not have been written in one piece.
    expect(biggest).toBeLessThan(2 << 20);
    const doc2 = JSON.parse(Buffer.concat(parts).toString('utf8')) as HarDoc;
    const big = doc2.log.entries[extra.big! - 1]!;
    expect(big.response.content.encoding).toBe('base64');
    expect(sha(Buffer.from(big.response.content.text!, 'base64'))).toBe(sha(BIG));
    expect(await validate(doc2)).toEqual([]);
  });

  it('does not leave a half-written file when the export fails', async () => {
    const file = path.join(tmp, 'fails.har');
    await expect(
      writeFileAtomically(file, async (sink) => {
        await sink.write('{"log":');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(tmp).filter((n) => n.includes('fails.har'))).toEqual([]);
  });
});

describe('HAR round trip: export → validate → import', () => {
  let before: FlowRecord[];
  let after: FlowRecord[];
  const MAX = 100_000;

  beforeAll(async () => {
    const file = path.join(tmp, 'roundtrip.har');
    const { doc } = await exportHar(file, { maxBody: MAX });
    expect(await validate(doc)).toEqual([]);
    const reports: string[] = [];
    const summary = await importHar(file, path.join(tmp, 'roundtrip.db'), { report: (l) => reports.push(l) });
    expect(summary.imported).toBe(doc.log.entries.length);
    // The two bodies over the cap are reported, not silently lost.
    expect(summary.bodiesOmitted).toBe(2);
    expect(reports.filter((r) => /not in the HAR/.test(r))).toHaveLength(2);
    let rec = Recording.open(fixture.path, { readonly: true });
    before = rec.list();
    rec.close();
    rec = Recording.open(path.join(tmp, 'roundtrip.db'), { readonly: true });
    after = rec.list();
    rec.close();
  });

  it('gives back the same flows: methods, URLs, statuses, header lists, state, timings', () => {
    expect(after).toHaveLength(before.length);
    for (const [i, a] of before.entries()) {
      const b = after[i]!;
      expect(b.request, `flow ${a.id}`).toEqual(a.request);
      expect(b.response, `flow ${a.id}`).toEqual(a.response);
      expect(b.state).toBe(a.state);
      expect(b.error).toBe(a.error);
      expect(b.uuid).toBe(a.uuid);
      expect(b.timings).toEqual(a.timings);
      expect(b.requestBytes).toBe(a.requestBytes);
      expect(b.responseBytes).toBe(a.responseBytes);
    }
  });

  it('gives back the same body digests for bodies under the cap, and the same registry facts', () => {
    let compared = 0;
    for (const [i, a] of before.entries()) {
      const b = after[i]!;
      for (const side of ['requestBody', 'responseBody'] as const) {
        const ref = a[side];
        if (!ref || ref.size > MAX) continue;
        expect(b[side], `flow ${a.id} ${side}`).toEqual(ref);
        compared++;
      }
      expect(b.registry?.role).toBe(a.registry?.role ?? b.registry?.role);
    }
    expect(compared).toBeGreaterThan(15);
  });
});
