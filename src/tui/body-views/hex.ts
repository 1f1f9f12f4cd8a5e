import { line, seg, type Line } from '../lines.js';

/** Classic hex dump: offset, 16 bytes, printable ASCII. At most `maxBytes` bytes. */
export function hexDump(buf: Buffer, maxBytes = 64 * 1024): Line[] {
  const out: Line[] = [];
  const n = Math.min(buf.length, maxBytes);
  for (let off = 0; off < n; off += 16) {
    const chunk = buf.subarray(off, Math.min(off + 16, n));
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      hex += i < chunk.length ? chunk[i]!.toString(16).padStart(2, '0') : '  ';
      hex += i === 7 ? '  ' : ' ';
      if (i < chunk.length) ascii += chunk[i]! >= 0x20 && chunk[i]! < 0x7f ? String.fromCharCode(chunk[i]!) : '.';
    }
    out.push(line(seg(off.toString(16).padStart(8, '0'), { dim: true }), '  ', hex, ' ', seg(ascii, { color: 'cyan' })));
  }
  if (buf.length > n) out.push(line(seg(`… ${buf.length - n} more bytes not shown`, { dim: true })));
  return out;
}

/** True when the bytes look binary (NUL early on, or not valid UTF-8). */
export function isBinary(buf: Buffer): boolean {
  if (buf.subarray(0, 1024).includes(0)) return true;
  const sample = buf.subarray(0, 4096);
  const s = sample.toString('utf8');
  // U+FFFD means invalid UTF-8 (a multi-byte char cut at the sample's end is fine).
  const bad = s.indexOf('\ufffd');
  return bad >= 0 && bad < s.length - 3;
}

/** Text lines (tabs expanded, control characters shown as dots), at most `maxLines`. */
export function textLines(text: string, maxLines = 20_000): Line[] {
  const lines = text.split(/\r?\n/);
  const out = lines.slice(0, maxLines).map((l) => line(l.replace(/\t/g, '    ').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '.')));
  if (lines.length > maxLines) out.push(line(seg(`… ${lines.length - maxLines} more lines`, { dim: true })));
  return out;
}
