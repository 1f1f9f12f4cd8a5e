/**
 * Text for humans: the one place that makes untrusted strings safe to print.
 *
 * Anything a registry, CDN, client or recording file sent (header values, paths, manifest
 * annotations, platform strings, error bodies, decoded tokens) can carry terminal control
 * sequences: ESC/CSI/OSC (window titles, OSC 52 clipboard writes), C1 controls, or bidi
 * overrides that make a line read differently than it is. Every human-readable output
 * (show, flows, logs, the TUI, curl export comments) passes its untrusted parts through
 * `safeText`; JSON output stays exact (JSON.stringify already escapes controls).
 *
 * Escapes are visible and unambiguous: `\x1b`, `\x9b`, `\u202e`.
 */

// C0 controls (incl. ESC, BEL, BS, CR), DEL, C1 controls, and the Unicode bidi controls and
// other invisible format characters that reorder or hide text.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_WITH_LINES = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

function escapeChar(c: string): string {
  const n = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

export interface SafeTextOptions {
  /** Keep `\n` and `\t` as they are (multi-line bodies shown in a pager or detail view). Default false: one line. */
  multiline?: boolean;
}

/** `s` with every control, C1 and bidi/invisible format character replaced by a visible escape. */
export function safeText(s: string, opts: SafeTextOptions = {}): string {
  if (typeof s !== 'string') s = String(s); // recorded data of the wrong type (a crafted recording) still prints
  const re = opts.multiline ? UNSAFE : UNSAFE_WITH_LINES;
  re.lastIndex = 0;
  if (!re.test(s)) return s;
  re.lastIndex = 0;
  return s.replace(re, escapeChar);
}

/** True when `s` holds nothing `safeText` would change. */
export function isSafeText(s: string, opts: SafeTextOptions = {}): boolean {
  const re = opts.multiline ? UNSAFE : UNSAFE_WITH_LINES;
  re.lastIndex = 0;
  return !re.test(s);
}
