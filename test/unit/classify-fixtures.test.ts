/**
 * The classifier against real recordings (fixtures/, made by scripts/make-fixtures against the lab).
 *
 * Every flow of every fixture is compared with a hand-written row below. The rows say what the
 * distribution protocol and each client make of a pull or push (see
 * /work/shared/reference/registry-protocol.md §2–§5 and fixtures/README.md); digests are the lab's
 * deterministic image digests (test/support/fixtures.ts). Nothing here is derived from running the
 * classifier: where a value varies per run (upload ids, `_state` markers, the digest of a manifest
 * dockerd builds for a push) the row states a pattern or a relation instead.
 *
 * Order: flows are compared in recording order, except inside `parallel(...)` groups. Clients fetch
 * blobs concurrently (dockerd 3 at a time, containers/image and containerd likewise), so the order of
 * the blob GETs, their 307s and the CDN downloads changes from run to run. A group is matched as a
 * multiset: the group's flows and its rows are both sorted by (method, host, target) and then compared
 * pairwise; that a CDN download comes after the redirect that sent the client there is checked through
 * `redirectFrom` (the redirect's flow id is lower).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flow/index.js';
import { Classifier, type AuthClass, type RegistryFacts, type Role, type Scope } from '../../src/registry/index.js';
import type { Recording } from '../../src/store/index.js';
import { cdnPath, D, MT, openFixture, type FixtureName } from '../support/fixtures.js';

const R = 'registry.test';
const AUTH = 'auth.test';
const CDN = 'cdn.test';

/** Stands for "the sha256 of this flow's request body" (the manifest dockerd builds and PUTs). */
const REQUEST_BODY_DIGEST = '<sha256 of the request body>';
/** Stands for "the blob-redirect flow, earlier, of the same digest, whose Location is this URL". */
const REDIRECT = '<the blob-redirect of this digest>';

interface Row {
  method: string;
  host: string;
  /** The request target (path and query) exactly, or a pattern where part of it changes per run. */
  path: string | RegExp;
  status: number;
  role: Role;
  registry: string | null;
  repo: string | null;
  reference: string | null;
  digest: string | null;
  auth: AuthClass;
  /** The set of accepted media types (order as the client sent them; compared as a set). */
  accept: readonly string[];
  scopesRequested: readonly string[];
  scopesGranted: readonly string[];
  mediaType: string | null;
  digestCheck: 'ok' | null;
  redirectTo: string | null;
  redirectFrom: typeof REDIRECT | null;
}

type Table = ReadonlyArray<Row | { parallel: readonly Row[] }>;
const parallel = (...rows: Row[]) => ({ parallel: rows });

const pull = (repo: string) => `repository:${repo}:pull`;
const cdnUrl = (digest: string) => `https://${CDN}${cdnPath(digest)}`;

/** dockerd 20.10: six separate Accept lines on manifest requests, in random order (reference §3, §8). */
const ACCEPT_DOCKERD = [MT.dockerManifest, MT.dockerList, MT.ociManifest, MT.ociIndex, MT.dockerSchema1Signed, MT.json];
/** containers/image (skopeo 1.9): six separate lines, fixed order; schema1 both ways, no application/json. */
const ACCEPT_SKOPEO = [MT.ociManifest, MT.dockerManifest, MT.dockerSchema1Signed, MT.dockerSchema1, MT.dockerList, MT.ociIndex];
/** containerd 1.6 resolve (HEAD by tag): one comma-joined line ending in a wildcard. */
const ACCEPT_CTR_RESOLVE = [MT.dockerManifest, MT.dockerList, MT.ociManifest, MT.ociIndex, '*/*'];
// containerd 1.6 fetch by digest (manifests and blobs): `<descriptor media type>, */*`.
const ctrFetch = (mt: string) => [mt, '*/*'];

// ------------------------------------------------------------------------------------------------
// dockerd-pull-multiarch: docker pull registry.test/lab/alpine:3.9, then registry.test/lab/oci:1.
// dockerd pings, fetches a token for the repository before its first request (pre-emptive auth from the
// ping's challenge), HEADs the tag, GETs the index by digest, then the linux/amd64 manifest by digest,
// then config and layers in parallel: each a 307 from the registry and a GET on the CDN without
// Authorization (Go drops it across hosts). Blob requests carry no Accept.

const DOCKERD_PULL: Table = [
  { method: 'GET', host: R, path: '/v2/', status: 401, role: 'ping', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Falpine%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/alpine')], scopesGranted: [pull('lab/alpine')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'HEAD', host: R, path: '/v2/lab/alpine/manifests/3.9', status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: '3.9', digest: D.alpineList,
    auth: 'bearer', accept: ACCEPT_DOCKERD, scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerList, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/alpine/manifests/${D.alpineList}`, status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: D.alpineList, digest: D.alpineList,
    auth: 'bearer', accept: ACCEPT_DOCKERD, scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerList, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/alpine/manifests/${D.alpineAmd64}`, status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64, digest: D.alpineAmd64,
    auth: 'bearer', accept: ACCEPT_DOCKERD, scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerManifest, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  parallel(
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Config}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Config, digest: D.alpineAmd64Config,
      auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Config), redirectFrom: null },
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Layer0}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer0, digest: D.alpineAmd64Layer0,
      auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Layer0), redirectFrom: null },
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Layer1}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer1, digest: D.alpineAmd64Layer1,
      auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Layer1), redirectFrom: null },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Config), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Config, digest: D.alpineAmd64Config,
      auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Layer0), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer0, digest: D.alpineAmd64Layer0,
      auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Layer1), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer1, digest: D.alpineAmd64Layer1,
      auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
  ),
  // lab/oci:1, a new repository session: ping and token again.
  { method: 'GET', host: R, path: '/v2/', status: 401, role: 'ping', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Foci%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/oci')], scopesGranted: [pull('lab/oci')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'HEAD', host: R, path: '/v2/lab/oci/manifests/1', status: 200, role: 'manifest', registry: R, repo: 'lab/oci', reference: '1', digest: D.ociIndex,
    auth: 'bearer', accept: ACCEPT_DOCKERD, scopesRequested: [], scopesGranted: [pull('lab/oci')], mediaType: MT.ociIndex, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/oci/manifests/${D.ociIndex}`, status: 200, role: 'manifest', registry: R, repo: 'lab/oci', reference: D.ociIndex, digest: D.ociIndex,
    auth: 'bearer', accept: ACCEPT_DOCKERD, scopesRequested: [], scopesGranted: [pull('lab/oci')], mediaType: MT.ociIndex, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/oci/manifests/${D.ociAmd64}`, status: 200, role: 'manifest', registry: R, repo: 'lab/oci', reference: D.ociAmd64, digest: D.ociAmd64,
    auth: 'bearer', accept: ACCEPT_DOCKERD, scopesRequested: [], scopesGranted: [pull('lab/oci')], mediaType: MT.ociManifest, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  parallel(
    { method: 'GET', host: R, path: `/v2/lab/oci/blobs/${D.ociAmd64Config}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/oci', reference: D.ociAmd64Config, digest: D.ociAmd64Config,
      auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/oci')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.ociAmd64Config), redirectFrom: null },
    { method: 'GET', host: R, path: `/v2/lab/oci/blobs/${D.ociAmd64Layer0}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/oci', reference: D.ociAmd64Layer0, digest: D.ociAmd64Layer0,
      auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/oci')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.ociAmd64Layer0), redirectFrom: null },
    { method: 'GET', host: CDN, path: cdnPath(D.ociAmd64Config), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/oci', reference: D.ociAmd64Config, digest: D.ociAmd64Config,
      auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
    { method: 'GET', host: CDN, path: cdnPath(D.ociAmd64Layer0), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/oci', reference: D.ociAmd64Layer0, digest: D.ociAmd64Layer0,
      auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
  ),
];

// ------------------------------------------------------------------------------------------------
// skopeo-copy: `skopeo inspect --raw docker://registry.test/lab/tiny:latest`, then
// `skopeo copy docker://registry.test/lab/alpine:3.9 dir:…`. containers/image pings, takes a token,
// GETs manifests (never HEAD), copies the layers in parallel and the config after them.

const SKOPEO: Table = [
  { method: 'GET', host: R, path: '/v2/', status: 401, role: 'ping', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Ftiny%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/tiny')], scopesGranted: [pull('lab/tiny')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  // By tag: the digest comes from Docker-Content-Digest, and the body is checked against it.
  { method: 'GET', host: R, path: '/v2/lab/tiny/manifests/latest', status: 200, role: 'manifest', registry: R, repo: 'lab/tiny', reference: 'latest', digest: D.tiny,
    auth: 'bearer', accept: ACCEPT_SKOPEO, scopesRequested: [], scopesGranted: [pull('lab/tiny')], mediaType: MT.dockerManifest, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: '/v2/', status: 401, role: 'ping', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Falpine%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/alpine')], scopesGranted: [pull('lab/alpine')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: '/v2/lab/alpine/manifests/3.9', status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: '3.9', digest: D.alpineList,
    auth: 'bearer', accept: ACCEPT_SKOPEO, scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerList, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/alpine/manifests/${D.alpineAmd64}`, status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64, digest: D.alpineAmd64,
    auth: 'bearer', accept: ACCEPT_SKOPEO, scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerManifest, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  parallel(
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Layer0}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer0, digest: D.alpineAmd64Layer0,
      auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Layer0), redirectFrom: null },
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Layer1}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer1, digest: D.alpineAmd64Layer1,
      auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Layer1), redirectFrom: null },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Layer0), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer0, digest: D.alpineAmd64Layer0,
      auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Layer1), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer1, digest: D.alpineAmd64Layer1,
      auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
  ),
  { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Config}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Config, digest: D.alpineAmd64Config,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Config), redirectFrom: null },
  { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Config), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Config, digest: D.alpineAmd64Config,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
];

// ------------------------------------------------------------------------------------------------
// ctr-pull: `ctr images pull --platform linux/amd64 registry.test/lab/tiny:latest`, then lab/alpine:3.9.
// containerd 1.6 does not ping: its first request (HEAD by tag) takes the 401 whose challenge names the
// scope; it fetches a token and retries. The fetch by digest that follows goes out without the token,
// is challenged again (401, same scope) and fetches a second token. Blobs are fetched in parallel.

const CTR: Table = [
  // A 401 carries the challenge's scope as scopesRequested.
  { method: 'HEAD', host: R, path: '/v2/lab/tiny/manifests/latest', status: 401, role: 'manifest', registry: R, repo: 'lab/tiny', reference: 'latest', digest: null,
    auth: 'none', accept: ACCEPT_CTR_RESOLVE, scopesRequested: [pull('lab/tiny')], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Ftiny%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/tiny')], scopesGranted: [pull('lab/tiny')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'HEAD', host: R, path: '/v2/lab/tiny/manifests/latest', status: 200, role: 'manifest', registry: R, repo: 'lab/tiny', reference: 'latest', digest: D.tiny,
    auth: 'bearer', accept: ACCEPT_CTR_RESOLVE, scopesRequested: [], scopesGranted: [pull('lab/tiny')], mediaType: MT.dockerManifest, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/tiny/manifests/${D.tiny}`, status: 401, role: 'manifest', registry: R, repo: 'lab/tiny', reference: D.tiny, digest: D.tiny,
    auth: 'none', accept: ctrFetch(MT.dockerManifest), scopesRequested: [pull('lab/tiny')], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Ftiny%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/tiny')], scopesGranted: [pull('lab/tiny')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/tiny/manifests/${D.tiny}`, status: 200, role: 'manifest', registry: R, repo: 'lab/tiny', reference: D.tiny, digest: D.tiny,
    auth: 'bearer', accept: ctrFetch(MT.dockerManifest), scopesRequested: [], scopesGranted: [pull('lab/tiny')], mediaType: MT.dockerManifest, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  // Go keeps Accept across the redirect; the CDN request has the same Accept as the blob GET.
  parallel(
    { method: 'GET', host: R, path: `/v2/lab/tiny/blobs/${D.tinyConfig}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/tiny', reference: D.tinyConfig, digest: D.tinyConfig,
      auth: 'bearer', accept: ctrFetch(MT.dockerConfig), scopesRequested: [], scopesGranted: [pull('lab/tiny')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.tinyConfig), redirectFrom: null },
    { method: 'GET', host: R, path: `/v2/lab/tiny/blobs/${D.tinyLayer0}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/tiny', reference: D.tinyLayer0, digest: D.tinyLayer0,
      auth: 'bearer', accept: ctrFetch(MT.dockerLayer), scopesRequested: [], scopesGranted: [pull('lab/tiny')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.tinyLayer0), redirectFrom: null },
    { method: 'GET', host: CDN, path: cdnPath(D.tinyConfig), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/tiny', reference: D.tinyConfig, digest: D.tinyConfig,
      auth: 'none', accept: ctrFetch(MT.dockerConfig), scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
    { method: 'GET', host: CDN, path: cdnPath(D.tinyLayer0), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/tiny', reference: D.tinyLayer0, digest: D.tinyLayer0,
      auth: 'none', accept: ctrFetch(MT.dockerLayer), scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
  ),
  { method: 'HEAD', host: R, path: '/v2/lab/alpine/manifests/3.9', status: 401, role: 'manifest', registry: R, repo: 'lab/alpine', reference: '3.9', digest: null,
    auth: 'none', accept: ACCEPT_CTR_RESOLVE, scopesRequested: [pull('lab/alpine')], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Falpine%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/alpine')], scopesGranted: [pull('lab/alpine')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'HEAD', host: R, path: '/v2/lab/alpine/manifests/3.9', status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: '3.9', digest: D.alpineList,
    auth: 'bearer', accept: ACCEPT_CTR_RESOLVE, scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerList, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/alpine/manifests/${D.alpineList}`, status: 401, role: 'manifest', registry: R, repo: 'lab/alpine', reference: D.alpineList, digest: D.alpineList,
    auth: 'none', accept: ctrFetch(MT.dockerList), scopesRequested: [pull('lab/alpine')], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?scope=repository%3Alab%2Falpine%3Apull&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [pull('lab/alpine')], scopesGranted: [pull('lab/alpine')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/alpine/manifests/${D.alpineList}`, status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: D.alpineList, digest: D.alpineList,
    auth: 'bearer', accept: ctrFetch(MT.dockerList), scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerList, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: `/v2/lab/alpine/manifests/${D.alpineAmd64}`, status: 200, role: 'manifest', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64, digest: D.alpineAmd64,
    auth: 'bearer', accept: ctrFetch(MT.dockerManifest), scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.dockerManifest, digestCheck: 'ok', redirectTo: null, redirectFrom: null },
  parallel(
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Config}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Config, digest: D.alpineAmd64Config,
      auth: 'bearer', accept: ctrFetch(MT.dockerConfig), scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Config), redirectFrom: null },
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Layer0}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer0, digest: D.alpineAmd64Layer0,
      auth: 'bearer', accept: ctrFetch(MT.dockerLayer), scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Layer0), redirectFrom: null },
    { method: 'GET', host: R, path: `/v2/lab/alpine/blobs/${D.alpineAmd64Layer1}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer1, digest: D.alpineAmd64Layer1,
      auth: 'bearer', accept: ctrFetch(MT.dockerLayer), scopesRequested: [], scopesGranted: [pull('lab/alpine')], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.alpineAmd64Layer1), redirectFrom: null },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Config), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Config, digest: D.alpineAmd64Config,
      auth: 'none', accept: ctrFetch(MT.dockerConfig), scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Layer0), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer0, digest: D.alpineAmd64Layer0,
      auth: 'none', accept: ctrFetch(MT.dockerLayer), scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
    { method: 'GET', host: CDN, path: cdnPath(D.alpineAmd64Layer1), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/alpine', reference: D.alpineAmd64Layer1, digest: D.alpineAmd64Layer1,
      auth: 'none', accept: ctrFetch(MT.dockerLayer), scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: 'ok', redirectTo: null, redirectFrom: REDIRECT },
  ),
];

// ------------------------------------------------------------------------------------------------
// dockerd-push: docker login registry.test; docker tag lab/tiny:latest lab/pushed:1; docker push.
// Login: ping 401, token GET with Basic credentials and offline_token=true&client_id=docker (the lab
// returns a refresh token), ping 200 with the new token (whose `access` is empty: no scope asked).
// Push: ping, then OAuth POSTs with grant_type=refresh_token (no Authorization header; the refresh token
// is in the form). The layer came from lab/tiny, so dockerd HEADs it (404), gets a token that adds
// `repository:lab/tiny:pull` and mounts it (201); the config is HEAD 404, POST 202, PATCH 202, PUT 201.
// After each, a HEAD that the registry redirects to the CDN. Then the manifest PUT by tag.

const PUSHED = 'repository:lab/pushed:push,pull';
const UPLOAD = /^\/v2\/lab\/pushed\/blobs\/uploads\/[0-9a-f-]{36}\?_state=REDACTED-[0-9a-f]{8}$/;
const UPLOAD_FINISH = new RegExp(`^/v2/lab/pushed/blobs/uploads/[0-9a-f-]{36}\\?_state=REDACTED-[0-9a-f]{8}&digest=sha256%3A${D.tinyConfig.slice(7)}$`);

const DOCKERD_PUSH: Table = [
  { method: 'GET', host: R, path: '/v2/', status: 401, role: 'ping', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: AUTH, path: '/token?account=labuser&client_id=docker&offline_token=true&service=registry.test', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'basic', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: '/v2/', status: 200, role: 'ping', registry: R, repo: null, reference: null, digest: null,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'GET', host: R, path: '/v2/', status: 401, role: 'ping', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  // The scope asked for (scope=repository:lab/pushed:push,pull) is in the form body, which the classifier
  // does not get (it sees heads and decoded token claims only): scopesRequested stays empty here.
  { method: 'POST', host: AUTH, path: '/token', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'HEAD', host: R, path: `/v2/lab/pushed/blobs/${D.tinyLayer0}`, status: 404, role: 'blob', registry: R, repo: 'lab/pushed', reference: D.tinyLayer0, digest: D.tinyLayer0,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'POST', host: AUTH, path: '/token', status: 200, role: 'token', registry: R, repo: null, reference: null, digest: null,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [PUSHED, pull('lab/tiny')], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'POST', host: R, path: `/v2/lab/pushed/blobs/uploads/?from=lab%2Ftiny&mount=sha256%3A${D.tinyLayer0.slice(7)}`, status: 201, role: 'mount', registry: R, repo: 'lab/pushed', reference: D.tinyLayer0, digest: D.tinyLayer0,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED, pull('lab/tiny')], mediaType: null, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'HEAD', host: R, path: `/v2/lab/pushed/blobs/${D.tinyLayer0}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/pushed', reference: D.tinyLayer0, digest: D.tinyLayer0,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.tinyLayer0), redirectFrom: null },
  { method: 'HEAD', host: CDN, path: cdnPath(D.tinyLayer0), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/pushed', reference: D.tinyLayer0, digest: D.tinyLayer0,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: null, redirectTo: null, redirectFrom: REDIRECT },
  { method: 'HEAD', host: R, path: `/v2/lab/pushed/blobs/${D.tinyConfig}`, status: 404, role: 'blob', registry: R, repo: 'lab/pushed', reference: D.tinyConfig, digest: D.tinyConfig,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: MT.json, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'POST', host: R, path: '/v2/lab/pushed/blobs/uploads/', status: 202, role: 'upload-start', registry: R, repo: 'lab/pushed', reference: null, digest: null,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: null, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'PATCH', host: R, path: UPLOAD, status: 202, role: 'upload-chunk', registry: R, repo: 'lab/pushed', reference: null, digest: null,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: null, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'PUT', host: R, path: UPLOAD_FINISH, status: 201, role: 'upload-finish', registry: R, repo: 'lab/pushed', reference: D.tinyConfig, digest: D.tinyConfig,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: null, digestCheck: null, redirectTo: null, redirectFrom: null },
  { method: 'HEAD', host: R, path: `/v2/lab/pushed/blobs/${D.tinyConfig}`, status: 307, role: 'blob-redirect', registry: R, repo: 'lab/pushed', reference: D.tinyConfig, digest: D.tinyConfig,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: MT.octet, digestCheck: null, redirectTo: cdnUrl(D.tinyConfig), redirectFrom: null },
  { method: 'HEAD', host: CDN, path: cdnPath(D.tinyConfig), status: 200, role: 'cdn-blob', registry: R, repo: 'lab/pushed', reference: D.tinyConfig, digest: D.tinyConfig,
    auth: 'none', accept: [], scopesRequested: [], scopesGranted: [], mediaType: MT.octet, digestCheck: null, redirectTo: null, redirectFrom: REDIRECT },
  // The registry answers the PUT with Docker-Content-Digest = sha256 of the bytes pushed.
  { method: 'PUT', host: R, path: '/v2/lab/pushed/manifests/1', status: 201, role: 'manifest', registry: R, repo: 'lab/pushed', reference: '1', digest: REQUEST_BODY_DIGEST,
    auth: 'bearer', accept: [], scopesRequested: [], scopesGranted: [PUSHED], mediaType: null, digestCheck: null, redirectTo: null, redirectFrom: null },
];

// The first four fixtures, flow by flow (the later ones are covered by operations.test.ts and the show goldens).
const TABLES: Partial<Record<FixtureName, Table>> = {
  'dockerd-pull-multiarch': DOCKERD_PULL,
  'skopeo-copy': SKOPEO,
  'ctr-pull': CTR,
  'dockerd-push': DOCKERD_PUSH,
};

// ------------------------------------------------------------------------------------------------

interface Classified {
  flow: FlowRecord;
  facts: RegistryFacts;
}

const scopeString = (s: Scope) => `${s.type}:${s.name}:${s.actions.join(',')}`;
const flowKey = (f: FlowRecord) => `${f.request.method} ${f.request.host} ${f.request.target}`;
const rowKey = (r: Row) => {
  if (typeof r.path !== 'string') throw new Error('rows inside parallel() need exact paths');
  return `${r.method} ${r.host} ${r.path}`;
};
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Flatten a table into rows in flow order, sorting each parallel group (and its flows) by key. */
function align(table: Table, flows: Classified[]): Array<[Classified | undefined, Row]> {
  const out: Array<[Classified | undefined, Row]> = [];
  let i = 0;
  for (const entry of table) {
    if ('parallel' in entry) {
      const rows = [...entry.parallel].sort((a, b) => rowKey(a).localeCompare(rowKey(b)));
      const group = flows.slice(i, i + rows.length).sort((a, b) => flowKey(a.flow).localeCompare(flowKey(b.flow)));
      rows.forEach((r, k) => out.push([group[k], r]));
      i += rows.length;
    } else out.push([flows[i++], entry]);
  }
  return out;
}

/** What the classifier said about a flow, in the row's terms (relations resolved to their markers). */
function observed(c: Classified, row: Row, byId: Map<number, Classified>, rec: Recording): Record<string, unknown> {
  const { flow: f, facts } = c;
  const target = f.request.target;
  let redirectFrom: string | number | null = facts.redirectFrom;
  if (facts.redirectFrom !== null) {
    const src = byId.get(facts.redirectFrom);
    const pathDigest = /\/sha256\/[0-9a-f]{2}\/([0-9a-f]{64})\/data$/.exec(target)?.[1];
    const ok =
      !!src &&
      src.flow.id < f.id &&
      src.facts.role === 'blob-redirect' &&
      src.facts.digest === facts.digest &&
      facts.digest === `sha256:${pathDigest}` &&
      src.facts.redirectTo === `https://${f.request.host}${target}`;
    if (ok) redirectFrom = REDIRECT;
  }
  let digest = facts.digest;
  if (row.digest === REQUEST_BODY_DIGEST && f.requestBody?.sha256) {
    if (digest === sha256(rec.readBodySync(f.requestBody.sha256)!)) digest = REQUEST_BODY_DIGEST;
  }
  return {
    method: f.request.method,
    host: f.request.host,
    path: typeof row.path !== 'string' && row.path.test(target) ? row.path : target,
    status: f.response?.status ?? null,
    role: facts.role,
    registry: facts.registry,
    repo: facts.repo,
    reference: facts.reference,
    digest,
    auth: facts.auth,
    accept: facts.accept,
    scopesRequested: facts.scopesRequested.map(scopeString),
    scopesGranted: facts.scopesGranted.map(scopeString),
    mediaType: facts.mediaType,
    digestCheck: facts.digestCheck,
    redirectTo: facts.redirectTo,
    redirectFrom,
  };
}

/** Accept is a set: sorted, no duplicates. */
const expected = (row: Row): Record<string, unknown> => ({ ...row, accept: [...new Set(row.accept)].sort() });

describe.each(Object.keys(TABLES) as FixtureName[])('classifier on fixtures/%s.db', (name) => {
  let rec: Recording;
  let flows: Classified[];
  const table = TABLES[name]!;
  const rowCount = table.reduce((n, e) => n + ('parallel' in e ? e.parallel.length : 1), 0);

  beforeAll(() => {
    rec = openFixture(name);
    const classifier = new Classifier();
    // Classify from scratch, in recording order (the facts stored at record time are ignored).
    flows = rec.list().map((f) => {
      const fresh: FlowRecord = { ...f, registry: null };
      return { flow: fresh, facts: classifier.classify(fresh) };
    });
  });
  afterAll(() => rec?.close());

  it('has exactly as many flows as the table has rows, all complete', () => {
    expect(flows.length).toBe(rowCount);
    expect(flows.map((c) => c.flow.id)).toEqual(flows.map((_, i) => i + 1));
    expect(flows.filter((c) => c.flow.state !== 'complete')).toEqual([]);
  });

  it('classifies every flow as its row says', () => {
    const byId = new Map(flows.map((c) => [c.flow.id, c]));
    for (const [c, row] of align(table, flows)) {
      expect(c, `no flow for row ${row.method} ${row.host} ${String(row.path)}`).toBeDefined();
      expect(observed(c!, row, byId, rec), `${name} flow ${c!.flow.id}: ${c!.flow.request.method} ${c!.flow.request.host}${c!.flow.request.target}`).toEqual(expected(row));
      expect(c!.facts.digestProblem).toBeNull();
    }
  });

  it("digest check is 'ok' for every GET 200 of a manifest or blob by digest (and the stored body hashes to it)", () => {
    const byDigest = flows.filter(({ flow: f }) => f.request.method === 'GET' && f.response?.status === 200 && /sha256[:/]/.test(f.request.target));
    // The push only HEADs blobs and PUTs its manifest: nothing is fetched by digest there.
    expect(byDigest.length > 0).toBe(name !== 'dockerd-push');
    for (const { flow: f, facts } of byDigest) {
      expect(facts.digestCheck, `flow ${f.id}`).toBe('ok');
      const hex = /sha256(?::|\/[0-9a-f]{2}\/)([0-9a-f]{64})/.exec(f.request.target)![1];
      expect(sha256(rec.readBodySync(f.responseBody!.sha256!, 4 << 20)!), `flow ${f.id} body`).toBe(`sha256:${hex}`);
    }
  });

  it('the facts stored at record time are what the classifier says now (else: bash scripts/make-fixtures)', () => {
    const stored = rec.list();
    expect(stored.map((f) => f.registry)).toEqual(flows.map((c) => c.facts));
  });
});

describe('fixture relations the table cannot state literally', () => {
  it('dockerd-push: PATCH and PUT go to the upload session the POST opened (its Location, its Docker-Upload-UUID)', () => {
    const rec = openFixture('dockerd-push');
    try {
      const f = rec.list();
      const start = f.find((x) => x.request.method === 'POST' && x.request.target === '/v2/lab/pushed/blobs/uploads/')!;
      const header = (name: string) => start.response!.headers.find(([k]) => k.toLowerCase() === name)?.[1];
      const uuid = header('docker-upload-uuid')!;
      expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
      expect(header('location')).toMatch(new RegExp(`^https://registry\\.test/v2/lab/pushed/blobs/uploads/${uuid}\\?_state=REDACTED-[0-9a-f]{8}$`));
      const patch = f.find((x) => x.request.method === 'PATCH')!;
      const put = f.find((x) => x.request.method === 'PUT' && x.request.target.includes('/blobs/uploads/'))!;
      expect(patch.request.target.startsWith(`/v2/lab/pushed/blobs/uploads/${uuid}?`)).toBe(true);
      expect(put.request.target.startsWith(`/v2/lab/pushed/blobs/uploads/${uuid}?`)).toBe(true);
      // The PATCH carried the config blob (359 bytes) whose digest the PUT names.
      expect(patch.requestBytes).toBe(359);
      expect(sha256(rec.readBodySync(patch.requestBody!.sha256!)!)).toBe(D.tinyConfig);
    } finally {
      rec.close();
    }
  });
});
