import type { Transform } from 'node:stream';
import type { FlowState, RequestHead, ResponseHead, Timings } from '../flow/index.js';

/**
 * How the proxy reports exchanges. The proxy knows nothing about storage or
 * registries; whoever wants flows (the recorder) implements this.
 */
export interface ExchangeObserver {
  /** Fires when a request head has arrived, before anything goes upstream. */
  begin(start: ExchangeStart): ExchangeHandle;
}

export interface ExchangeStart {
  request: RequestHead;
  /** Client address, ip:port. */
  clientAddr: string | null;
  /** Epoch ms. */
  start: number;
}

/** Per-exchange callbacks. Taps must pass every chunk through unchanged. */
export interface ExchangeHandle {
  /** A pass-through tap for the request body (called only when the request has a body). */
  requestTap?(): Transform | null;
  /** A pass-through tap for the response body (not called for bodiless responses). */
  responseTap?(head: ResponseHead, request: RequestHead): Transform | null;
  /** Fires exactly once, when the exchange is over (relayed, failed or aborted). */
  end(outcome: ExchangeOutcome): void;
}

export interface ExchangeOutcome {
  state: Exclude<FlowState, 'open'>;
  response: ResponseHead | null;
  timings: Timings;
  /** Upstream address connected to (ip:port). */
  serverAddr: string | null;
  /** Why it failed, in words a user can act on. */
  error: string | null;
  requestBytes: number;
  responseBytes: number;
}
