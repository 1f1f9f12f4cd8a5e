import fs from 'node:fs';
import type { BodyRef, FlowFacts, FlowRecord, FlowState, HeaderList, RegistryFacts, RequestHead, ResponseHead, Timings } from '../flow/index.js';
import type { FlowSummaryRow, Recording } from '../store/index.js';

/**
 * Where the TUI gets what a light row does not carry: the full flow (headers,
 * facts, body references), body bytes, and somewhere to keep marks.
 */
export interface Backend {
  /** Shown in the title bar (the recording's path). */
  readonly label: string;
  /** The recording, when there is one (curl and HAR exports read it). */
  readonly recording?: Recording;
  /** The full flow, or undefined if it is not (or no longer) there. */
  full(id: number): FlowRecord | undefined;
  /** Just the headers of a flow (filters over headers read only these: far cheaper than `full`). */
  headers?(id: number, side: 'request' | 'response'): HeaderList | null;
  /** A stored body's bytes if it is at most `max` bytes; null when absent or larger. */
  body(sha256: string, max: number): Buffer | null;
  /** The first `n` bytes of a stored body, whatever its size (hex and text previews of layers). */
  bodyHead?(sha256: string, n: number): Buffer | null;
  /**
   * Write a mark or comment straight into the recording (the live session of
   * `record --ui`, whose recording is open for writing anyway). Absent: edits stay in
   * memory until `w` saves them (`regtape ui FILE`).
   */
  persist?(id: number, edit: { marked?: boolean; comment?: string | null }): void;
  /** Rows with id > afterId, in id order, at most `limit` (undefined: the backend holds none). */
  loadRows?(afterId: number, limit: number): FlowRecord[];
  /** Number of flows in the backend (for "loading 2000 of 100000"). */
  count?(): number;
  /** Forget cached full flows (a flow changed). */
  invalidate?(id: number): void;
  /** A row for a flow that just arrived (live): light when the backend can reload the rest. */
  adopt?(f: FlowRecord): FlowRecord;
  close?(): void;
}

/** A flow with a lazily loaded request head's headers. */
class LightRequest implements RequestHead {
  constructor(
    private readonly row: LightFlow,
    readonly method: string,
    readonly scheme: 'http' | 'https',
    readonly host: string,
    readonly port: number,
    readonly target: string,
    readonly httpVersion: string,
  ) {}

  get headers(): HeaderList {
    return this.row.loadHeaders('request') ?? [];
  }
}

class LightResponse implements ResponseHead {
  constructor(
    private readonly row: LightFlow,
    readonly status: number,
    readonly reason: string,
    readonly httpVersion: string,
  ) {}

  get headers(): HeaderList {
    return this.row.loadHeaders('response') ?? [];
  }
}

/**
 * A flow row as the list holds it: the columns it shows and the fields filters look
 * at most, with everything heavy (headers, facts, body references, addresses) read
 * from the backend on first use. It satisfies FlowRecord, so filters, the
 * classifier and `buildOperations` work on it unchanged. `timings` carries start,
 * first byte and end; the full flow has the rest.
 */
export class LightFlow implements FlowRecord {
  readonly request: RequestHead;
  readonly response: ResponseHead | null;
  readonly timings: Timings;
  registry: RegistryFacts | null;
  marked: boolean;

  constructor(
    private readonly backend: Backend,
    readonly id: number,
    readonly state: FlowState,
    request: { method: string; scheme: 'http' | 'https'; host: string; port: number; target: string; httpVersion: string },
    response: { status: number; reason: string; httpVersion: string } | null,
    timings: Timings,
    readonly requestBytes: number,
    readonly responseBytes: number,
    readonly error: string | null,
    registry: RegistryFacts | null,
    marked: boolean,
    public comment: string | null,
  ) {
    this.request = new LightRequest(this, request.method, request.scheme, request.host, request.port, request.target, request.httpVersion);
    this.response = response ? new LightResponse(this, response.status, response.reason, response.httpVersion) : null;
    this.timings = timings;
    this.registry = registry;
    this.marked = marked;
  }

  loadFull(): FlowRecord | undefined {
    return this.backend.full(this.id);
  }

  loadHeaders(side: 'request' | 'response'): HeaderList | null {
    if (this.backend.headers) return this.backend.headers(this.id, side);
    const f = this.loadFull();
    return side === 'request' ? (f?.request.headers ?? null) : (f?.response?.headers ?? null);
  }

  get uuid(): string {
    return this.loadFull()?.uuid ?? '';
  }
  get facts(): FlowFacts {
    return this.loadFull()?.facts ?? {};
  }
  get requestBody(): BodyRef | null {
    return this.loadFull()?.requestBody ?? null;
  }
  get responseBody(): BodyRef | null {
    return this.loadFull()?.responseBody ?? null;
  }
  get clientAddr(): string | null {
    return this.loadFull()?.clientAddr ?? null;
  }
  get serverAddr(): string | null {
    return this.loadFull()?.serverAddr ?? null;
  }
}

/** How many full flows the backend keeps parsed (the detail view, a filter walking headers). */
const FULL_CACHE = 64;

/**
 * A backend over a Recording. Reads are synchronous (better-sqlite3). A recording
 * open for writing (the live session) keeps marks and comments at once; a read-only
 * one never writes (edits stay in the model until saved).
 */
export class RecordingBackend implements Backend {
  readonly label: string;
  readonly recording: Recording;
  private readonly cache = new Map<number, FlowRecord | undefined>();
  /** The last row whose headers were read: a filter asks for both sides of one flow in a row. */
  private hdr: { id: number; raw: [string | null, string | null]; parsed: [HeaderList | null, HeaderList | null] } | null = null;
  readonly persist?: (id: number, edit: { marked?: boolean; comment?: string | null }) => void;

  constructor(readonly rec: Recording) {
    this.label = rec.path;
    this.recording = rec;
    if (!rec.readonly) {
      this.persist = (id, edit) => {
        if (edit.marked !== undefined) rec.setMarked(id, edit.marked);
        if (edit.comment !== undefined) rec.setComment(id, edit.comment);
        this.invalidate(id);
      };
    }
  }

  full(id: number): FlowRecord | undefined {
    if (this.cache.has(id)) {
      const f = this.cache.get(id);
      // Move to the back: most recently used.
      this.cache.delete(id);
      this.cache.set(id, f);
      return f;
    }
    const f = this.rec.get(id);
    this.cache.set(id, f);
    if (this.cache.size > FULL_CACHE) this.cache.delete(this.cache.keys().next().value!);
    return f;
  }

  invalidate(id: number): void {
    this.cache.delete(id);
    if (this.hdr?.id === id) this.hdr = null;
  }

  headers(id: number, side: 'request' | 'response'): HeaderList | null {
    const cached = this.cache.get(id);
    if (cached) return side === 'request' ? cached.request.headers : (cached.response?.headers ?? null);
    if (this.hdr?.id !== id) {
      this.hdr = { id, raw: this.rec.rawHeaders(id), parsed: [null, null] };
    }
    const i = side === 'request' ? 0 : 1;
    const h = this.hdr;
    if (h.parsed[i] === null && h.raw[i] !== null) {
      try {
        h.parsed[i] = JSON.parse(h.raw[i]!) as HeaderList;
      } catch {
        h.parsed[i] = [];
      }
    }
    return h.parsed[i];
  }

  body(sha256: string, max: number): Buffer | null {
    try {
      return this.rec.readBodySync(sha256, max);
    } catch {
      return null;
    }
  }

  bodyHead(sha256: string, n: number): Buffer | null {
    const small = this.body(sha256, Math.max(n, 64 * 1024));
    if (small) return small.subarray(0, n);
    try {
      const { fd } = this.rec.bodies.open(sha256); // never through a symlink
      try {
        const buf = Buffer.alloc(n);
        return buf.subarray(0, fs.readSync(fd, buf, 0, n, 0));
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return null;
    }
  }

  count(): number {
    return this.rec.count();
  }

  close(): void {
    this.rec.close();
  }

  loadRows(afterId: number, limit: number): FlowRecord[] {
    const rows = this.rec.listSummaries(afterId, limit);
    const out: FlowRecord[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = this.light(rows[i]!);
    return out;
  }

  adopt(f: FlowRecord): FlowRecord {
    this.invalidate(f.id);
    return new LightFlow(
      this,
      f.id,
      f.state,
      f.request,
      f.response,
      { start: f.timings.start, firstByte: f.timings.firstByte, end: f.timings.end },
      f.requestBytes,
      f.responseBytes,
      f.error,
      f.registry ?? null,
      !!f.marked,
      f.comment ?? null,
    );
  }

  /** Hosts, methods, reasons…: a few distinct values over many rows share one string. */
  private readonly strings = new Map<string, string>();
  private intern(v: string): string {
    const seen = this.strings.get(v);
    if (seen !== undefined) return seen;
    if (this.strings.size < 10_000) this.strings.set(v, v);
    return v;
  }

  private light(r: FlowSummaryRow): LightFlow {
    const s = (v: string) => this.intern(v);
    let registry: RegistryFacts | null = null;
    if (r.registry) {
      try {
        registry = JSON.parse(r.registry) as RegistryFacts;
      } catch {
        registry = null;
      }
    }
    return new LightFlow(
      this,
      r.id,
      s(r.state) as FlowState,
      { method: s(r.method), scheme: s(r.scheme) as 'http' | 'https', host: s(r.host), port: r.port, target: r.target, httpVersion: s(r.http_version) },
      r.status !== null ? { status: r.status, reason: s(r.reason ?? ''), httpVersion: s(r.res_http_version ?? '1.1') } : null,
      { start: r.t_start, firstByte: r.t_first_byte ?? undefined, end: r.t_end ?? undefined },
      r.req_bytes,
      r.res_bytes,
      r.error,
      registry,
      !!r.marked,
      r.comment,
    );
  }

}

/** A backend over flows in memory (tests, and flows that are not in a recording). */
export class MemoryBackend implements Backend {
  private readonly byId: Map<number, FlowRecord>;
  constructor(
    flows: FlowRecord[],
    private readonly bodies: ReadonlyMap<string, Buffer> = new Map(),
    readonly label = '(memory)',
  ) {
    this.byId = new Map(flows.map((f) => [f.id, f]));
  }
  full(id: number): FlowRecord | undefined {
    return this.byId.get(id);
  }
  body(sha256: string, max: number): Buffer | null {
    const b = this.bodies.get(sha256);
    return b && b.length <= max ? b : null;
  }
  loadRows(afterId: number, limit: number): FlowRecord[] {
    return [...this.byId.values()].filter((f) => f.id > afterId).sort((a, b) => a.id - b.id).slice(0, limit);
  }
  count(): number {
    return this.byId.size;
  }
  adopt(f: FlowRecord): FlowRecord {
    this.byId.set(f.id, f);
    return f;
  }
}
