import { getHeader } from '../flow/index.js';
import type { Descriptor, ParsedManifest } from './manifest.js';
import type { BlobTransfer, BuildOptions, ClassifiedFlow, Operation, OperationBlob } from './operations.js';
import { imageName } from './names.js';
import { findProblems } from './problems.js';
import { matchRoute, splitTarget } from './routes.js';

/** Clients that only ever pull (a pull whose layers were all cached is still a pull). */
const PULLERS = new Set(['dockerd', 'containerd', 'podman']);

/** Upload session id from an upload URL (`/v2/<name>/blobs/uploads/<id>`), or null. */
function uploadId(f: ClassifiedFlow): string | null {
  const route = matchRoute(splitTarget(f.request.target).path);
  return route?.kind === 'uploads' ? route.uploadId : null;
}

const end = (f: ClassifiedFlow) => f.timings.end ?? f.timings.start;

/** Builds the tree, the transfers, the totals, the kind and the problems of a grouped operation. */
export function finishOperation(op: Operation, byId: ReadonlyMap<number, ClassifiedFlow>, manifests: ReadonlyMap<number, ParsedManifest>, opts: BuildOptions): void {
  const flows = op.flowIds.map((id) => byId.get(id)).filter((f): f is ClassifiedFlow => !!f);
  const blobs = new Map<string, OperationBlob>();
  const addBlob = (d: Descriptor, kind: OperationBlob['kind'], manifest?: string): OperationBlob => {
    let b = blobs.get(d.digest);
    if (!b) blobs.set(d.digest, (b = { digest: d.digest, size: d.size, mediaType: d.mediaType, kind, flowIds: [], transfers: [], legIds: [], bytes: 0, ms: 0, throughput: 0, via: null, cdn: false, manifest }));
    return b;
  };
  buildTree(op, flows, manifests, addBlob);
  addTransfers(op, flows, addBlob);
  op.blobs = [...blobs.values()];
  const starts = flows.map((f) => f.timings.start);
  const ends = flows.map(end);
  const dir = (d: BlobTransfer['direction']) => op.blobs.flatMap((b) => b.transfers.filter((t) => t.direction === d));
  const sum = (ts: BlobTransfer[]) => ts.reduce((n, t) => n + t.bytes, 0);
  const downloaded = sum(dir('down'));
  const uploaded = sum(dir('up'));
  const main = op.kind === 'push' || op.kind === 'copy' ? 'up' : 'down';
  const transferred = main === 'up' ? uploaded : downloaded;
  const moving = dir(main).flatMap((t) => t.flowIds.map((id) => byId.get(id)!));
  const busyMs = moving.length ? Math.max(...moving.map(end)) - Math.min(...moving.map((f) => f.timings.start)) : 0;
  op.totals = {
    flows: flows.length,
    bytes: flows.reduce((n, f) => n + f.requestBytes + f.responseBytes, 0),
    start: starts.length ? Math.min(...starts) : 0,
    end: ends.length ? Math.max(...ends) : 0,
    wallMs: starts.length ? Math.max(...ends) - Math.min(...starts) : 0,
    downloaded,
    uploaded,
    transferred,
    rate: busyMs > 0 ? (transferred / busyMs) * 1000 : 0,
  };
  if (op.kind === 'pull') {
    const layersMoved = op.blobs.some((b) => b.kind !== 'config' && b.flowIds.length > 0);
    if (!layersMoved && !PULLERS.has(op.client.name ?? '')) op.kind = 'inspect';
  }
  op.name = imageName(op.registry, op.repo, op.reference);
  op.rateLimit = rateLimitOf(flows);
  op.problems = findProblems(op, flows, opts);
}

/** Index → platform manifests → config and layers, from the manifest bodies the operation moved. */
function buildTree(op: Operation, flows: ClassifiedFlow[], manifests: ReadonlyMap<number, ParsedManifest>, addBlob: (d: Descriptor, kind: OperationBlob['kind'], manifest?: string) => OperationBlob): void {
  for (const f of flows) {
    const r = f.registry;
    const ok = (f.request.method === 'GET' && f.response?.status === 200) || (f.request.method === 'PUT' && f.response?.status === 201);
    const parsed = manifests.get(f.id);
    if (r.role !== 'manifest' || !ok || !parsed) continue;
    const digest = r.digest ?? '';
    if (parsed.kind === 'index') {
      op.index ??= { digest, mediaType: parsed.mediaType, platforms: parsed.manifests.map((m) => m.platform ?? '?'), flowId: f.id };
    } else if (parsed.kind === 'image') {
      if (!op.manifests.some((m) => m.digest === digest)) op.manifests.push({ digest, mediaType: parsed.mediaType, flowId: f.id });
      addBlob(parsed.config, 'config', digest);
      for (const l of parsed.layers) addBlob(l, 'layer', digest);
    } else if (parsed.kind === 'schema1') {
      op.manifests.push({ digest, mediaType: parsed.mediaType, flowId: f.id });
      for (const l of parsed.layers) addBlob({ digest: l.digest, size: 0, mediaType: '' }, 'layer', digest);
    }
  }
  if (op.index) {
    const idx = manifests.get(op.index.flowId);
    if (idx?.kind === 'index') for (const m of op.manifests) m.platform = idx.manifests.find((d) => d.digest === m.digest)?.platform;
  }
}

/** Which flows moved which blob, per direction, with bytes and rates. Chunks (PATCH) name no digest: the PUT finishing their session does. */
function addTransfers(op: Operation, flows: ClassifiedFlow[], addBlob: (d: Descriptor, kind: OperationBlob['kind']) => OperationBlob): void {
  const sessionDigest = new Map<string, string>();
  for (const f of flows) {
    const id = f.registry.role === 'upload-finish' && f.registry.digest ? uploadId(f) : null;
    if (id) sessionDigest.set(id, f.registry.digest!);
  }
  const moves = new Map<OperationBlob, { down: ClassifiedFlow[]; up: ClassifiedFlow[] }>();
  for (const f of flows) {
    const r = f.registry;
    const digest = r.digest ?? (r.role === 'upload-chunk' || r.role === 'upload-start' ? sessionDigest.get(uploadId(f) ?? '') : undefined);
    if (!digest || !['blob', 'cdn-blob', 'blob-redirect', 'upload-start', 'upload-chunk', 'upload-finish', 'mount'].includes(r.role)) continue;
    const b = addBlob({ digest, size: 0, mediaType: '' }, 'blob');
    b.legIds.push(f.id);
    if (r.role === 'mount' && f.response?.status === 201) {
      b.skipped = true;
      b.mountedFrom = splitTarget(f.request.target).query.get('from') ?? undefined;
    }
    if (r.role === 'blob' && f.request.method === 'HEAD' && f.response?.status === 200 && (op.kind === 'push' || op.kind === 'copy') && r.repo === op.repo) b.skipped = true;
    const down = (r.role === 'cdn-blob' || r.role === 'blob') && f.request.method === 'GET';
    const up = (r.role === 'upload-chunk' || r.role === 'upload-finish' || r.role === 'upload-start') && f.requestBytes > 0;
    if (!down && !up) continue;
    const m = moves.get(b) ?? { down: [], up: [] };
    (down ? m.down : m.up).push(f);
    moves.set(b, m);
  }
  const pushing = op.kind === 'push' || op.kind === 'copy';
  for (const [b, m] of moves) {
    b.transfers = [transfer('down', m.down), transfer('up', m.up)].filter((t): t is BlobTransfer => !!t);
    const main = b.transfers.find((t) => t.direction === (pushing || m.down.length === 0 ? 'up' : 'down')) ?? b.transfers[0]!;
    b.flowIds = main.flowIds;
    b.bytes = main.bytes;
    b.ms = main.ms;
    b.throughput = main.throughput;
    b.via = main.host;
    b.cdn = main.cdn;
  }
}

function transfer(direction: BlobTransfer['direction'], flows: ClassifiedFlow[]): BlobTransfer | null {
  if (!flows.length) return null;
  const bytesOf = (f: ClassifiedFlow) => (direction === 'up' ? f.requestBytes : f.responseBytes);
  const byHost = new Map<string, number>();
  for (const f of flows) byHost.set(f.request.host, (byHost.get(f.request.host) ?? 0) + bytesOf(f));
  const bytes = flows.reduce((n, f) => n + bytesOf(f), 0);
  const ms = Math.max(...flows.map(end)) - Math.min(...flows.map((f) => f.timings.start));
  return {
    direction,
    bytes,
    ms,
    throughput: ms > 0 ? (bytes / ms) * 1000 : 0,
    host: [...byHost].sort((x, y) => y[1] - x[1])[0]?.[0] ?? null,
    cdn: flows.some((f) => f.registry.role === 'cdn-blob'),
    flowIds: flows.map((f) => f.id),
  };
}

/** The last rate-limit headers any response of the operation carried. */
function rateLimitOf(flows: ClassifiedFlow[]): Operation['rateLimit'] {
  let found: Operation['rateLimit'];
  for (const f of flows) {
    const h = f.response?.headers;
    if (!h) continue;
    const limit = getHeader(h, 'ratelimit-limit') ?? null;
    const remaining = getHeader(h, 'ratelimit-remaining') ?? null;
    if (limit || remaining) found = { limit, remaining, source: getHeader(h, 'docker-ratelimit-source') ?? null, flowId: f.id };
  }
  return found;
}
