/**
 * Deterministic building blocks for image layers: a seeded byte stream, a minimal ustar writer with fixed
 * headers, and a gzip writer that emits only *stored* deflate blocks of a fixed size.
 *
 * Why stored gzip: deflate output depends on the zlib build (Node bundles Chromium's zlib, distributions
 * ship others), so compressed digests could change with the Node version. Stored blocks depend only on the
 * input bytes, so the same digests come out on every machine and Node version, and it is fast. The layers
 * are random data anyway, which no compressor can shrink.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

const CHUNK = 1 << 20;

/**
 * `length` pseudo-random bytes derived from `seed`: the AES-256-CTR keystream with key = sha256(seed) and a
 * zero IV. Standard, seekable in principle, and about 2 GB/s.
 */
export function* seededBytes(seed: string, length: number, chunk = CHUNK): Generator<Buffer> {
  const key = createHash('sha256').update(`regtape-lab-prng\0${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunk);
  let left = length;
  while (left > 0) {
    const n = Math.min(chunk, left);
    yield cipher.update(n === chunk ? zeros : zeros.subarray(0, n));
    left -= n;
  }
}

/** A tar entry: a directory, or a regular file whose content is produced on demand. */
export type TarEntry =
  | { type: 'dir'; name: string }
  | { type: 'file'; name: string; size: number; content: () => Iterable<Buffer> };

/** Fixed mtime for every tar entry (2020-01-01T00:00:00Z). */
export const TAR_MTIME = 1577836800;

function octal(value: number, width: number): string {
  // width includes the trailing NUL
  const s = value.toString(8);
  if (s.length > width - 1) throw new Error(`tar field overflow: ${value}`);
  return s.padStart(width - 1, '0') + '\0';
}

/** A 512-byte ustar header with uid/gid 0, owner root, and the fixed mtime. */
export function tarHeader(name: string, size: number, type: '0' | '5', mode: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(TAR_MTIME, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum placeholder
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(octal(0, 8), 329, 'ascii');
  h.write(octal(0, 8), 337, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** Streams a tar archive of `entries` (headers, contents, padding, two zero end blocks). */
export function* tarStream(entries: readonly TarEntry[]): Generator<Buffer> {
  for (const e of entries) {
    if (e.type === 'dir') {
      yield tarHeader(e.name.endsWith('/') ? e.name : `${e.name}/`, 0, '5', 0o755);
      continue;
    }
    yield tarHeader(e.name, e.size, '0', 0o644);
    let written = 0;
    for (const b of e.content()) {
      written += b.length;
      yield b;
    }
    if (written !== e.size) throw new Error(`tar entry ${e.name}: wrote ${written} bytes, declared ${e.size}`);
    const pad = (512 - (e.size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

const STORED_MAX = 65535;
/** gzip header: magic, deflate, no flags, mtime 0, xfl 0, OS 3 (Unix). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

function storedBlock(data: Buffer, final: boolean): Buffer {
  const h = Buffer.alloc(5);
  h[0] = final ? 1 : 0;
  h.writeUInt16LE(data.length, 1);
  h.writeUInt16LE(~data.length & 0xffff, 3);
  return Buffer.concat([h, data]);
}

/**
 * A gzip encoder that emits stored (uncompressed) deflate blocks of exactly 65535 bytes (the last one
 * shorter), so its output depends only on the input bytes, not on how they were chunked.
 */
export class StoredGzip {
  private pending: Buffer = Buffer.alloc(0);
  private crc = 0;
  private isize = 0;
  private started = false;

  /** Feeds input; returns the output bytes ready so far. */
  write(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      out.push(GZIP_HEADER);
    }
    this.crc = crc32(chunk, this.crc);
    this.isize = (this.isize + chunk.length) >>> 0;
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    // keep at least one byte pending so the final block is never empty unless the input is
    while (buf.length - off > STORED_MAX) {
      out.push(storedBlock(buf.subarray(off, off + STORED_MAX), false));
      off += STORED_MAX;
    }
    this.pending = Buffer.from(buf.subarray(off));
    return out;
  }

  /** Ends the stream; returns the final block and the gzip trailer. */
  end(): Buffer[] {
    const out: Buffer[] = this.started ? [] : [GZIP_HEADER];
    this.started = true;
    out.push(storedBlock(this.pending, true));
    this.pending = Buffer.alloc(0);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.isize, 4);
    out.push(trailer);
    return out;
  }
}
