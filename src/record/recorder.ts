import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Transform } from 'node:stream';
import { formatBytes, getHeader, type FlowRecord, type RequestHead, type ResponseHead } from '../flow/index.js';
import type { Logger } from '../log/index.js';
import { describeRequest, flowFacts, REDACT_BUFFER_LIMIT, type FactsSoFar, type Pipeline } from '../pipeline/index.js';
import type { ExchangeHandle, ExchangeObserver, ExchangeOutcome, ExchangeStart } from '../proxy/index.js';
import { isRedactableType, isTextType } from '../redact/index.js';
import { INLINE_LIMIT, type BodyTap, type CapturedBody, type Recording, type StoredBody } from '../store/index.js';

/** JSON/form/text bodies up to this size that went to a file are still read back and redacted. */
const POST_REDACT_LIMIT = 32 << 20;


export interface RecorderOptions {
  /** The addon chain every flow goes through (`defaultChain()` plus flow lines, live views). */
  pipeline: Pipeline;
  recording: Recording;
  log: Logger;
  /** How often in-flight byte counts are written to the recording (ms, default 1000). */
  progressIntervalMs?: number;
  /** Called after each flow is committed (live views attaching to a running recorder). */
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
  /** Exchanges proxied while the recording could not be written (disk full): not in the recording. */
  unrecorded: number;
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
  /** The response head as stored (after the responseHead hooks). */
  response?: ResponseHead;
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
  readonly stats: RecorderStats = { flows: 0, complete: 0, errors: 0, aborted: 0, requestBytes: 0, responseBytes: 0, bodiesStored: 0, unrecorded: 0, hosts: new Map() };
  private readonly active = new Set<Active>();
  private readonly pending = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: RecorderOptions) {
    this.timer = setInterval(() => this.writeProgress(), o.progressIntervalMs ?? 1000);
    this.timer.unref();
  }

  begin(start: ExchangeStart): ExchangeHandle {
    const rec = this.o.recording;
    const facts: FactsSoFar = { redactions: [], tokens: [] };
    const request: RequestHead = { ...start.request };
    this.o.pipeline.requestHead({ request, facts });
    const uuid = randomUUID();
    let id: number;
    try {
      id = rec.insertOpenFlow({ uuid, request, timings: { start: start.start }, clientAddr: start.clientAddr });
    } catch (e) {
      // The recording cannot be written (disk full…): proxy this exchange without recording it.
      this.storageFailed(e);
      this.stats.unrecorded++;
      return { end: () => undefined };
    }
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
        active.response = this.responseHead(request, head, facts);
        active.resTap = rec.bodies.tap({ bufferLimit: limit, expectedSize: Number.isFinite(cl) ? cl : undefined });
        return active.resTap;
      },
      end: (outcome: ExchangeOutcome) => {
        const p = this.finish(active, uuid, request, start, outcome, facts, reqType).catch((e: Error) => {
          this.o.log.error(`could not store flow ${id} (${describeRequest(request)}): ${e.message}`);
        });
        this.pending.add(p);
        void p.finally(() => this.pending.delete(p));
      },
    };
  }

  /** The response head as stored: a copy through the responseHead hooks. */
  private responseHead(request: RequestHead, head: ResponseHead, facts: FactsSoFar): ResponseHead {
    const response: ResponseHead = { ...head };
    this.o.pipeline.responseHead({ request, response, facts });
    return response;
  }

  private async finish(active: Active, uuid: string, request: RequestHead, start: ExchangeStart, outcome: ExchangeOutcome, facts: FactsSoFar, reqType: string | undefined): Promise<void> {
    const rec = this.o.recording;
    const response = outcome.response ? (active.response ?? this.responseHead(request, outcome.response, facts)) : null;
    const [reqCaptured, resCaptured] = await Promise.all([active.reqTap?.result() ?? null, active.resTap?.result() ?? null]);
    const resType = outcome.response ? getHeader(outcome.response.headers, 'content-type') : undefined;
    const reqEnc = getHeader(start.request.headers, 'content-encoding');
    const resEnc = outcome.response ? getHeader(outcome.response.headers, 'content-encoding') : undefined;
    const unstored: string[] = [];
    const reqBody = await this.storeBody(reqCaptured, reqType, reqEnc, 'request', facts, request, unstored);
    const resBody = await this.storeBody(resCaptured, resType, resEnc, 'response', facts, request, unstored);
    this.active.delete(active);
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
      // Bodies the disk refused are named in the error: the flow says what it lacks.
      error: [outcome.error, ...unstored].filter(Boolean).join('; ') || null,
      requestBytes: outcome.requestBytes,
      responseBytes: outcome.responseBytes,
      facts: flowFacts(facts),
    };
    this.o.pipeline.flowFinished({ flow, bodies: { request: reqBody?.inline ?? null, response: resBody?.inline ?? null }, described: {} });
    try {
      rec.finishFlow(flow, reqBody, resBody);
    } catch (e) {
      this.storageFailed(e);
      this.stats.unrecorded++;
      return;
    }
    if (!unstored.length) this.storageOk();
    this.count(flow, reqBody, resBody);
    this.o.pipeline.flowStored(flow);
    this.o.onFlow?.(flow);
  }

  private async storeBody(
    captured: CapturedBody | null,
    contentType: string | undefined,
    contentEncoding: string | undefined,
    side: 'request' | 'response',
    facts: FactsSoFar,
    request: RequestHead,
    unstored: string[] = [],
  ): Promise<StoredBody | null> {
    if (!captured) return null;
    const size = captured.size;
    const refuse = (e: unknown) => {
      const err = e as NodeJS.ErrnoException;
      unstored.push(`${side} body (${formatBytes(size)}) not stored: ${err.code ? `${err.code}: ` : ''}${err.message}`);
      this.storageFailed(e);
      return null;
    };
    if (captured.unstored) return refuse(captured.unstored);
    let redacted = false;
    if (captured.tmpFile && captured.size <= POST_REDACT_LIMIT && (isRedactableType(contentType) || isTextType(contentType))) {
      // A JSON/form/text body too big to keep in memory while it passed (a token response over
      // the limits): read it back once, after the client has it, and redact it before it is placed.
      const buf = await fs.promises.readFile(captured.tmpFile);
      const bytes = this.o.pipeline.body({ side, bytes: buf, contentType, contentEncoding, facts }, request);
      if (bytes !== buf) {
        await fs.promises.rm(captured.tmpFile, { force: true });
        return this.o.recording.storeBody({ sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, buffer: bytes }, true);
      }
    }
    if (captured.buffer && captured.buffer.length) {
      const bytes = this.o.pipeline.body({ side, bytes: captured.buffer, contentType, contentEncoding, facts }, request);
      if (bytes !== captured.buffer) {
        captured = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, buffer: bytes };
        redacted = true;
      }
    }
    try {
      return await this.o.recording.storeBody(captured, redacted);
    } catch (e) {
      return refuse(e);
    }
  }

  private recordingStopped: string | null = null;

  /** The recording could not be written: say so once, loudly, and keep proxying. */
  private storageFailed(e: unknown): void {
    const err = e as NodeJS.ErrnoException;
    if (this.recordingStopped) return;
    const why = `${err.code ?? 'error'}: ${err.message}`;
    this.recordingStopped = why;
    this.o.log.error(
      `RECORDING STOPPED: cannot write ${this.o.recording.path} (or ${this.o.recording.bodies.dir}): ${why}. The proxy keeps forwarding (clients are not affected), but flows are not stored or are stored without their bodies (marked in their error). Free space there: recording resumes by itself.`,
    );
  }

  /** A flow was stored whole after a failure: recording works again. */
  private storageOk(): void {
    if (!this.recordingStopped) return;
    this.o.log.warn(`recording resumed: ${this.o.recording.path} can be written again (${this.stats.unrecorded} exchanges were not recorded while it could not)`);
    this.recordingStopped = null;
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


