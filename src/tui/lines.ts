/**
 * What the TUI draws: lines made of styled segments. Screens are computed as `Line[]`
 * by pure functions (testable without ink); `app.tsx` only maps them to `<Text>`.
 */

export type Color = 'green' | 'cyan' | 'yellow' | 'red' | 'magenta' | 'blue' | 'gray' | 'white';

export interface Seg {
  text: string;
  color?: Color;
  bold?: boolean;
  dim?: boolean;
  inverse?: boolean;
}

/** Where enter on a line goes: a flow's detail. */
export interface Link {
  flowId: number;
}

export interface Line {
  segs: Seg[];
  /** Enter on this line opens this flow. */
  link?: Link;
}

export const seg = (text: string, style: Omit<Seg, 'text'> = {}): Seg => ({ text, ...style });
export const line = (...segs: Array<Seg | string>): Line => ({ segs: segs.map((s) => (typeof s === 'string' ? { text: s } : s)) });
export const EMPTY: Line = { segs: [] };

export function plain(l: Line): string {
  let s = '';
  for (const x of l.segs) s += x.text;
  return s;
}

/** Cut a line to `width` columns (an ellipsis marks the cut); with `pad`, fill it to `width`. */
export function fit(l: Line, width: number, pad = false): Line {
  const out: Seg[] = [];
  let left = Math.max(0, width);
  for (const s of l.segs) {
    if (left <= 0) break;
    if (s.text.length <= left) {
      out.push(s);
      left -= s.text.length;
    } else {
      out.push({ ...s, text: left > 1 ? `${s.text.slice(0, left - 1)}…` : '…' });
      left = 0;
    }
  }
  // Cut everything past the last cell that fits; a trailing ellipsis already marks it.
  const total = l.segs.reduce((n, s) => n + s.text.length, 0);
  if (total > width && out.length && !out[out.length - 1]!.text.endsWith('…')) {
    const last = out[out.length - 1]!;
    out[out.length - 1] = { ...last, text: `${last.text.slice(0, -1)}…` };
  }
  if (pad && left > 0) out.push({ text: ' '.repeat(left) });
  return { segs: out, link: l.link };
}

/** Every segment of a line with an extra style (the focus bar). */
export function restyle(l: Line, style: Omit<Seg, 'text'>): Line {
  return { segs: l.segs.map((s) => ({ ...s, ...style })), link: l.link };
}

/**
 * Wrap a line to `width` columns; continuation lines start with `indent` spaces and
 * keep the link. Breaks at the width (registry text is mostly digests and URLs, which
 * have no good break points anyway).
 */
export function wrap(l: Line, width: number, indent = 2): Line[] {
  const total = l.segs.reduce((n, s) => n + s.text.length, 0);
  if (width <= indent + 4 || total <= width) return [l];
  const out: Line[] = [];
  let cur: Seg[] = [];
  let room = width;
  for (const s of l.segs) {
    let text = s.text;
    while (text.length > room) {
      if (room > 0) cur.push({ ...s, text: text.slice(0, room) });
      text = text.slice(Math.max(room, 0));
      out.push({ segs: cur, link: l.link });
      cur = [{ text: ' '.repeat(indent) }];
      room = width - indent;
    }
    if (text) {
      cur.push({ ...s, text });
      room -= text.length;
    }
  }
  if (cur.length) out.push({ segs: cur, link: l.link });
  return out;
}

/** Right-align or left-align in a fixed-width cell, cutting with an ellipsis. */
export function cell(s: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return '';
  if (s.length > width) return width > 1 ? `${s.slice(0, width - 1)}…` : '…';
  return align === 'left' ? s.padEnd(width) : s.padStart(width);
}
