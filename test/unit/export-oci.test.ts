import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOciLayout, parseImageSelector } from '../../src/export/index.js';
import type { FlowRecord, HeaderList } from '../../src/flow/index.js';
import { Recording } from '../../src/store/index.js';
import { patternBytes } from '../support/origin.js';
import { RegtapeError } from '../../src/errors/index.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const V2 = 'application/vnd.docker.distribution.manifest.v2+json';

interface IndexJson {
  schemaVersion: number;
  mediaType: string;
  manifests: Array<{ mediaType: string; digest: string; size: number; platform?: Record<string, string>; annotations?: Record<string, string> }>;
}

let tmp: string;
const readIndex = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJson;

/** Every blob file is named by the sha256 of its bytes. */
function checkBlobs(dir: string): string[] {
  const names = fs.readdirSync(path.join(dir, 'blobs', 'sha256'));
  for (const n of names) expect(sha(fs.readFileSync(path.join(dir, 'blobs', 'sha256', n))), n).toBe(n);
  return names;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-oci-'));
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('image selectors', () => {
  it.each([
    ['lab/alpine:3.9', { host: null, repo: 'lab/alpine', tag: '3.9', digest: null }],
    ['registry.test/lab/alpine:3.9', { host: 'registry.test', repo: 'lab/alpine', tag: '3.9', digest: null }],
    ['localhost:5000/x', { host: 'localhost:5000', repo: 'x', tag: null, digest: null }],
    [`alpine@sha256:${'a'.repeat(64)}`, { host: null, repo: 'alpine', tag: null, digest: `sha256:${'a'.repeat(64)}` }],
  ])('parses %s', (s, want) => expect(parseImageSelector(s)).toEqual(want));

  it('refuses what is not a reference', () => {
    expect(() => parseImageSelector('Lab/Alpine')).toThrow(RegtapeError);
    expect(() => parseImageSelector('x@latest')).toThrow(/latest is not a digest/);
  });
});

describe('OCI layout from the fixtures', () => {
  it('writes the fetched platform of each partially pulled index, with its platform and the tag', async () => {
    const dir = path.join(tmp, 'partial');
    const notes: string[] = [];
    const rec = Recording.open(path.join(FIXTURES, 'dockerd-pull-multiarch.db'), { readonly: true });
    const r = await exportOciLayout(rec, dir, { log: (l) => notes.push(l) });
    rec.close();
    expect(r.images.map((i) => [i.name, i.mode, i.platforms, i.refNames])).toEqual([
      ['registry.test/lab/alpine:3.9', 'platforms', ['linux/amd64'], ['3.9']],
      ['registry.test/lab/oci:1', 'platforms', ['linux/amd64'], ['1']],
    ]);
    expect(notes.join('\n')).toMatch(/2 of 3 platforms were not fetched, so the list sha256:20ded9c7f836… is not written/);
    const index = readIndex(dir);
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => [m.mediaType, m.platform, m.annotations?.['org.opencontainers.image.ref.name']])).toEqual([
      [V2, { architecture: 'amd64', os: 'linux' }, '3.9'],
      ['application/vnd.oci.image.manifest.v1+json', { architecture: 'amd64', os: 'linux' }, '1'],
    ]);
    // Two manifests + two configs + three layers; no index/list (not complete).
    const blobs = checkBlobs(dir);
    expect(blobs).toHaveLength(7);
    expect(blobs).not.toContain('20ded9c7f836840b2b9f2d6d71dc7c12c4e08b4c3fa6c1a3b2be174b754a86f4');
    expect(r.blobsWritten).toBe(7);
    // Again into the same layout: blobs are already there, entries replaced, not duplicated.
    const again = Recording.open(path.join(FIXTURES, 'dockerd-pull-multiarch.db'), { readonly: true });
    const r2 = await exportOciLayout(again, dir, { images: ['lab/oci:1'] });
    again.close();
    expect(r2.blobsWritten).toBe(0);
    expect(r2.blobsPresent).toBe(3);
    expect(readIndex(dir).manifests).toHaveLength(2);
  });

  it('exports a platform manifest by digest though the pull asked for the index by tag', async () => {
    const amd64 = 'sha256:481641640497a7bea0885204411b9044027c6c6baefbd38d76e8b24df64600ce';
    const rec = Recording.open(path.join(FIXTURES, 'dockerd-pull-multiarch.db'), { readonly: true });
    const r = await exportOciLayout(rec, path.join(tmp, 'platform'), { images: [`lab/oci@${amd64}`] });
    rec.close();
    expect(r.images).toEqual([{ name: `registry.test/lab/oci@${amd64}`, digest: amd64, mediaType: 'application/vnd.oci.image.manifest.v1+json', mode: 'image', platforms: [], refNames: [] }]);
    expect(readIndex(path.join(tmp, 'platform')).manifests[0]!.annotations).toEqual({ 'io.containerd.image.name': `registry.test/lab/oci@${amd64}` });
    expect(checkBlobs(path.join(tmp, 'platform'))).toHaveLength(3);
  });

  it('writes a single-manifest image as itself and skips what is incomplete, saying why', async () => {
    const rec = Recording.open(path.join(FIXTURES, 'skopeo-copy.db'), { readonly: true });
    // skopeo inspect --raw fetched lab/tiny's manifest only: no config or layer.
    await expect(exportOciLayout(rec, path.join(tmp, 'tiny'), { images: ['lab/tiny:latest'] })).rejects.toThrow(/nothing to export: registry\.test\/lab\/tiny:latest: config sha256:[0-9a-f]{12}… not fetched/);
    const r = await exportOciLayout(rec, path.join(tmp, 'both'));
    rec.close();
    expect(r.images.map((i) => i.name)).toEqual(['registry.test/lab/alpine:3.9']);
    expect(r.skipped).toEqual([{ name: 'registry.test/lab/tiny:latest', why: expect.stringMatching(/config .* not fetched; layer .* not fetched/) }]);
    expect(fs.readdirSync(path.join(tmp)).filter((n) => n === 'tiny')).toEqual([]);
  });

  it('refuses unknown images and directories that are not layouts', async () => {
    const rec = Recording.open(path.join(FIXTURES, 'ctr-pull.db'), { readonly: true });
    await expect(exportOciLayout(rec, path.join(tmp, 'x'), { images: ['lab/nope'] })).rejects.toThrow(/no such image pulled .*pulled: registry\.test\/lab\/tiny:latest, registry\.test\/lab\/alpine:3\.9/);
    fs.mkdirSync(path.join(tmp, 'busy'));
    fs.writeFileSync(path.join(tmp, 'busy', 'file'), 'x');
    await expect(exportOciLayout(rec, path.join(tmp, 'busy'))).rejects.toThrow(/not empty and not an OCI layout/);
    rec.close();
  });
});

describe('OCI layout from a synthetic recording', () => {
  let db: string;
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = patternBytes(70_000, 4);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: V2,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: `sha256:${sha(config)}` },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: `sha256:${sha(layer)}` }],
    }),
  );

  beforeAll(async () => {
    db = path.join(tmp, 'two-registries.db');
    const rec = Recording.open(db, { create: true });
    rec.beginSession('test');
    let t = 1_700_000_000_000;
    const add = async (host: string, target: string, headers: HeaderList, body: Buffer) => {
      const f: FlowRecord = {
        id: 0,
        uuid: randomUUID(),
        state: 'complete',
        request: { method: 'GET', scheme: 'https', host, port: 443, target, httpVersion: '1.1', headers: [] },
        requestBody: null,
        response: { status: 200, reason: 'OK', httpVersion: '1.1', headers },
        responseBody: null,
        timings: { start: (t += 10), end: t + 1 },
        clientAddr: null,
        serverAddr: null,
        error: null,
        requestBytes: 0,
        responseBytes: body.length,
        facts: {},
      };
      f.id = rec.insertOpenFlow(f);
      const stored = await rec.storeBody({ sha256: sha(body), size: body.length, buffer: body }, false);
      rec.finishFlow({ ...f, responseBody: stored!.ref }, null, stored);
    };
    // The same image pulled from two registries (a mirror and the origin).
    for (const host of ['mirror.test', 'origin.test']) {
      await add(host, '/v2/team/app/manifests/1', [['Content-Type', V2]], manifest);
      await add(host, `/v2/team/app/blobs/sha256:${sha(config)}`, [], config);
      await add(host, `/v2/team/app/blobs/sha256:${sha(layer)}`, [], layer);
    }
    rec.close();
  });

  it('needs the registry host when a repository was pulled from two', async () => {
    const rec = Recording.open(db, { readonly: true });
    await expect(exportOciLayout(rec, path.join(tmp, 'amb'), { images: ['team/app:1'] })).rejects.toThrow(/team\/app:1 is ambiguous: mirror\.test\/team\/app, origin\.test\/team\/app were pulled; put the registry host in front/);
    const r = await exportOciLayout(rec, path.join(tmp, 'origin'), { images: ['origin.test/team/app:1'] });
    rec.close();
    expect(r.images).toEqual([{ name: 'origin.test/team/app:1', digest: `sha256:${sha(manifest)}`, mediaType: V2, mode: 'image', platforms: [], refNames: ['1'] }]);
    expect(readIndex(path.join(tmp, 'origin')).manifests).toEqual([
      { mediaType: V2, digest: `sha256:${sha(manifest)}`, size: manifest.length, annotations: { 'io.containerd.image.name': 'origin.test/team/app:1', 'org.opencontainers.image.ref.name': '1' } },
    ]);
    expect(checkBlobs(path.join(tmp, 'origin')).sort()).toEqual([sha(config), sha(layer), sha(manifest)].sort());
  });

  it('finds an image by the digest its tag resolved to', async () => {
    const rec = Recording.open(db, { readonly: true });
    const r = await exportOciLayout(rec, path.join(tmp, 'bydigest'), { images: [`mirror.test/team/app@sha256:${sha(manifest)}`] });
    rec.close();
    expect(r.images.map((i) => i.name)).toEqual(['mirror.test/team/app:1']);
  });
});
