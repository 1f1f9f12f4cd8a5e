import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffRecordings, renderDiff, type DiffResult } from '../../src/diff/index.js';
import type { FlowRecord, HeaderList } from '../../src/flow/index.js';
import { COLOR, loadRecording, PLAIN } from '../../src/inspect/index.js';
import { Recording } from '../../src/store/index.js';
import { patternBytes } from '../support/origin.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const digestOf = (b: Buffer) => `sha256:${sha(b)}`;
const MT = { v2: 'application/vnd.docker.distribution.manifest.v2+json', oci: 'application/vnd.oci.image.manifest.v1+json', layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip', ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip' };

interface Image {
  manifest: Buffer;
  mediaType: string;
  config: Buffer;
  layers: Buffer[];
}

function image(seed: number, layerSizes: number[], oci = false, shared?: Buffer): Image {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layers = layerSizes.map((n, i) => patternBytes(n, seed * 10 + i));
  if (shared) layers.unshift(shared);
  const mediaType = oci ? MT.oci : MT.v2;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: digestOf(config) },
      layers: layers.map((l) => ({ mediaType: oci ? MT.ociLayer : MT.layer, size: l.length, digest: digestOf(l) })),
    }),
  );
  return { manifest, mediaType, config, layers };
}

interface Run {
  image: Image;
  /** Token marker, trace id, date: what differs from run to run anyway. */
  marker: string;
  trace: string;
  date: string;
  remaining: string;
  /** ms per MB for the big layer (slower CDN in B). */
  msPerMb: number;
  challenge: string;
  /** Status of the tags/list request. */
  tagsStatus: number;
  server: string;
}

/** Write a small dockerd-like pull of lab/app:1 (and lab/other:2) with the store API. */
async function record(file: string, run: Run): Promise<void> {
  const rec = Recording.open(file, { create: true });
  rec.beginSession('test');
  let t = 1_700_000_000_000;
  const add = async (method: string, host: string, target: string, status: number, resHeaders: HeaderList, body?: Buffer, ms = 2, reqHeaders: HeaderList = []) => {
    const start = (t += 10);
    t += ms;
    const f: FlowRecord = {
      id: 0,
      uuid: randomUUID(),
      state: 'complete',
      request: { method, scheme: 'https', host, port: 443, target, httpVersion: '1.1', headers: [['Host', host], ...reqHeaders] },
      requestBody: null,
      // The Server header changes only for lab/app (the re-pushed repository's flows).
      response: { status, reason: '', httpVersion: '1.1', headers: [...resHeaders, ['Date', run.date], ['X-Trace-Id', run.trace], ...(target.includes('lab/app') || host === 'cdn.test' ? [['Server', run.server] as [string, string]] : [])] },
      responseBody: null,
      timings: { start, requestSent: start + 0.5, firstByte: start + 1, end: start + ms },
      clientAddr: null,
      serverAddr: null,
      error: null,
      requestBytes: 0,
      responseBytes: body?.length ?? 0,
      facts: {},
    };
    const id = rec.insertOpenFlow(f);
    const stored = body ? await rec.storeBody({ sha256: sha(body), size: body.length, buffer: body }, false) : null;
    rec.finishFlow({ ...f, id, responseBody: stored?.ref ?? null }, null, stored);
  };
  const bearer: HeaderList = [['Authorization', `Bearer ${run.marker}`]];
  await add('GET', 'registry.test', '/v2/', 401, [['Www-Authenticate', run.challenge]]);
  await add('GET', 'auth.test', '/token?scope=repository%3Alab%2Fapp%3Apull&service=registry.test', 200, [['Content-Type', 'application/json']], Buffer.from(`{"token":"${run.marker}"}`));
  const img = run.image;
  const mh: HeaderList = [
    ['Content-Type', img.mediaType],
    ['Docker-Content-Digest', digestOf(img.manifest)],
    ['Etag', `"${digestOf(img.manifest)}"`],
    ['Ratelimit-Remaining', run.remaining],
  ];
  await add('HEAD', 'registry.test', '/v2/lab/app/manifests/1', 200, mh, undefined, 2, bearer);
  await add('GET', 'registry.test', '/v2/lab/app/manifests/1', 200, mh, img.manifest, 2, bearer);
  for (const blob of [img.config, ...img.layers]) {
    const hex = sha(blob);
    const cdn = `https://cdn.test/blobs/sha256/${hex.slice(0, 2)}/${hex}/data?verify=${run.marker}`;
    await add('GET', 'registry.test', `/v2/lab/app/blobs/sha256:${hex}`, 307, [['Location', cdn]], undefined, 2, bearer);
    await add('GET', 'cdn.test', `/blobs/sha256/${hex.slice(0, 2)}/${hex}/data?verify=${run.marker}`, 200, [['Content-Type', 'application/octet-stream']], blob, Math.max(2, (blob.length / 1e6) * run.msPerMb));
  }
  await add('GET', 'registry.test', '/v2/lab/app/tags/list', run.tagsStatus, [['Content-Type', 'application/json']], Buffer.from('{"tags":["1"]}'), 2, bearer);
  // A second image that does not change between the runs.
  const other = image(99, [3000]);
  await add('GET', 'registry.test', '/v2/lab/other/manifests/2', 200, [['Content-Type', other.mediaType], ['Docker-Content-Digest', digestOf(other.manifest)]], other.manifest, 2, bearer);
  rec.close();
}

let tmp: string;
let result: DiffResult;
const shared = patternBytes(2_000_000, 1);
const before = image(1, [1500], false, shared);
const after = image(2, [2500, 700], true, shared);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-diff-'));
  const base = { challenge: 'Bearer realm="https://auth.test/token",service="registry.test"', tagsStatus: 200, server: 'registry/2.8' };
  await record(path.join(tmp, 'a.db'), { ...base, image: before, marker: 'REDACTED-0000aaaa', trace: 't-1', date: 'Mon, 01 Jan 2024 00:00:00 GMT', remaining: '99;w=21600', msPerMb: 10 });
  // Re-pushed tag, new challenge (scope added), tags/list now 404, a new Server header, a CDN 10× slower.
  await record(path.join(tmp, 'b.db'), {
    image: after,
    marker: 'REDACTED-0000bbbb',
    trace: 't-2',
    date: 'Tue, 02 Jan 2024 00:00:00 GMT',
    remaining: '42;w=21600',
    msPerMb: 100,
    challenge: 'Bearer realm="https://auth.test/token",service="registry.test",scope="repository:lab/app:pull"',
    tagsStatus: 404,
    server: 'registry/3.0',
  });
  const ra = Recording.open(path.join(tmp, 'a.db'), { readonly: true });
  const rb = Recording.open(path.join(tmp, 'b.db'), { readonly: true });
  result = diffRecordings(await loadRecording(ra), await loadRecording(rb), { a: 'a.db', b: 'b.db' });
  ra.close();
  rb.close();
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('diff of two recordings of a tag before and after a re-push', () => {
  it('matches operations by registry, repo and reference', () => {
    expect(result.operations.map((d) => `${d.repo}:${d.reference} ${d.presence} ${d.changed}`)).toEqual(['lab/app:1 both true', 'lab/app:null both true', 'lab/other:2 both false']);
    expect(result.summary).toEqual({ changed: 2, unchanged: 1, onlyA: 0, onlyB: 0 });
  });

  it('names the digest the tag moved to, the media type and the layers added and removed', () => {
    const d = result.operations[0]!;
    expect(d.digest).toEqual({ a: digestOf(before.manifest), b: digestOf(after.manifest), changed: true });
    expect(d.mediaType).toEqual({ a: MT.v2, b: MT.oci, changed: true });
    expect(d.layers.added.map((l) => l.digest).sort()).toEqual(after.layers.slice(1).map(digestOf).sort());
    expect(d.layers.removed.map((l) => l.digest)).toEqual([digestOf(before.layers[1]!)]);
    expect(d.layers.unchanged).toBe(1);
    expect(d.configs).toEqual({ added: [expect.objectContaining({ digest: digestOf(after.config) })], removed: [expect.objectContaining({ digest: digestOf(before.config) })] });
    expect(d.layerMediaTypes).toEqual({ a: [MT.layer], b: [MT.ociLayer], changed: true });
  });

  it('reports auth challenges, status codes and real header changes, not per-run noise', () => {
    const d = result.operations[0]!;
    expect(d.auth.added).toEqual(['Bearer realm="https://auth.test/token",service="registry.test",scope="repository:lab/app:pull"']);
    expect(d.auth.removed).toEqual(['Bearer realm="https://auth.test/token",service="registry.test"']);
    // The tags listing is an operation of its own (kind tags), with the status change.
    expect(d.statuses).toEqual([]);
    expect(result.operations[1]!.statuses).toEqual([{ request: 'GET tags /v2/lab/app/tags/list', a: [200], b: [404] }]);
    const names = new Set(d.headers.map((h) => h.header));
    expect(names.has('server')).toBe(true);
    expect(names.has('content-type')).toBe(true); // the manifest became OCI
    for (const noise of ['date', 'x-trace-id', 'ratelimit-remaining', 'etag', 'docker-content-digest', 'location', 'authorization']) expect(names.has(noise), noise).toBe(false);
    // The unchanged image differs only in noise (date, trace id): same.
    expect(result.operations[2]!.headers).toEqual([]);
  });

  it('reports wall time and the layer whose throughput dropped', () => {
    const d = result.operations[0]!;
    expect(d.timing.ratio).toBeGreaterThan(2);
    expect(d.timing.layers).toEqual([expect.objectContaining({ digest: digestOf(shared), size: 2_000_000 })]);
    expect(d.timing.layers[0]!.ratio).toBeCloseTo(0.1, 2);
  });

  it('renders for humans, coloured only when asked', () => {
    const text = renderDiff(result, PLAIN);
    expect(text).toContain('pull registry.test/lab/app:1: changed');
    expect(text).toContain(`digest     ${digestOf(before.manifest).slice(0, 19)} → ${digestOf(after.manifest).slice(0, 19)} (tag 1 moved)`);
    expect(text).toContain('type       Docker manifest v2 → OCI manifest');
    expect(text).toContain('status     GET tags /v2/lab/app/tags/list: 200 → 404');
    expect(text).toMatch(/slower +sha256:[0-9a-f]{12} 2\.0 MB: .* \(×0\.10\)/);
    expect(text).toMatch(/header +server: registry\/2\.8 → registry\/3\.0 on \d+ requests/);
    // A manifest GET and no blob, by a client without a User-Agent: an inspect.
    expect(text).toContain('inspect registry.test/lab/other:2: same');
    expect(text).toContain('2 changed, 1 same, 0 only in A, 0 only in B');
    expect(text).not.toContain('\x1b[');
    expect(renderDiff(result, COLOR)).toContain('\x1b[');
  });

  it('is stable JSON (documented in docs/JSON.md)', () => {
    const d = JSON.parse(JSON.stringify(result)) as DiffResult;
    expect(Object.keys(d)).toEqual(['a', 'b', 'operations', 'summary']);
    expect(Object.keys(d.operations[0]!)).toEqual([
      'registry',
      'repo',
      'reference',
      'kind',
      'presence',
      'changed',
      'digest',
      'mediaType',
      'platforms',
      'manifests',
      'configs',
      'layers',
      'transferred',
      'layerMediaTypes',
      'auth',
      'statuses',
      'headers',
      'timing',
      'problems',
    ]);
    const doc = fs.readFileSync(path.resolve(FIXTURES, '../docs/JSON.md'), 'utf8');
    for (const k of Object.keys(d.operations[0]!)) expect(doc, k).toContain(`\`${k}\``);
  });
});

describe('diff of real fixtures', () => {
  it('finds nothing to report between a recording and itself', async () => {
    const rec = Recording.open(path.join(FIXTURES, 'dockerd-pull-multiarch.db'), { readonly: true });
    const loaded = await loadRecording(rec);
    rec.close();
    const r = diffRecordings(loaded, loaded);
    expect(r.summary).toEqual({ changed: 0, unchanged: 2, onlyA: 0, onlyB: 0 });
  });

  it('sees the same images pulled by two clients: same digests, different request shapes', async () => {
    const open = async (n: string) => {
      const rec = Recording.open(path.join(FIXTURES, n), { readonly: true });
      try {
        return await loadRecording(rec);
      } finally {
        rec.close();
      }
    };
    const r = diffRecordings(await open('dockerd-pull-multiarch.db'), await open('skopeo-copy.db'));
    const alpine = r.operations.find((d) => d.repo === 'lab/alpine')!;
    expect(alpine.presence).toBe('both');
    expect(alpine.digest.changed).toBe(false);
    expect(alpine.layers.added).toEqual([]);
    expect(r.operations.find((d) => d.repo === 'lab/tiny')?.presence).toBe('b');
    expect(r.operations.find((d) => d.repo === 'lab/oci')?.presence).toBe('a');
  });
});
