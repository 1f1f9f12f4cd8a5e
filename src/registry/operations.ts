import { getHeader, type FlowRecord, type RegistryFacts, type Scope } from '../flow/index.js';
import type { Descriptor, ParsedManifest } from './manifest.js';
import { isDigest, matchRoute, splitTarget } from './routes.js';

/** One blob of an operation (config or layer) and how it moved. */
export interface OperationBlob {
  digest: string;
  /** Size from the manifest (0 if unknown). */
  size: number;
  mediaType: string;
  kind: 'config' | 'layer' | 'blob';
  /** Flows that carried its bytes (registry blob GETs, CDN downloads, uploads). */
  flowIds: number[];
  /** Bytes that passed in those flows. */
  bytes: number;
  /** Duration of the longest transfer (ms). */
  ms: number;
  /** Bytes per second of that transfer. */
  throughput: number;
  /** Host that served (or received) it. */
  via: string | null;
  /** Fetched from a CDN after a redirect. */
  cdn: boolean;
  /** Already present: skipped (HEAD 200 before push, or mounted). */
  skipped?: boolean;
  /** The image manifest that lists it (config and layers). */
  manifest?: string;
}

export interface OperationManifest {
  digest: string;
  mediaType: string;
  platform?: string;
  flowId: number;
}

/** A pull or push of one repository, reconstructed from its flows. */
export interface Operation {
  kind: 'pull' | 'push';
  registry: string;
  repo: string;
  /** Tag or digest the client asked for. */
  reference: string | null;
  /** Flow ids in order, including pings and token requests attributed to it. */
  flowIds: number[];
  /** The index / manifest list, when the reference resolved to one. */
  index?: { digest: string; mediaType: string; platforms: string[]; flowId: number };
  /** Image manifests fetched (one per platform pulled). */
  manifests: OperationManifest[];
  /** Config and layers, in manifest order. */
  blobs: OperationBlob[];
  totals: { flows: number; bytes: number; wallMs: number; start: number; end: number };
  /** Things a user should look at: auth loops, rate limits, digest mismatches, retries, aborts. */
  problems: string[];
}

type ClassifiedFlow = FlowRecord & { registry: RegistryFacts };

/**
 * Group classified flows into pull and push operations. `manifests` gives the parsed
 * body of manifest flows (by flow id) so the tree can be built: index → platform
 * manifest → config and layers. Pure: no I/O.
 */
export function buildOperations(flows: readonly FlowRecord[], manifests: ReadonlyMap<number, ParsedManifest>): Operation[] {
  const ops: Operation[] = [];
  const open = new Map<string, Operation>();
  const pendingByRegistry = new Map<string, number[]>(); // pings before an operation starts
  const pendingByRepo = new Map<string, number[]>(); // tokens scoped to a repo before its operation starts
  const byId = new Map<number, ClassifiedFlow>();
  const lastActivity = new Map<Operation, number>();
  const tagSeen = new Map<Operation, Set<string>>();
  const blobSeen = new Set<Operation>();

  const start = (registry: string, repo: string): Operation => {
    const op: Operation = { kind: 'pull', registry, repo, reference: null, flowIds: [], manifests: [], blobs: [], totals: { flows: 0, bytes: 0, wallMs: 0, start: 0, end: 0 }, problems: [] };
    ops.push(op);
    open.set(`${registry}|${repo}`, op);
    tagSeen.set(op, new Set());
    const pre = [...(pendingByRegistry.get(registry) ?? []), ...(pendingByRepo.get(`${registry}|${repo}`) ?? [])];
    pendingByRegistry.delete(registry);
    pendingByRepo.delete(`${registry}|${repo}`);
    op.flowIds.push(...pre);
    return op;
  };

  for (const raw of flows) {
    if (!raw.registry) continue;
    const f = raw as ClassifiedFlow;
    byId.set(f.id, f);
    const r = f.registry;
    if (r.role === 'ping' && r.registry) {
      const list = pendingByRegistry.get(r.registry) ?? [];
      list.push(f.id);
      pendingByRegistry.set(r.registry, list);
      continue;
    }
    if (r.role === 'token') {
      const repos = tokenScopes(r).filter((s) => s.type === 'repository').map((s) => s.name);
      const registry = r.registry ?? '';
      const target = repos.map((repo) => open.get(`${registry}|${repo}`)).find(Boolean);
      if (target && !isStale(target, f)) {
        target.flowIds.push(f.id);
        lastActivity.set(target, f.timings.end ?? f.timings.start);
      } else if (repos[0]) {
        const k = `${registry}|${repos[0]}`;
        pendingByRepo.set(k, [...(pendingByRepo.get(k) ?? []), f.id]);
      }
      continue;
    }
    if (!r.repo || !r.registry) continue;
    let op = open.get(`${r.registry}|${r.repo}`);
    const isTagRequest = r.role === 'manifest' && r.reference && !isDigest(r.reference) && f.request.method !== 'PUT';
    if (
      !op ||
      isStale(op, f, lastActivity.get(op)) ||
      (isTagRequest && (blobSeen.has(op) || (tagSeen.get(op)!.size > 0 && !tagSeen.get(op)!.has(r.reference!))))
    ) {
      op = start(r.registry, r.repo);
    }
    op.flowIds.push(f.id);
    lastActivity.set(op, f.timings.end ?? f.timings.start);
    if (isTagRequest) {
      tagSeen.get(op)!.add(r.reference!);
      op.reference ??= r.reference;
    }
    if (r.role === 'manifest' && !op.reference && r.reference) op.reference = r.reference;
    if (['upload-start', 'upload-chunk', 'upload-finish', 'upload-cancel', 'mount'].includes(r.role) || (r.role === 'manifest' && f.request.method === 'PUT')) {
      op.kind = 'push';
      if (r.role === 'manifest' && f.request.method === 'PUT' && r.reference && !isDigest(r.reference)) op.reference = r.reference;
    }
    if (['blob', 'cdn-blob', 'blob-redirect', 'upload-finish'].includes(r.role)) blobSeen.add(op);
  }

  for (const op of ops) finishOperation(op, byId, manifests);
  return ops;
}

/**
 * The scopes a token request is about: those asked for in the URL, else those granted. An OAuth POST
 * (`grant_type=refresh_token|password`, dockerd after `docker login` when the token server issued a
 * refresh token) carries `scope` in its form body, which the classifier does not see.
 */
function tokenScopes(r: RegistryFacts): Scope[] {
  return r.scopesRequested.length ? r.scopesRequested : r.scopesGranted;
}

/** Upload session id from an upload URL (`/v2/<name>/blobs/uploads/<id>`), or null. */
function uploadId(f: FlowRecord): string | null {
  const route = matchRoute(splitTarget(f.request.target).path);
  return route?.kind === 'uploads' ? route.uploadId : null;
}

/** A new operation starts when the same repository is touched again after 60 s of quiet. */
function isStale(op: Operation, f: FlowRecord, last?: number): boolean {
  return last !== undefined && f.timings.start - last > 60_000;
}

function finishOperation(op: Operation, byId: Map<number, ClassifiedFlow>, manifests: ReadonlyMap<number, ParsedManifest>): void {
  op.flowIds.sort((a, b) => a - b);
  const flows = op.flowIds.map((id) => byId.get(id)!).filter(Boolean);
  const blobs = new Map<string, OperationBlob>();
  const addBlob = (d: Descriptor, kind: OperationBlob['kind'], manifest?: string) => {
    if (!blobs.has(d.digest)) blobs.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType, kind, flowIds: [], bytes: 0, ms: 0, throughput: 0, via: null, cdn: false, manifest });
  };
  // The manifest tree.
  for (const f of flows) {
    const r = f.registry;
    const ok = f.response?.status === 200 || (f.request.method === 'PUT' && f.response?.status === 201);
    if (r.role !== 'manifest' || !ok) continue;
    const parsed = manifests.get(f.id);
    const digest = r.digest ?? '';
    if (!parsed) continue;
    if (parsed.kind === 'index') {
      if (!op.index) op.index = { digest, mediaType: parsed.mediaType, platforms: parsed.manifests.map((m) => m.platform ?? '?'), flowId: f.id };
    } else if (parsed.kind === 'image') {
      if (!op.manifests.some((m) => m.digest === digest)) {
        op.manifests.push({ digest, mediaType: parsed.mediaType, flowId: f.id });
      }
      addBlob(parsed.config, 'config', digest);
      for (const l of parsed.layers) addBlob(l, 'layer', digest);
    } else if (parsed.kind === 'schema1') {
      op.manifests.push({ digest, mediaType: parsed.mediaType, flowId: f.id });
      for (const l of parsed.layers) addBlob({ digest: l.digest, size: 0, mediaType: '' }, 'layer', digest);
    }
  }
  // Platforms of the manifests, from the index.
  if (op.index) {
    const idx = manifests.get(op.index.flowId);
    if (idx?.kind === 'index') for (const m of op.manifests) m.platform = idx.manifests.find((d) => d.digest === m.digest)?.platform;
  }
  // Transfers. Chunks (PATCH) name no digest: the PUT that finishes their upload session does.
  const uploadDigests = new Map<string, string>();
  for (const f of flows) {
    const id = f.registry.role === 'upload-finish' && f.registry.digest ? uploadId(f) : null;
    if (id) uploadDigests.set(id, f.registry.digest!);
  }
  const fetches = new Map<string, number>();
  for (const f of flows) {
    const r = f.registry;
    // HEADs (existence checks, also when redirected to the CDN) move no bytes.
    const moving = ((r.role === 'cdn-blob' || r.role === 'blob') && f.request.method === 'GET') || r.role === 'upload-chunk' || r.role === 'upload-finish';
    const digest = r.digest ?? (r.role === 'upload-chunk' ? uploadDigests.get(uploadId(f) ?? '') : undefined);
    if (!digest) continue;
    if (r.role === 'mount' && f.response?.status === 201) {
      addBlob({ digest, size: 0, mediaType: '' }, 'blob');
      blobs.get(digest)!.skipped = true;
      continue;
    }
    if (!moving) continue;
    addBlob({ digest, size: 0, mediaType: '' }, 'blob');
    const b = blobs.get(digest)!;
    const bytes = op.kind === 'push' ? f.requestBytes : f.responseBytes;
    const ms = (f.timings.end ?? f.timings.start) - f.timings.start;
    b.flowIds.push(f.id);
    b.bytes += bytes;
    if (ms >= b.ms) {
      b.ms = ms;
      b.throughput = ms > 0 ? (bytes / ms) * 1000 : 0;
      b.via = f.request.host;
      b.cdn = r.role === 'cdn-blob';
    }
    if ((r.role === 'cdn-blob' || r.role === 'blob') && f.request.method === 'GET') fetches.set(digest, (fetches.get(digest) ?? 0) + 1);
  }
  op.blobs = [...blobs.values()];
  // Totals.
  const starts = flows.map((f) => f.timings.start);
  const ends = flows.map((f) => f.timings.end ?? f.timings.start);
  op.totals = {
    flows: flows.length,
    bytes: flows.reduce((n, f) => n + f.requestBytes + f.responseBytes, 0),
    start: starts.length ? Math.min(...starts) : 0,
    end: ends.length ? Math.max(...ends) : 0,
    wallMs: starts.length ? Math.max(...ends) - Math.min(...starts) : 0,
  };
  op.problems = findProblems(flows, fetches);
}

function short(d: string): string {
  return d.startsWith('sha256:') ? `${d.slice(0, 19)}…` : d;
}

function findProblems(flows: ClassifiedFlow[], fetches: Map<string, number>): string[] {
  const problems: string[] = [];
  const unauthorized = new Map<string, number>();
  for (const f of flows) {
    const r = f.registry;
    const status = f.response?.status;
    if (status === 401 && r.role !== 'ping') {
      const k = `${f.request.method} ${f.request.target}`;
      unauthorized.set(k, (unauthorized.get(k) ?? 0) + 1);
    }
    if (status === 429) {
      const h = f.response!.headers;
      const parts = [
        getHeader(h, 'retry-after') && `Retry-After ${getHeader(h, 'retry-after')}`,
        getHeader(h, 'ratelimit-limit') && `limit ${getHeader(h, 'ratelimit-limit')}`,
        getHeader(h, 'ratelimit-remaining') && `remaining ${getHeader(h, 'ratelimit-remaining')}`,
      ].filter(Boolean);
      problems.push(`flow ${f.id}: 429 Too Many Requests${parts.length ? ` (${parts.join(', ')})` : ''}`);
    }
    if (r.digestCheck === 'mismatch') problems.push(`flow ${f.id}: digest mismatch: ${r.digestProblem}`);
    if ((f.state === 'aborted' || f.state === 'error') && (r.role === 'cdn-blob' || r.role === 'blob' || r.role === 'manifest')) {
      problems.push(`flow ${f.id}: ${r.role} ${short(r.digest ?? r.reference ?? '')} ${f.state} after ${f.responseBytes} bytes${f.error ? `: ${f.error}` : ''}`);
    }
  }
  for (const [k, n] of unauthorized) if (n >= 2) problems.push(`${n}× 401 for ${k} (auth loop?)`);
  for (const [d, n] of fetches) if (n > 1) problems.push(`${short(d)} downloaded ${n} times (retried or resumed)`);
  const tokens = flows.filter((f) => f.registry.role === 'token');
  const byScope = new Map<string, number>();
  for (const t of tokens) {
    const k = tokenScopes(t.registry).map((s) => `${s.type}:${s.name}:${s.actions.join(',')}`).join(' ') || '(no scope)';
    byScope.set(k, (byScope.get(k) ?? 0) + 1);
  }
  for (const [k, n] of byScope) if (n >= 3) problems.push(`${n} token requests for ${k} (tokens not reused: a stale issued_at or short expires_in makes clients fetch one per request)`);
  return problems;
}
