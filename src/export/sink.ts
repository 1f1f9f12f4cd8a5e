import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';

/** Writes to a stream, waiting for 'drain' when its buffer is full (bounded memory), failing on its errors. */
export class Sink {
  private error: Error | null = null;

  constructor(readonly out: Writable) {
    out.on('error', (e: Error) => {
      this.error = e;
    });
  }

  async write(chunk: string | Buffer): Promise<void> {
    if (this.error) throw this.error;
    if (this.out.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        this.out.off('drain', ok);
        this.out.off('error', done);
        this.out.off('close', ok);
        if (e) reject(e);
        else resolve();
      };
      const ok = () => done();
      this.out.once('drain', ok);
      this.out.once('error', done);
      this.out.once('close', ok);
    });
    if (this.error) throw this.error;
  }

  /** End the stream and wait until it is flushed (files: closed). */
  async end(): Promise<void> {
    if (this.error) throw this.error;
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
    if (this.error) throw this.error;
  }
}

/** A temp path beside `file` (same directory, so a rename into place is atomic). */
export function tempBeside(file: string, tag: string, ext = ''): string {
  const dir = path.dirname(path.resolve(file));
  return path.join(dir, `.${path.basename(file)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}${ext}`);
}

/**
 * Write a file through `fn` into a temp file beside it and rename it into place only
 * when `fn` succeeded, so a failed export never leaves a half-written file. Owner-only
 * by default, like the recording it comes from (traffic, even redacted).
 */
export async function writeFileAtomically<T>(file: string, fn: (sink: Sink) => Promise<T>, mode = 0o600): Promise<T> {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = tempBeside(file, 'writing');
  const out = fs.createWriteStream(tmp, { mode });
  const sink = new Sink(out);
  try {
    const result = await fn(sink);
    await sink.end();
    await fs.promises.rename(tmp, file);
    return result;
  } catch (e) {
    out.destroy();
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}
