import { getHeader, type FlowRecord, type HeaderList } from '../flow/index.js';
import { baseMediaType, isDigest, MediaTypes, isIndex, parseChallenge, parseManifest, splitTarget, type ParsedManifest } from '../registry/index.js';
import { Answers } from './answers.js';
import { canonicalRegistry, hostPortOf } from './hosts.js';

/** A recorded manifest, by content. */
export interface StoredManifest {
  digest: string;
  mediaType: string;
  /** sha256 of the stored body (= digest hex for sha256 digests). */
  bodySha: string;
  size: number;
  parsed: ParsedManifest | null;
  /** Flow that carried it (for reports). */
  flowId: number;
}

/** A recorded blob body, by digest. */
export interface StoredBlob {
  digest: string;
  bodySha: string;
  size: number;
  flowId: number;
}

/** A recorded redirect of a blob request (registry → CDN). */
export interface StoredRedirect {
  status: number;
  location: string;
  headers: HeaderList;
  flowId: number;
}

/** Everything a recording knows about one registry host. */
export interface RegistryCatalog {
  host: string;
  /** The recorded challenge (WWW-Authenticate of a 401), if the registry asked for auth. */
  challenge: { header: string; realm: string | null; service: string | null } | null;
  /** Recorded ping answers by auth class. */
  pings: Map<string, FlowRecord>;
  /** repo → tag → manifest digests seen for it (latest last). */
  tags: Map<string, Map<string, string[]>>;
  /** repo → recorded blob redirects by digest. */
  redirects: Map<string, Map<string, StoredRedirect>>;
  /** Repositories seen. */
  repos: Set<string>;
}

/**
 * The replayable content of a recording, indexed for protocol-aware matching:
 * manifests and blobs by digest (content-addressed, so repository-independent),
 * tags per repository, redirects, token endpoints, CDN paths, and every flow for
 * exact-match fallback.
 */
export interface Catalog {
  registries: Map<string, RegistryCatalog>;
  manifests: Map<string, StoredManifest>;
  blobs: Map<string, StoredBlob>;
  /** Token endpoints: host+path → recorded token flows. */
  tokenEndpoints: Map<string, FlowRecord[]>;
  /** CDN: host+path → digest. */
  cdn: Map<string, string>;
  /** Every flow, for the exact-match fallback and closest-miss explanations. */
  flows: FlowRecord[];
  /** Flow ids served at least once (for the unused-flow report). */
  used: Set<number>;
  /** Every recorded registry answer (successes and failures) by protocol-aware key. */
  answers: Answers;
  /**
   * Recorded content-negotiation 404s ("OCI index found, but accept header does not support
   * OCI indexes"), flow id → the media type the request's Accept lacked.
   */
  negotiation: Map<number, string>;
}

const NEGOTIATION = /OCI (index|manifest) found, but accept header does not support/;

/** The registry a recorded flow belongs to, for matching (Docker Hub's names are one). */
export function flowRegistry(f: FlowRecord): string {
  return canonicalRegistry(f.registry?.registry ?? hostPortOf(f.request.scheme, f.request.host, f.request.port));
}

type RegistryOf = (name: string) => RegistryCatalog;

function addTag(r: RegistryCatalog, repo: string, tag: string, digest: string): void {
  const tags = r.tags.get(repo) ?? new Map<string, string[]>();
  const list = tags.get(tag) ?? [];
  if (!list.includes(digest)) list.push(digest);
  tags.set(tag, list);
  r.tags.set(repo, tags);
}

/** A manifest answer: negotiation 404s noted; a 200 GET's content stored by digest and its tag remembered. */
function addManifest(cat: Catalog, reg: RegistryOf, f: FlowRecord, readManifest: (sha: string) => Buffer | null): void {
  const facts = f.registry!;
  const res = f.response!;
  if (facts.registry && facts.repo) reg(facts.registry).repos.add(facts.repo);
  if (res.status === 404 && f.responseBody?.sha256) {
    const m = NEGOTIATION.exec(readManifest(f.responseBody.sha256)?.toString('utf8') ?? '');
    if (m) cat.negotiation.set(f.id, m[1] === 'index' ? MediaTypes.OCIIndex : MediaTypes.OCIManifest);
  }
  if (f.request.method !== 'GET' || res.status !== 200 || !f.responseBody?.sha256 || f.responseBody.redacted || !facts.registry || !facts.repo) return;
  const digest = `sha256:${f.responseBody.sha256}`;
  const mediaType = baseMediaType(getHeader(res.headers, 'content-type')) ?? '';
  if (!cat.manifests.has(digest)) {
    const body = readManifest(f.responseBody.sha256);
    let parsed: ParsedManifest | null = null;
    try {
      parsed = body ? parseManifest(body, mediaType) : null;
    } catch {
      parsed = null;
    }
    cat.manifests.set(digest, { digest, mediaType: mediaType || parsed?.mediaType || '', bodySha: f.responseBody.sha256, size: f.responseBody.size, parsed, flowId: f.id });
  }
  if (facts.reference && !isDigest(facts.reference)) addTag(reg(facts.registry), facts.repo, facts.reference, digest);
}

/** Blob bytes (registry or CDN) by digest, CDN paths, and registry → CDN redirects. */
function addBlob(cat: Catalog, reg: RegistryOf, f: FlowRecord): void {
  const facts = f.registry!;
  const res = f.response!;
  if (facts.role === 'blob-redirect') {
    if (!facts.registry || !facts.repo || !facts.digest) return;
    const r = reg(facts.registry);
    r.repos.add(facts.repo);
    const m = r.redirects.get(facts.repo) ?? new Map<string, StoredRedirect>();
    m.set(facts.digest, { status: res.status, location: getHeader(res.headers, 'location') ?? '', headers: res.headers, flowId: f.id });
    r.redirects.set(facts.repo, m);
    return;
  }
  if (f.request.method !== 'GET' || res.status !== 200 || !f.responseBody?.sha256 || !facts.digest) return;
  if (`sha256:${f.responseBody.sha256}` !== facts.digest) return; // never serve bytes that do not match their digest
  if (!cat.blobs.has(facts.digest)) cat.blobs.set(facts.digest, { digest: facts.digest, bodySha: f.responseBody.sha256, size: f.responseBody.size, flowId: f.id });
  if (facts.role === 'cdn-blob') cat.cdn.set(`${f.request.host.toLowerCase()}${splitTarget(f.request.target).path}`, facts.digest);
  if (facts.registry && facts.repo) reg(facts.registry).repos.add(facts.repo);
}

/** Build the catalog. `readManifest` returns a small body's bytes (manifests and error bodies are inline). */
export function buildCatalog(flows: FlowRecord[], readManifest: (sha: string) => Buffer | null): Catalog {
  const cat: Catalog = { registries: new Map(), manifests: new Map(), blobs: new Map(), tokenEndpoints: new Map(), cdn: new Map(), flows, used: new Set(), answers: new Answers(), negotiation: new Map() };
  const reg: RegistryOf = (name) => {
    const host = canonicalRegistry(name);
    let r = cat.registries.get(host);
    if (!r) {
      r = { host, challenge: null, pings: new Map(), tags: new Map(), redirects: new Map(), repos: new Set() };
      cat.registries.set(host, r);
    }
    return r;
  };
  for (const f of flows) {
    const facts = f.registry;
    const res = f.response;
    if (!facts || !res || f.state !== 'complete') continue;
    if (facts.role !== 'token' && facts.role !== 'cdn-blob') cat.answers.add(flowRegistry(f), f);
    // Challenges, from any 401 (the ping's wins).
    if (res.status === 401 && facts.registry && facts.role !== 'token') {
      const h = getHeader(res.headers, 'www-authenticate');
      const c = h ? parseChallenge(h) : null;
      const r = reg(facts.registry);
      if (h && (!r.challenge || facts.role === 'ping')) r.challenge = { header: h, realm: c?.params.realm ?? null, service: c?.params.service ?? null };
    }
    if (facts.role === 'ping') reg(flowRegistry(f)).pings.set(facts.auth === 'none' ? 'none' : 'auth', f);
    else if (facts.role === 'token') {
      const k = `${f.request.host.toLowerCase()}${splitTarget(f.request.target).path}`;
      cat.tokenEndpoints.set(k, [...(cat.tokenEndpoints.get(k) ?? []), f]);
    } else if (facts.role === 'manifest') addManifest(cat, reg, f, readManifest);
    else if (facts.role === 'blob' || facts.role === 'cdn-blob' || facts.role === 'blob-redirect') addBlob(cat, reg, f);
  }
  // Tags also resolve through manifests recorded by digest only if a HEAD told us the digest.
  for (const f of flows) {
    const facts = f.registry;
    if (!facts || facts.role !== 'manifest' || f.request.method !== 'HEAD' || f.response?.status !== 200) continue;
    const digest = getHeader(f.response.headers, 'docker-content-digest');
    if (!digest || !cat.manifests.has(digest) || !facts.reference || isDigest(facts.reference) || !facts.registry || !facts.repo) continue;
    addTag(reg(facts.registry), facts.repo, facts.reference, digest);
  }
  return cat;
}

/** The manifest a tag points to: the index if one was recorded, else the latest. */
export function resolveTag(cat: Catalog, r: RegistryCatalog, repo: string, tag: string): StoredManifest | null {
  const digests = r.tags.get(repo)?.get(tag) ?? [];
  const ms = digests.map((d) => cat.manifests.get(d)).filter((m): m is StoredManifest => !!m);
  return ms.find((m) => isIndex(m.mediaType)) ?? ms.at(-1) ?? null;
}
