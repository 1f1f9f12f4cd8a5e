import zlib from 'node:zlib';
import type { Redacted, Redactor } from './redact.js';
import { redactBody } from './redact.js';

/** A Content-Encoding we can decode and encode in memory (small bodies only). */
export interface Codec {
  name: string;
  decode(b: Buffer, maxOutputLength?: number): Buffer;
  encode(b: Buffer): Buffer;
}

/** The codec for a Content-Encoding header value, or null for identity / unknown / stacked encodings. */
export function codecFor(enc: string | undefined | null): Codec | null {
  switch (enc?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return { name: 'gzip', decode: (b, max) => zlib.gunzipSync(b, { maxOutputLength: max }), encode: (b) => zlib.gzipSync(b) };
    case 'deflate':
      return { name: 'deflate', decode: (b, max) => zlib.inflateSync(b, { maxOutputLength: max }), encode: (b) => zlib.deflateSync(b) };
    case 'br':
      return { name: 'br', decode: (b, max) => zlib.brotliDecompressSync(b, { maxOutputLength: max }), encode: (b) => zlib.brotliCompressSync(b) };
    default:
      return null;
  }
}

/** Decoded bodies larger than this are not inspected (a zip bomb stays a zip bomb). */
const MAX_DECODED = 16 << 20;

/** The codecs of a Content-Encoding list (`gzip, gzip`), in the order they were applied; null if any is unknown. */
export function codecsFor(enc: string | undefined | null): Codec[] | null {
  if (!enc) return [];
  const out: Codec[] = [];
  for (const name of enc.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (name.toLowerCase() === 'identity') continue;
    const c = codecFor(name);
    if (!c) return null;
    out.push(c);
  }
  return out;
}

const GZIP = codecFor('gzip')!;

/** Undo every layer (the header's, then gzip inside gzip the header did not mention); null if undecodable. */
function decodeAll(body: Buffer, codecs: Codec[]): { plain: Buffer; encodeOrder: Codec[] } | null {
  let plain = body;
  const nested: Codec[] = [];
  try {
    for (const c of [...codecs].reverse()) plain = c.decode(plain, MAX_DECODED);
    // A body compressed twice under one "gzip" (seen from misconfigured CDNs and registries).
    for (let i = 0; i < 3 && plain.length > 2 && plain[0] === 0x1f && plain[1] === 0x8b; i++) {
      plain = GZIP.decode(plain, MAX_DECODED);
      nested.push(GZIP);
    }
  } catch {
    return null;
  }
  // Encoding re-applies the innermost layer first: the nested ones, then the header's in order.
  return { plain, encodeOrder: [...nested.reverse(), ...codecs] };
}

/**
 * Redact a small body as it travels: decode its Content-Encoding (stacked ones too, and
 * gzip nested inside gzip), redact JSON/form/text secrets, encode it again layer by layer
 * so the stored bytes still match the headers. Used by the recorder and by HAR import alike.
 */
export function redactEncodedBody(
  body: Buffer,
  contentType: string | undefined,
  contentEncoding: string | undefined,
  r: Redactor,
  side: 'request' | 'response',
): Redacted<Buffer> & { changed: boolean } {
  const codecs = codecsFor(contentEncoding);
  const unchanged = { value: body, changed: false, redactions: [], tokens: [] };
  if (!codecs) return unchanged; // an encoding we cannot undo: nothing we can inspect
  const decoded = decodeAll(body, codecs);
  if (!decoded) return unchanged;
  const res = redactBody(decoded.plain, contentType, r, side);
  if (!res.changed) return { ...res, value: body };
  let value = res.value;
  for (const c of decoded.encodeOrder) value = c.encode(value);
  return { ...res, value };
}
