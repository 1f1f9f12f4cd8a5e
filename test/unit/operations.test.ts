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
import { buildOperations, Classifier, parseManifest, problemLine, type Operation, type ParsedManifest } from '../../src/registry/index.js';
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

/** `1-3,7` → [1, 2, 3, 7] */
function ids(spec: string): number[] {
  return spec.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a!] : range(a!, b);
  });
}

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

  // What each client did, read off the flows listed in fixtures/README.md (not from running the code):
  // [kind, name, client, flow ids, problem codes].
  const TABLE: Array<[FixtureName, Array<[Operation['kind'], string, string | null, string, string[]]>]> = [
    ['dockerd-pull-multiarch', [
      ['pull', 'registry.test/lab/alpine:3.9', 'dockerd', '1-11', []],
      ['pull', 'registry.test/lab/oci:1', 'dockerd', '12-20', []],
    ]],
    // skopeo inspect --raw (one manifest GET, no blob) is an inspect; the copy to dir: is a pull.
    ['skopeo-copy', [
      ['inspect', 'registry.test/lab/tiny:latest', 'skopeo', '1-3', []],
      ['pull', 'registry.test/lab/alpine:3.9', 'skopeo', '4-13', []],
    ]],
    // containerd: no ping; the 401 on HEAD and on the GET by digest each make it fetch a token.
    ['ctr-pull', [
      ['pull', 'registry.test/lab/tiny:latest', 'containerd', '1-10', []],
      ['pull', 'registry.test/lab/alpine:3.9', 'containerd', '11-23', []],
    ]],
    // docker login: ping, Basic token, authenticated ping. Then the push with its own ping and OAuth POSTs.
    ['dockerd-push', [
      ['login', 'registry.test', 'dockerd', '1-3', []],
      ['push', 'registry.test/lab/pushed:1', 'dockerd', '4-17', []],
    ]],
    // podman sends containers/image's User-Agent.
    ['podman-pull', [['pull', 'registry.test/lab/alpine:3.9', 'podman', '1-10', []]]],
    // One skopeo process reading lab/tiny and writing lab/copied: one copy.
    ['skopeo-copy-registry', [['copy', 'registry.test/lab/copied:1', 'skopeo', '1-17', []]]],
    // The curl script: its ping and token go to the manifest reads; tags list; the catalog with its own token.
    ['curl-script', [
      ['inspect', 'registry.test/lab/alpine:3.9', 'curl', '1-6', []],
      ['tags', 'registry.test/lab/alpine', 'curl', '7', []],
      ['catalog', 'registry.test', 'curl', '8-9', []],
    ]],
    ['failing-pulls', [
      ['connect', 'registry.test', 'go', '1', ['ca-untrusted']],
      ['inspect', 'registry.test/lab/missing:1', 'skopeo', '2-4', ['not-found']],
      ['inspect', 'registry.test/lab/alpine:3.9', 'skopeo', '5-7', ['platform-missing']],
      // The mount attempt and both upload POSTs are refused (the same POST twice: one problem citing both).
      ['copy', 'registry.test/lab/denied', 'skopeo', '8-25', ['denied', 'denied']],
      // curl -I sends Accept: */*: the registry converts to schema 1; the script fetches a token per request.
      ['inspect', 'registry.test/lab/tiny:latest', null, '26-33', ['accept-fallback', 'repeated-token']],
      ['inspect', 'registry.test/lab/alpine:3.9', null, '34-35', ['accept-fallback']],
      ['inspect', 'registry.test/lab/oci:1', null, '36-37', ['accept-fallback']],
      // The token of #38, sent 66 s later (#39): 401 invalid_token.
      ['inspect', 'registry.test/lab/tiny:latest', null, '38-39', ['expired-token']],
    ]],
  ];

  it.each(TABLE)('%s: operations, clients, flows and problems', async (name, want) => {
    const { loaded } = await load(name);
    expect(loaded.operations.map((op) => [op.kind, op.name, op.client.name, op.flowIds, op.problems.map((p) => p.code)])).toEqual(want.map(([k, n, c, f, p]) => [k, n, c, ids(f), p]));
    // Every flow belongs to exactly one operation.
    expect(loaded.operations.flatMap((op) => op.flowIds).sort((x, y) => x - y)).toEqual(loaded.flows.map((f) => f.id));
  });

  describe('dockerd-pull-multiarch', () => {
    let loaded: LoadedRecording;
    beforeAll(async () => {
      ({ loaded } = await load('dockerd-pull-multiarch'));
    });

    it('is two pulls: lab/alpine:3.9 through its manifest list, lab/oci:1 through its OCI index', () => {
      const flows = loaded.flows;
      const cdnFlow = (d: string) => [idOf(flows, 'GET', CDN, cdnPath(d))];
      const redirect = (repo: string, d: string) => idOf(flows, 'GET', R, `/v2/${repo}/blobs/${d}`);
      const blob = (repo: string, digest: string, size: number, mediaType: string, kind: 'config' | 'layer', manifest: string) => ({
        digest,
        size,
        mediaType,
        kind,
        flowIds: cdnFlow(digest), // the CDN download carried the bytes (the 307 did not)
        legIds: [redirect(repo, digest), ...cdnFlow(digest)].sort((a, b) => a - b), // the 307 and the CDN leg, joined
        transfers: [{ direction: 'down', bytes: size, ms: expect.any(Number), throughput: expect.any(Number), host: CDN, cdn: true, flowIds: cdnFlow(digest) }],
        bytes: size,
        via: CDN,
        cdn: true,
        manifest,
      });
      const [alpine, oci] = loaded.operations;
      expect(alpine).toMatchObject({
        kind: 'pull',
        registry: R,
        repo: 'lab/alpine',
        reference: '3.9',
        name: 'registry.test/lab/alpine:3.9',
        authFlowIds: [1, 2],
        index: { digest: D.alpineList, mediaType: MT.dockerList, platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], flowId: idOf(flows, 'GET', R, `/v2/lab/alpine/manifests/${D.alpineList}`) },
        // dockerd on amd64 pulls one platform.
        manifests: [{ digest: D.alpineAmd64, mediaType: MT.dockerManifest, platform: 'linux/amd64', flowId: idOf(flows, 'GET', R, `/v2/lab/alpine/manifests/${D.alpineAmd64}`) }],
        totals: { flows: 11, downloaded: 536 + 704073 + 1503877, uploaded: 0, transferred: 536 + 704073 + 1503877 },
        problems: [],
      });
      expect(alpine!.blobs).toEqual([
        expect.objectContaining(blob('lab/alpine', D.alpineAmd64Config, 536, MT.dockerConfig, 'config', D.alpineAmd64)),
        expect.objectContaining(blob('lab/alpine', D.alpineAmd64Layer0, 704073, MT.dockerLayer, 'layer', D.alpineAmd64)),
        expect.objectContaining(blob('lab/alpine', D.alpineAmd64Layer1, 1503877, MT.dockerLayer, 'layer', D.alpineAmd64)),
      ]);
      expect(oci).toMatchObject({
        kind: 'pull',
        name: 'registry.test/lab/oci:1',
        index: { digest: D.ociIndex, mediaType: MT.ociIndex, platforms: ['linux/amd64', 'linux/arm64'] },
        manifests: [{ digest: D.ociAmd64, mediaType: MT.ociManifest, platform: 'linux/amd64' }],
        totals: { flows: 9, transferred: 359 + 404021 },
      });
      expect(oci!.blobs).toEqual([
        expect.objectContaining(blob('lab/oci', D.ociAmd64Config, 359, MT.ociConfig, 'config', D.ociAmd64)),
        expect.objectContaining(blob('lab/oci', D.ociAmd64Layer0, 404021, MT.ociLayer, 'layer', D.ociAmd64)),
      ]);
    });

    it('totals: every byte of the operation’s flows; start/end span them; the rate is blob bytes over the span that moved them', () => {
      for (const op of loaded.operations) {
        const flows = loaded.flows.filter((f) => op.flowIds.includes(f.id));
        expect(op.totals.bytes).toBe(flows.reduce((n, f) => n + f.requestBytes + f.responseBytes, 0));
        expect(op.totals.start).toBe(Math.min(...flows.map((f) => f.timings.start)));
        expect(op.totals.end).toBe(Math.max(...flows.map((f) => f.timings.end!)));
        expect(op.totals.wallMs).toBe(op.totals.end - op.totals.start);
        const moving = flows.filter((f) => f.registry!.role === 'cdn-blob');
        const span = Math.max(...moving.map((f) => f.timings.end!)) - Math.min(...moving.map((f) => f.timings.start));
        expect(op.totals.rate).toBeCloseTo((op.totals.transferred / span) * 1000, 6);
      }
    });
  });

  it('dockerd-push: the config uploaded in one PATCH (its bytes count, not the PUT’s 0), the layer mounted from lab/tiny', async () => {
    const { rec, loaded } = await load('dockerd-push');
    const flows = loaded.flows;
    const put = flows.find((f) => f.request.method === 'PUT' && f.request.target === '/v2/lab/pushed/manifests/1')!;
    const pushedManifest = sha256(rec.readBodySync(put.requestBody!.sha256!)!);
    const patch = flows.find((f) => f.request.method === 'PATCH')!;
    const mount = flows.find((f) => f.registry!.role === 'mount')!;
    expect(patch.requestBytes).toBe(359);
    const push = loaded.operations[1]!;
    expect(push).toMatchObject({ kind: 'push', reference: '1', manifests: [{ digest: pushedManifest, mediaType: MT.dockerManifest, flowId: put.id }], totals: { uploaded: 359, downloaded: 0, transferred: 359 } });
    expect(push.blobs).toEqual([
      expect.objectContaining({ digest: D.tinyConfig, size: 359, kind: 'config', flowIds: [patch.id], bytes: 359, via: R, cdn: false, transfers: [expect.objectContaining({ direction: 'up', bytes: 359, flowIds: [patch.id] })] }),
      expect.objectContaining({ digest: D.tinyLayer0, size: 4631, kind: 'layer', flowIds: [], bytes: 0, skipped: true, mountedFrom: 'lab/tiny' }),
    ]);
    expect(push.blobs[1]!.legIds).toContain(mount.id);
    // The OAuth POST tokens (push scope, and lab/tiny:pull for the mount) belong to the push, not to the login.
    expect(push.authFlowIds).toEqual(flows.filter((f) => f.id >= 4 && ['ping', 'token'].includes(f.registry!.role)).map((f) => f.id));
  });

  it('skopeo-copy-registry: a copy reads lab/tiny and writes lab/copied:1; bytes counted per direction', async () => {
    const { loaded } = await load('skopeo-copy-registry');
    const op = loaded.operations[0]!;
    expect(op).toMatchObject({ kind: 'copy', name: 'registry.test/lab/copied:1', source: { registry: R, repo: 'lab/tiny', reference: 'latest', name: 'registry.test/lab/tiny:latest' } });
    const config = op.blobs.find((b) => b.digest === D.tinyConfig)!;
    expect(config.transfers.map((t) => [t.direction, t.bytes, t.host, t.cdn])).toEqual([
      ['down', 359, CDN, true],
      ['up', 359, R, false],
    ]);
    // The layer is mounted from the source repository (same registry): nothing moved.
    expect(op.blobs.find((b) => b.digest === D.tinyLayer0)).toMatchObject({ skipped: true, mountedFrom: 'lab/tiny', bytes: 0 });
    expect(op.totals).toMatchObject({ downloaded: 359, uploaded: 359, transferred: 359 });
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

  it('reports each problem once, citing its flows, with what to do', () => {
    const byCode = (c: string) => op.problems.filter((p) => p.code === c);
    expect(op.problems.map((p) => p.code).sort()).toEqual(['cdn-failed', 'digest-mismatch', 'rate-limited', 'repeated-token', 'retried']);
    expect(byCode('rate-limited')).toEqual([{ code: 'rate-limited', message: '429 Too Many Requests (Retry-After 30, limit 100;w=21600, remaining 0;w=21600)', flowIds: [3], advice: expect.stringMatching(/log in/) }]);
    expect(byCode('digest-mismatch')).toEqual([{ code: 'digest-mismatch', message: `digest mismatch: body is sha256:${X.wrongBody}, URL asks for ${X.config}`, flowIds: [7], advice: expect.any(String) }]);
    // The aborted CDN leg cites the 307 that sent the client there, too.
    expect(byCode('cdn-failed')).toEqual([{ code: 'cdn-failed', message: 'the redirect to cdn.test failed: aborted (ECONNRESET: socket hang up) after 1kB', flowIds: [8, 9], advice: expect.stringMatching(/reach cdn\.test/) }]);
    expect(byCode('retried')).toEqual([expect.objectContaining({ message: `${X.layer2.slice(0, 19)} downloaded 2 times (retried or resumed)`, flowIds: [11, 13] })]);
    expect(byCode('repeated-token')).toEqual([expect.objectContaining({ message: '3 identical token requests for repository:lab/x:pull: the client does not reuse its token', flowIds: [2, 4, 6] })]);
    // One line each, as show prints them: message (flows): advice.
    expect(op.problems.map(problemLine)).toContain('429 Too Many Requests (Retry-After 30, limit 100;w=21600, remaining 0;w=21600) (#3): ' + byCode('rate-limited')[0]!.advice);
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
    expect(ops[0]!.problems).toEqual([expect.objectContaining({ code: 'repeated-token', message: expect.stringMatching(/^3 identical token requests for repository:lab\/y:push,pull:/), flowIds: [2, 4, 6] })]);
  });
});
