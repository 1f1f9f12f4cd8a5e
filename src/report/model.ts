/**
 * The model behind `regtape report`: everything the HTML page shows, as plain data (also printed by
 * `regtape report --json`, schema regtape.report/1 in docs/JSON.md). Built from a loaded recording; reads
 * small bodies for previews (as stored: redacted).
 */
import { flowUrl, getHeader, type FlowRecord, type HeaderList, type Timings } from '../flow/index.js';
import { operationJson, showDocument, type LoadedRecording, type OperationJson } from '../inspect/index.js';
import { shortDigest, type Operation, type Scope } from '../registry/index.js';
import type { Recording } from '../store/index.js';

export const REPORT_SCHEMA = 'regtape.report/1';
/** Characters of a body shown in the page. */
export const PREVIEW_CHARS = 2048;
/** Bodies larger than this are not read for a preview. */
const PREVIEW_READ_LIMIT = 64 << 10;

/** One flow's part of a waterfall bar: offsets in ms from the operation's start. */
export interface WaterfallLeg {
  flowId: number;
  role: string;
  host: string;
  status: number | null;
  /** Segments, in order; each `[from, to]` ms from the operation start (absent when it did not happen). */
  connect?: [number, number];
  tls?: [number, number];
  wait: [number, number];
  transfer: [number, number];
}

/** One bar: a blob (its redirect and CDN legs joined), a manifest, or another request. */
export interface WaterfallRow {
  label: string;
  kind: 'config' | 'layer' | 'blob' | 'manifest' | 'auth' | 'other';
  digest: string | null;
  bytes: number;
  legs: WaterfallLeg[];
}

export interface ReportToken {
  flowId: number;
  operation: string | null;
  scopesRequested: Scope[];
  scopesGranted: Scope[];
  /** Standard claims of the issued token (decoded while recording, not verified). */
  claims: { iss?: unknown; sub?: unknown; aud?: unknown; iat?: unknown; exp?: unknown };
  expiresIn: number | null;
}

export interface BodyPreview {
  size: number;
  redacted: boolean;
  contentType: string | null;
  /** The first PREVIEW_CHARS characters when the body is text; null for binary or unread bodies. */
  text: string | null;
  truncated: boolean;
}

export interface ReportFlow {
  id: number;
  method: string;
  url: string;
  status: number | null;
  state: FlowRecord['state'];
  error: string | null;
  role: string | null;
  operation: number | null;
  requestHeaders: HeaderList;
  responseHeaders: HeaderList;
  requestBody: BodyPreview | null;
  responseBody: BodyPreview | null;
  ms: number | null;
}

export interface ReportModel {
  schema: typeof REPORT_SCHEMA;
  recording: string;
  summary: ReturnType<typeof showDocument>['summary'];
  operations: Array<OperationJson & { position: number; waterfall: WaterfallRow[] }>;
  tokens: ReportToken[];
  flows: ReportFlow[];
}

const span = (t0: number, a: number | undefined, b: number | undefined): [number, number] | undefined => (a !== undefined && b !== undefined && b >= a ? [a - t0, b - t0] : undefined);

/** A flow's timing segments relative to t0: connect, TLS, wait (to the first byte), transfer (to the end). */
export function legOf(f: FlowRecord, t0: number): WaterfallLeg {
  const t: Timings = f.timings;
  const end = t.end ?? t.firstByte ?? t.start;
  const first = t.firstByte ?? end;
  const waitFrom = t.tls ?? t.connect ?? t.start;
  const leg: WaterfallLeg = { flowId: f.id, role: f.registry?.role ?? 'other', host: f.request.host, status: f.response?.status ?? null, wait: [waitFrom - t0, first - t0], transfer: [first - t0, end - t0] };
  const c = span(t0, t.start, t.connect);
  if (c) leg.connect = c;
  const s = span(t0, t.connect ?? t.start, t.tls);
  if (s) leg.tls = s;
  return leg;
}

/** The bars of an operation: one per blob (all its legs), then manifests and the auth requests. */
export function waterfall(op: Operation, byId: ReadonlyMap<number, FlowRecord>): WaterfallRow[] {
  const t0 = op.totals.start;
  const legs = (ids: number[]) => ids.map((id) => byId.get(id)).filter((f): f is FlowRecord => !!f).map((f) => legOf(f, t0));
  const rows: WaterfallRow[] = [];
  const inBlobs = new Set(op.blobs.flatMap((b) => b.legIds));
  for (const id of op.flowIds) {
    const f = byId.get(id);
    if (!f || inBlobs.has(id)) continue;
    const role = f.registry?.role ?? 'other';
    const kind: WaterfallRow['kind'] = role === 'manifest' ? 'manifest' : role === 'ping' || role === 'token' ? 'auth' : 'other';
    rows.push({ label: `${role} ${f.registry?.reference ? shortDigest(f.registry.reference) : f.request.host}`, kind, digest: f.registry?.digest ?? null, bytes: f.responseBytes + f.requestBytes, legs: legs([id]) });
  }
  for (const b of op.blobs) if (b.legIds.length) rows.push({ label: `${b.kind} ${shortDigest(b.digest)}`, kind: b.kind, digest: b.digest, bytes: b.size || b.bytes, legs: legs(b.legIds) });
  return rows.sort((a, b) => Math.min(...a.legs.map((l) => l.flowId)) - Math.min(...b.legs.map((l) => l.flowId)));
}

async function preview(rec: Recording, body: FlowRecord['requestBody'], headers: HeaderList | undefined): Promise<BodyPreview | null> {
  if (!body || body.size === 0) return null;
  const contentType = headers ? (getHeader(headers, 'content-type') ?? null) : null;
  const out: BodyPreview = { size: body.size, redacted: body.redacted, contentType, text: null, truncated: false };
  if (!body.sha256 || body.size > PREVIEW_READ_LIMIT) return out;
  try {
    const buf = await rec.readBodyBuffer(body.sha256, PREVIEW_READ_LIMIT);
    const head = buf.subarray(0, PREVIEW_CHARS * 4);
    if (head.includes(0)) return out; // binary
    const text = head.toString('utf8');
    out.text = text.slice(0, PREVIEW_CHARS);
    out.truncated = buf.length > out.text.length;
  } catch {
    // body file missing: size only
  }
  return out;
}

function tokensOf(loaded: Pick<LoadedRecording, 'flows' | 'operations'>, opOf: Map<number, Operation>): ReportToken[] {
  return loaded.flows
    .filter((f) => f.registry?.role === 'token')
    .map((f) => {
      const issued = (f.facts.tokens ?? []).find((t) => t.where.startsWith('response.body'))?.claims ?? {};
      return {
        flowId: f.id,
        operation: opOf.get(f.id)?.name ?? null,
        scopesRequested: f.registry!.scopesRequested,
        scopesGranted: f.registry!.scopesGranted,
        claims: { iss: issued.iss, sub: issued.sub, aud: issued.aud, iat: issued.iat, exp: issued.exp },
        expiresIn: typeof issued.exp === 'number' && typeof issued.iat === 'number' ? issued.exp - issued.iat : null,
      };
    });
}

/** The report model of a loaded recording (reads small bodies from `rec` for previews). */
export async function buildReportModel(loaded: Pick<LoadedRecording, 'flows' | 'operations'>, rec: Recording, recording: string): Promise<ReportModel> {
  const byId = new Map(loaded.flows.map((f) => [f.id, f]));
  const opOf = new Map<number, Operation>();
  const opIndex = new Map<number, number>();
  loaded.operations.forEach((op, i) => op.flowIds.forEach((id) => (opOf.set(id, op), opIndex.set(id, i))));
  const flows: ReportFlow[] = [];
  for (const f of loaded.flows) {
    flows.push({
      id: f.id,
      method: f.request.method,
      url: flowUrl(f.request),
      status: f.response?.status ?? null,
      state: f.state,
      error: f.error,
      role: f.registry?.role ?? null,
      operation: opIndex.get(f.id) ?? null,
      requestHeaders: f.request.headers,
      responseHeaders: f.response?.headers ?? [],
      requestBody: await preview(rec, f.requestBody, f.request.headers),
      responseBody: await preview(rec, f.responseBody, f.response?.headers),
      ms: f.timings.end !== undefined ? f.timings.end - f.timings.start : null,
    });
  }
  return {
    schema: REPORT_SCHEMA,
    recording,
    summary: showDocument(loaded, recording).summary,
    operations: loaded.operations.map((op, position) => ({ ...operationJson(op), position, waterfall: waterfall(op, byId) })),
    tokens: tokensOf(loaded, opOf),
    flows,
  };
}
