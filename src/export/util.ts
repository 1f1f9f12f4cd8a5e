
/**
 * Small helpers shared by the exporters and the importer: content codecs, size
 * parsing, text sniffing, shell-safe names.
 */

export { codecFor, type Codec } from '../redact/index.js';
import { RegtapeError } from '../errors/index.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Parse a byte count: `1048576`, `500k`, `1m`, `1MiB`, `2MB` (k/m/g are binary, kB/MB/GB decimal). */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(s);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new RegtapeError('bad-argument', `not a size: ${JSON.stringify(s)} (use bytes, or a suffix: 500k, 1m, 2MB, 1GiB)`);
  return Math.floor(Number(m[1]) * unit);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Is this body text that survives a round trip through a JSON string unchanged?
 * Valid UTF-8 without NUL and with few other control characters (like mitmproxy's
 * "mostly binary" test, but strict: a body we write as text must come back byte for byte).
 */
export function isText(buf: Buffer): boolean {
  if (buf.includes(0)) return false;
  try {
    utf8.decode(buf);
  } catch {
    return false;
  }
  let control = 0;
  const n = Math.min(buf.length, 4096);
  for (let i = 0; i < n; i++) {
    const c = buf[i]!;
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) control++;
  }
  return control <= n * 0.05;
}

/** `sha256:<hex>` → `<hex>`, or null when it is not a sha256 digest. */
export function sha256Hex(digest: string | null | undefined): string | null {
  const m = digest ? /^sha256:([0-9a-f]{64})$/.exec(digest) : null;
  return m ? m[1]! : null;
}
