import { getHeader, hostWithPort, type FlowRecord, type RegistryFacts, type Scope } from '../flow/index.js';
import type { ParsedManifest } from './manifest.js';
import { clientName, imageName, registryName } from './names.js';
import { finishOperation } from './operation-tree.js';
import { connectProblems, type Problem, type RegistryErrorBody } from './problems.js';
import { isDigest, splitTarget } from './routes.js';

export type { Problem, ProblemCode, RegistryErrorBody } from './problems.js';

/** One blob of an operation (config or layer) and how it moved. */
export interface OperationBlob {
  digest: string;
  /** Size from the manifest (0 if unknown). */
  size: number;
  mediaType: string;
  kind: 'config' | 'layer' | 'blob';
  /** Flows that carried its bytes (registry blob GETs, CDN downloads, upload chunks and PUTs). */
  flowIds: number[];
  /** Bytes moved per direction (a copy downloads and uploads the same blob). */
  transfers: BlobTransfer[];
  /** Every flow about this blob: existence HEADs, 307 redirects, CDN legs, upload POST/PATCH/PUT. */
  legIds: number[];
  /** Bytes that passed in the flows that carried it (downloads for a pull, uploads for a push or copy). */
  bytes: number;
  /** From the first of those flows' start to the last one's end (ms). */
  ms: number;
  /** bytes / ms, per second. */
  throughput: number;
  /** Host that served (or received) it. */
  via: string | null;
  /** Fetched from a CDN after a redirect. */
  cdn: boolean;
  /** Already present: skipped (HEAD 200 before push, or mounted). */
  skipped?: boolean;
  /** Mounted from another repository (push). */
  mountedFrom?: string;
  /** The image manifest that lists it (config and layers). */
  manifest?: string;
}

/** One direction of a blob's movement. */
export interface BlobTransfer {
  direction: 'down' | 'up';
  bytes: number;
  /** First start to last end of its flows (ms). */
  ms: number;
  /** Bytes per second over that span. */
  throughput: number;
  /** Host that carried the most bytes. */
  host: string | null;
  cdn: boolean;
  flowIds: number[];
}

export interface OperationManifest {
  digest: string;
  mediaType: string;
  platform?: string;
  flowId: number;
}

/**
 * What a client did, as a user names it: `docker pull` (pull), `skopeo inspect` (inspect: manifests and
 * at most the config), `skopeo copy` between registries (copy), a push (chunked or monolithic uploads,
 * mounts), `docker login` (login), a catalog or tags listing, a lone `/v2/` ping, token requests that
 * served no request (auth), or a TLS connection the client gave up on (connect).
 */
export type OperationKind = 'pull' | 'inspect' | 'copy' | 'push' | 'login' | 'catalog' | 'tags' | 'ping' | 'auth' | 'connect';

/** The client an operation came from. */
export interface OperationClient {
  /** User-Agent of its requests (null when none was sent). */
  userAgent: string | null;
  /** `dockerd`, `containerd`, `podman`, `skopeo`, `curl`, `go` (another Go program), or null. */
  name: string | null;
  /** Client IP (without the port: many clients open one connection per request). */
  ip: string | null;
}

/** One side of a copy (the other side is the operation's own registry/repo). */
export interface OperationSource {
  registry: string;
  repo: string;
  reference: string | null;
  name: string;
}

/** Docker Hub's rate-limit headers, as last seen in the operation. */
export interface RateLimit {
  /** `ratelimit-limit` as sent, e.g. `100;w=21600`. */
  limit: string | null;
  /** `ratelimit-remaining`, e.g. `76;w=21600`. */
  remaining: string | null;
  /** `docker-ratelimit-source` (the address Hub counts against). */
  source: string | null;
  flowId: number;
}

/** A pull, push, copy, … reconstructed from its flows. */
export interface Operation {
  kind: OperationKind;
  /** Registry host as on the wire, e.g. registry-1.docker.io. */
  registry: string;
  /** Repository (empty for login, catalog, ping, connect). */
  repo: string;
  /** Tag or digest the client asked for. */
  reference: string | null;
  /** What a user calls it: docker.io/library/alpine:3.19 (the destination for a copy). */
  name: string;
  client: OperationClient;
  /** For a copy: where it read from. */
  source?: OperationSource;
  /** Flow ids in order, including pings and token requests attributed to it. */
  flowIds: number[];
  /** The pings and token requests among them. */
  authFlowIds: number[];
  /** The index / manifest list, when the reference resolved to one. */
  index?: { digest: string; mediaType: string; platforms: string[]; flowId: number };
  /** Image manifests fetched (one per platform pulled) or pushed. */
  manifests: OperationManifest[];
  /** Config and layers, in manifest order. */
  blobs: OperationBlob[];
  totals: {
    flows: number;
    /** Every byte of every flow, both ways. */
    bytes: number;
    wallMs: number;
    start: number;
    end: number;
    /** Blob bytes downloaded (registry GETs and CDN legs). */
    downloaded: number;
    /** Blob bytes uploaded (PATCH chunks, monolithic POST/PUT bodies). */
    uploaded: number;
    /** downloaded for a pull or inspect, uploaded for a push or copy. */
    transferred: number;
    /** transferred per second, over the span of the flows that moved it. */
    rate: number;
  };
  /** Rate-limit quota seen in any response (Docker Hub sends it on manifest requests). */
  rateLimit?: RateLimit;
  /** What went wrong, each citing its flows and saying what to do. */
  problems: Problem[];
}

/** Extra inputs for the diagnosis. */
export interface BuildOptions {
  /** Parsed `{"errors":[…]}` bodies of error responses, by flow id. */
  errors?: ReadonlyMap<number, RegistryErrorBody[]>;
}

export type ClassifiedFlow = FlowRecord & { registry: RegistryFacts };

/** Quiet time after which the same client touching the same repository is a new operation. */
const GAP_MS = 30_000;

const PUSH_ROLES = new Set(['upload-start', 'upload-chunk', 'upload-finish', 'upload-cancel', 'upload-status', 'mount']);

/** An operation being assembled. */
interface Draft {
  op: Operation;
  last: number;
  /** Tag references asked for (GET/HEAD by tag). */
  tags: Set<string>;
  /** A blob moved: a new tag request is a new operation. */
  moved: boolean;
  /** The client pinged the registry again after this started: its next session is a new operation. */
  sealed: boolean;
}

interface ClientState {
  /** Pings and token requests not yet attributed. */
  pending: ClassifiedFlow[];
  /** Open drafts by `kind|registry|repo`. */
  open: Map<string, Draft>;
  /** The login in progress (a following authenticated ping belongs to it). */
  login: Draft | null;
}

function ipOf(addr: string | null): string | null {
  if (!addr) return null;
  const m = /^\[?([^\]]*?)\]?:\d+$/.exec(addr);
  return m ? m[1]! : addr;
}

function clientOf(f: FlowRecord): OperationClient {
  const ua = getHeader(f.request.headers, 'user-agent') ?? null;
  return { userAgent: ua, name: clientName(ua), ip: ipOf(f.clientAddr) };
}

const clientKey = (c: OperationClient) => `${c.ip ?? ''}|${c.userAgent ?? ''}`;
const end = (f: FlowRecord) => f.timings.end ?? f.timings.start;

/** The scopes a token request is about: those asked for (URL or form), else those granted. */
export function tokenScopes(r: RegistryFacts): Scope[] {
  return r.scopesRequested.length ? r.scopesRequested : r.scopesGranted;
}

/** A token request that logs in (credentials, no repository scope): `docker login`. */
function isLoginToken(f: ClassifiedFlow): boolean {
  if (tokenScopes(f.registry).length) return false;
  const q = splitTarget(f.request.target).query;
  return f.registry.auth === 'basic' || q.has('account') || q.get('offline_token') === 'true';
}

/** The registry a mirror answered for (`?ns=docker.io`, as containerd sends it), else the host. */
function registryOf(f: ClassifiedFlow): string {
  const ns = splitTarget(f.request.target).query.get('ns');
  return ns && f.registry.role !== 'cdn-blob' ? ns : (f.registry.registry ?? f.request.host);
}

/**
 * Group classified flows into operations: per client (IP and User-Agent: many clients open one
 * connection per request), per registry and repository, split by time and by new sessions (a new ping,
 * a new tag after blobs moved). Pings and token requests go to the operation they served; a pull and a
 * push by one client at the same time are a copy. `manifests` gives the parsed body of manifest flows
 * (by flow id) for the tree: index → platform manifest → config and layers. Pure: no I/O.
 */
export function buildOperations(flows: readonly FlowRecord[], manifests: ReadonlyMap<number, ParsedManifest>, opts: BuildOptions = {}): Operation[] {
  const drafts: Draft[] = [];
  const clients = new Map<string, ClientState>();
  const byId = new Map<number, ClassifiedFlow>();
  const connects: ClassifiedFlow[] = [];
  // A token belongs to the operation of the first request that sent it (markers are stable within a recording).
  const firstUser = firstUsers(flows);
  const heldFor = new Map<number, ClassifiedFlow[]>();

  const stateOf = (c: OperationClient): ClientState => {
    const k = clientKey(c);
    let s = clients.get(k);
    if (!s) clients.set(k, (s = { pending: [], open: new Map(), login: null }));
    return s;
  };
  const start = (s: ClientState, f: ClassifiedFlow, kind: OperationKind, registry: string, repo: string): Draft => {
    const client = clientOf(f);
    const op: Operation = {
      kind,
      registry,
      repo,
      reference: null,
      name: imageName(registry, repo, null),
      client,
      flowIds: [],
      authFlowIds: [],
      manifests: [],
      blobs: [],
      totals: { flows: 0, bytes: 0, wallMs: 0, start: 0, end: 0, downloaded: 0, uploaded: 0, transferred: 0, rate: 0 },
      problems: [],
    };
    const d: Draft = { op, last: end(f), tags: new Set(), moved: false, sealed: false };
    drafts.push(d);
    s.open.set(`${kind === 'catalog' || kind === 'tags' ? kind : 'repo'}|${registry}|${repo}`, d);
    // Pings and tokens of this client that led here: recent, for this registry, scoped to this repository (or unscoped).
    const take = s.pending.filter((p) => f.timings.start - end(p) <= GAP_MS && registryOf(p) === registry && servesRepo(p, kind, repo));
    s.pending = s.pending.filter((p) => !take.includes(p));
    for (const p of take) add(d, p);
    return d;
  };
  const add = (d: Draft, f: ClassifiedFlow) => {
    d.op.flowIds.push(f.id);
    if (f.registry.role === 'ping' || f.registry.role === 'token') d.op.authFlowIds.push(f.id);
    d.last = Math.max(d.last, end(f));
    for (const t of heldFor.get(f.id) ?? []) add(d, t);
    heldFor.delete(f.id);
  };

  for (const raw of flows) {
    if (!raw.registry) continue;
    const f = raw as ClassifiedFlow;
    byId.set(f.id, f);
    const r = f.registry;
    const s = stateOf(clientOf(f));
    if (f.request.method === 'CONNECT' && f.state === 'error') {
      connects.push(f);
      continue;
    }
    if (r.role === 'ping') {
      onPing(s, f);
      continue;
    }
    if (r.role === 'token') {
      const user = firstUser.get(f.id);
      if (user !== undefined && !isLoginToken(f)) heldFor.set(user, [...(heldFor.get(user) ?? []), f]);
      else onToken(s, f, start, add);
      continue;
    }
    s.login = null;
    if (r.role === 'catalog') {
      const d = openDraft(s, 'catalog', registryOf(f), '', f) ?? start(s, f, 'catalog', registryOf(f), '');
      add(d, f);
      continue;
    }
    if (!r.repo) continue;
    const registry = registryOf(f);
    if (r.role === 'tags') {
      const d = openDraft(s, 'tags', registry, r.repo, f) ?? start(s, f, 'tags', registry, r.repo);
      add(d, f);
      continue;
    }
    const isTag = r.role === 'manifest' && !!r.reference && !isDigest(r.reference) && f.request.method !== 'PUT';
    let d = openDraft(s, 'repo', registry, r.repo, f);
    // A push or copy probes other repositories for a blob it could mount (HEAD): part of that operation.
    if (!d && r.role === 'blob' && f.request.method === 'HEAD') d = latestDraft(s, registry, f);
    if (!d || (isTag && (d.sealed || d.moved || (d.tags.size > 0 && !d.tags.has(r.reference!))))) d = start(s, f, 'pull', registry, r.repo);
    add(d, f);
    noteFlow(d, f);
  }
  for (const held of heldFor.values()) for (const t of held) stateOf(clientOf(t)).pending.push(t);
  flushPending(clients, drafts, start, add);

  const ops = mergeCopies(drafts.map((d) => d.op));
  for (const op of ops) finishOperation(op, byId, manifests, opts);
  ops.push(...connectOperations(connects));
  return ops.sort((a, b) => (a.flowIds[0] ?? 0) - (b.flowIds[0] ?? 0));
}

/** The open draft of this client for kind/registry/repo, unless it went quiet. */
function openDraft(s: ClientState, kind: string, registry: string, repo: string, f: FlowRecord): Draft | undefined {
  const d = s.open.get(`${kind}|${registry}|${repo}`);
  return d && f.timings.start - d.last <= GAP_MS ? d : undefined;
}

/** The client's most recently active draft on this registry, if not quiet. */
function latestDraft(s: ClientState, registry: string, f: FlowRecord): Draft | undefined {
  return [...s.open.values()].filter((d) => d.op.registry === registry && d.op.repo && f.timings.start - d.last <= GAP_MS).sort((a, b) => b.last - a.last)[0];
}

/** Token flow id → id of the first later flow that sent the token it got. */
function firstUsers(flows: readonly FlowRecord[]): Map<number, number> {
  const issued = new Map<string, number>();
  const out = new Map<number, number>();
  for (const f of flows) {
    for (const t of f.facts.tokens ?? []) {
      if (t.where.startsWith('response.body') && f.registry?.role === 'token') issued.set(t.marker, f.id);
      if (t.where === 'request.header:authorization') {
        const tok = issued.get(t.marker);
        if (tok !== undefined && !out.has(tok)) out.set(tok, f.id);
      }
    }
  }
  return out;
}

/** Whether a pending ping or token belongs to an operation of this kind and repository. */
function servesRepo(p: ClassifiedFlow, kind: OperationKind, repo: string): boolean {
  if (p.registry.role === 'ping') return true;
  const scopes = tokenScopes(p.registry);
  if (!scopes.length) return false;
  if (kind === 'catalog') return scopes.some((s) => s.type === 'registry');
  return scopes.some((s) => s.type === 'repository' && s.name === repo);
}

function onPing(s: ClientState, f: ClassifiedFlow): void {
  const registry = registryOf(f);
  // An authenticated ping right after a login token checks the login (docker login does this).
  if (s.login && s.login.op.registry === registry && f.registry.auth !== 'none' && f.timings.start - s.login.last <= 5_000) {
    s.login.op.flowIds.push(f.id);
    s.login.op.authFlowIds.push(f.id);
    s.login.last = end(f);
    return;
  }
  s.login = null;
  // A new ping starts a new session: the next tag request or token of this client is a new operation.
  for (const d of s.open.values()) if (d.op.registry === registry) d.sealed = true;
  s.pending.push(f);
}

type Start = (s: ClientState, f: ClassifiedFlow, kind: OperationKind, registry: string, repo: string) => Draft;
type Add = (d: Draft, f: ClassifiedFlow) => void;

function onToken(s: ClientState, f: ClassifiedFlow, start: Start, add: Add): void {
  const registry = registryOf(f);
  if (isLoginToken(f)) {
    const d = start(s, f, 'login', registry, '');
    add(d, f);
    s.login = d;
    return;
  }
  s.login = null;
  const repos = tokenScopes(f.registry).filter((x) => x.type === 'repository').map((x) => x.name);
  // A token asked while an operation on its repository runs (a refresh, a push token, a mount's source) belongs to it.
  const target = repos.map((repo) => openDraft(s, 'repo', registry, repo, f)).find((d) => d && !d.sealed);
  if (target) add(target, f);
  else s.pending.push(f);
}

/** What a flow tells about its operation: the tag asked for, whether bytes moved, whether it pushes. */
function noteFlow(d: Draft, f: ClassifiedFlow): void {
  const r = f.registry;
  const op = d.op;
  if (r.role === 'manifest' && r.reference && !isDigest(r.reference)) {
    if (f.request.method !== 'PUT') d.tags.add(r.reference);
    if (f.request.method === 'PUT' || !op.reference || (op.kind !== 'push' && !isDigest(op.reference))) op.reference = r.reference;
  }
  if (r.role === 'manifest' && !op.reference && r.reference) op.reference = r.reference;
  if (PUSH_ROLES.has(r.role) || (r.role === 'manifest' && f.request.method === 'PUT')) op.kind = 'push';
  if ((r.role === 'blob' || r.role === 'cdn-blob') && f.request.method === 'GET') d.moved = true;
  op.name = imageName(op.registry, op.repo, op.reference);
}

/** Pings and tokens never claimed: attach to the client's operation nearest in time, else their own operation. */
function flushPending(clients: Map<string, ClientState>, drafts: Draft[], start: Start, add: Add): void {
  for (const s of clients.values()) {
    for (const p of s.pending) {
      const registry = registryOf(p);
      const near = drafts
        .filter((d) => clientKey(d.op.client) === clientKey(clientOf(p)) && d.op.registry === registry && Math.abs(p.timings.start - d.last) <= GAP_MS)
        .filter((d) => p.registry.role === 'ping' || servesRepo(p, d.op.kind, d.op.repo))
        .sort((a, b) => Math.abs(p.timings.start - a.last) - Math.abs(p.timings.start - b.last))[0];
      if (near) add(near, p);
      else add(start({ ...s, pending: [] }, p, p.registry.role === 'ping' ? 'ping' : isLoginToken(p) ? 'login' : 'auth', registry, ''), p);
    }
    s.pending = [];
  }
  for (const d of drafts) d.op.flowIds.sort((a, b) => a - b);
}

/** A pull and a push by one client running at the same time are one copy (skopeo copy, crane copy). */
function mergeCopies(ops: Operation[]): Operation[] {
  const out: Operation[] = [];
  const span = (op: Operation) => [op.flowIds[0]!, op.flowIds[op.flowIds.length - 1]!] as const;
  for (const op of ops) {
    if (op.kind !== 'push' || !op.flowIds.length) {
      out.push(op);
      continue;
    }
    const [a, b] = span(op);
    const src = out.find((p) => p.kind === 'pull' && clientKey(p.client) === clientKey(op.client) && p.flowIds.length && span(p)[0] <= b && span(p)[1] >= a);
    if (!src) {
      out.push(op);
      continue;
    }
    op.kind = 'copy';
    op.source = { registry: src.registry, repo: src.repo, reference: src.reference, name: imageName(src.registry, src.repo, src.reference) };
    op.flowIds = [...src.flowIds, ...op.flowIds].sort((x, y) => x - y);
    op.authFlowIds = [...src.authFlowIds, ...op.authFlowIds].sort((x, y) => x - y);
    out.splice(out.indexOf(src), 1, op);
  }
  return out;
}

/** Failed TLS handshakes (a failed CONNECT each): one operation per client and host. */
function connectOperations(flows: ClassifiedFlow[]): Operation[] {
  const groups = new Map<string, ClassifiedFlow[]>();
  for (const f of flows) {
    const k = `${clientKey(clientOf(f))}|${f.request.host}:${f.request.port}`;
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  return [...groups.values()].map((g) => {
    const f0 = g[0]!;
    const host = hostWithPort(f0.request.scheme, f0.request.host, f0.request.port);
    const starts = g.map((f) => f.timings.start);
    const ends = g.map(end);
    return {
      kind: 'connect' as const,
      registry: host,
      repo: '',
      reference: null,
      name: registryName(host),
      client: clientOf(f0),
      flowIds: g.map((f) => f.id),
      authFlowIds: [],
      manifests: [],
      blobs: [],
      totals: { flows: g.length, bytes: 0, start: Math.min(...starts), end: Math.max(...ends), wallMs: Math.max(...ends) - Math.min(...starts), downloaded: 0, uploaded: 0, transferred: 0, rate: 0 },
      problems: connectProblems(g, clientOf(f0)),
    };
  });
}
