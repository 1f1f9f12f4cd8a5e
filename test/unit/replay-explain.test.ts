import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flow/index.js';
import { Classifier } from '../../src/registry/index.js';
import { buildCatalog } from '../../src/replay/catalog.js';
import { explainMiss, type MissRequest } from '../../src/replay/explain.js';
import { selectManifest } from '../../src/replay/manifests.js';
import { makeFlow } from '../support/flows.js';
import { digestOf, MT } from '../support/replay-fixture.js';

/**
 * Every miss explanation, table-tested: a small recording (flows made with makeFlow, classified
 * as the recorder would), a request replay could not answer, and the sentence a user gets.
 */

const amd64 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.v2, config: { mediaType: MT.dockerConfig, size: 2, digest: `sha256:${'c'.repeat(64)}` }, layers: [{ mediaType: MT.dockerLayer, size: 3, digest: `sha256:${'a'.repeat(64)}` }] }));
const arm64Digest = `sha256:${'b'.repeat(64)}`;
const list = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.list,
    manifests: [
      { mediaType: MT.v2, size: amd64.length, digest: digestOf(amd64), platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: MT.v2, size: 10, digest: arm64Digest, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ],
  }),
);
const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] }));
const bodies = new Map<string, Buffer>();
const negotiationBody = Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"OCI index found, but accept header does not support OCI indexes","detail":null}]}');

let nextId = 1;
function manifestFlow(repo: string, ref: string, body: Buffer, mediaType: string, accept: string[] = [mediaType]): FlowRecord {
  const sha = digestOf(body).slice(7);
  bodies.set(sha, body);
  return makeFlow({
    id: nextId++,
    url: `https://registry.test/v2/${repo}/manifests/${ref}`,
    request: { headers: [...accept.map((a): [string, string] => ['Accept', a]), ['Authorization', 'Bearer x']] },
    response: { headers: [['Content-Type', mediaType], ['Docker-Content-Digest', digestOf(body)]] },
    responseBody: { sha256: sha, size: body.length, inline: true, redacted: false } as FlowRecord['responseBody'],
  });
}

const flows: FlowRecord[] = [
  manifestFlow('lab/alpine', '3.9', list, MT.list, [MT.list, MT.v2]),
  manifestFlow('lab/alpine', digestOf(amd64), amd64, MT.v2),
  manifestFlow('lab/oci', '1', index, MT.ociIndex),
  (() => {
    const sha = digestOf(negotiationBody).slice(7);
    bodies.set(sha, negotiationBody);
    return makeFlow({
      id: nextId++,
      url: 'https://registry.test/v2/lab/ocionly/manifests/1',
      request: { headers: [['Accept', MT.v2], ['Accept', MT.list], ['Authorization', 'Bearer x']] },
      response: { status: 404, headers: [['Content-Type', 'application/json']] },
      responseBody: { sha256: sha, size: negotiationBody.length, inline: true, redacted: false } as FlowRecord['responseBody'],
    });
  })(),
  makeFlow({ id: nextId++, url: 'https://registry.test/v2/lab/tags/tags/list', request: { headers: [['Authorization', 'Bearer x']] } }),
  makeFlow({ id: nextId++, url: 'https://registry.test/v2/_catalog?n=10', state: 'error', error: 'ECONNRESET: socket hang up', response: null }),
  makeFlow({
    id: nextId++,
    url: `https://registry.test/v2/lab/alpine/blobs/sha256:${'7'.repeat(64)}`,
    request: { headers: [['Authorization', 'Bearer x']] },
    responseBody: { sha256: '8'.repeat(64), size: 3, inline: false, redacted: false } as FlowRecord['responseBody'],
  }),
  makeFlow({ id: nextId++, url: 'https://registry.test/v2/lab/alpine/referrers/sha256:' + '6'.repeat(64), request: { headers: [['Authorization', 'Bearer x']] }, responseBody: { sha256: '5'.repeat(64), size: 3, inline: false, redacted: true } as FlowRecord['responseBody'] }),
];
const classifier = new Classifier();
for (const f of flows) classifier.fill(f);
const cat = buildCatalog(flows, (sha) => bodies.get(sha) ?? null);

function req(p: string, o: Partial<MissRequest> = {}): MissRequest {
  const u = new URL(p, 'https://registry.test');
  return { method: 'GET', host: 'registry.test', path: u.pathname, query: u.searchParams, headers: [['Authorization', 'Bearer y']], matcher: 'exact', ...o };
}
const acc = (...types: string[]) => [...types.map((t): [string, string] => ['Accept', t]), ['Authorization', 'Bearer y'] as [string, string]];

describe('miss explanations', () => {
  const listManifest = cat.manifests.get(digestOf(list))!;
  const indexManifest = cat.manifests.get(digestOf(index))!;
  const table: Array<{ name: string; req: MissRequest; says: RegExp; closest?: RegExp }> = [
    {
      name: 'a platform child never fetched (by digest)',
      req: req(`/v2/lab/alpine/manifests/${arm64Digest}`, { matcher: 'digest' }),
      says: new RegExp(`^the linux/arm64/v8 entry of the recorded manifest list ${digestOf(list)} \\(lab/alpine:3\\.9\\) was never fetched; record with \`docker pull --platform linux/arm64/v8\``),
    },
    {
      name: 'selection: an OCI index asked for without its type in Accept',
      req: req('/v2/lab/oci/manifests/1', { matcher: 'selection', headers: acc(MT.v2), selection: { manifest: indexManifest, missingType: MT.ociIndex } }),
      says: new RegExp(`is an OCI index, and this request's Accept lacked ${MT.ociIndex.replace(/[.+]/g, '\\$&')}`),
    },
    {
      name: 'selection: a list asked for by tag without the list type, its linux/amd64 child missing',
      req: req('/v2/lab/alpine/manifests/3.9', { matcher: 'selection', headers: acc(MT.v2), selection: { manifest: listManifest, platform: 'linux/amd64' } }),
      says: /^the linux\/amd64 entry of the recorded manifest list sha256:[0-9a-f]{64} \(lab\/alpine:3\.9\) was never fetched .*--platform linux\/amd64/,
    },
    {
      name: 'the recorded request got the negotiation 404; this one accepts the type, so there is nothing to serve',
      req: req('/v2/lab/ocionly/manifests/1', { matcher: 'tag', headers: acc(MT.v2, MT.list, MT.ociIndex) }),
      says: /^recorded Accept lacked application\/vnd\.oci\.image\.index\.v1\+json: the recorded request for lab\/ocionly:1 \(flow \d+\) got 404/,
    },
    { name: 'a tag never recorded', req: req('/v2/lab/alpine/manifests/3.10', { matcher: 'tag' }), says: /^tag 3\.10 of lab\/alpine was never recorded \(recorded tags: 3\.9\); record a pull of registry\.test\/lab\/alpine:3\.10$/, closest: /\/v2\/lab\/alpine\/manifests\/3\.9 \(flow 1\)|manifests\/sha256/ },
    { name: 'a repository never recorded', req: req('/v2/lab/nothing/manifests/1', { matcher: 'tag' }), says: /^repository lab\/nothing was never recorded on registry\.test \(recorded: lab\/alpine, lab\/oci, lab\/ocionly, lab\/tags\)/ },
    { name: 'a manifest digest no recorded list refers to', req: req(`/v2/lab/alpine/manifests/sha256:${'9'.repeat(64)}`, { matcher: 'digest' }), says: /^manifest sha256:9{64} was never recorded \(no recorded manifest list refers to it\)/ },
    { name: 'a layer of a recorded manifest never downloaded', req: req(`/v2/lab/alpine/blobs/sha256:${'a'.repeat(64)}`, { matcher: 'blob' }), says: new RegExp(`^blob sha256:a{64} is a layer of the recorded manifest ${digestOf(amd64)} \\(linux/amd64 of ${digestOf(list)}\\) but was never downloaded`) },
    { name: 'a config of a recorded manifest never downloaded', req: req(`/v2/lab/alpine/blobs/sha256:${'c'.repeat(64)}`, { matcher: 'blob' }), says: /^blob sha256:c{64} is config of the recorded manifest/ },
    { name: 'a blob nothing refers to', req: req(`/v2/lab/alpine/blobs/sha256:${'f'.repeat(64)}`, { matcher: 'blob' }), says: /^blob sha256:f{64} was never downloaded and no recorded manifest refers to it$/ },
    { name: 'a host never recorded', req: req('/v2/x/manifests/1', { host: 'ghcr.io', matcher: 'tag' }), says: /^nothing was recorded for ghcr\.io \(recorded: registry\.test\)/ },
    { name: 'a CDN path never downloaded', req: req('/blobs/sha256/aa/data', { host: 'registry.test', matcher: 'cdn' }), says: /^no download of \/blobs\/sha256\/aa\/data from registry\.test was recorded/ },
    { name: 'the closest recorded exchange never completed (not "not replayable")', req: req('/v2/_catalog?n=10'), says: /^the recorded exchange \(flow 6\) never completed \(ECONNRESET: socket hang up\); record it again$/ },
    { name: 'a recorded blob whose body does not match its digest', req: req(`/v2/lab/alpine/blobs/sha256:${'7'.repeat(64)}`, { matcher: 'blob' }), says: /^the recorded body of flow 7 does not match its digest \(body is sha256:8{64}, URL asks for sha256:7{64}\); replay never serves it/ },
    { name: 'the same request was recorded but its body was redacted', req: req(`/v2/lab/alpine/referrers/sha256:${'6'.repeat(64)}`), says: /^the recorded answer \(flow 8\) has no usable body \(it was redacted\)/ },
    { name: 'another method than recorded', req: req('/v2/lab/tags/tags/list', { method: 'DELETE' }), says: /differs in method \(DELETE vs recorded GET\)/ },
    { name: 'another query than recorded', req: req('/v2/lab/tags/tags/list?n=5'), says: /differs in query parameters \(n vs recorded none\)/ },
  ];
  for (const row of table) {
    it(row.name, () => {
      const ex = explainMiss(cat, row.req);
      expect(ex.explanation).toMatch(row.says);
      expect(ex.explanation).not.toMatch(/not replayable/);
      if (row.closest) expect(`${ex.closest?.request.target} (flow ${ex.closest?.id})`).toMatch(row.closest);
    });
  }

  it('selection refuses what distribution refuses, with the media type it lacked', () => {
    const r = selectManifest(cat, indexManifest, '1', [MT.v2, MT.list]);
    expect('error' in r && r.error.message).toBe('OCI index found, but accept header does not support OCI indexes');
    expect('error' in r && r.missingType).toBe(MT.ociIndex);
    const child = selectManifest(cat, listManifest, '3.9', [MT.v2]);
    expect('digest' in child && child.digest).toBe(digestOf(amd64));
  });
});
