import type { BodyRef, FlowRecord, RedactionFact, RequestHead, ResponseHead, TokenFact } from '../flow/index.js';

/** Facts addons gather while a flow passes: redaction markers and decoded token claims. */
export interface FactsSoFar {
  redactions: RedactionFact[];
  tokens: TokenFact[];
}

export interface RequestHeadContext {
  /** The request head as it will be stored; addons may replace headers and target. */
  request: RequestHead;
  facts: FactsSoFar;
}

export interface ResponseHeadContext {
  request: RequestHead;
  /** The response head as it will be stored; addons may replace headers. */
  response: ResponseHead;
  facts: FactsSoFar;
}

export interface BodyContext {
  side: 'request' | 'response';
  /** The whole body (small bodies only: large ones stream to disk and are never held). */
  bytes: Buffer;
  /** Content-Type and Content-Encoding of the body as it came (before any addon). */
  contentType: string | undefined;
  contentEncoding: string | undefined;
  facts: FactsSoFar;
}

export interface FinishedContext {
  /** The finished flow, redacted, about to be stored; addons may add facts (e.g. `registry`). */
  flow: FlowRecord;
  /** Stored bytes of small bodies (after the body hooks), when they were held in memory. */
  bodies: { request: Buffer | null; response: Buffer | null };
  /**
   * Bodies the source describes but whose bytes are not here (a HAR that left a layer
   * out, with its sha256 and size in `_regtape`): what a digest check can still use.
   */
  described: { request?: BodyRef; response?: BodyRef };
}

/**
 * A feature that looks at flows as they pass (in the spirit of mitmproxy's addons).
 * Hooks run in chain order; each is optional. An addon that throws is reported and
 * skipped for that flow, unless it is `critical` (redaction: a failure there must not
 * let a secret through), in which case the flow fails.
 */
export interface Addon {
  readonly name: string;
  readonly critical?: boolean;
  /** The request head arrived (before the flow's first row is written). */
  requestHead?(ctx: RequestHeadContext): void;
  /** The response head arrived. */
  responseHead?(ctx: ResponseHeadContext): void;
  /** A small body is complete; return replacement bytes to change what is stored. */
  body?(ctx: BodyContext): Buffer | void;
  /** The flow is finished, before it is committed. */
  flowFinished?(ctx: FinishedContext): void;
  /** The flow was committed to the recording (live views, flow lines). */
  flowStored?(flow: FlowRecord): void;
}

export type AddonFailure = (addon: Addon, hook: keyof Addon, error: Error, flow: { method: string; host: string; target: string }) => void;

/** An ordered chain of addons and the one place their hooks are run. */
export class Pipeline {
  constructor(
    readonly addons: readonly Addon[],
    private readonly onFailure: AddonFailure = () => undefined,
  ) {}

  /** A chain with more addons after these (flow lines, live views, user addons). */
  with(...more: Addon[]): Pipeline {
    return new Pipeline([...this.addons, ...more], this.onFailure);
  }

  requestHead(ctx: RequestHeadContext): void {
    for (const a of this.addons) if (a.requestHead) this.run(a, 'requestHead', ctx.request, () => a.requestHead!(ctx));
  }

  responseHead(ctx: ResponseHeadContext): void {
    for (const a of this.addons) if (a.responseHead) this.run(a, 'responseHead', ctx.request, () => a.responseHead!(ctx));
  }

  /** Run the body hooks; returns the bytes to store (the same Buffer when nothing changed). */
  body(ctx: BodyContext, request: RequestHead): Buffer {
    for (const a of this.addons) {
      if (!a.body) continue;
      this.run(a, 'body', request, () => {
        const out = a.body!(ctx);
        if (out) ctx.bytes = out;
      });
    }
    return ctx.bytes;
  }

  flowFinished(ctx: FinishedContext): void {
    for (const a of this.addons) if (a.flowFinished) this.run(a, 'flowFinished', ctx.flow.request, () => a.flowFinished!(ctx));
  }

  flowStored(flow: FlowRecord): void {
    for (const a of this.addons) if (a.flowStored) this.run(a, 'flowStored', flow.request, () => a.flowStored!(flow));
  }

  private run(a: Addon, hook: keyof Addon, req: RequestHead, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (a.critical) throw e;
      this.onFailure(a, hook, e as Error, req);
    }
  }
}

/** Facts gathered so far as a flow's `facts` (empty lists left out, as stored). */
export function flowFacts(f: FactsSoFar): FlowRecord['facts'] {
  const out: FlowRecord['facts'] = {};
  if (f.redactions.length) out.redactions = f.redactions;
  if (f.tokens.length) out.tokens = f.tokens;
  return out;
}
