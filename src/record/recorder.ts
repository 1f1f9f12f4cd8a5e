import { createHash, randomUUID } from 'node:crypto';
import type { Transform } from 'node:stream';
import { getHeader, type FlowFacts, type FlowRecord, type RedactionFact, type RequestHead, type ResponseHead, type TokenFact, formatBytes } from '../flow/index.js';
import type { Logger } from '../log/index.js';
import type { ExchangeHandle, ExchangeObserver, ExchangeOutcome, ExchangeStart } from '../proxy/index.js';
import { isRedactableType, redactEncodedBody, redactHeaders, redactTarget, Redactor, tokenClaims } from '../redact/index.js';
import { INLINE_LIMIT, type BodyTap, type CapturedBody, type Recording, type StoredBody } from '../store/index.js';

/** Bodies that may carry secrets (JSON, forms) are kept whole in memory up to this size so they can be redacted. */
const REDACT_BUFFER_LIMIT = 1 << 20;

/**
 * A feature that looks at each finished flow before it is committed (mitmproxy-style
 * addon). It sees the redacted flow and may add facts (e.g. registry classification).
 * A failing addon is logged and skipped; it cannot lose the flow.
 */
export interface RecorderAddon {
  name: string;
  /**
   * Fires once per flow, after redaction, before the flow is written. `bodies` holds
   * the (redacted) bytes of small bodies kept in memory, when there were any.
   */
  flowFinished?(flow: FlowRecord, bodies: { request: Buffer | null; response: Buffer | null }): void;
}

export interface RecorderOptions {
  /** Addons, run in order on every finished flow. */
  addons?: RecorderAddon[];
  recording: Recording;
  log: Logger;
  /** Store secrets as they were (the user opted out of redaction). */
  keepSecrets?: boolean;
  /** Print one line per flow (default true). */
  flowLines?: boolean;
  /** How often in-flight byte counts are written to the recording (ms, default 1000). */
  progressIntervalMs?: number;
  /** Called after each flow is committed (live views). */
  onFlow?: (flow: FlowRecord) => void;
}

export interface RecorderStats {
  flows: number;
  complete: number;
  errors: number;
  aborted: number;
  requestBytes: number;
  responseBytes: number;
  bodiesStored: number;
  hosts: Map<string, number>;
}

interface Active {
  id: number;
  reqTap: BodyTap | null;
  resTap: BodyTap | null;
  bytes: () => [number, number];
  /** Response status, once the response head arrived. */
  status?: number;
  /** Response Content-Length, when the upstream sent one. */
  responseLength?: number;
}

/** An exchange still running, as live views see it (no headers: they are not redacted yet). */
export interface ActiveExchange {
  /** Flow id (the `open` row in the recording holds the redacted request head). */
  id: number;
  requestBytes: number;
  responseBytes: number;
  /** Response status, once the response head arrived. */
  status?: number;
  /** Response Content-Length, when known. */
  responseLength?: number;
}

/**
 * Turns proxy exchanges into flows in a Recording: the flow row is inserted when the
 * request head arrives; bodies are hashed and stored while they pass; at the end the
 * bodies are placed (files renamed into NAME.blobs/) and the finished, redacted flow
 * committed in one transaction. Secrets are redacted here, before anything is written.
 */
export class Recorder implements ExchangeObserver {
  readonly redactor = new Redactor();
  readonly stats: RecorderStats = { flows: 0, complete: 0, errors: 0, aborted: 0, requestBytes: 0, responseBytes: 0, bodiesStored: 0, hosts: new Map() };
  private readonly active = new Set<Active>();
  private readonly pending = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: RecorderOptions) {
    this.timer = setInterval(() => this.writeProgress(), o.progressIntervalMs ?? 1000);
    this.timer.unref();
  }

  begin(start: ExchangeStart): ExchangeHandle {
    const rec = this.o.recording;
    const keep = !!this.o.keepSecrets;
    const facts: { redactions: RedactionFact[]; tokens: TokenFact[] } = { redactions: [], tokens: [] };
    const absorb = (r: { redactions: RedactionFact[]; tokens: TokenFact[] }) => {
      facts.redactions.push(...r.redactions);
      facts.tokens.push(...r.tokens);
    };
    const request: RequestHead = { ...start.request };
    if (!keep) {
      const h = redactHeaders(request.headers, this.redactor, 'request');
      const t = redactTarget(request.target, this.redactor);
      request.headers = h.value;
      request.target = t.value;
      absorb(h);
      absorb(t);
    } else {
      collectBearerFacts(request, facts.tokens);
    }
    const uuid = randomUUID();
    const id = rec.insertOpenFlow({ uuid, request, timings: { start: start.start }, clientAddr: start.clientAddr });
    const active: Active = { id, reqTap: null, resTap: null, bytes: () => [active.reqTap?.bytes ?? 0, active.resTap?.bytes ?? 0] };
    this.active.add(active);
    const reqType = getHeader(start.request.headers, 'content-type');

    return {
      requestTap: (): Transform => {
        const limit = isRedactableType(reqType) ? REDACT_BUFFER_LIMIT : INLINE_LIMIT;
        const cl = Number(getHeader(start.request.headers, 'content-length'));
        active.reqTap = rec.bodies.tap({ bufferLimit: limit, expectedSize: Number.isFinite(cl) ? cl : undefined });
        return active.reqTap;
      },
      responseTap: (head: ResponseHead): Transform => {
        const type = getHeader(head.headers, 'content-type');
        const limit = isRedactableType(type) || !type ? REDACT_BUFFER_LIMIT : INLINE_LIMIT;
        const cl = Number(getHeader(head.headers, 'content-length'));
        active.status = head.status;
        if (Number.isFinite(cl)) active.responseLength = cl;
        active.resTap = rec.bodies.tap({ bufferLimit: limit, expectedSize: Number.isFinite(cl) ? cl : undefined });
        return active.resTap;
      },
      end: (outcome: ExchangeOutcome) => {
        const p = this.finish(active, uuid, request, start, outcome, facts, reqType).catch((e: Error) => {
          this.o.log.error(`could not store flow ${id} (${request.method} ${request.host}${request.target}): ${e.message}`);
        });
        this.pending.add(p);
        void p.finally(() => this.pending.delete(p));
      },
    };
  }

  private async finish(
    active: Active,
    uuid: string,
    request: RequestHead,
    start: ExchangeStart,
    outcome: ExchangeOutcome,
    facts: { redactions: RedactionFact[]; tokens: TokenFact[] },
    reqType: string | undefined,
  ): Promise<void> {
    const rec = this.o.recording;
    const keep = !!this.o.keepSecrets;
    let response = outcome.response;
    if (response && !keep) {
      const h = redactHeaders(response.headers, this.redactor, 'response');
      response = { ...response, headers: h.value };
      facts.redactions.push(...h.redactions);
      facts.tokens.push(...h.tokens);
    }
    const [reqCaptured, resCaptured] = await Promise.all([active.reqTap?.result() ?? null, active.resTap?.result() ?? null]);
    const resType = outcome.response ? getHeader(outcome.response.headers, 'content-type') : undefined;
    const reqEnc = getHeader(start.request.headers, 'content-encoding');
    const resEnc = outcome.response ? getHeader(outcome.response.headers, 'content-encoding') : undefined;
    const reqBody = await this.storeBody(reqCaptured, reqType, reqEnc, 'request', facts);
    const resBody = await this.storeBody(resCaptured, resType, resEnc, 'response', facts);
    this.active.delete(active);

    const flowFacts: FlowFacts = {};
    if (facts.redactions.length) flowFacts.redactions = facts.redactions;
    if (facts.tokens.length) flowFacts.tokens = facts.tokens;
    const flow: FlowRecord = {
      id: active.id,
      uuid,
      state: outcome.state,
      request,
      requestBody: reqBody?.ref ?? null,
      response,
      responseBody: resBody?.ref ?? null,
      timings: outcome.timings,
      clientAddr: start.clientAddr,
      serverAddr: outcome.serverAddr,
      error: outcome.error,
      requestBytes: outcome.requestBytes,
      responseBytes: outcome.responseBytes,
      facts: flowFacts,
    };
    for (const addon of this.o.addons ?? []) {
      try {
        addon.flowFinished?.(flow, { request: reqBody?.inline ?? null, response: resBody?.inline ?? null });
      } catch (e) {
        this.o.log.warn(`addon ${addon.name} failed on flow ${flow.id}: ${(e as Error).message}`);
      }
    }
    rec.finishFlow(flow, reqBody, resBody);
    this.count(flow, reqBody, resBody);
    if (this.o.flowLines !== false) this.o.log.info(flowLine(flow));
    this.o.onFlow?.(flow);
  }

  private async storeBody(
    captured: CapturedBody | null,
    contentType: string | undefined,
    contentEncoding: string | undefined,
    side: 'request' | 'response',
    facts: { redactions: RedactionFact[]; tokens: TokenFact[] },
  ): Promise<StoredBody | null> {
    if (!captured) return null;
    let redacted = false;
    if (captured.buffer && captured.buffer.length) {
      const r = redactEncodedBody(captured.buffer, contentType, contentEncoding, this.redactor, side);
      if (this.o.keepSecrets) {
        facts.tokens.push(...r.tokens.map((t) => ({ ...t, marker: '' })));
      } else {
        facts.redactions.push(...r.redactions);
        facts.tokens.push(...r.tokens);
        if (r.changed) {
          captured = { sha256: createHash('sha256').update(r.value).digest('hex'), size: r.value.length, buffer: r.value };
          redacted = true;
        }
      }
    }
    return this.o.recording.storeBody(captured, redacted);
  }

  private count(flow: FlowRecord, reqBody: StoredBody | null, resBody: StoredBody | null): void {
    const s = this.stats;
    s.flows++;
    if (flow.state === 'complete') s.complete++;
    else if (flow.state === 'error') s.errors++;
    else s.aborted++;
    s.requestBytes += flow.requestBytes;
    s.responseBytes += flow.responseBytes;
    s.bodiesStored += (reqBody ? 1 : 0) + (resBody ? 1 : 0);
    s.hosts.set(flow.request.host, (s.hosts.get(flow.request.host) ?? 0) + 1);
  }

  private writeProgress(): void {
    for (const a of this.active) {
      const [q, r] = a.bytes();
      if (q || r) {
        try {
          this.o.recording.updateProgress(a.id, q, r);
        } catch {
          // the recording is closing
        }
      }
    }
  }

  /** Flows still running. */
  get inFlight(): number {
    return this.active.size;
  }

  /** Exchanges still running with their byte counts so far (live views; cheap, no I/O). */
  activeExchanges(): ActiveExchange[] {
    const out: ActiveExchange[] = [];
    for (const a of this.active) {
      const [requestBytes, responseBytes] = a.bytes();
      out.push({ id: a.id, requestBytes, responseBytes, status: a.status, responseLength: a.responseLength });
    }
    return out;
  }

  /** Set or clear the callback run after each committed flow (a live view attaching to a running recorder). */
  setOnFlow(fn: ((flow: FlowRecord) => void) | null): void {
    this.o.onFlow = fn ?? undefined;
  }

  /** Wait until every ended exchange has been committed. */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /** Stop the progress timer and write final byte counts of exchanges that never ended. */
  close(): void {
    clearInterval(this.timer);
    this.writeProgress();
  }
}

function collectBearerFacts(request: RequestHead, tokens: TokenFact[]): void {
  const auth = getHeader(request.headers, 'authorization');
  const m = auth ? /^bearer\s+(\S+)/i.exec(auth) : null;
  if (m) tokens.push({ where: 'request.header:authorization', marker: '', claims: tokenClaims(m[1]!) });
}


/** One stderr line per flow: method, host, path, status, bytes, ms. */
export function flowLine(f: FlowRecord): string {
  const ms = f.timings.end !== undefined ? Math.round(f.timings.end - f.timings.start) : 0;
  const status = f.response ? String(f.response.status) : f.state === 'error' ? 'ERR' : '---';
  const path = f.request.target.length > 100 ? `${f.request.target.slice(0, 97)}...` : f.request.target;
  const tail = f.state === 'complete' ? '' : ` [${f.state}${f.error ? `: ${f.error}` : ''}]`;
  return `${f.request.method.padEnd(5)} ${f.request.host} ${path} ${status} ${formatBytes(f.responseBytes)} ${ms} ms${tail}`;
}
