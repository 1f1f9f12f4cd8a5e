import type { FlowRecord, Timings } from '../flow/index.js';
import { formatBytes, formatMs, shortDigest } from '../inspect/index.js';
import { problemLine, type Operation, type Problem } from '../registry/index.js';
import { line, seg, type Color, type Line, type Seg } from './lines.js';
import type { FlowModel } from './model.js';

/**
 * The waterfall of an operation (T, then tab): every exchange of a pull or push on
 * one time axis, one row per transfer. A blob fetched through a redirect shows the
 * registry's 307 leg and the CDN leg on the same row. Each phase has its own glyph
 * as well as its colour, so the bars read the same with NO_COLOR:
 *
 *   ░ redirect leg   ▒ connect   ▓ TLS   ─ wait (request sent → first byte)   █ transfer
 */

interface Phase {
  glyph: string;
  color: Color;
  from: number;
  to: number;
}

const GLYPH = { redirect: ['░', 'gray'], connect: ['▒', 'cyan'], tls: ['▓', 'magenta'], wait: ['─', 'yellow'], transfer: ['█', 'green'] } as const;

function phase(kind: keyof typeof GLYPH, from: number | undefined, to: number | undefined): Phase[] {
  if (from === undefined || to === undefined || to < from) return [];
  return [{ glyph: GLYPH[kind][0], color: GLYPH[kind][1], from, to }];
}

/** The phases of one exchange: connect, TLS, wait, transfer (a reused connection has no connect or TLS). */
export function exchangePhases(t: Timings): Phase[] {
  const connected = t.connect ?? t.start;
  const secured = t.tls ?? connected;
  const end = t.end ?? t.firstByte ?? secured;
  return [...phase('connect', t.start, t.connect), ...phase('tls', connected, t.tls), ...phase('wait', secured, t.firstByte ?? end), ...phase('transfer', t.firstByte, end)];
}

interface Row {
  label: Seg[];
  phases: Phase[];
  start: number;
  end: number;
  flowId: number;
  note: string;
}

function rowFor(f: FlowRecord, model: FlowModel, joined: FlowRecord | undefined): Row {
  const r = f.registry;
  const what = r?.digest ? shortDigest(r.digest) : (r?.reference ?? f.request.target);
  const kind = r?.role ?? 'other';
  const phases = joined ? [...phase('redirect', joined.timings.start, joined.timings.end ?? f.timings.start), ...exchangePhases(f.timings)] : exchangePhases(f.timings);
  const start = joined ? joined.timings.start : f.timings.start;
  const end = f.timings.end ?? f.timings.firstByte ?? start;
  const bytes = f.responseBytes || f.requestBytes;
  const via = joined ? `${joined.request.host} → ${f.request.host}` : f.request.host;
  return {
    label: [seg(kind.padEnd(13).slice(0, 13), { color: 'magenta' }), seg(` ${what}`.padEnd(22).slice(0, 22), { color: 'yellow' })],
    phases,
    start,
    end,
    flowId: f.id,
    note: `${formatMs(end - start).padStart(8)} ${formatBytes(bytes).padStart(8)}  ${via}${f.state !== 'complete' ? `  ${f.state}` : ''}`,
  };
}

/** Rows of one operation: redirects are folded into the CDN download they led to. */
function rowsOf(op: Operation, model: FlowModel): Row[] {
  const flows = op.flowIds.map((id) => model.full(id)).filter((f): f is FlowRecord => !!f);
  const ids = new Set(flows.map((f) => f.id));
  const redirectOf = new Map<number, FlowRecord>();
  for (const f of model.rows) {
    const from = f.registry?.redirectFrom;
    if (from !== null && from !== undefined && ids.has(from)) redirectOf.set(f.id, model.full(from) ?? model.get(from)!);
  }
  const joinedAway = new Set([...redirectOf.values()].map((f) => f.id));
  const out: Row[] = [];
  for (const f of flows) if (!joinedAway.has(f.id)) out.push(rowFor(f, model, redirectOf.get(f.id)));
  // CDN downloads are usually not attributed to the operation by id: add those its redirects led to.
  for (const [cdnId, redirect] of redirectOf) {
    if (ids.has(cdnId)) continue;
    const cdn = model.full(cdnId);
    if (cdn) out.push(rowFor(cdn, model, redirect));
  }
  return out.sort((a, b) => a.start - b.start);
}

function bar(row: Row, t0: number, span: number, width: number): Seg[] {
  const cells: Array<{ glyph: string; color?: Color }> = Array.from({ length: width }, () => ({ glyph: ' ' }));
  const at = (t: number) => Math.min(width - 1, Math.max(0, Math.floor(((t - t0) / span) * width)));
  for (const p of row.phases) {
    const a = at(p.from);
    const b = Math.max(a, at(p.to));
    for (let i = a; i <= b; i++) cells[i] = { glyph: p.glyph, color: p.color };
  }
  const segs: Seg[] = [];
  for (const c of cells) {
    const last = segs[segs.length - 1];
    if (last && last.color === c.color) last.text += c.glyph;
    else segs.push(seg(c.glyph, c.color ? { color: c.color } : {}));
  }
  return segs;
}

export const LEGEND = '░ redirect  ▒ connect  ▓ TLS  ─ wait  █ transfer';

/** The waterfall of every operation with a flow in `shown` (all when null), `width` columns wide. */
export function waterfallView(ops: readonly Operation[], model: FlowModel, shown: ReadonlySet<number> | null, width: number): Line[] {
  const list = shown ? ops.filter((op) => op.flowIds.some((id) => shown.has(id))) : ops;
  if (!list.length) return [line(seg('no pulls or pushes to draw', { dim: true }))];
  const out: Line[] = [line(seg(LEGEND, { dim: true })), line('')];
  const barWidth = Math.max(10, width - 36 - 30);
  for (const op of list) {
    const rows = rowsOf(op, model);
    if (!rows.length) continue;
    const t0 = Math.min(...rows.map((r) => r.start));
    const t1 = Math.max(...rows.map((r) => r.end));
    const span = Math.max(1, t1 - t0);
    const head = line(seg(`${op.kind} ${op.registry}/${op.repo}${op.reference ? `:${op.reference}` : ''}`, { bold: true }), seg(`  ${rows.length} transfers over ${formatMs(t1 - t0)}; one column = ${formatMs(span / barWidth)}`, { dim: true }));
    head.link = { flowId: rows[0]!.flowId };
    out.push(head);
    for (const r of rows) {
      const l: Line = { segs: [seg('  '), ...r.label, seg(' ▕'), ...bar(r, t0, span, barWidth), seg('▏'), seg(r.note, { dim: true })], link: { flowId: r.flowId } };
      out.push(l);
    }
    for (const p of op.problems) out.push(problemRow(p, '  '));
    out.push(line(''));
  }
  return out;
}

/** A problem from the operation's diagnosis (the same as `regtape show`); enter opens its first flow. */
export function problemRow(p: Problem, indent: string): Line {
  const l = line(indent, seg('problem: ', { color: 'red', bold: true }), problemLine(p));
  if (p.flowIds[0] !== undefined) l.link = { flowId: p.flowIds[0] };
  return l;
}
