import { createHash, randomBytes, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';

/** Bodies at most this big live inside the database (manifests, tokens, errors). */
export const INLINE_LIMIT = 64 * 1024;

/** sha256 of the empty string. */
/**
 * Bytes a body file may have queued before the tap holds the stream: enough to ride
 * out disk latency without stalling the network, small enough to bound memory.
 */
const FILE_HIGH_WATER_MARK = Number(process.env.REGTAPE_FILE_HWM) || 8 << 20;

/** Chunks are handed to the file in batches of about this many bytes. */
const WRITE_BATCH = Number(process.env.REGTAPE_WRITE_BATCH) || 1 << 20;

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface BodyTapOptions {
  /** Keep the whole body in memory up to this many bytes (for redaction or inline storage). */
  bufferLimit: number;
  /** Known body length (Content-Length), lets a large body go straight to a file. */
  expectedSize?: number;
}

/** A finished body, not yet placed: `commit()` moves it into the store. */
export interface CapturedBody {
  sha256: string;
  size: number;
  /** The whole body when it was kept in memory (size <= bufferLimit). */
  buffer?: Buffer;
  /** Temporary file holding the body (size > bufferLimit). */
  tmpFile?: string;
}

/**
 * Content-addressed body files: `<dir>/<sha256>` (mode 0600), written under
 * `<dir>/.tmp/` and renamed into place, so a file named by a digest is always
 * complete. Same-content bodies are stored once.
 */
export class BodyStore {
  readonly tmpDir: string;

  constructor(readonly dir: string) {
    this.tmpDir = path.join(dir, '.tmp');
  }

  /** Create the directories (0700) and remove temp files left by a crashed writer. */
  init(): void {
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(this.tmpDir)) fs.rmSync(path.join(this.tmpDir, f), { force: true });
  }

  pathOf(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256 digest: ${sha256}`);
    return path.join(this.dir, sha256);
  }

  has(sha256: string): boolean {
    return fs.existsSync(this.pathOf(sha256));
  }

  /** A pass-through stream that hashes and stores what flows through it. */
  tap(opts: BodyTapOptions): BodyTap {
    return new BodyTap(this, opts);
  }

  /** A fresh temp path inside the store. */
  tmpPath(): string {
    return path.join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
  }

  /**
   * Place a captured file body under its digest (rename, or drop it if that content is
   * already there). Returns false for in-memory bodies, which the caller stores inline.
   */
  async placeFile(body: CapturedBody): Promise<void> {
    if (!body.tmpFile) return;
    const dest = this.pathOf(body.sha256);
    if (fs.existsSync(dest)) {
      await fs.promises.rm(body.tmpFile, { force: true });
    } else {
      await fs.promises.rename(body.tmpFile, dest);
    }
    body.tmpFile = undefined;
  }

  /** Write an in-memory body as a file under its digest (used when a body is too big to inline). */
  async placeBuffer(sha256: string, buf: Buffer): Promise<void> {
    const dest = this.pathOf(sha256);
    if (fs.existsSync(dest)) return;
    const tmp = this.tmpPath();
    await fs.promises.writeFile(tmp, buf, { mode: 0o600 });
    await fs.promises.rename(tmp, dest);
  }

  /** Stream a stored file body, optionally a byte range [start, end] inclusive. */
  read(sha256: string, range?: { start?: number; end?: number }): fs.ReadStream {
    return fs.createReadStream(this.pathOf(sha256), { start: range?.start, end: range?.end, highWaterMark: 1 << 20 });
  }
}

/**
 * A passive tap on a body stream: every chunk is pushed on unchanged (no copy), fed to
 * sha256 and, once the body outgrows its memory budget, written to a temp file. Disk
 * backpressure holds the stream, so memory stays bounded whatever the body size.
 * `result()` resolves once the stream ended and the file is flushed; a body that did
 * not end (abort, error) is discarded and `result()` resolves to null.
 */
export class BodyTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private chunks: Buffer[] | null = [];
  private file: fs.WriteStream | null = null;
  private tmpFile: string | undefined;
  private fileError: Error | null = null;
  /** Bytes seen so far. */
  bytes = 0;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private settled = false;
  private resolveResult!: (b: CapturedBody | null) => void;
  private readonly resultPromise: Promise<CapturedBody | null>;

  constructor(
    private readonly store: BodyStore,
    private readonly opts: BodyTapOptions,
  ) {
    super({ highWaterMark: 1 << 20 });
    this.resultPromise = new Promise((r) => (this.resolveResult = r));
    if (opts.expectedSize !== undefined && opts.expectedSize > opts.bufferLimit) this.openFile();
    this.on('close', () => {
      // Destroyed before flush: the body is incomplete.
      if (!this.settled) this.discard();
    });
  }

  /** The captured body once the stream finished, or null if it did not complete. */
  result(): Promise<CapturedBody | null> {
    return this.resultPromise;
  }

  private openFile(): void {
    this.tmpFile = this.store.tmpPath();
    this.file = fs.createWriteStream(this.tmpFile, { mode: 0o600, highWaterMark: FILE_HIGH_WATER_MARK });
    this.file.on('error', (e) => {
      this.fileError = e;
    });
    if (this.chunks) {
      for (const c of this.chunks) this.file.write(c);
      this.chunks = null;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    if (this.fileError) return cb(this.fileError);
    if (this.chunks) {
      this.chunks.push(chunk);
      if (this.bytes > this.opts.bufferLimit) this.openFile();
    } else if (this.file) {
      // Batch chunks (16 KiB each off a TLS socket) into ~1 MiB writev calls: one
      // thread-pool write per MiB instead of 64, and still no copy.
      this.batch.push(chunk);
      this.batchBytes += chunk.length;
      if (this.batchBytes >= WRITE_BATCH && !this.flushBatch()) {
        this.push(chunk);
        this.file.once('drain', () => cb());
        return;
      }
    }
    cb(null, chunk);
  }

  /** Hand the pending batch to the file as one writev; false when the file wants us to wait. */
  private flushBatch(): boolean {
    if (!this.file || !this.batch.length) return true;
    const f = this.file;
    f.cork();
    let ok = true;
    for (const c of this.batch) ok = f.write(c);
    f.uncork();
    this.batch = [];
    this.batchBytes = 0;
    return ok;
  }

  override _flush(cb: TransformCallback): void {
    const sha256 = this.hash.digest('hex');
    const size = this.bytes;
    this.settled = true;
    if (this.chunks) {
      this.resolveResult({ sha256, size, buffer: Buffer.concat(this.chunks, size) });
      this.chunks = null;
      return cb();
    }
    // End the relayed stream now; the file finishes in the background and result()
    // waits for it (the client must not wait for our disk).
    cb();
    this.flushBatch();
    const file = this.file!;
    file.end(() => {
      if (this.fileError) {
        void fs.promises.rm(this.tmpFile!, { force: true }).finally(() => this.resolveResult(null));
        return;
      }
      this.resolveResult({ sha256, size, tmpFile: this.tmpFile });
    });
  }

  private discard(): void {
    this.settled = true;
    this.chunks = null;
    if (!this.file) return this.resolveResult(null);
    const f = this.tmpFile!;
    const file = this.file;
    // Remove only after the stream closed (an open still in flight would re-create the
    // file), and report the result only once the file is gone.
    const remove = () => void fs.promises.rm(f, { force: true }).finally(() => this.resolveResult(null));
    if (file.closed) return remove();
    file.once('close', remove);
    file.destroy();
  }
}
