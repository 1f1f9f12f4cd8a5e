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

/**
 * Redact a small body as it travels: decode its Content-Encoding, redact JSON/form
 * secrets, encode it again so the stored bytes still match the headers. Used by the
 * recorder and by HAR import alike.
 */
export function redactEncodedBody(
  body: Buffer,
  contentType: string | undefined,
  contentEncoding: string | undefined,
  r: Redactor,
  side: 'request' | 'response',
): Redacted<Buffer> & { changed: boolean } {
  const codec = codecFor(contentEncoding);
  let plain = body;
  if (codec) {
    try {
      plain = codec.decode(body, MAX_DECODED);
    } catch {
      return { value: body, changed: false, redactions: [], tokens: [] }; // undecodable: nothing we can inspect
    }
  }
  const res = redactBody(plain, contentType, r, side);
  if (!res.changed) return { ...res, value: body };
  return { ...res, value: codec ? codec.encode(res.value) : res.value };
}
