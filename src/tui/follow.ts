import type { FlowRecord } from '../flow/index.js';
import type { Controller } from './controller.js';

/** How often `ui --follow` looks for new and changed flows (ms). */
export const FOLLOW_MS = 200;

/**
 * `regtape ui --follow FILE`: show a recording another process is writing. The
 * recording is open read-only (a WAL reader never blocks the writer); every
 * `FOLLOW_MS` the flows after the last one seen are read, and so are the flows still
 * open (their byte counts and state move as they run). Returns a stop function.
 */
export function attachFollow(c: Controller, ms = FOLLOW_MS): () => void {
  const poll = () => {
    const model = c.env.model;
    const backend = model.backend;
    if (!backend.loadRows) return;
    const changed: FlowRecord[] = [];
    for (const f of model.rows) {
      if (f.state !== 'open') continue;
      const [now] = backend.loadRows(f.id - 1, 1);
      if (now && now.id === f.id && (now.state !== f.state || now.responseBytes !== f.responseBytes || now.requestBytes !== f.requestBytes)) {
        backend.invalidate?.(f.id);
        changed.push(now);
      }
    }
    let fresh: FlowRecord[];
    do {
      fresh = model.loadNew(5000);
      for (const f of fresh) changed.push(f);
    } while (fresh.length === 5000);
    if (changed.length) c.changed(model.upsert(changed));
  };
  const timer = setInterval(poll, ms);
  timer.unref();
  return () => clearInterval(timer);
}
