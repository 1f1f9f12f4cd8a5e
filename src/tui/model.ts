import type { FlowRecord } from '../flow/index.js';
import { parseErrorBody } from '../inspect/index.js';
import { FlowDescriber } from '../pipeline/index.js';
import { buildOperations, manifestBody, MAX_MANIFEST, parseManifest, type Operation, type ParsedManifest, type RegistryErrorBody } from '../registry/index.js';
import type { Backend } from './rows.js';

/** Error bodies above this size are not read for the diagnosis (as show). */
const MAX_ERROR_BODY = 64 << 10;

/** An exchange still running (from the recorder), with a smoothed rate. */
export interface InFlight {
  id: number;
  requestBytes: number;
  responseBytes: number;
  status?: number;
  responseLength?: number;
  /** Bytes per second over the last samples (both directions). */
  rate: number;
}

/**
 * The flows the TUI knows: light rows in id order plus lazily built indexes
 * (digest → flows, parsed manifests, operations). Mutable, like mitmproxy's view
 * store; `version` changes whenever rows change so derived data can be recomputed.
 */
export class FlowModel {
  rows: FlowRecord[] = [];
  readonly byId = new Map<number, FlowRecord>();
  version = 0;
  /** Rows still to come from the backend (background load). */
  loading = false;
  /** Exchanges in flight by flow id (live mode). */
  inFlight = new Map<number, InFlight>();
  private lastLoadedId = 0;
  private digestIdx: { version: number; map: Map<string, FlowRecord[]> } | null = null;
  private readonly manifests = new Map<number, ParsedManifest | null>();
  private ops: { version: number; ops: Operation[] } | null = null;
  private describer: FlowDescriber | null = null;

  /** Flows in the backend when loading started (for "loading of N"). */
  readonly expected: number | null;

  constructor(readonly backend: Backend) {
    this.loading = !!backend.loadRows;
    this.expected = backend.count ? backend.count() : null;
  }

  /** Read the next batch of rows from the backend; returns them (empty when done). */
  loadBatch(limit: number): FlowRecord[] {
    if (!this.backend.loadRows) {
      this.loading = false;
      return [];
    }
    const rows = this.backend.loadRows(this.lastLoadedId, limit);
    if (rows.length < limit) this.loading = false;
    if (rows.length) this.lastLoadedId = rows[rows.length - 1]!.id;
    this.classify(rows);
    return this.upsert(rows);
  }

  /** Rows added to the backend since the last read (following a live file); classified, not yet in the model. */
  loadNew(limit: number): FlowRecord[] {
    if (!this.backend.loadRows || this.loading) return [];
    const rows = this.backend.loadRows(this.lastLoadedId, limit);
    if (rows.length) this.lastLoadedId = rows[rows.length - 1]!.id;
    this.classify(rows);
    return rows;
  }

  /**
   * Recordings made before classification existed: describe in order, as `regtape show`
   * does (the one describer; it reads each flow's headers from the backend).
   */
  private classify(rows: FlowRecord[]): void {
    if (!this.describer && rows.every((f) => f.registry)) return;
    this.describer ??= new FlowDescriber();
    for (const f of rows) {
      try {
        const full = this.backend.full(f.id) ?? f;
        this.describer.describe(full);
        f.registry ??= full.registry ?? null;
      } catch {
        f.registry ??= null;
      }
    }
  }

  /** Add or replace rows (by id). Returns the rows that changed. */
  upsert(rows: FlowRecord[]): FlowRecord[] {
    if (!rows.length) return rows;
    const rs = this.rows;
    for (const f of rows) {
      const old = this.byId.get(f.id);
      this.byId.set(f.id, f);
      if (old) {
        const i = indexById(rs, f.id);
        if (i >= 0) rs[i] = f;
        this.manifests.delete(f.id);
        this.backend.invalidate?.(f.id);
      } else if (!rs.length || rs[rs.length - 1]!.id < f.id) {
        rs.push(f);
      } else {
        rs.splice(insertionIndex(rs, f.id), 0, f);
      }
    }
    this.version++;
    return rows;
  }

  get(id: number): FlowRecord | undefined {
    return this.byId.get(id);
  }

  /** The full flow (headers, facts, bodies): from the backend, else the row itself. */
  full(id: number): FlowRecord | undefined {
    const source = this.copies.get(id);
    if (source !== undefined) {
      const f = this.backend.full(source);
      const row = this.byId.get(id);
      return f && row ? { ...f, id, marked: row.marked, comment: row.comment } : row;
    }
    const f = this.backend.full(id);
    const row = this.byId.get(id);
    // Marks and comments live on the rows until saved.
    return f && row ? (f.marked === row.marked && f.comment === row.comment ? f : { ...f, marked: row.marked, comment: row.comment }) : (f ?? row);
  }

  /** Flows by the digest they are about (registry facts), in id order. */
  byDigest(digest: string): FlowRecord[] {
    if (!this.digestIdx || this.digestIdx.version !== this.version) {
      const map = new Map<string, FlowRecord[]>();
      for (const f of this.rows) {
        const d = f.registry?.digest;
        if (!d) continue;
        const list = map.get(d);
        if (list) list.push(f);
        else map.set(d, [f]);
      }
      this.digestIdx = { version: this.version, map };
    }
    return this.digestIdx.map.get(digest) ?? [];
  }

  /**
   * The flow that carried a digest's content: a 200 GET of the manifest, else the
   * CDN or registry download of the blob; else any flow about it.
   */
  fetcherOf(digest: string, kind: 'manifest' | 'blob'): FlowRecord | undefined {
    const flows = this.byDigest(digest);
    const score = (f: FlowRecord): number => {
      const r = f.registry!;
      const ok = f.response?.status === 200 && f.request.method === 'GET';
      if (kind === 'manifest') return r.role === 'manifest' ? (ok ? 3 : f.request.method === 'PUT' ? 2 : 1) : 0;
      if (r.role === 'cdn-blob' || r.role === 'blob') return ok ? 3 : 1;
      if (r.role === 'upload-finish' || r.role === 'upload-chunk') return 2;
      if (r.role === 'blob-redirect') return 1;
      return 0;
    };
    let best: FlowRecord | undefined;
    let bestScore = 0;
    for (const f of flows) {
      const s = score(f);
      if (s > bestScore) {
        best = f;
        bestScore = s;
      }
    }
    return best;
  }

  /** The parsed manifest a manifest flow carried (response; request body for PUT). Null if none. */
  manifest(id: number): ParsedManifest | null {
    if (this.manifests.has(id)) return this.manifests.get(id)!;
    let parsed: ParsedManifest | null = null;
    const f = this.full(id);
    const body = f ? manifestBody(f) : null;
    if (body) {
      {
        const buf = this.backend.body(body.sha256, MAX_MANIFEST);
        if (buf) {
          try {
            parsed = parseManifest(buf, body.type);
          } catch {
            parsed = null;
          }
        }
      }
    }
    this.manifests.set(id, parsed);
    return parsed;
  }

  /** Registry error bodies of 4xx/5xx answers (the diagnosis `regtape show` makes reads them too). */
  private errorBodies(): Map<number, RegistryErrorBody[]> {
    const out = new Map<number, RegistryErrorBody[]>();
    for (const f of this.rows) {
      if (!f.response || f.response.status < 400 || !f.registry || f.registry.role === 'other') continue;
      const body = f.responseBody;
      if (!body?.sha256 || body.size > MAX_ERROR_BODY) continue;
      const buf = this.backend.body(body.sha256, MAX_ERROR_BODY);
      const parsed = buf ? parseErrorBody(buf.toString('utf8')) : null;
      if (parsed) out.set(f.id, parsed);
    }
    return out;
  }

  /** Pulls and pushes (rebuilt when rows changed). */
  operations(): Operation[] {
    if (!this.ops || this.ops.version !== this.version) {
      const manifests = new Map<number, ParsedManifest>();
      for (const f of this.rows) {
        if (f.registry?.role !== 'manifest' || f.state !== 'complete') continue;
        const m = this.manifest(f.id);
        if (m) manifests.set(f.id, m);
      }
      this.ops = { version: this.version, ops: buildOperations(this.rows, manifests, { errors: this.errorBodies() }) };
    }
    return this.ops.ops;
  }

  // ------------------------------------------------------------ edits (in memory until saved)

  /** Marks and comments as they were before the first edit of each flow. */
  private readonly original = new Map<number, { marked: boolean; comment: string | null }>();
  /** Flows deleted from the view (`d`): gone from the file only when saved over it. */
  readonly deleted = new Set<number>();
  /** Duplicates (`D`) by their id → the flow they copy. */
  readonly copies = new Map<number, number>();
  private nextCopyId = COPY_IDS;
  private readonly savedCopies = new Set<number>();

  private remember(f: FlowRecord): void {
    if (!this.original.has(f.id)) this.original.set(f.id, { marked: !!f.marked, comment: f.comment ?? null });
  }

  /** Set or clear a mark (in memory). */
  setMarked(id: number, marked: boolean): void {
    const f = this.byId.get(id);
    if (!f) return;
    if (this.backend.persist && !this.copies.has(id)) this.backend.persist(id, { marked });
    else this.remember(f);
    f.marked = marked;
    this.version++;
  }

  /** Set a comment (empty: none), in memory. */
  setComment(id: number, comment: string): void {
    const f = this.byId.get(id);
    if (!f) return;
    const value = comment.trim() ? comment : null;
    if (this.backend.persist && !this.copies.has(id)) this.backend.persist(id, { comment: value });
    else this.remember(f);
    f.comment = value;
    this.version++;
  }

  /** Take a flow out of the model (`d`). */
  delete(id: number): boolean {
    const f = this.byId.get(id);
    if (!f) return false;
    this.byId.delete(id);
    const i = indexById(this.rows, id);
    if (i >= 0) this.rows.splice(i, 1);
    if (this.copies.has(id)) this.copies.delete(id);
    else this.deleted.add(id);
    this.version++;
    return true;
  }

  /** A copy of a flow (`D`), added after every other flow; returns it. */
  duplicate(id: number): FlowRecord | undefined {
    const f = this.byId.get(id);
    if (!f) return undefined;
    const source = this.copies.get(id) ?? id;
    const copy = new CopyFlow(this, this.nextCopyId++, source, f);
    this.copies.set(copy.id, source);
    this.upsert([copy]);
    return copy;
  }

  /** The id in the recording a row stands for (a duplicate's source). */
  sourceOf(id: number): number {
    return this.copies.get(id) ?? id;
  }

  /** Changes not saved anywhere yet: edited marks/comments, deletions, duplicates. */
  unsaved(): number {
    let n = this.deleted.size;
    for (const id of this.copies.keys()) if (!this.savedCopies.has(id)) n++;
    for (const [id, o] of this.original) {
      const f = this.byId.get(id);
      if (f && (!!f.marked !== o.marked || (f.comment ?? null) !== o.comment)) n++;
    }
    return n;
  }

  /** What was changed has been written (w): nothing unsaved any more. */
  saved(): void {
    this.original.clear();
    this.deleted.clear();
    for (const id of this.copies.keys()) this.savedCopies.add(id);
  }
}

/** Ids of duplicates start here: far above any id a recording hands out. */
export const COPY_IDS = 2 ** 40;

/** A duplicated flow: the source's data under its own id, mark and comment. */
class CopyFlow implements FlowRecord {
  marked: boolean;
  comment: string | null;
  registry: FlowRecord['registry'];
  constructor(
    private readonly model: FlowModel,
    readonly id: number,
    readonly sourceId: number,
    private readonly src: FlowRecord,
  ) {
    this.marked = !!src.marked;
    this.comment = src.comment ?? null;
    this.registry = src.registry ?? null;
  }
  get uuid() {
    return this.src.uuid;
  }
  get state() {
    return this.src.state;
  }
  get request() {
    return this.src.request;
  }
  get response() {
    return this.src.response;
  }
  get requestBody() {
    return this.src.requestBody;
  }
  get responseBody() {
    return this.src.responseBody;
  }
  get timings() {
    return this.src.timings;
  }
  get clientAddr() {
    return this.src.clientAddr;
  }
  get serverAddr() {
    return this.src.serverAddr;
  }
  get error() {
    return this.src.error;
  }
  get requestBytes() {
    return this.src.requestBytes;
  }
  get responseBytes() {
    return this.src.responseBytes;
  }
  get facts() {
    return this.src.facts;
  }
}

function indexById(rows: readonly FlowRecord[], id: number): number {
  const i = insertionIndex(rows, id);
  return i < rows.length && rows[i]!.id === id ? i : -1;
}

/** First index whose id is >= id (rows are in id order). */
function insertionIndex(rows: readonly FlowRecord[], id: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid]!.id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
