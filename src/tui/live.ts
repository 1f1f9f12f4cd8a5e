import type { FlowRecord } from '../flow/index.js';
import type { ActiveExchange } from '../record/index.js';
import type { Controller } from './controller.js';
import type { InFlight } from './model.js';

/** What the live UI needs from a running recorder (the consumer's narrow interface). */
export interface LiveSource {
  /** Proxy URL, for the title bar. */
  url: string;
  /** Called after each committed flow; null detaches. */
  setOnFlow(fn: ((flow: FlowRecord) => void) | null): void;
  /** Exchanges still running with byte counts so far. */
  activeExchanges(): ActiveExchange[];
}

/** How often in-flight byte counts are sampled (ms). */
const SAMPLE_MS = 500;

/**
 * Feed a controller from a live recorder. Committed flows are queued by the
 * recorder's callback (O(1): nothing runs on the proxy's path but a push) and
 * applied at most every 100 ms; in-flight downloads are sampled every 500 ms for
 * their byte counts and rate. Returns a detach function.
 */
export function attachLive(c: Controller, src: LiveSource): () => void {
  const model = c.env.model;
  const backend = model.backend;
  const last = new Map<number, { bytes: number; at: number; n: number }>();
  src.setOnFlow((flow) => {
    const row = backend.adopt ? backend.adopt(flow) : flow;
    model.inFlight.delete(flow.id);
    c.arrive([row]);
  });

  const sample = () => {
    const now = Date.now();
    const active = src.activeExchanges();
    const seen = new Set<number>();
    const fresh: FlowRecord[] = [];
    for (const a of active) {
      seen.add(a.id);
      if (!model.get(a.id)) {
        // The open row (redacted request head) is in the recording since the request arrived.
        const f = backend.full(a.id);
        if (f && f.state === 'open') fresh.push(backend.adopt ? backend.adopt(f) : f);
      }
      const bytes = a.requestBytes + a.responseBytes;
      const prev = last.get(a.id);
      const old = model.inFlight.get(a.id);
      let rate = old?.rate ?? 0;
      let n = prev?.n ?? 0;
      if (prev && now > prev.at) {
        const r = ((bytes - prev.bytes) / (now - prev.at)) * 1000;
        // The first measured interval stands alone; later ones are smoothed.
        rate = n > 0 ? rate * 0.5 + r * 0.5 : r;
        n++;
      }
      last.set(a.id, { bytes, at: now, n });
      const inf: InFlight = { id: a.id, requestBytes: a.requestBytes, responseBytes: a.responseBytes, status: a.status, responseLength: a.responseLength, rate };
      model.inFlight.set(a.id, inf);
    }
    for (const id of [...model.inFlight.keys()]) {
      if (!seen.has(id)) {
        model.inFlight.delete(id);
        last.delete(id);
      }
    }
    if (fresh.length) c.arrive(fresh);
    else if (active.length || seen.size !== model.inFlight.size) c.poke();
  };
  const timer = setInterval(sample, SAMPLE_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    src.setOnFlow(null);
    c.flush();
  };
}

/** Title-bar facts of a live session. */
export function liveInfo(src: LiveSource, model: { inFlight: Map<number, InFlight> }): () => { url: string; inFlight: number; rate: number } {
  return () => {
    let rate = 0;
    for (const f of model.inFlight.values()) rate += f.rate;
    return { url: src.url, inFlight: model.inFlight.size, rate };
  };
}
