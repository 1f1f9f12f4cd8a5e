import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { RegtapeError } from '../errors/index.js';

/**
 * Reads a HAR file's `log.entries` one entry at a time, with memory bounded whatever
 * the file holds: a HAR of a pull can carry a 500 MB layer as one 700 MB base64
 * string (more than V8 can hold as a string at all).
 *
 * A byte-level scanner follows strings and nesting; each element of `log.entries` is
 * cut out and parsed on its own. A string inside an entry that grows past `spillOver`
 * bytes is written to a file instead (its raw, still-escaped JSON text) and replaced
 * by a placeholder; `openSpill()` streams it back decoded. Everything outside the
 * entries is collected as a skeleton (each entry replaced by `0`) and parsed at the
 * end, so the whole document is checked as JSON though it was never whole in memory.
 * gzip and zlib (mitmproxy's `.zhar`) compressed files are read too.
 */

/** A long string of an entry, on disk as its JSON text (escapes not yet decoded). */
export interface SpilledString {
  path: string;
  /** Bytes of JSON string text. */
  bytes: number;
}

export interface HarEntryRead {
  /** 0-based position in log.entries. */
  index: number;
  /** The parsed entry, or null when it was too large to parse (see `tooLarge`). */
  entry: unknown;
  /** Bytes of JSON this entry took. */
  bytes: number;
  tooLarge?: boolean;
  /** Placeholder string value → the spilled string it stands for. Valid until the next entry is read. */
  spills: Map<string, SpilledString>;
}

export interface HarHeader {
  version?: string;
  creator?: { name?: string; version?: string; comment?: string };
}

export interface HarReadOptions {
  /** Strings longer than this go to a file (default 4 MiB). */
  spillOver?: number;
  /** Where spilled strings are written (default: a temp dir under os.tmpdir()). */
  spillDir?: string;
}

/** Entries whose JSON, long strings aside, is bigger than this are reported, not parsed. */
export const MAX_ENTRY_JSON = 256 << 20;
/** The document outside the entries (pages, creator, …) may be at most this big. */
const MAX_SKELETON = 64 << 20;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Open a HAR file as a byte stream, transparently decompressing gzip / zlib. */
export async function openHarStream(file: string): Promise<Readable> {
  const fd = await fs.promises.open(file, 'r');
  const head = Buffer.alloc(2);
  await fd.read(head, 0, 2, 0);
  await fd.close();
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  if (head[0] === 0x1f && head[1] === 0x8b) return raw.pipe(zlib.createGunzip());
  // zlib header: CMF 0x78, and (CMF*256 + FLG) % 31 == 0.
  if (head[0] === 0x78 && (head[0] * 256 + head[1]!) % 31 === 0) return raw.pipe(zlib.createInflate());
  const p = new PassThrough({ highWaterMark: 1 << 20 });
  raw.on('error', (e) => p.destroy(e));
  return raw.pipe(p);
}

/**
 * Yield the entries of a HAR document, then return its header (version, creator).
 * Throws HarFormatError when the input is not JSON or not a HAR.
 */
export async function* readHarEntries(input: AsyncIterable<Buffer | string>, name = 'input', opts: HarReadOptions = {}): AsyncGenerator<HarEntryRead, HarHeader> {
  const spillOver = opts.spillOver ?? 4 << 20;
  const nonce = randomBytes(6).toString('hex');
  let spillDir: string | null = null;
  let ownSpillDir = false;
  /** Nesting: '{' or '['. */
  const stack: number[] = [];
  /** Key of the value being read, per object level (only levels 1 and 2 matter). */
  const keys: Array<string | null> = [];
  let expectKey = false;
  let inString = false;
  let escape = false;
  let keyBytes: number[] | null = null;
  let started = false;
  let done = false;
  let offset = 0;
  let sawEntries = false;
  // The entry being captured.
  let capturing = false;
  let cap: Buffer[] = [];
  let capBytes = 0;
  /** Where in the current chunk the not yet captured part of the entry starts. */
  let capFrom = 0;
  let tooLarge = false;
  let entryIndex = 0;
  let entryDepth = 0;
  /** Entry-relative offset of the content of the string now open in the entry. */
  let strStart = 0;
  let spill: { fd: number; path: string; bytes: number; placeholder: string } | null = null;
  let spillFrom = 0;
  let spills = new Map<string, SpilledString>();
  let spillCount = 0;
  // Skeleton.
  const skeleton: Buffer[] = [];
  let skeletonBytes = 0;

  const pushCap = (b: Buffer) => {
    capBytes += b.length;
    if (tooLarge) return;
    if (capBytes > MAX_ENTRY_JSON) {
      tooLarge = true;
      cap = [];
    } else cap.push(b);
  };
  const dropSpills = () => {
    for (const s of spills.values()) fs.rmSync(s.path, { force: true });
    spills = new Map();
  };
  const inEntries = () => stack.length === 3 && stack[2] === 0x5b && keys[0] === 'log' && keys[1] === 'entries';

  try {
    for await (const raw of input) {
      let chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (!started && offset === 0 && chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3); // BOM
      let skelFrom = capturing ? -1 : 0;
      if (capturing) {
        if (spill) spillFrom = 0;
        else capFrom = 0;
      }
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i]!;
        if (inString) {
          if (capturing && !spill && !tooLarge && capBytes + (i - capFrom) - strStart > spillOver) {
            // Move this long string out of memory: what is captured of it so far, then the rest as it comes.
            pushCap(chunk.subarray(capFrom, i));
            capFrom = i;
          }
          if (capturing && !spill && !tooLarge && capBytes + (i - capFrom) - strStart > spillOver) {
            const all = Buffer.concat(cap);
            if (!spillDir) {
              spillDir = opts.spillDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-har-'));
              ownSpillDir = !opts.spillDir;
              fs.mkdirSync(spillDir, { recursive: true });
            }
            const file = path.join(spillDir, `har-${nonce}-${++spillCount}`);
            const fd = fs.openSync(file, 'w', 0o600);
            fs.writeSync(fd, all.subarray(strStart));
            spill = { fd, path: file, bytes: all.length - strStart, placeholder: `\u0000regtape-spill-${nonce}-${spillCount}\u0000` };
            cap = [all.subarray(0, strStart)];
            capBytes = strStart;
            spillFrom = i;
          }
          if (escape) escape = false;
          else if (c === BACKSLASH) escape = true;
          else if (c === QUOTE) {
            inString = false;
            if (spill) {
              fs.writeSync(spill.fd, chunk.subarray(spillFrom, i));
              fs.closeSync(spill.fd);
              spill.bytes += i - spillFrom;
              spills.set(spill.placeholder, { path: spill.path, bytes: spill.bytes });
              pushCap(Buffer.from(JSON.stringify(spill.placeholder).slice(1, -1)));
              spill = null;
              capFrom = i;
            }
            if (keyBytes) {
              try {
                keys[stack.length - 1] = JSON.parse(`"${Buffer.from(keyBytes).toString('utf8')}"`) as string;
              } catch {
                throw new RegtapeError('bad-har', `${name} is not valid JSON (bad string at byte ${offset + i})`);
              }
              keyBytes = null;
            }
          } else if (keyBytes && keyBytes.length < 4096) keyBytes.push(c);
          continue;
        }
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (done) throw new RegtapeError('bad-har', `${name} is not valid JSON (unexpected data after the document at byte ${offset + i})`);
        if (!started) {
          if (c !== 0x7b) {
            throw new RegtapeError('bad-har', 
              c === 0x5b ? `${name} is a JSON array, not a HAR file (a HAR is an object {"log": {"entries": [...]}})` : `${name} is not a HAR file (not a JSON object; it starts with ${JSON.stringify(String.fromCharCode(c))})`,
            );
          }
          started = true;
        }
        // An entry begins: the first value inside log.entries.
        if (!capturing && inEntries() && c !== 0x5d && c !== 0x2c) {
          capturing = true;
          cap = [];
          capBytes = 0;
          capFrom = i;
          tooLarge = false;
          entryDepth = stack.length;
          if (skelFrom >= 0) {
            skeleton.push(chunk.subarray(skelFrom, i), Buffer.from('0'));
            skeletonBytes += i - skelFrom + 1;
          }
          skelFrom = -1;
          sawEntries = true;
        }
        switch (c) {
          case QUOTE:
            inString = true;
            // Only the keys of the top two levels matter (log, entries); deeper keys are not collected.
            keyBytes = stack.length <= 2 && stack[stack.length - 1] === 0x7b && expectKey ? [] : null;
            if (capturing) strStart = capBytes + (i - capFrom) + 1;
            break;
          case 0x7b: // {
          case 0x5b: // [
            stack.push(c);
            keys[stack.length - 1] = null;
            expectKey = c === 0x7b;
            break;
          case 0x7d: // }
          case 0x5d: {
            // ]
            const open = stack.pop();
            if (open === undefined || (c === 0x7d) !== (open === 0x7b)) throw new RegtapeError('bad-har', `${name} is not valid JSON (unbalanced ${String.fromCharCode(c)} at byte ${offset + i})`);
            expectKey = false;
            if (!stack.length) done = true;
            break;
          }
          case 0x3a: // :
            expectKey = false;
            break;
          case 0x2c: // ,
            expectKey = stack[stack.length - 1] === 0x7b;
            break;
          default:
            break;
        }
        // An entry ends when its value closes back to the entries array level (or a scalar entry meets , or ]).
        if (capturing) {
          const closedContainer = stack.length === entryDepth && (c === 0x7d || c === 0x5d);
          // A scalar entry (null, a string…) ends at the , or ] after it, which is not part of it.
          const scalarEnd = (stack.length === entryDepth && c === 0x2c) || stack.length < entryDepth;
          if (closedContainer || scalarEnd) {
            const end = closedContainer ? i + 1 : i;
            pushCap(chunk.subarray(capFrom, end));
            capturing = false;
            skelFrom = end;
            let entry: unknown = null;
            if (!tooLarge) {
              try {
                entry = JSON.parse(Buffer.concat(cap).toString('utf8'));
              } catch (e) {
                throw new RegtapeError('bad-har', `${name} is not valid JSON (log.entries[${entryIndex}]: ${(e as Error).message})`);
              }
            }
            cap = [];
            yield { index: entryIndex++, entry, bytes: capBytes + [...spills.values()].reduce((n, s) => n + s.bytes, 0), tooLarge: tooLarge || undefined, spills };
            dropSpills();
          }
        }
      }
      if (capturing) {
        if (spill) {
          fs.writeSync(spill.fd, chunk.subarray(spillFrom));
          spill.bytes += chunk.length - spillFrom;
        } else pushCap(chunk.subarray(capFrom));
      } else if (skelFrom >= 0) {
        skeleton.push(chunk.subarray(skelFrom));
        skeletonBytes += chunk.length - skelFrom;
        if (skeletonBytes > MAX_SKELETON) throw new RegtapeError('bad-har', `${name}: more than ${MAX_SKELETON} bytes outside log.entries; not a HAR file regtape can read`);
      }
      offset += chunk.length;
    }
    if (!started) throw new RegtapeError('bad-har', `${name} is empty`);
    if (inString || stack.length) throw new RegtapeError('bad-har', `${name} is not valid JSON (it ends inside ${inString ? 'a string' : 'the document'}: truncated?)`);
    let doc: { log?: { version?: unknown; creator?: unknown; entries?: unknown } };
    try {
      doc = JSON.parse(Buffer.concat(skeleton).toString('utf8')) as typeof doc;
    } catch (e) {
      throw new RegtapeError('bad-har', `${name} is not valid JSON (${(e as Error).message})`);
    }
    if (!doc || typeof doc !== 'object' || !doc.log || typeof doc.log !== 'object') throw new RegtapeError('bad-har', `${name} is JSON but not a HAR file (no "log" object)`);
    if (!Array.isArray(doc.log.entries) && !sawEntries) throw new RegtapeError('bad-har', `${name} is JSON but not a HAR file (no "log.entries" array)`);
    const header: HarHeader = {};
    if (typeof doc.log.version === 'string') header.version = doc.log.version;
    if (doc.log.creator && typeof doc.log.creator === 'object') header.creator = doc.log.creator as HarHeader['creator'];
    return header;
  } finally {
    if (spill) fs.closeSync(spill.fd);
    if (spill) fs.rmSync(spill.path, { force: true });
    dropSpills();
    if (spillDir && ownSpillDir) fs.rmSync(spillDir, { recursive: true, force: true });
  }
}

const ESCAPES: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };

/** JSON string text (escaped, without quotes) → the UTF-8 bytes of the string, streamed. */
async function* unescapeJson(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let carry: Buffer = Buffer.alloc(0);
  let high: number | null = null; // a high surrogate waiting for its pair
  const emitCode = (code: number, out: Buffer[]) => {
    if (high !== null) {
      if (code >= 0xdc00 && code < 0xe000) {
        out.push(Buffer.from(String.fromCodePoint(0x10000 + ((high - 0xd800) << 10) + (code - 0xdc00)), 'utf8'));
        high = null;
        return;
      }
      out.push(Buffer.from('\ufffd', 'utf8'));
      high = null;
    }
    if (code >= 0xd800 && code < 0xdc00) high = code;
    else out.push(Buffer.from(String.fromCharCode(code), 'utf8'));
  };
  for await (const raw of src) {
    const buf: Buffer = carry.length ? Buffer.concat([carry, raw]) : raw;
    carry = Buffer.alloc(0);
    const out: Buffer[] = [];
    let from = 0;
    for (;;) {
      const i = buf.indexOf(BACKSLASH, from);
      const upto = i < 0 ? buf.length : i;
      if (upto > from) {
        if (high !== null) {
          out.push(Buffer.from('\ufffd', 'utf8')); // a lone high surrogate
          high = null;
        }
        out.push(buf.subarray(from, upto));
      }
      if (i < 0) break;
      if (i + 1 >= buf.length) {
        carry = buf.subarray(i);
        break;
      }
      const e = buf[i + 1]!;
      if (e === 0x75) {
        if (i + 6 > buf.length) {
          carry = buf.subarray(i);
          break;
        }
        emitCode(parseInt(buf.toString('latin1', i + 2, i + 6), 16), out);
        from = i + 6;
      } else {
        if (high !== null) {
          out.push(Buffer.from('\ufffd', 'utf8'));
          high = null;
        }
        out.push(Buffer.from(ESCAPES[e] ?? String.fromCharCode(e), 'utf8'));
        from = i + 2;
      }
    }
    if (out.length) yield Buffer.concat(out);
  }
  if (high !== null) yield Buffer.from('\ufffd', 'utf8');
}

async function* decodeBase64(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let rest = '';
  for await (const b of src) {
    const s = rest + b.toString('latin1').replace(/[\s]/g, '');
    const n = s.length - (s.length % 4);
    if (n) yield Buffer.from(s.slice(0, n), 'base64');
    rest = s.slice(n);
  }
  if (rest) yield Buffer.from(rest, 'base64');
}

/** Stream a spilled string's value: its text as UTF-8 bytes, or with `base64`, the bytes it encodes. */
export function openSpill(s: SpilledString, base64: boolean): Readable {
  const text = unescapeJson(fs.createReadStream(s.path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>);
  return Readable.from(base64 ? decodeBase64(text) : text, { objectMode: false });
}
