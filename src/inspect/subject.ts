import type { FlowRecord } from '../flow/index.js';
import type { FilterSubject } from '../filter/index.js';
import type { Recording } from '../store/index.js';

/** Bodies larger than this are not searched by ~b filters. */
const MAX_FILTER_BODY = 1 << 20;

function text(buf: Buffer | null): string | null {
  if (!buf) return null;
  // Binary bodies (layers) are not text: skip them if they hold NUL bytes early on.
  if (buf.subarray(0, 512).includes(0)) return null;
  return buf.toString('utf8');
}

/** What the filter language sees of a stored flow; bodies are read only if a filter asks. */
export function filterSubject(f: FlowRecord, rec: Recording): FilterSubject {
  return {
    flow: f,
    registry: f.registry ?? null,
    marked: !!f.marked,
    comment: f.comment ?? undefined,
    requestBody: () => (f.requestBody?.sha256 ? text(rec.readBodySync(f.requestBody.sha256, MAX_FILTER_BODY)) : null),
    responseBody: () => (f.responseBody?.sha256 ? text(rec.readBodySync(f.responseBody.sha256, MAX_FILTER_BODY)) : null),
  };
}
