import { flowUrl, formatBytes, type FlowRecord } from '../flow/index.js';
import { citeFlows, describeMediaType, dockerRate, dockerSize, problemLine, shortDigest, type BlobTransfer, type Operation, type OperationBlob } from '../registry/index.js';
import { safeText } from '../term/index.js';
import type { LoadedRecording } from './load.js';

/** ANSI styling that disappears when colour is off. */
export interface Style {
  dim(s: string): string;
  bold(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;
export const COLOR: Style = { dim: wrap(2, 22), bold: wrap(1, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39), magenta: wrap(35, 39) };
const id = (s: string) => s;
export const PLAIN: Style = { dim: id, bold: id, red: id, green: id, yellow: id, cyan: id, magenta: id };

/** Colour on a TTY unless NO_COLOR is set (no-color.org); FORCE_COLOR forces it. */
export function styleFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Style {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return PLAIN;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return COLOR;
  return stream.isTTY ? COLOR : PLAIN;
}

export { formatBytes };

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

export { shortDigest };

function statusStyle(st: Style, status: number | undefined, state: FlowRecord['state']): (s: string) => string {
  if (state === 'error' || state === 'aborted') return st.red;
  if (status === undefined) return st.dim;
  if (status >= 500 || status === 429) return st.red;
  if (status >= 400) return st.yellow;
  if (status >= 300) return st.cyan;
  return st.green;
}

/** Shorten a path in the middle of long digests: /v2/lab/alpine/blobs/sha256:20ded9c7f836… */
export function shortPath(target: string, max = 80): string {
  let p = target.replace(/([0-9a-f]{12})[0-9a-f]{52}/g, '$1…');
  if (p.length > max) p = `${p.slice(0, max - 1)}…`;
  return p;
}

/** One flow as one line (mitmdump-like). */
export function flowLine(f: FlowRecord, st: Style = PLAIN): string {
  const status = f.response ? String(f.response.status) : f.state === 'open' ? '…' : 'ERR';
  const ms = f.timings.end !== undefined ? formatMs(f.timings.end - f.timings.start) : '';
  const r = f.registry;
  const role = r && r.role !== 'other' ? st.magenta(`[${r.role}]`) : '';
  const ref = r?.repo ? st.dim(safeText(`${r.repo}${r.reference ? (r.reference.includes(':') ? `@${shortDigest(r.reference)}` : `:${r.reference}`) : ''}`)) : '';
  const tail = f.state === 'complete' ? '' : st.red(` ${f.state}${f.error ? `: ${safeText(f.error)}` : ''}`);
  const check = r?.digestCheck === 'mismatch' ? st.red(' DIGEST MISMATCH') : '';
  return [
    st.dim(String(f.id).padStart(4)),
    safeText(f.request.method).padEnd(5),
    safeText(f.request.host),
    safeText(shortPath(f.request.target)),
    statusStyle(st, f.response?.status, f.state)(status),
    formatBytes(f.responseBytes || f.requestBytes),
    ms,
    role,
    ref,
  ]
    .filter(Boolean)
    .join(' ')
    .concat(check, tail);
}

function blobLine(b: OperationBlob, st: Style, kind: Operation['kind']): string {
  const size = dockerSize(b.size || b.bytes);
  const how = b.mountedFrom
    ? `mounted from ${safeText(b.mountedFrom)}`
    : b.skipped && !b.flowIds.length
      ? 'already there (exists or mounted)'
      : b.flowIds.length
        ? b.transfers.map((t) => transferText(t, b, st, kind)).join('; ')
        : st.dim(kind === 'inspect' ? 'not fetched' : kind === 'pull' ? 'not transferred (cached by the client)' : 'not transferred');
  return `    ${b.kind.padEnd(6)} ${shortDigest(b.digest)}  ${size.padStart(8)}  ${how}`;
}

function transferText(t: BlobTransfer, b: OperationBlob, st: Style, kind: Operation['kind']): string {
  const where = t.cdn ? `CDN ${safeText(t.host ?? '')}` : safeText(t.host ?? '');
  const partial = b.size && t.bytes !== b.size ? ` (${dockerSize(t.bytes)} ${t.direction === 'up' ? 'uploaded' : 'fetched'})` : '';
  const times = t.direction === 'down' && t.flowIds.length > 1 ? st.yellow(` ×${t.flowIds.length}`) : '';
  const verb = kind === 'copy' ? (t.direction === 'up' ? 'up to ' : 'from ') : '';
  return `${verb}${where} ${formatMs(t.ms)}${t.ms > 0 ? ` ${dockerRate(t.throughput)}` : ''}${partial}${times}  ${st.dim(citeFlows(t.flowIds))}`;
}

const VERB: Record<Operation['kind'], string> = {
  pull: 'fetched',
  inspect: 'fetched',
  copy: 'copied',
  push: 'uploaded',
  login: '',
  catalog: '',
  tags: '',
  ping: '',
  auth: '',
  connect: '',
};

/** The first line of an operation: what, from where, by whom, how much. */
function headLine(op: Operation, st: Style): string {
  const platforms = op.manifests.map((m) => m.platform).filter(Boolean);
  const layers = op.blobs.filter((b) => b.kind !== 'config');
  const what = op.kind === 'copy' && op.source ? `copy ${safeText(op.source.name)} → ${safeText(op.name)}` : `${op.kind} ${safeText(op.name)}`;
  const by = op.client.name ?? (op.client.userAgent ? safeText(op.client.userAgent.split(/[\s(]/)[0]!) : null);
  const parts = [`${op.totals.flows} flow${op.totals.flows === 1 ? '' : 's'}`];
  const rate = op.totals.rate > 0 ? ` (${dockerRate(op.totals.rate)})` : '';
  if (op.kind === 'copy') {
    parts.push(`${layers.length} layer${layers.length === 1 ? '' : 's'}`, `${dockerSize(op.totals.downloaded)} fetched, ${dockerSize(op.totals.uploaded)} uploaded in ${formatMs(op.totals.wallMs)}${rate}`);
  } else if (VERB[op.kind]) {
    parts.push(`${layers.length} layer${layers.length === 1 ? '' : 's'}`, `${dockerSize(op.totals.transferred)} ${VERB[op.kind]} in ${formatMs(op.totals.wallMs)}${rate}`);
  } else parts.push(formatMs(op.totals.wallMs));
  return `${st.bold(what)}${platforms.length ? ` for ${platforms.map((p) => safeText(p!)).join(', ')}` : ''}${by ? st.dim(` by ${by}`) : ''}: ${parts.join(', ')}`;
}

/** Docker Hub's quota, as a user reads it: `rate limit: 76 of 100 left (per 6 h)`. */
export function rateLimitText(r: NonNullable<Operation['rateLimit']>): string {
  const n = (v: string | null) => (v ? /^\d+/.exec(v)?.[0] : undefined);
  const w = /w=(\d+)/.exec(r.limit ?? r.remaining ?? '')?.[1];
  const window = w ? ` per ${Number(w) % 3600 === 0 ? `${Number(w) / 3600} h` : `${w} s`}` : '';
  const left = n(r.remaining);
  const limit = n(r.limit);
  return `rate limit: ${left ?? '?'}${limit ? ` of ${limit}` : ''} left${window}${r.source ? ` (counted for ${safeText(r.source)})` : ''}`;
}

/** An operation as a small tree: image → index → platform manifest → config and layers, then problems. */
export function renderOperation(op: Operation, st: Style = PLAIN): string {
  const lines: string[] = [headLine(op, st)];
  if (op.rateLimit) lines.push(`  ${rateLimitText(op.rateLimit)}  ${st.dim(citeFlows([op.rateLimit.flowId]))}`);
  if (op.index) lines.push(`  index    ${shortDigest(op.index.digest)}  ${describeMediaType(op.index.mediaType)}, ${op.index.platforms.length} platforms: ${op.index.platforms.map((p) => safeText(p)).join(', ')}  ${st.dim(citeFlows([op.index.flowId]))}`);
  for (const m of op.manifests) {
    lines.push(`  manifest ${shortDigest(m.digest)}  ${describeMediaType(m.mediaType)}${m.platform ? ` (${safeText(m.platform)})` : ''}  ${st.dim(citeFlows([m.flowId]))}`);
    for (const b of op.blobs) if (b.manifest === m.digest) lines.push(blobLine(b, st, op.kind));
  }
  for (const b of op.blobs) if (!b.manifest || !op.manifests.some((m) => m.digest === b.manifest)) lines.push(blobLine(b, st, op.kind).replace(/^ {4}/, '  '));
  for (const p of op.problems) lines.push(`  ${st.red('problem:')} ${safeText(problemLine(p))}`);
  return lines.join('\n');
}

/** `regtape show`: operations with their flows, then flows that belong to none. */
export function renderShow(loaded: Pick<LoadedRecording, 'flows' | 'operations'>, st: Style = PLAIN, opts: { flows?: boolean } = {}): string {
  const out: string[] = [];
  const byId = new Map(loaded.flows.map((f) => [f.id, f]));
  const inOps = new Set<number>();
  for (const op of loaded.operations) {
    out.push(renderOperation(op, st));
    if (opts.flows !== false) for (const id of op.flowIds) if (byId.has(id)) out.push(`  ${flowLine(byId.get(id)!, st)}`);
    for (const id of op.flowIds) inOps.add(id);
    out.push('');
  }
  const rest = loaded.flows.filter((f) => !inOps.has(f.id));
  if (rest.length) {
    out.push(st.bold(loaded.operations.length ? 'other flows' : 'flows'));
    for (const f of rest) out.push(`  ${flowLine(f, st)}`);
    out.push('');
  }
  const problems = loaded.operations.reduce((n, op) => n + op.problems.length, 0);
  const bytes = loaded.flows.reduce((n, f) => n + f.responseBytes + f.requestBytes, 0);
  out.push(st.dim(`${loaded.flows.length} flows, ${loaded.operations.length} operations, ${dockerSize(bytes)}${problems ? `, ${problems} problem${problems === 1 ? '' : 's'}` : ''}`));
  return out.join('\n');
}

/**
 * The stable JSON form of a flow (`regtape flows --json`, one object per line).
 * Documented in docs/JSON.md; add fields, never rename or remove them.
 */
export function flowJson(f: FlowRecord): Record<string, unknown> {
  return {
    id: f.id,
    uuid: f.uuid,
    state: f.state,
    method: f.request.method,
    url: flowUrl(f.request),
    scheme: f.request.scheme,
    host: f.request.host,
    port: f.request.port,
    target: f.request.target,
    status: f.response?.status ?? null,
    reason: f.response?.reason ?? null,
    request: { httpVersion: f.request.httpVersion, headers: f.request.headers, body: f.requestBody },
    response: f.response ? { httpVersion: f.response.httpVersion, headers: f.response.headers, body: f.responseBody } : null,
    timings: f.timings,
    clientAddr: f.clientAddr,
    serverAddr: f.serverAddr,
    error: f.error,
    requestBytes: f.requestBytes,
    responseBytes: f.responseBytes,
    registry: f.registry ?? null,
    tokens: f.facts.tokens ?? [],
    redactions: f.facts.redactions ?? [],
    marked: !!f.marked,
    comment: f.comment ?? null,
  };
}
