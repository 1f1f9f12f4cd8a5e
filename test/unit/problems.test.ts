/**
 * The diagnosis, one case per problem a user can hit, on small synthetic pulls classified by the real
 * Classifier and grouped by buildOperations. (The real-recording cases, from fixtures/failing-pulls, are in
 * operations.test.ts and the show --json goldens.)
 */
import { describe, expect, it } from 'vitest';
import type { FlowRecord, HeaderList } from '../../src/flow/index.js';
import { renderOperation } from '../../src/inspect/index.js';
import { buildOperations, Classifier, parseManifest, problemLine, type Operation, type ParsedManifest } from '../../src/registry/index.js';
import { makeFlow } from '../support/flows.js';

const R = 'registry-1.docker.io';
const UA: HeaderList = [['User-Agent', 'docker/27.0.1 go/go1.21 os/linux arch/arm64 UpstreamClient(Docker-Client/27.0.1)']];
const LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const V2 = 'application/vnd.docker.distribution.manifest.v2+json';
const D = (c: string) => `sha256:${c.repeat(64)}`;
const T0 = 1_800_000_000_000;

interface F {
  method?: string;
  url: string;
  status?: number;
  req?: HeaderList;
  res?: HeaderList;
  at?: number;
  firstByteAfter?: number;
  tokens?: FlowRecord['facts']['tokens'];
  state?: FlowRecord['state'];
  error?: string;
  response?: null;
}

/** Flows 1, 2, … 100 ms apart (or at `at` ms), classified in order; then grouped. */
function ops(specs: F[], manifests: Record<number, unknown> = {}, errors: Record<number, Array<{ code: string; message: string }>> = {}): Operation[] {
  const c = new Classifier();
  const flows = specs.map((s, i) => {
    const start = T0 + (s.at ?? i * 100);
    const f = makeFlow({
      id: i + 1,
      url: s.url,
      request: { method: s.method ?? 'GET', headers: [...UA, ...(s.req ?? [])] },
      response: s.response === null ? null : { status: s.status ?? 200, headers: s.res ?? [] },
      timings: { start, requestSent: start + 1, firstByte: start + 1 + (s.firstByteAfter ?? 5), end: start + 10 + (s.firstByteAfter ?? 5) },
      clientAddr: `127.0.0.1:${40000 + i}`,
      facts: s.tokens ? { tokens: s.tokens } : {},
      state: s.state ?? 'complete',
      error: s.error ?? null,
    });
    f.registry = c.classify(f);
    return f;
  });
  const parsed = new Map<number, ParsedManifest>(Object.entries(manifests).map(([id, m]) => [Number(id), parseManifest(JSON.stringify(m))]));
  return buildOperations(flows, parsed, { errors: new Map(Object.entries(errors).map(([k, v]) => [Number(k), v])) });
}

const challenge = (scope?: string, error?: string): HeaderList => [['WWW-Authenticate', `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`]];
const bearer = (marker: string, claims: Record<string, unknown> = {}): Pick<F, 'req' | 'tokens'> => ({ req: [['Authorization', `Bearer ${marker}`]], tokens: [{ where: 'request.header:authorization', marker, claims }] });
const ping = (): F => ({ url: `https://${R}/v2/`, status: 401, res: challenge() });
const token = (repo: string, marker = 'REDACTED-0000000a', exp?: number): F => ({
  url: `https://auth.docker.io/token?scope=repository%3A${encodeURIComponent(repo)}%3Apull&service=registry.docker.io`,
  res: [['Content-Type', 'application/json']],
  tokens: [{ where: 'response.body:token', marker, claims: { access: [{ type: 'repository', name: repo, actions: ['pull'] }], ...(exp ? { exp } : {}) } }],
});
const index = { schemaVersion: 2, mediaType: LIST, manifests: [{ mediaType: V2, digest: D('a'), size: 500, platform: { os: 'linux', architecture: 'amd64' } }, { mediaType: V2, digest: D('b'), size: 500, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }] };

function only(list: Operation[], code: string) {
  const found = list.flatMap((o) => o.problems).filter((p) => p.code === code);
  expect(found, `${code} in ${JSON.stringify(list.map((o) => o.problems))}`).toHaveLength(1);
  return found[0]!;
}

describe('problems', () => {
  it('names Docker Hub images as users do, and shows the rate-limit quota of a pull without a 429', () => {
    const list = ops([
      ping(),
      token('library/alpine'),
      { method: 'HEAD', url: `https://${R}/v2/library/alpine/manifests/3.19`, ...bearer('REDACTED-0000000a'), res: [['Content-Type', LIST], ['Docker-Content-Digest', D('1')], ['RateLimit-Limit', '100;w=21600'], ['RateLimit-Remaining', '76;w=21600'], ['Docker-RateLimit-Source', '203.0.113.9']] },
    ]);
    expect(list.map((o) => [o.kind, o.name])).toEqual([['pull', 'docker.io/library/alpine:3.19']]);
    expect(list[0]!.rateLimit).toEqual({ limit: '100;w=21600', remaining: '76;w=21600', source: '203.0.113.9', flowId: 3 });
    expect(renderOperation(list[0]!)).toContain('rate limit: 76 of 100 left per 6 h (counted for 203.0.113.9)  #3');
    expect(list[0]!.problems).toEqual([]);
  });

  it('a used-up quota is a problem before the 429 comes', () => {
    const p = only(ops([token('library/alpine'), { method: 'HEAD', url: `https://${R}/v2/library/alpine/manifests/3.19`, res: [['RateLimit-Limit', '100;w=21600'], ['RateLimit-Remaining', '0;w=21600']] }]), 'rate-limited');
    expect(p).toMatchObject({ message: 'rate-limit quota used up (ratelimit-remaining 0;w=21600)', flowIds: [2] });
  });

  it('pull access denied (Docker Hub: 401 insufficient_scope with a token): the scope asked and what the token had', () => {
    const p = only(ops([ping(), token('library/nosuch'), { url: `https://${R}/v2/library/nosuch/manifests/latest`, status: 401, ...bearer('REDACTED-0000000a', { access: [] }), res: challenge('repository:library/nosuch:pull', 'insufficient_scope') }]), 'denied');
    expect(p.message).toBe('docker.io denied GET /v2/library/nosuch/manifests/latest (401 insufficient_scope): it asks for repository:library/nosuch:pull, the token had no access');
    expect(p.flowIds).toEqual([3]);
    expect(p.advice).toMatch(/^pull access denied: the repository does not exist or is private; .*docker login docker\.io/);
  });

  it('the platform the client wanted is not in the index (dockerd says its platform in the User-Agent)', () => {
    const list = ops([ping(), token('library/x'), { url: `https://${R}/v2/library/x/manifests/1`, ...bearer('REDACTED-0000000a'), res: [['Content-Type', LIST], ['Docker-Content-Digest', D('1')]] }], { 3: index });
    const p = only(list, 'platform-missing');
    expect(p.message).toBe("docker.io/library/x:1 has no manifest for the client's platform (linux/arm64, from its User-Agent): the index offers linux/amd64, linux/arm/v7, and no platform manifest was fetched");
    expect(p.flowIds).toEqual([3]);
  });

  it('an expired token reused: its claims say so even when the registry still accepted it (leeway)', () => {
    const exp = Math.floor(T0 / 1000) + 1;
    const list = ops([token('library/x', 'REDACTED-0000000b', exp), { url: `https://${R}/v2/library/x/manifests/1`, ...bearer('REDACTED-0000000b', { exp }), at: 100 }, { url: `https://${R}/v2/library/x/blobs/${D('c')}`, ...bearer('REDACTED-0000000b', { exp }), at: 20_000 }]);
    expect(list).toHaveLength(1); // the token belongs to the pull that used it
    const p = only(list, 'expired-token');
    expect(p).toMatchObject({ message: 'an expired token was reused (19 s after its exp)', flowIds: [1, 3] });
  });

  it('a 401 invalid_token after a token was kept too long', () => {
    const p = only(ops([token('lab/x', 'REDACTED-0000000c'), { url: `https://${R}/v2/lab/x/manifests/1`, status: 401, ...bearer('REDACTED-0000000c'), res: challenge('repository:lab/x:pull', 'invalid_token') }]), 'expired-token');
    expect(p.flowIds).toEqual([1, 2]);
  });

  it('Accept fell back: an OCI index the client cannot take; a registry choosing the platform; schema 1', () => {
    const list = ops(
      [
        { url: `https://${R}/v2/lab/oci/manifests/1`, status: 404, req: [['Accept', V2]] },
        { url: `https://${R}/v2/lab/list/manifests/1`, req: [['Accept', V2]], res: [['Content-Type', V2], ['Docker-Content-Digest', D('a')]] },
        { url: `https://${R}/v2/lab/old/manifests/1`, req: [['Accept', `${V2}, ${LIST}`]], res: [['Content-Type', 'application/vnd.docker.distribution.manifest.v1+prettyjws']] },
      ],
      {},
      { 1: [{ code: 'MANIFEST_UNKNOWN', message: 'OCI index found, but accept header does not support OCI indexes' }] },
    );
    expect(list.map((o) => o.problems.map((p) => [p.code, p.flowIds]))).toEqual([[['accept-fallback', [1]]], [['accept-fallback', [2]]], [['accept-fallback', [3]]]]);
    expect(list[0]!.problems[0]!.message).toMatch(/is an index the client's Accept does not include/);
    expect(list[1]!.problems[0]!.message).toMatch(/registry chose a platform manifest for lab\/list:1 itself/);
    expect(list[2]!.problems[0]!.message).toMatch(/answered with Docker schema 1 .* although the client accepts schema 2/);
  });

  it('a CDN leg that failed cites the redirect and the download; a signed URL refused says so', () => {
    const p = only(
      ops([
        { url: `https://${R}/v2/lab/x/blobs/${D('c')}`, status: 307, res: [['Location', `https://cdn.example/x/${D('c').slice(7)}/data?sig=REDACTED-1`]] },
        { url: `https://cdn.example/x/${D('c').slice(7)}/data?sig=REDACTED-1`, status: 403 },
      ]),
      'cdn-failed',
    );
    expect(p).toMatchObject({ message: 'the redirect to cdn.example failed: 403 after 0B', flowIds: [1, 2] });
    expect(p.advice).toMatch(/signed CDN URL expired/);
  });

  it('a redirect the client never followed through the proxy', () => {
    const p = only(ops([{ url: `https://${R}/v2/lab/x/blobs/${D('c')}`, status: 307, res: [['Location', 'https://cdn.example/blob']] }]), 'cdn-failed');
    expect(p).toMatchObject({ message: `the client never followed the redirect for sha256:cccccccccccc to cdn.example through this proxy`, flowIds: [1] });
  });

  it('a mirror answering instead of the registry (ns=): named by the registry the client asked for', () => {
    const list = ops([{ url: `https://mirror.example/v2/library/alpine/manifests/3.19?ns=docker.io`, res: [['Content-Type', V2]] }]);
    expect(list[0]!.name).toBe('docker.io/library/alpine:3.19');
    expect(only(list, 'mirror')).toMatchObject({ message: 'the mirror mirror.example answered instead of docker.io (ns=docker.io)', flowIds: [1] });
  });

  it('a slow first byte', () => {
    const p = only(ops([ping(), token('lab/x'), { url: `https://${R}/v2/lab/x/manifests/1`, firstByteAfter: 3_400 }]), 'slow-first-byte');
    expect(p).toMatchObject({ message: 'registry-1.docker.io took 3.4 s to start answering GET /v2/lab/x/manifests/1', flowIds: [3] });
  });

  it('a client that does not trust regtape\'s CA: the failed CONNECT, and the ca --setup line for that client', () => {
    const list = ops([{ method: 'CONNECT', url: `https://${R}/`, response: null, state: 'error', error: "TLS handshake failed: the client refused regtape's certificate (it does not trust regtape's CA): alert bad certificate" }]);
    expect(list.map((o) => [o.kind, o.name])).toEqual([['connect', 'docker.io']]);
    const p = only(list, 'ca-untrusted');
    expect(p.flowIds).toEqual([1]);
    expect(p.advice).toContain('`regtape ca --setup dockerd`');
    expect(problemLine(p)).toMatch(/^the client does not trust regtape's CA: TLS handshake with registry-1\.docker\.io failed after CONNECT \(#1\): make it trust/);
  });

  it('untrusted text in a problem is escaped in show', () => {
    const list = ops([{ url: `https://${R}/v2/lab/x/manifests/1`, status: 404, req: [['Accept', V2]] }], {}, { 1: [{ code: 'MANIFEST_UNKNOWN', message: 'accept \x1b]52;c;evil\x07 header' }] });
    const text = renderOperation(list[0]!);
    expect(text).not.toMatch(/\x1b|\x07/);
    expect(text).toContain('\\x1b]52;c;evil\\x07');
  });
});
