import { line, seg, type Color, type Line, type Seg } from '../lines.js';

/** One JSON token class and its colour. */
const COLORS: Record<'key' | 'string' | 'number' | 'literal' | 'punct', Color | undefined> = {
  key: 'cyan',
  string: 'green',
  number: 'yellow',
  literal: 'magenta',
  punct: undefined,
};

// Strings (with escapes), numbers, literals, punctuation, whitespace; anything else is one char.
const TOKEN = /("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false|null)|([{}[\],:])|(\s+)|(.)/gy;

/** Colour one line of (pretty-printed) JSON. Pure; never throws. */
export function tokenizeJsonLine(text: string): Seg[] {
  const out: Seg[] = [];
  TOKEN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (TOKEN.lastIndex < text.length && (m = TOKEN.exec(text))) {
    const [all, str, colon, num, lit, punct] = m;
    if (str !== undefined) {
      out.push(seg(str, { color: colon ? COLORS.key : COLORS.string }));
      if (colon) out.push(seg(colon));
    } else if (num !== undefined) out.push(seg(num, { color: COLORS.number }));
    else if (lit !== undefined) out.push(seg(lit, { color: COLORS.literal }));
    else if (punct !== undefined) out.push(seg(punct));
    else out.push(seg(all));
  }
  return merge(out);
}

/** Join neighbouring segments with the same style (fewer nodes to draw). */
function merge(segs: Seg[]): Seg[] {
  const out: Seg[] = [];
  for (const s of segs) {
    const last = out[out.length - 1];
    if (last && last.color === s.color) last.text += s.text;
    else out.push({ ...s });
  }
  return out;
}

/** Pretty JSON with colour, or null when the text is not JSON. At most `maxLines` lines. */
export function prettyJson(text: string, maxLines = 20_000): Line[] | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  const lines = JSON.stringify(doc, null, 2).split('\n');
  const out = lines.slice(0, maxLines).map((l) => ({ segs: tokenizeJsonLine(l) }));
  if (lines.length > maxLines) out.push(line(seg(`… ${lines.length - maxLines} more lines`, { dim: true })));
  return out;
}
