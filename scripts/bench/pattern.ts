/**
 * The big-body benchmark's payload: deterministic bytes generated on the fly, so a multi-GB body needs no
 * file and its sha256 is known in advance. Layout: 1 MiB blocks, each an 8-byte big-endian block counter
 * followed by the same pseudo-random (xorshift32) filler; a last partial block is cut short. The counter
 * makes a dropped, repeated or reordered block change the digest.
 */
import { createHash } from 'node:crypto';

export const BLOCK_SIZE = 1 << 20;
const HEADER = 8;

let filler: Buffer | undefined;

/** The shared filler (BLOCK_SIZE - 8 bytes); never mutated, so it can be written many times. */
function fillerBytes(): Buffer {
  if (filler) return filler;
  const b = Buffer.allocUnsafe(BLOCK_SIZE - HEADER);
  let x = 0x9e3779b9;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  filler = b;
  return b;
}

/** The body of `size` bytes as a sequence of buffers (fresh headers, shared filler: no big copies). */
export function* patternPieces(size: number): Generator<Buffer> {
  const fill = fillerBytes();
  let left = size;
  for (let block = 0; left > 0; block++) {
    const hdr = Buffer.alloc(HEADER);
    hdr.writeBigUInt64BE(BigInt(block));
    const h = hdr.subarray(0, Math.min(HEADER, left));
    yield h;
    left -= h.length;
    if (left <= 0) break;
    const f = fill.subarray(0, Math.min(fill.length, left));
    yield f;
    left -= f.length;
  }
}

/** sha256 (hex) of the body of `size` bytes. */
export function patternSha256(size: number): string {
  const h = createHash('sha256');
  for (const piece of patternPieces(size)) h.update(piece);
  return h.digest('hex');
}
