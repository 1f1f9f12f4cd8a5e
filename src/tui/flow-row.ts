import type { FlowRecord } from '../flow/index.js';
import { formatBytes, formatMs, shortDigest } from '../inspect/index.js';
import { cell, seg, type Color, type Line, type Seg } from './lines.js';
import type { InFlight } from './model.js';
import { sizeOf } from './view.js';

/** Columns of the flow list and their widths for a terminal width. */
export interface Columns {
  time: number;
  method: number;
  host: number;
  path: number;
  status: number;
  role: number;
  ref: number;
  size: number;
  dur: number;
}

/** Widths for `cols` columns: the path takes what is left; narrow terminals drop the clock, then repo:ref, then the role. */
export function columnsFor(cols: number): Columns {
  const c: Columns = { time: 12, method: 6, host: 22, path: 0, status: 3, role: 13, ref: 28, size: 8, dur: 7 };
  // The mark column, then columns separated by one space (the path is one of them).
  const shown = () => [c.time, c.method, c.host, c.status, c.role, c.ref, c.size, c.dur].filter((w) => w > 0);
  const fixed = () => 1 + shown().reduce((a, b) => a + b, 0) + shown().length;
  if (cols - fixed() < 30) c.time = 0;
  if (cols - fixed() < 24) c.ref = 0;
  if (cols - fixed() < 24) c.host = 16;
  if (cols - fixed() < 20) c.role = 0;
  c.path = Math.max(8, cols - fixed());
  return c;
}

export function statusColor(f: FlowRecord): Color | undefined {
  if (f.state === 'error' || f.state === 'aborted') return 'red';
  const st = f.response?.status;
  if (st === undefined) return undefined;
  if (st >= 500 || st === 429) return 'red';
  if (st >= 400) return 'yellow';
  if (st >= 300) return 'cyan';
  return 'green';
}

const ROLE_COLORS: Partial<Record<string, Color>> = { token: 'yellow', ping: 'gray', manifest: 'cyan', 'cdn-blob': 'blue', blob: 'blue' };

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Path with long digests cut (sha256:20ded9c7f836…), cut in the middle when too long so the end stays visible. */
export function shortTarget(target: string, width: number): string {
  const p = target.replace(/([0-9a-f]{12})[0-9a-f]{52}/g, '$1…');
  if (p.length <= width || width < 10) return p;
  const head = Math.ceil((width - 1) * 0.6);
  return `${p.slice(0, head)}…${p.slice(p.length - (width - 1 - head))}`;
}

/** repo:tag or repo@sha256:abc… */
export function repoRef(f: FlowRecord): string {
  const r = f.registry;
  if (!r?.repo) return '';
  const ref = r.reference ? (r.reference.includes(':') ? `@${shortDigest(r.reference)}` : `:${r.reference}`) : '';
  return `${r.repo}${ref}`;
}

export function statusText(f: FlowRecord): string {
  if (f.response) return String(f.response.status);
  if (f.state === 'open') return '…';
  return 'ERR';
}

/** One flow as a list row. `live` gives in-flight byte counts and rate. */
export function flowRow(f: FlowRecord, c: Columns, live?: InFlight): Line {
  const segs: Seg[] = [];
  const add = (text: string, style: Omit<Seg, 'text'> = {}) => {
    segs.push(seg(text, style), seg(' '));
  };
  segs.push(seg(f.marked ? '●' : ' ', { color: 'magenta' }));
  if (c.time) add(cell(clock(f.timings.start), c.time), { dim: true });
  add(cell(f.request.method, c.method), { bold: true });
  add(cell(f.request.host, c.host));
  add(cell(shortTarget(f.request.target, c.path), c.path));
  const st = live?.status !== undefined && !f.response ? String(live.status) : statusText(f);
  add(cell(st, c.status), { color: statusColor(f) ?? (live ? 'cyan' : undefined), bold: true });
  const role = f.registry && f.registry.role !== 'other' ? f.registry.role : '';
  const bad = f.registry?.digestCheck === 'mismatch';
  if (c.role) {
    if (live?.responseLength) {
      // In flight with a known length: a progress bar where the role goes (not classified yet).
      const pct = Math.min(100, Math.floor((live.responseBytes / live.responseLength) * 100));
      const w = Math.max(1, c.role - 5);
      const done = Math.round((pct / 100) * w);
      add(cell(`${'█'.repeat(done)}${'░'.repeat(w - done)} ${pct}%`, c.role), { color: 'cyan' });
    } else add(cell(bad ? 'BAD DIGEST' : role, c.role), bad ? { color: 'red', bold: true } : { color: ROLE_COLORS[role] ?? 'magenta' });
  }
  if (c.ref) add(cell(repoRef(f), c.ref), { dim: true });
  if (live) {
    add(cell(formatBytes(live.responseBytes || live.requestBytes), c.size, 'right'), { color: 'cyan' });
    segs.push(seg(cell(`${formatBytes(live.rate).replace(' ', '')}/s`, c.dur, 'right'), { color: 'cyan' }));
  } else {
    add(cell(formatBytes(sizeOf(f)), c.size, 'right'));
    const failed = f.state === 'error' || f.state === 'aborted';
    const ms = failed ? f.state : f.timings.end !== undefined ? formatMs(f.timings.end - f.timings.start) : f.state === 'open' ? 'open' : '';
    segs.push(seg(cell(ms, c.dur, 'right'), failed ? { color: 'red', bold: true } : { dim: f.state === 'open' }));
  }
  return { segs, link: { flowId: f.id } };
}

export function columnTitles(c: Columns): Line {
  const parts: string[] = [];
  if (c.time) parts.push(cell('time', c.time));
  parts.push(cell('method', c.method), cell('host', c.host), cell('path', c.path), cell('st', c.status));
  if (c.role) parts.push(cell('role', c.role));
  if (c.ref) parts.push(cell('repo:ref', c.ref));
  parts.push(cell('size', c.size, 'right'), cell('dur', c.dur, 'right'));
  return { segs: [seg(` ${parts.join(' ')}`, { dim: true, bold: true })] };
}

/** The row's text as search sees it (what the line shows, without colour). */
export function rowText(f: FlowRecord): string {
  const role = f.registry && f.registry.role !== 'other' ? f.registry.role : '';
  const state = f.state === 'complete' ? '' : ` ${f.state}`;
  return `${f.id} ${f.request.method} ${f.request.host} ${f.request.target} ${statusText(f)} ${role} ${repoRef(f)} ${formatBytes(sizeOf(f))}${state}${f.registry?.digestCheck === 'mismatch' ? ' BAD DIGEST' : ''}`;
}
