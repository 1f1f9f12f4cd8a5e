/**
 * Operations (pulls and pushes rebuilt from flows) on the real fixtures, the filter language over them,
 * and problem detection on a synthetic recording. Expected values come from what the clients did (see
 * fixtures/README.md) and the lab's image digests (test/support/fixtures.ts), not from running the code.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFilter } from '../../src/filter/index.js';
import type { BodyRef, FlowRecord, FlowState, HeaderList } from '../../src/flow/index.js';
import { filterSubject, loadRecording, type LoadedRecording } from '../../src/inspect/index.js';
import { buildOperations, Classifier, parseManifest, type Operation, type ParsedManifest } from '../../src/registry/index.js';
import type { Recording } from '../../src/store/index.js';
import { cdnPath, D, MT, openFixture, type FixtureName } from '../support/fixtures.js';

const R = 'registry.test';
const CDN = 'cdn.test';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Id of the one flow with this method, host and target. */
function idOf(flows: FlowRecord[], method: string, host: string, target: string): number {
  const found = flows.filter((f) => f.request.method === method && f.request.host === host && f.request.target === target);
  if (found.length !== 1) throw new Error(`${found.length} flows ${method} ${host}${target}`);
  return found[0]!.id;
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('operations on fixtures', () => {
  const open: Recording[] = [];
  async function load(name: FixtureName): Promise<{ rec: Recording; loaded: LoadedRecording }> {
    const rec = openFixture(name);
    open.push(rec);
    return { rec, loaded: await loadRecording(rec) };
  }
  afterAll(() => {
    for (const r of open) r.close();
  });

  describe('dockerd-pull-multiarch', () => {
    let loaded: LoadedRecording;
    beforeAll(async () => {
      ({ loaded } = await load('dockerd-pull-multiarch'));
    });

    it('is two pulls: lab/alpine:3.9 through its manifest list, lab/oci:1 through its OCI index', () => {
      const flows = loaded.flows;
      const cdnFlow = (d: string) => [idOf(flows, 'GET', CDN, cdnPath(d))];
      const blob = (digest: string, size: number, mediaType: string, kind: 'config' | 'layer', manifest: string) => ({
        digest,
        size,
        mediaType,
        kind,
        flowIds: cdnFlow(digest), // the CDN download carried the bytes (the 307 did not)
        bytes: size,
        ms: expect.any(Number),
        throughput: expect.any(Number),
        via: CDN,
        cdn: true,
        manifest,
      });
      const expected: Operation[] = [
        {
          kind: 'pull',
          registry: R,
          repo: 'lab/alpine',
          reference: '3.9',
          // ping, token, HEAD tag, GET list, GET amd64 manifest, 3 × (307 + CDN GET)
          flowIds: range(1, 11),
          index: {
            digest: D.alpineList,
            mediaType: MT.dockerList,
            platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
            flowId: idOf(flows, 'GET', R, `/v2/lab/alpine/manifests/${D.alpineList}`),
          },
          // dockerd on amd64 pulls one platform.
          manifests: [{ digest: D.alpineAmd64, mediaType: MT.dockerManifest, platform: 'linux/amd64', flowId: idOf(flows, 'GET', R, `/v2/lab/alpine/manifests/${D.alpineAmd64}`) }],
          blobs: [
            blob(D.alpineAmd64Config, 536, MT.dockerConfig, 'config', D.alpineAmd64),
            blob(D.alpineAmd64Layer0, 704073, MT.dockerLayer, 'layer', D.alpineAmd64),
            blob(D.alpineAmd64Layer1, 1503877, MT.dockerLayer, 'layer', D.alpineAmd64),
          ],
          totals: { flows: 11, bytes: expect.any(Number), wallMs: expect.any(Number), start: expect.any(Number), end: expect.any(Number) },
          problems: [],
        },
        {
          kind: 'pull',
          registry: R,
          repo: 'lab/oci',
          reference: '1',
          flowIds: range(12, 20),
          index: {
            digest: D.ociIndex,
            mediaType: MT.ociIndex,
            platforms: ['linux/amd64', 'linux/arm64'],
            flowId: idOf(flows, 'GET', R, `/v2/lab/oci/manifests/${D.ociIndex}`),
          },
          manifests: [{ digest: D.ociAmd64, mediaType: MT.ociManifest, platform: 'linux/amd64', flowId: idOf(flows, 'GET', R, `/v2/lab/oci/manifests/${D.ociAmd64}`) }],
          blobs: [blob(D.ociAmd64Config, 359, MT.ociConfig, 'config', D.ociAmd64), blob(D.ociAmd64Layer0, 404021, MT.ociLayer, 'layer', D.ociAmd64)],
          totals: { flows: 9, bytes: expect.any(Number), wallMs: expect.any(Number), start: expect.any(Number), end: expect.any(Number) },
          problems: [],
        },
      ];
      expect(loaded.operations).toEqual(expected);
    });

    it('totals: every byte of the operation’s flows, the blobs included; start/end span them', () => {
      for (const op of loaded.operations) {
        const flows = loaded.flows.filter((f) => op.flowIds.includes(f.id));
        expect(op.totals.bytes).toBe(flows.reduce((n, f) => n + f.requestBytes + f.responseBytes, 0));
        expect(op.totals.bytes).toBeGreaterThan(op.blobs.reduce((n, b) => n + b.size, 0));
        expect(op.totals.start).toBe(Math.min(...flows.map((f) => f.timings.start)));
        expect(op.totals.end).toBe(Math.max(...flows.map((f) => f.timings.end!)));
        expect(op.totals.wallMs).toBe(op.totals.end - op.totals.start);
      }
    });
  });

  it('dockerd-push: one push of lab/pushed:1; the layer mounted from lab/tiny, the config uploaded', async () => {
    const { rec, loaded } = await load('dockerd-push');
    const flows = loaded.flows;
    const put = flows.find((f) => f.request.method === 'PUT' && f.request.target === '/v2/lab/pushed/manifests/1')!;
    const pushedManifest = sha256(rec.readBodySync(put.requestBody!.sha256!)!);
    const patch = flows.find((f) => f.request.method === 'PATCH')!;
    const finish = flows.find((f) => f.request.method === 'PUT' && f.request.target.includes('/blobs/uploads/'))!;
    const loginToken = idOf(flows, 'GET', 'auth.test', '/token?account=labuser&client_id=docker&offline_token=true&service=registry.test');
    const expected: Operation[] = [
      {
        kind: 'push',
        registry: R,
        repo: 'lab/pushed',
        reference: '1',
        // Every flow but the login's token request (it asks for no repository): the login's pings wait for
        // the next operation on their registry, the OAuth POSTs are attributed by the scopes they got.
        flowIds: range(1, 17).filter((id) => id !== loginToken),
        manifests: [{ digest: pushedManifest, mediaType: MT.dockerManifest, flowId: put.id }],
        blobs: [
          {
            digest: D.tinyConfig,
            size: 359,
            mediaType: MT.dockerConfig,
            kind: 'config',
            flowIds: [patch.id, finish.id], // the chunk and the PUT that finished its session
            bytes: 359,
            ms: expect.any(Number),
            throughput: expect.any(Number),
            via: R,
            cdn: false,
            manifest: pushedManifest,
          },
          // Mounted: nothing moved (the HEAD that the registry redirected to the CDN moves no bytes).
          { digest: D.tinyLayer0, size: 4631, mediaType: MT.dockerLayer, kind: 'layer', flowIds: [], bytes: 0, ms: 0, throughput: 0, via: null, cdn: false, skipped: true, manifest: pushedManifest },
        ],
        totals: { flows: 16, bytes: expect.any(Number), wallMs: expect.any(Number), start: expect.any(Number), end: expect.any(Number) },
        problems: [],
      },
    ];
    expect(loaded.operations).toEqual(expected);
    // The pushed manifest is lab/tiny's config and layer.
    const parsed = loaded.manifests.get(put.id);
    expect(parsed?.kind === 'image' && [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]).toEqual([D.tinyConfig, D.tinyLayer0]);
  });

  it.each([
    ['skopeo-copy', 2],
    ['ctr-pull', 2],
  ] as const)('%s: %i pulls, no problems', async (name, n) => {
    const { loaded } = await load(name);
    expect(loaded.operations.map((op) => [op.kind, op.repo, op.reference, op.problems])).toEqual(
      [
        ['pull', 'lab/tiny', 'latest', []],
        ['pull', 'lab/alpine', '3.9', []],
      ].slice(0, n),
    );
    // Every flow belongs to exactly one operation.
    const ids = loaded.operations.flatMap((op) => op.flowIds).sort((a, b) => a - b);
    expect(ids).toEqual(loaded.flows.map((f) => f.id));
  });

  describe('filter `~repo lab/alpine & ~op cdn-blob`', () => {
    const alpineCdn = [D.alpineAmd64Config, D.alpineAmd64Layer0, D.alpineAmd64Layer1].map((d) => `GET ${CDN}${cdnPath(d)}`).sort();
    it.each([
      ['dockerd-pull-multiarch', alpineCdn],
      ['skopeo-copy', alpineCdn],
      ['ctr-pull', alpineCdn],
      ['dockerd-push', []],
    ] as const)('%s: exactly the CDN downloads of lab/alpine', async (name, want) => {
      const { rec, loaded } = await load(name);
      const filter = parseFilter('~repo lab/alpine & ~op cdn-blob');
      const got = loaded.flows.filter((f) => filter(filterSubject(f, rec))).map((f) => `${f.request.method} ${f.request.host}${f.request.target}`);
      expect(got.sort()).toEqual([...want]);
    });
  });
});

// ------------------------------------------------------------------------------------------------
// Problems, on a synthetic pull of registry.test/lab/x:1.0 (a small flow factory; classified by the
// real Classifier, then grouped by buildOperations).

const X = {
  manifest: `sha256:${'1'.repeat(64)}`,
  config: `sha256:${'c'.repeat(64)}`,
  layer1: `sha256:${'a'.repeat(64)}`,
  layer2: `sha256:${'b'.repeat(64)}`,
  /** What flow 7 really got instead of the config. */
  wrongBody: 'e'.repeat(64),
};

function factory() {
  let id = 0;
  let clock = 1_800_000_000_000;
  return (o: {
    method?: string;
    host?: string;
    target: string;
    status: number;
    reqHeaders?: HeaderList;
    resHeaders?: HeaderList;
    body?: BodyRef | null;
    bytes?: number;
    state?: FlowState;
    error?: string;
  }): FlowRecord => {
    const start = (clock += 20);
    return {
      id: ++id,
      uuid: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
      state: o.state ?? 'complete',
      request: { method: o.method ?? 'GET', scheme: 'https', host: o.host ?? R, port: 443, target: o.target, httpVersion: '1.1', headers: [['Host', o.host ?? R], ...(o.reqHeaders ?? [])] },
      requestBody: null,
      response: { status: o.status, reason: '', httpVersion: '1.1', headers: o.resHeaders ?? [] },
      responseBody: o.body ?? null,
      timings: { start, firstByte: start + 2, end: start + 10 },
      clientAddr: '127.0.0.1:40000',
      serverAddr: '127.0.0.1:443',
      error: o.error ?? null,
      requestBytes: 0,
      responseBytes: o.bytes ?? o.body?.size ?? 0,
      facts: {},
    };
  };
}

describe('problems', () => {
  let op: Operation;
  let flows: FlowRecord[];

  beforeAll(() => {
    const flow = factory();
    const bearer: HeaderList = [['Authorization', 'Bearer REDACTED-00000001']];
    const token = () => flow({ host: 'auth.test', target: '/token?scope=repository%3Alab%2Fx%3Apull&service=registry.test', status: 200, resHeaders: [['Content-Type', 'application/json']] });
    const redirect = (d: string) =>
      flow({ target: `/v2/lab/x/blobs/${d}`, status: 307, reqHeaders: bearer, resHeaders: [['Location', `https://${CDN}${cdnPath(d)}?verify=REDACTED-00000002`]] });
    const cdn = (d: string, o: { state?: FlowState; bytes?: number; error?: string } = {}) =>
      flow({
        host: CDN,
        target: `${cdnPath(d)}?verify=REDACTED-00000002`,
        status: 200,
        resHeaders: [['Content-Type', MT.octet]],
        body: o.state ? null : { sha256: d.slice(7), size: 1000, redacted: false },
        bytes: o.bytes,
        state: o.state,
        error: o.error,
      });
    flows = [
      /* 1 */ flow({ target: '/v2/', status: 401, resHeaders: [['WWW-Authenticate', 'Bearer realm="https://auth.test/token",service="registry.test"']] }),
      // A client that thinks every token expired at once (stale issued_at) asks before every request.
      /* 2 */ token(),
      /* 3 */ flow({
        target: '/v2/lab/x/manifests/1.0',
        status: 429,
        reqHeaders: bearer,
        resHeaders: [['Retry-After', '30'], ['RateLimit-Limit', '100;w=21600'], ['RateLimit-Remaining', '0;w=21600'], ['Content-Type', 'application/json']],
      }),
      /* 4 */ token(),
      /* 5 */ flow({
        target: '/v2/lab/x/manifests/1.0',
        status: 200,
        reqHeaders: bearer,
        resHeaders: [['Content-Type', MT.dockerManifest], ['Docker-Content-Digest', X.manifest]],
        body: { sha256: X.manifest.slice(7), size: 500, redacted: false },
      }),
      /* 6 */ token(),
      // The registry serves the config itself, but the bytes are not the config.
      /* 7 */ flow({ target: `/v2/lab/x/blobs/${X.config}`, status: 200, reqHeaders: bearer, body: { sha256: X.wrongBody, size: 300, redacted: false } }),
      /* 8 */ redirect(X.layer1),
      /* 9 */ cdn(X.layer1, { state: 'aborted', bytes: 1000, error: 'ECONNRESET: socket hang up' }),
      /* 10 */ redirect(X.layer2),
      /* 11 */ cdn(X.layer2),
      /* 12 */ redirect(X.layer2),
      /* 13 */ cdn(X.layer2),
    ];
    const classifier = new Classifier();
    for (const f of flows) f.registry = classifier.classify(f);
    const manifest = {
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { mediaType: MT.dockerConfig, size: 300, digest: X.config },
      layers: [
        { mediaType: MT.dockerLayer, size: 5000, digest: X.layer1 },
        { mediaType: MT.dockerLayer, size: 1000, digest: X.layer2 },
      ],
    };
    const manifests = new Map<number, ParsedManifest>([[5, parseManifest(JSON.stringify(manifest), MT.dockerManifest)]]);
    const ops = buildOperations(flows, manifests);
    expect(ops).toHaveLength(1);
    op = ops[0]!;
  });

  it('the synthetic flows are classified as meant', () => {
    expect(flows.map((f) => f.registry!.role)).toEqual(['ping', 'token', 'manifest', 'token', 'manifest', 'token', 'blob', 'blob-redirect', 'cdn-blob', 'blob-redirect', 'cdn-blob', 'blob-redirect', 'cdn-blob']);
    expect(op).toMatchObject({ kind: 'pull', repo: 'lab/x', reference: '1.0', flowIds: range(1, 13) });
  });

  it('reports each problem once', () => {
    const short = (d: string) => `${d.slice(0, 19)}…`;
    expect(op.problems).toHaveLength(5);
    expect(op.problems).toEqual(
      expect.arrayContaining([
        'flow 3: 429 Too Many Requests (Retry-After 30, limit 100;w=21600, remaining 0;w=21600)',
        `flow 7: digest mismatch: body is sha256:${X.wrongBody}, URL asks for ${X.config}`,
        `flow 9: cdn-blob ${short(X.layer1)} aborted after 1000 bytes: ECONNRESET: socket hang up`,
        `${short(X.layer2)} downloaded 2 times (retried or resumed)`,
        expect.stringMatching(/^3 token requests for repository:lab\/x:pull \(tokens not reused/),
      ]),
    );
  });

  it('the blob downloaded twice has both downloads attached; the aborted one its partial bytes', () => {
    const layer2 = op.blobs.find((b) => b.digest === X.layer2)!;
    expect(layer2.flowIds).toEqual([11, 13]);
    expect(layer2.bytes).toBe(2000);
    const layer1 = op.blobs.find((b) => b.digest === X.layer1)!;
    expect(layer1).toMatchObject({ flowIds: [9], bytes: 1000, cdn: true, via: CDN });
  });
});

describe('token requests whose scope is in a form body (OAuth POST)', () => {
  it('are attributed and counted by the scopes they were granted', () => {
    const flow = factory();
    const granted = (actions: string[]) => ({
      tokens: [{ where: 'response.body:access_token', marker: 'REDACTED-00000003', claims: { access: [{ type: 'repository', name: 'lab/y', actions }] } }],
    });
    const post = () => ({
      ...flow({ method: 'POST', host: 'auth.test', target: '/token', status: 200, resHeaders: [['Content-Type', 'application/json']] }),
      facts: granted(['push', 'pull']),
    });
    const flows = [
      flow({ target: '/v2/', status: 401, resHeaders: [['WWW-Authenticate', 'Bearer realm="https://auth.test/token",service="registry.test"']] }),
      post(),
      flow({ method: 'HEAD', target: `/v2/lab/y/blobs/${X.layer1}`, status: 404 }),
      post(),
      flow({ method: 'POST', target: '/v2/lab/y/blobs/uploads/', status: 202 }),
      post(),
      flow({ method: 'PUT', target: '/v2/lab/y/manifests/2', status: 201 }),
    ];
    const classifier = new Classifier();
    for (const f of flows) f.registry = classifier.classify(f);
    expect(flows.map((f) => f.registry!.role)).toEqual(['ping', 'token', 'blob', 'token', 'upload-start', 'token', 'manifest']);
    // What the classifier can see of a POST: no scope in the URL, the granted scopes from the token.
    expect(flows[1]!.registry!.scopesRequested).toEqual([]);
    expect(flows[1]!.registry!.scopesGranted).toEqual([{ type: 'repository', name: 'lab/y', actions: ['push', 'pull'] }]);
    const ops = buildOperations(flows, new Map());
    expect(ops.map((op) => [op.kind, op.repo, op.reference, op.flowIds])).toEqual([['push', 'lab/y', '2', range(1, 7)]]);
    expect(ops[0]!.problems).toEqual([expect.stringMatching(/^3 token requests for repository:lab\/y:push,pull \(/)]);
  });
});
