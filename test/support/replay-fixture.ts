import { createHash, randomUUID } from 'node:crypto';
import type { FlowRecord, HeaderList } from '../../src/flow/index.js';
import { INLINE_LIMIT, Recording, type StoredBody } from '../../src/store/index.js';
import { patternBytes } from './origin.js';

/**
 * A synthetic recording of a Docker-Hub-like pull, written with the real store API
 * (insertOpenFlow + storeBody + finishFlow), for replay tests that need no registry,
 * no dockerd and no network.
 *
 * Hosts: registry.test (registry), auth.test (token realm), cdn.test (blob storage,
 * reached through 307 redirects with a signed `verify=` query).
 */

export const REGISTRY = 'registry.test';
export const AUTH = 'auth.test';
export const CDN = 'cdn.test';
export const REALM = `https://${AUTH}/token`;
export const CHALLENGE = `Bearer realm="${REALM}",service="${REGISTRY}"`;
export const TOKEN_JSON = '{"token":"REDACTED-1","access_token":"REDACTED-1","expires_in":300,"issued_at":"2020-01-01T00:00:00Z"}';

export const MT = {
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
  v2: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  prettyjws: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  json: 'application/json',
} as const;

/** The Accept types dockerd 20.10–28 sends, as six separate header lines in some order. */
export const DOCKERD_ACCEPTS = [MT.v2, MT.list, MT.ociManifest, MT.ociIndex, MT.prettyjws, MT.json];

export function sha256hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function digestOf(b: Buffer): string {
  return `sha256:${sha256hex(b)}`;
}

export interface Blob {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  /** The CDN URL the registry redirected to, as recorded (with its signed query). */
  cdnUrl: string;
}

export interface Manifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export interface Fixture {
  path: string;
  blobs: {
    amd64Config: Blob;
    amd64Layer: Blob;
    arm64Config: Blob;
    arm64Layer: Blob;
    ociConfig: Blob;
    ociLayer: Blob;
  };
  manifests: { list: Manifest; amd64: Manifest; arm64: Manifest; oci: Manifest; alpine: Manifest; unused: Manifest };
  /** Recorded flow ids by a short name. */
  flows: Record<string, number>;
}

function blob(bytes: Buffer, mediaType: string, n: number): Blob {
  const hex = sha256hex(bytes);
  return {
    bytes,
    digest: `sha256:${hex}`,
    mediaType,
    cdnUrl: `https://${CDN}/registry-v2/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data?verify=REDACTED-${1000 + n}`,
  };
}

function manifest(doc: unknown, mediaType: string): Manifest {
  // Pretty-printed like Docker Hub's bodies: the digest is of these exact bytes.
  const bytes = Buffer.from(`${JSON.stringify(doc, null, 3)}\n`);
  return { bytes, digest: digestOf(bytes), mediaType };
}

function desc(x: { bytes: Buffer; digest: string; mediaType: string }, extra: Record<string, unknown> = {}) {
  return { mediaType: x.mediaType, size: x.bytes.length, digest: x.digest, ...extra };
}

/** Store a Buffer as a body the way the recorder does: through a BodyTap, then storeBody. */
export async function storeBuffer(rec: Recording, buf: Buffer): Promise<StoredBody | null> {
  if (!buf.length) return null;
  const tap = rec.bodies.tap({ bufferLimit: INLINE_LIMIT });
  const sink: Buffer[] = [];
  tap.on('data', (c: Buffer) => sink.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    tap.once('end', resolve);
    tap.once('error', reject);
  });
  for (let i = 0; i < buf.length; i += 16 * 1024) tap.write(buf.subarray(i, i + 16 * 1024));
  tap.end();
  await ended;
  const captured = await tap.result();
  if (!captured) throw new Error('body tap did not complete');
  if (captured.sha256 !== sha256hex(buf)) throw new Error('body tap hashed something else');
  return rec.storeBody(captured, false);
}

export interface FlowSpec {
  method?: string;
  host?: string;
  target: string;
  reqHeaders?: HeaderList;
  status: number;
  resHeaders?: HeaderList;
  body?: Buffer;
  /** HEAD: advertise this Content-Length though no body was stored. */
  headLength?: number;
  /** Facts the recorder derived (token claims decoded before redaction). */
  facts?: FlowRecord['facts'];
}

/** The claims the recorder decoded from a recorded token (Docker Hub shaped). */
export function tokenClaims(repo: string): Record<string, unknown> {
  return { iss: 'auth.test', aud: REGISTRY, sub: '', iat: 1577836800, nbf: 1577836800, exp: 1577837100, jti: 'recorded', access: [{ type: 'repository', name: repo, actions: ['pull'], parameters: { pull_limit: '100', pull_limit_interval: '21600' } }] };
}

const UA: [string, string] = ['User-Agent', 'docker/20.10.24+dfsg1 go/go1.19.8 git-commit/5d6db84 kernel/6.1.0 os/linux arch/amd64'];
const BEARER: [string, string] = ['Authorization', 'Bearer REDACTED-1'];

export async function addFlow(rec: Recording, t0: number, s: FlowSpec): Promise<number> {
  const method = s.method ?? 'GET';
  const host = s.host ?? REGISTRY;
  const reqHeaders: HeaderList = [['Host', host], UA, ...(s.reqHeaders ?? [])];
  const body = s.body && method !== 'HEAD' ? s.body : undefined;
  const length = s.headLength ?? body?.length ?? 0;
  const resHeaders: HeaderList = [...(s.resHeaders ?? []), ['Content-Length', String(length)], ['Date', 'Wed, 01 Jan 2020 00:00:00 GMT']];
  const base: FlowRecord = {
    id: 0,
    uuid: randomUUID(),
    state: 'complete',
    request: { method, scheme: 'https', host, port: 443, target: s.target, httpVersion: '1.1', headers: reqHeaders },
    requestBody: null,
    response: { status: s.status, reason: '', httpVersion: '1.1', headers: resHeaders },
    responseBody: null,
    timings: { start: t0, requestSent: t0 + 1, firstByte: t0 + 2, end: t0 + 3 },
    clientAddr: '127.0.0.1:40000',
    serverAddr: '192.0.2.1:443',
    error: null,
    requestBytes: 0,
    responseBytes: body?.length ?? 0,
    facts: s.facts ?? {},
    registry: null,
    marked: false,
    comment: null,
  };
  const id = rec.insertOpenFlow(base);
  const stored = body ? await storeBuffer(rec, body) : null;
  const flow: FlowRecord = { ...base, id, responseBody: stored ? stored.ref : null };
  rec.finishFlow(flow, null, stored);
  return id;
}

/** Write the recording at `dbPath` (NAME.db, NAME.blobs/ beside it) and describe what is in it. */
export async function buildPullRecording(dbPath: string): Promise<Fixture> {
  const cfg = (arch: string) =>
    Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(63)}${arch.length}`] } }));
  const blobs = {
    amd64Config: blob(cfg('amd64'), MT.dockerConfig, 1),
    // Bigger than the inline limit: stored as a file in NAME.blobs/, served by streaming.
    amd64Layer: blob(patternBytes(200_003, 11), MT.dockerLayer, 2),
    arm64Config: blob(cfg('arm64'), MT.dockerConfig, 3),
    arm64Layer: blob(patternBytes(3_001, 12), MT.dockerLayer, 4),
    ociConfig: blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), MT.ociConfig, 5),
    ociLayer: blob(patternBytes(5_000, 13), MT.ociLayer, 6),
  };
  const amd64 = manifest({ schemaVersion: 2, mediaType: MT.v2, config: desc(blobs.amd64Config), layers: [desc(blobs.amd64Layer)] }, MT.v2);
  const arm64 = manifest({ schemaVersion: 2, mediaType: MT.v2, config: desc(blobs.arm64Config), layers: [desc(blobs.arm64Layer)] }, MT.v2);
  const list = manifest(
    {
      schemaVersion: 2,
      mediaType: MT.list,
      manifests: [desc(arm64, { platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } }), desc(amd64, { platform: { architecture: 'amd64', os: 'linux' } })],
    },
    MT.list,
  );
  const oci = manifest({ schemaVersion: 2, mediaType: MT.ociManifest, config: desc(blobs.ociConfig), layers: [desc(blobs.ociLayer)] }, MT.ociManifest);
  const alpine = manifest({ schemaVersion: 2, mediaType: MT.v2, config: desc(blobs.amd64Config), layers: [desc(blobs.amd64Layer)], annotations: { repo: 'library/alpine' } }, MT.v2);
  const unused = manifest({ schemaVersion: 2, mediaType: MT.v2, config: desc(blobs.arm64Config), layers: [desc(blobs.arm64Layer)], annotations: { repo: 'lab/unused' } }, MT.v2);

  const rec = Recording.open(dbPath, { create: true });
  const flows: Record<string, number> = {};
  try {
    rec.beginSession('test', { fixture: 'replay' });
    let t = 1_700_000_000_000;
    const add = async (name: string, s: FlowSpec) => {
      flows[name] = await addFlow(rec, (t += 10), s);
    };
    const accept = (types: string[]): HeaderList => types.map((a): [string, string] => ['Accept', a]);
    const manifestHeaders = (m: Manifest): HeaderList => [
      ['Content-Type', m.mediaType],
      ['Docker-Content-Digest', m.digest],
      ['Docker-Distribution-Api-Version', 'registry/2.0'],
      ['Etag', `"${m.digest}"`],
      ['Strict-Transport-Security', 'max-age=31536000'],
      ['Ratelimit-Limit', '100;w=21600'],
      ['Ratelimit-Remaining', '97;w=21600'],
    ];
    const unauthorized = Buffer.from('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}\n');

    // Ping, unauthenticated: the challenge.
    await add('ping', {
      target: '/v2/',
      status: 401,
      resHeaders: [
        ['Content-Type', 'application/json'],
        ['Docker-Distribution-Api-Version', 'registry/2.0'],
        ['Www-Authenticate', CHALLENGE],
      ],
      body: unauthorized,
    });
    // Token (anonymous GET).
    await add('token', {
      host: AUTH,
      target: `/token?scope=${encodeURIComponent('repository:lab/img:pull')}&service=${REGISTRY}`,
      status: 200,
      resHeaders: [['Content-Type', 'application/json; charset=utf-8'], ['X-Trace-Id', 'abc']],
      body: Buffer.from(TOKEN_JSON),
      facts: { tokens: ['token', 'access_token'].map((k) => ({ where: `response.body:${k}`, marker: 'REDACTED-1', claims: tokenClaims('lab/img') })) },
    });
    // dockerd: HEAD by tag, GET by tag, children by digest.
    await add('headTag', { method: 'HEAD', target: '/v2/lab/img/manifests/1', reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER], status: 200, resHeaders: manifestHeaders(list), headLength: list.bytes.length });
    await add('list', { target: '/v2/lab/img/manifests/1', reqHeaders: [...accept([...DOCKERD_ACCEPTS].reverse()), BEARER], status: 200, resHeaders: manifestHeaders(list), body: list.bytes });
    await add('amd64', { target: `/v2/lab/img/manifests/${amd64.digest}`, reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER], status: 200, resHeaders: manifestHeaders(amd64), body: amd64.bytes });
    await add('arm64', { target: `/v2/lab/img/manifests/${arm64.digest}`, reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER], status: 200, resHeaders: manifestHeaders(arm64), body: arm64.bytes });
    const blobPair = async (name: string, repo: string, b: Blob) => {
      await add(`${name}Redirect`, {
        target: `/v2/${repo}/blobs/${b.digest}`,
        reqHeaders: [BEARER],
        status: 307,
        resHeaders: [
          ['Content-Type', 'application/octet-stream'],
          ['Docker-Distribution-Api-Version', 'registry/2.0'],
          ['Location', b.cdnUrl],
        ],
      });
      const u = new URL(b.cdnUrl);
      await add(`${name}Cdn`, {
        host: CDN,
        target: `${u.pathname}${u.search}`,
        status: 200,
        resHeaders: [
          ['Content-Type', 'application/octet-stream'],
          ['Accept-Ranges', 'bytes'],
          ['Etag', '"5d41402abc4b2a76b9719d911017c592"'],
          ['Server', 'cloudflare'],
          ['Cf-Ray', '1234-AMS'],
        ],
        body: b.bytes,
      });
    };
    await blobPair('amd64Config', 'lab/img', blobs.amd64Config);
    await blobPair('amd64Layer', 'lab/img', blobs.amd64Layer);
    await blobPair('arm64Config', 'lab/img', blobs.arm64Config);
    await blobPair('arm64Layer', 'lab/img', blobs.arm64Layer);
    // An OCI image, pulled the containerd way: no ping, an unauthenticated attempt, a 401, a token, the retry.
    await add('ociUnauthorized', {
      target: '/v2/lab/oci/manifests/1',
      reqHeaders: [['Accept', `${MT.ociManifest}, ${MT.ociIndex}, ${MT.v2}, ${MT.list}, */*`]],
      status: 401,
      resHeaders: [
        ['Content-Type', 'application/json'],
        ['Www-Authenticate', `${CHALLENGE},scope="repository:lab/oci:pull"`],
      ],
      body: unauthorized,
    });
    await add('ociToken', {
      host: AUTH,
      target: `/token?scope=${encodeURIComponent('repository:lab/oci:pull')}&service=${REGISTRY}`,
      status: 200,
      resHeaders: [['Content-Type', 'application/json; charset=utf-8']],
      body: Buffer.from(TOKEN_JSON.replace('REDACTED-1', 'REDACTED-2').replace('REDACTED-1', 'REDACTED-2')),
    });
    await add('oci', { target: '/v2/lab/oci/manifests/1', reqHeaders: [['Accept', `${MT.ociManifest}, ${MT.ociIndex}, ${MT.v2}, ${MT.list}, */*`], BEARER], status: 200, resHeaders: manifestHeaders(oci), body: oci.bytes });
    await blobPair('ociConfig', 'lab/oci', blobs.ociConfig);
    await blobPair('ociLayer', 'lab/oci', blobs.ociLayer);
    // Docker Hub official image (library/), and things the tests never ask for.
    await add('alpine', { target: '/v2/library/alpine/manifests/latest', reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER], status: 200, resHeaders: manifestHeaders(alpine), body: alpine.bytes });
    await add('unused', { target: '/v2/lab/unused/manifests/1', reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER], status: 200, resHeaders: manifestHeaders(unused), body: unused.bytes });
    await add('tagsList', {
      target: '/v2/lab/img/tags/list',
      reqHeaders: [BEARER],
      status: 200,
      resHeaders: [['Content-Type', 'application/json']],
      body: Buffer.from('{"name":"lab/img","tags":["1"]}\n'),
    });
  } finally {
    rec.close();
  }
  return { path: dbPath, blobs, manifests: { list, amd64, arm64, oci, alpine, unused }, flows };
}
