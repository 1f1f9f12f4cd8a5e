import { flowUrl, formatBytes, type FlowRecord } from '../flow/index.js';
import { describeMediaType, type Operation, type OperationBlob } from '../registry/index.js';
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

export function shortDigest(d: string | null | undefined): string {
  if (!d) return '';
  const i = d.indexOf(':');
  return i > 0 ? `${d.slice(0, i + 1)}${d.slice(i + 1, i + 13)}` : d;
}

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
  const ref = r?.repo ? st.dim(`${r.repo}${r.reference ? (r.reference.includes(':') ? `@${shortDigest(r.reference)}` : `:${r.reference}`) : ''}`) : '';
  const tail = f.state === 'complete' ? '' : st.red(` ${f.state}${f.error ? `: ${f.error}` : ''}`);
  const check = r?.digestCheck === 'mismatch' ? st.red(' DIGEST MISMATCH') : '';
  return [
    st.dim(String(f.id).padStart(4)),
    f.request.method.padEnd(5),
    f.request.host,
    shortPath(f.request.target),
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
  const size = formatBytes(b.size || b.bytes);
  const how = b.skipped
    ? 'already there (mounted / exists)'
    : b.flowIds.length
      ? `${b.cdn ? `CDN ${b.via}` : (b.via ?? '')} ${formatMs(b.ms)}${b.ms > 0 ? ` ${formatBytes(b.throughput)}/s` : ''}${b.flowIds.length > 1 && kind === 'pull' ? st.yellow(` ×${b.flowIds.length}`) : ''}  ${st.dim(`#${b.flowIds.join(',#')}`)}`
      : st.dim('not transferred (cached by the client)');
  return `    ${b.kind.padEnd(6)} ${shortDigest(b.digest)}  ${size.padStart(8)}  ${how}`;
}

/** An operation as a small tree: image → index → platform manifest → config and layers. */
export function renderOperation(op: Operation, st: Style = PLAIN): string {
  const lines: string[] = [];
  const ref = op.reference ? (op.reference.includes(':') ? `@${op.reference}` : `:${op.reference}`) : '';
  const platforms = op.manifests.map((m) => m.platform).filter(Boolean);
  const layers = op.blobs.filter((b) => b.kind !== 'config');
  const moved = op.blobs.reduce((n, b) => n + b.bytes, 0);
  lines.push(
    `${st.bold(`${op.kind} ${op.registry}/${op.repo}${ref}`)}${platforms.length ? ` for ${platforms.join(', ')}` : ''}: ` +
      `${op.totals.flows} flows, ${layers.length} layer${layers.length === 1 ? '' : 's'}, ${formatBytes(moved)} ${op.kind === 'push' ? 'uploaded' : 'fetched'} in ${formatMs(op.totals.wallMs)}`,
  );
  if (op.index) lines.push(`  index    ${shortDigest(op.index.digest)}  ${describeMediaType(op.index.mediaType)}, ${op.index.platforms.length} platforms: ${op.index.platforms.join(', ')}  ${st.dim(`#${op.index.flowId}`)}`);
  for (const m of op.manifests) {
    lines.push(`  manifest ${shortDigest(m.digest)}  ${describeMediaType(m.mediaType)}${m.platform ? ` (${m.platform})` : ''}  ${st.dim(`#${m.flowId}`)}`);
    for (const b of op.blobs) if (b.manifest === m.digest) lines.push(blobLine(b, st, op.kind));
  }
  for (const b of op.blobs) if (!b.manifest || !op.manifests.some((m) => m.digest === b.manifest)) lines.push(blobLine(b, st, op.kind).replace(/^ {4}/, '  '));
  for (const p of op.problems) lines.push(`  ${st.red('problem:')} ${p}`);
  return lines.join('\n');
}

/** `regtape show`: operations with their flows, then flows that belong to none. */
export function renderShow(loaded: LoadedRecording, st: Style = PLAIN, opts: { flows?: boolean } = {}): string {
  const out: string[] = [];
  const byId = new Map(loaded.flows.map((f) => [f.id, f]));
  const inOps = new Set<number>();
  for (const op of loaded.operations) {
    out.push(renderOperation(op, st));
    if (opts.flows !== false) for (const id of op.flowIds) out.push(`  ${flowLine(byId.get(id)!, st)}`);
    for (const id of op.flowIds) inOps.add(id);
    out.push('');
  }
  const rest = loaded.flows.filter((f) => !inOps.has(f.id));
  if (rest.length) {
    out.push(st.bold(loaded.operations.length ? 'other flows' : 'flows'));
    for (const f of rest) out.push(`  ${flowLine(f, st)}`);
    out.push('');
  }
  const bytes = loaded.flows.reduce((n, f) => n + f.responseBytes + f.requestBytes, 0);
  out.push(st.dim(`${loaded.flows.length} flows, ${loaded.operations.length} operations, ${formatBytes(bytes)}`));
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
