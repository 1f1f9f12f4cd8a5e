import { getHeader, getHeaders, type FlowRecord, type HeaderList } from '../flow/index.js';
import type { LoadedRecording } from '../inspect/index.js';
import { baseMediaType, isDigest, splitTarget, type Operation, type OperationBlob } from '../registry/index.js';

/**
 * What changed between two recordings, per operation (a pull or push of one
 * registry/repo/reference, matched across the two by that key): what the reference
 * resolved to, platforms, manifests, layers, media types, auth challenges, status
 * codes, response headers, timings. What varies from run to run by nature is ignored:
 * Date and caching headers, rate-limit counters, trace and request ids, signed query
 * values and token markers, upload ids. Pure: works on loaded recordings.
 *
 * The JSON form (`regtape diff --json`) is documented in docs/JSON.md.
 */

export interface BlobInfo {
  digest: string;
  size: number;
  mediaType: string;
}

export interface ManifestChange {
  /** os/arch[/variant], or null for a single-manifest image. */
  platform: string | null;
  a: { digest: string; mediaType: string } | null;
  b: { digest: string; mediaType: string } | null;
}

export interface LayerThroughput {
  digest: string;
  size: number;
  a: { bytesPerSecond: number; ms: number; via: string | null };
  b: { bytesPerSecond: number; ms: number; via: string | null };
  /** b / a. */
  ratio: number;
}

export interface OperationDiff {
  registry: string;
  repo: string;
  reference: string | null;
  /** 'pull' or 'push' on each side (null where absent). */
  kind: { a: Operation['kind'] | null; b: Operation['kind'] | null };
  presence: 'both' | 'a' | 'b';
  /** Anything but timing differs (always true when only on one side). */
  changed: boolean;
  /** What the reference resolved to (index/list or manifest digest). */
  digest: { a: string | null; b: string | null; changed: boolean };
  /** Media type of that top-level manifest. */
  mediaType: { a: string | null; b: string | null; changed: boolean };
  platforms: { a: string[]; b: string[]; added: string[]; removed: string[] };
  /** Platform manifests that differ (added, removed or another digest / media type). */
  manifests: ManifestChange[];
  configs: { added: BlobInfo[]; removed: BlobInfo[] };
  layers: { added: BlobInfo[]; removed: BlobInfo[]; unchanged: number };
  /** Blobs of both sides' images that one client downloaded and the other did not (it had them cached, or mounted them). */
  transferred: { onlyA: string[]; onlyB: string[] };
  layerMediaTypes: { a: string[]; b: string[]; changed: boolean };
  /** WWW-Authenticate challenges (markers normalised). */
  auth: { a: string[]; b: string[]; added: string[]; removed: string[] };
  /** Requests made on both sides whose status codes differ (`METHOD role path`; sorted status lists). */
  statuses: Array<{ request: string; a: number[]; b: number[] }>;
  /** Response headers that differ on requests made on both sides (volatile headers ignored). */
  headers: Array<{ request: string; header: string; a: string[]; b: string[] }>;
  timing: {
    a: { wallMs: number; bytes: number } | null;
    b: { wallMs: number; bytes: number } | null;
    /** b / a wall time; null when a side is missing or took 0 ms. */
    ratio: number | null;
    /** Layers (≥ 1 MB) whose download throughput changed by 2× or more. */
    layers: LayerThroughput[];
  };
  /** Problems `regtape show` reports (flow numbers dropped so they compare). */
  problems: { added: string[]; removed: string[] };
}

export interface DiffResult {
  a: { path: string; flows: number; operations: number };
  b: { path: string; flows: number; operations: number };
  operations: OperationDiff[];
  summary: { changed: number; unchanged: number; onlyA: number; onlyB: number };
}

/** Response headers that vary per run or restate what is compared elsewhere. */
const VOLATILE = new Set([
  'date',
  'expires',
  'last-modified',
  'age',
  'etag',
  'content-length',
  'docker-content-digest',
  'www-authenticate',
  'set-cookie',
  'ratelimit-remaining',
  'ratelimit-reset',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'retry-after',
  'docker-ratelimit-source',
  'x-request-id',
  'x-trace-id',
  'x-amzn-trace-id',
  'x-amzn-requestid',
  'x-amz-request-id',
  'x-amz-id-2',
  'x-amz-cf-id',
  'x-amz-cf-pop',
  'x-cache',
  'x-cache-hits',
  'x-served-by',
  'x-timer',
  'x-github-request-id',
  'x-fastly-request-id',
  'cf-ray',
  'cf-cache-status',
  'traceparent',
  'tracestate',
  'request-id',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'server-timing',
  'docker-upload-uuid',
  'range',
  'keep-alive',
]);

const MARKER = /REDACTED-[0-9a-f]{8}/g;

/** Markers → REDACTED; URLs lose their query values (signatures). */
function normalise(name: string, value: string): string {
  let v = value.replace(MARKER, 'REDACTED');
  if (name === 'location' || name === 'content-location') v = v.replace(/\?.*$/, '?…');
  return v;
}

/** The digest an operation's reference resolved to, and its media type. */
function resolved(op: Operation, byId: Map<number, FlowRecord>): { digest: string | null; mediaType: string | null } {
  let digest: string | null = null;
  let mediaType: string | null = null;
  if (op.reference && isDigest(op.reference)) digest = op.reference;
  for (const id of op.flowIds) {
    const f = byId.get(id);
    const r = f?.registry;
    if (!f || r?.role !== 'manifest' || r.reference !== op.reference || !f.response || f.response.status >= 300) continue;
    const type = baseMediaType(getHeader(f.response.headers, 'content-type'));
    if (f.request.method === 'GET' && f.responseBody?.sha256) return { digest: `sha256:${f.responseBody.sha256}`, mediaType: type };
    if (f.request.method === 'PUT' && f.requestBody?.sha256) return { digest: `sha256:${f.requestBody.sha256}`, mediaType: baseMediaType(getHeader(f.request.headers, 'content-type')) };
    digest ??= r.digest;
    mediaType ??= type;
  }
  if (!digest && op.index) return { digest: op.index.digest, mediaType: op.index.mediaType };
  if (!digest && op.manifests.length === 1) return { digest: op.manifests[0]!.digest, mediaType: op.manifests[0]!.mediaType };
  if (digest && !mediaType) {
    mediaType = op.index?.digest === digest ? op.index.mediaType : (op.manifests.find((m) => m.digest === digest)?.mediaType ?? null);
  }
  return { digest, mediaType };
}

function requestKey(f: FlowRecord): string {
  const { path } = splitTarget(f.request.target);
  const role = f.registry?.role ?? 'other';
  return `${f.request.method} ${role} ${role === 'cdn-blob' || role === 'token' ? f.request.host : ''}${path}`;
}

interface Side {
  op: Operation;
  flows: FlowRecord[];
  digest: string | null;
  mediaType: string | null;
}

function side(op: Operation, byId: Map<number, FlowRecord>): Side {
  const r = resolved(op, byId);
  return { op, flows: op.flowIds.map((id) => byId.get(id)!).filter(Boolean), digest: r.digest, mediaType: r.mediaType };
}

const sorted = <T>(xs: Iterable<T>) => [...new Set(xs)].sort();
const blobInfo = (b: OperationBlob): BlobInfo => ({ digest: b.digest, size: b.size || b.bytes, mediaType: b.mediaType });

function challenges(flows: FlowRecord[]): string[] {
  return sorted(flows.flatMap((f) => (f.response ? getHeaders(f.response.headers, 'www-authenticate').map((v) => normalise('www-authenticate', v)) : [])));
}

function problemsOf(op: Operation): string[] {
  return sorted(op.problems.map((p) => p.message.replace(/#\d+/g, '#')));
}

function headerMap(h: HeaderList): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const [k, v] of h) {
    const n = k.toLowerCase();
    if (VOLATILE.has(n)) continue;
    m.set(n, [...(m.get(n) ?? []), normalise(n, v)]);
  }
  return m;
}

function compare(a: Side | null, b: Side | null, key: { registry: string; repo: string; reference: string | null }): OperationDiff {
  const layersOf = (s: Side | null) => (s ? s.op.blobs.filter((x) => x.kind !== 'config') : []);
  const configsOf = (s: Side | null) => (s ? s.op.blobs.filter((x) => x.kind === 'config') : []);
  const la = layersOf(a);
  const lb = layersOf(b);
  const inB = new Set(lb.map((x) => x.digest));
  const inA = new Set(la.map((x) => x.digest));
  const ca = configsOf(a);
  const cb = configsOf(b);
  const cbSet = new Set(cb.map((x) => x.digest));
  const caSet = new Set(ca.map((x) => x.digest));
  const platA = a?.op.index?.platforms ?? [];
  const platB = b?.op.index?.platforms ?? [];
  const authA = a ? challenges(a.flows) : [];
  const authB = b ? challenges(b.flows) : [];
  const probA = a ? problemsOf(a.op) : [];
  const probB = b ? problemsOf(b.op) : [];
  const mtA = sorted(la.map((x) => x.mediaType).filter(Boolean));
  const mtB = sorted(lb.map((x) => x.mediaType).filter(Boolean));

  // Platform manifests, paired by platform (or the single manifest).
  const manifests: ManifestChange[] = [];
  const byPlatform = (s: Side | null) => new Map((s?.op.manifests ?? []).map((m) => [m.platform ?? (s!.op.manifests.length === 1 ? null : m.digest), m]));
  const ma = byPlatform(a);
  const mb = byPlatform(b);
  for (const p of new Set([...ma.keys(), ...mb.keys()])) {
    const x = ma.get(p);
    const y = mb.get(p);
    if (x && y && x.digest === y.digest && x.mediaType === y.mediaType) continue;
    manifests.push({ platform: p && !p.startsWith('sha256:') ? p : (x?.platform ?? y?.platform ?? null), a: x ? { digest: x.digest, mediaType: x.mediaType } : null, b: y ? { digest: y.digest, mediaType: y.mediaType } : null });
  }

  // Requests made on both sides: status codes and response headers.
  const statuses: OperationDiff['statuses'] = [];
  const headers: OperationDiff['headers'] = [];
  if (a && b) {
    const group = (flows: FlowRecord[]) => {
      const m = new Map<string, FlowRecord[]>();
      for (const f of flows) m.set(requestKey(f), [...(m.get(requestKey(f)) ?? []), f]);
      return m;
    };
    const ga = group(a.flows);
    const gb = group(b.flows);
    for (const [k, fa] of ga) {
      const fb = gb.get(k);
      if (!fb) continue;
      const sa = fa.map((f) => f.response?.status ?? 0).sort((x, y) => x - y);
      const sb = fb.map((f) => f.response?.status ?? 0).sort((x, y) => x - y);
      if (sa.join() !== sb.join()) statuses.push({ request: k, a: sa, b: sb });
      const ra = fa.find((f) => f.response && f.response.status < 400)?.response ?? fa.find((f) => f.response)?.response;
      const rb = fb.find((f) => f.response?.status === ra?.status)?.response;
      if (!ra || !rb) continue;
      const ha = headerMap(ra.headers);
      const hb = headerMap(rb.headers);
      for (const n of sorted([...ha.keys(), ...hb.keys()])) {
        const va = ha.get(n) ?? [];
        const vb = hb.get(n) ?? [];
        if (va.join('\n') !== vb.join('\n')) headers.push({ request: k, header: n, a: va, b: vb });
      }
    }
  }

  // Transfers and throughput of blobs on both sides.
  const transferred = { onlyA: [] as string[], onlyB: [] as string[] };
  const layerTimes: LayerThroughput[] = [];
  if (a && b) {
    const bb = new Map(b.op.blobs.map((x) => [x.digest, x]));
    for (const x of a.op.blobs) {
      const y = bb.get(x.digest);
      if (!y || x.skipped || y.skipped) continue;
      if (x.flowIds.length && !y.flowIds.length) transferred.onlyA.push(x.digest);
      if (!x.flowIds.length && y.flowIds.length) transferred.onlyB.push(x.digest);
      const size = x.size || x.bytes;
      if (x.throughput > 0 && y.throughput > 0 && size >= 1_000_000) {
        const ratio = y.throughput / x.throughput;
        if (ratio >= 2 || ratio <= 0.5) {
          layerTimes.push({ digest: x.digest, size, a: { bytesPerSecond: Math.round(x.throughput), ms: x.ms, via: x.via }, b: { bytesPerSecond: Math.round(y.throughput), ms: y.ms, via: y.via }, ratio: Math.round(ratio * 100) / 100 });
        }
      }
    }
  }
  const wall = (s: Side | null) => (s ? { wallMs: Math.round(s.op.totals.wallMs * 1000) / 1000, bytes: s.op.totals.bytes } : null);
  const ta = wall(a);
  const tb = wall(b);

  const d: OperationDiff = {
    registry: key.registry,
    repo: key.repo,
    reference: key.reference,
    kind: { a: a?.op.kind ?? null, b: b?.op.kind ?? null },
    presence: a && b ? 'both' : a ? 'a' : 'b',
    changed: false,
    digest: { a: a?.digest ?? null, b: b?.digest ?? null, changed: !!a && !!b && a.digest !== b.digest },
    mediaType: { a: a?.mediaType ?? null, b: b?.mediaType ?? null, changed: !!a && !!b && a.mediaType !== b.mediaType },
    platforms: { a: platA, b: platB, added: platB.filter((p) => !platA.includes(p)), removed: platA.filter((p) => !platB.includes(p)) },
    manifests: a && b ? manifests : [],
    configs: a && b ? { added: cb.filter((x) => !caSet.has(x.digest)).map(blobInfo), removed: ca.filter((x) => !cbSet.has(x.digest)).map(blobInfo) } : { added: [], removed: [] },
    layers:
      a && b
        ? { added: lb.filter((x) => !inA.has(x.digest)).map(blobInfo), removed: la.filter((x) => !inB.has(x.digest)).map(blobInfo), unchanged: la.filter((x) => inB.has(x.digest)).length }
        : { added: [], removed: [], unchanged: 0 },
    transferred,
    layerMediaTypes: { a: mtA, b: mtB, changed: !!a && !!b && mtA.join() !== mtB.join() && mtA.length > 0 && mtB.length > 0 },
    auth: { a: authA, b: authB, added: a && b ? authB.filter((x) => !authA.includes(x)) : [], removed: a && b ? authA.filter((x) => !authB.includes(x)) : [] },
    statuses,
    headers,
    timing: { a: ta, b: tb, ratio: ta && tb && ta.wallMs > 0 ? Math.round((tb.wallMs / ta.wallMs) * 100) / 100 : null, layers: layerTimes },
    problems: a && b ? { added: probB.filter((p) => !probA.includes(p)), removed: probA.filter((p) => !probB.includes(p)) } : { added: [], removed: [] },
  };
  d.changed =
    d.presence !== 'both' ||
    d.kind.a !== d.kind.b ||
    d.digest.changed ||
    d.mediaType.changed ||
    d.platforms.added.length + d.platforms.removed.length > 0 ||
    d.manifests.length > 0 ||
    d.configs.added.length + d.configs.removed.length > 0 ||
    d.layers.added.length + d.layers.removed.length > 0 ||
    d.layerMediaTypes.changed ||
    d.auth.added.length + d.auth.removed.length > 0 ||
    d.statuses.length > 0 ||
    d.headers.length > 0 ||
    d.problems.added.length + d.problems.removed.length > 0;
  return d;
}

/** Compare two loaded recordings operation by operation. */
export function diffRecordings(a: LoadedRecording, b: LoadedRecording, names: { a: string; b: string } = { a: 'A', b: 'B' }): DiffResult {
  const byIdA = new Map(a.flows.map((f) => [f.id, f]));
  const byIdB = new Map(b.flows.map((f) => [f.id, f]));
  const keyOf = (op: Operation) => `${op.registry}|${op.repo}|${op.reference ?? ''}`;
  const queueB = new Map<string, Operation[]>();
  for (const op of b.operations) queueB.set(keyOf(op), [...(queueB.get(keyOf(op)) ?? []), op]);
  const out: OperationDiff[] = [];
  for (const op of a.operations) {
    // The n-th pull of a key in A pairs with the n-th in B.
    const other = queueB.get(keyOf(op))?.shift() ?? null;
    out.push(compare(side(op, byIdA), other ? side(other, byIdB) : null, op));
  }
  for (const ops of queueB.values()) for (const op of ops) out.push(compare(null, side(op, byIdB), op));
  return {
    a: { path: names.a, flows: a.flows.length, operations: a.operations.length },
    b: { path: names.b, flows: b.flows.length, operations: b.operations.length },
    operations: out,
    summary: {
      changed: out.filter((d) => d.presence === 'both' && d.changed).length,
      unchanged: out.filter((d) => d.presence === 'both' && !d.changed).length,
      onlyA: out.filter((d) => d.presence === 'a').length,
      onlyB: out.filter((d) => d.presence === 'b').length,
    },
  };
}
