import type { FlowRecord } from '../flow/index.js';
import type { Filter, FilterSubject } from '../filter/index.js';
import type { FlowModel } from './model.js';

/** List orders (`o` cycles them, `v` reverses). */
/** mitmproxy's orders (time, method, url, size) and regtape's (duration, status, host). */
export const ORDERS = ['time', 'method', 'url', 'size', 'duration', 'status', 'host'] as const;
export type Order = (typeof ORDERS)[number];

/** What decides which flows the list shows, and in which order. */
export interface ViewSpec {
  filter: Filter | null;
  markedOnly: boolean;
  /** Flows hidden by `z` (clear). */
  hidden: ReadonlySet<number>;
  order: Order;
  reverse: boolean;
}

/** Bodies larger than this are not searched by ~b filters. */
const MAX_FILTER_BODY = 1 << 20;

function text(buf: Buffer | null): string | null {
  if (!buf || buf.subarray(0, 512).includes(0)) return null;
  return buf.toString('utf8');
}

/** A filter subject for a row; bodies are read only by filters that use them. */
export function subjectOf(f: FlowRecord, model: FlowModel, withBodies: boolean): FilterSubject {
  const s: FilterSubject = { flow: f, registry: f.registry ?? null, marked: !!f.marked, comment: f.comment ?? undefined };
  if (withBodies) {
    s.requestBody = () => {
      const b = f.requestBody;
      return b?.sha256 ? text(model.backend.body(b.sha256, MAX_FILTER_BODY)) : null;
    };
    s.responseBody = () => {
      const b = f.responseBody;
      return b?.sha256 ? text(model.backend.body(b.sha256, MAX_FILTER_BODY)) : null;
    };
  }
  return s;
}

/** Size shown in the list and used by the size order. */
export const sizeOf = (f: FlowRecord): number => f.responseBytes || f.requestBytes;

/** Duration in ms; open flows sort last. */
const durationOf = (f: FlowRecord): number => (f.timings.end !== undefined ? f.timings.end - f.timings.start : Number.MAX_SAFE_INTEGER);

export function comparator(spec: Pick<ViewSpec, 'order' | 'reverse'>): (a: FlowRecord, b: FlowRecord) => number {
  const base: (a: FlowRecord, b: FlowRecord) => number = (() => {
    switch (spec.order) {
      case 'time':
        return (a, b) => a.id - b.id;
      case 'method':
        return (a, b) => (a.request.method < b.request.method ? -1 : a.request.method > b.request.method ? 1 : a.id - b.id);
      case 'url': {
        const url = (f: FlowRecord) => `${f.request.host}${f.request.target}`;
        return (a, b) => (url(a) < url(b) ? -1 : url(a) > url(b) ? 1 : a.id - b.id);
      }
      case 'size':
        return (a, b) => sizeOf(a) - sizeOf(b) || a.id - b.id;
      case 'duration':
        return (a, b) => durationOf(a) - durationOf(b) || a.id - b.id;
      case 'status':
        return (a, b) => (a.response?.status ?? 0) - (b.response?.status ?? 0) || a.id - b.id;
      case 'host':
        return (a, b) => (a.request.host < b.request.host ? -1 : a.request.host > b.request.host ? 1 : a.id - b.id);
    }
  })();
  return spec.reverse ? (a, b) => base(b, a) : base;
}

/** A predicate for one spec (filter, marks, hidden flows). */
export function matcher(spec: ViewSpec, model: FlowModel): (f: FlowRecord) => boolean {
  const { filter, markedOnly, hidden } = spec;
  const bodies = !!filter?.usesBody;
  return (f) => {
    if (hidden.size && hidden.has(f.id)) return false;
    if (markedOnly && !f.marked) return false;
    return filter ? filter(subjectOf(f, model, bodies)) : true;
  };
}

/** The shown flows, from scratch. */
export function computeView(model: FlowModel, spec: ViewSpec): FlowRecord[] {
  const keep = matcher(spec, model);
  const out: FlowRecord[] = [];
  for (const f of model.rows) if (keep(f)) out.push(f);
  if (spec.order !== 'time') out.sort(comparator(spec));
  else if (spec.reverse) out.reverse();
  return out;
}

/**
 * The shown flows after some rows changed (added or replaced): each changed flow
 * leaves its old place and is inserted where it now belongs, if it still matches.
 * Cheap for a few changed rows in a big view (live updates, background loading).
 */
export function updateView(view: readonly FlowRecord[], changed: readonly FlowRecord[], model: FlowModel, spec: ViewSpec): FlowRecord[] {
  if (!changed.length) return view as FlowRecord[];
  const keep = matcher(spec, model);
  const cmp = comparator(spec);
  const ids = new Set(changed.map((f) => f.id));
  // Many changes (a loaded batch): merge a sorted run into the view.
  const kept = view.filter((f) => !ids.has(f.id));
  const add = changed.filter(keep).sort(cmp);
  if (!add.length) return kept.length === view.length ? (view as FlowRecord[]) : kept;
  if (!kept.length) return add;
  if (cmp(kept[kept.length - 1]!, add[0]!) < 0) {
    for (const f of add) kept.push(f);
    return kept;
  }
  const out = new Array<FlowRecord>(kept.length + add.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < kept.length && j < add.length) out[k++] = cmp(kept[i]!, add[j]!) <= 0 ? kept[i++]! : add[j++]!;
  while (i < kept.length) out[k++] = kept[i++]!;
  while (j < add.length) out[k++] = add[j++]!;
  return out;
}
