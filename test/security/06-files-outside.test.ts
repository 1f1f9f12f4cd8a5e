/**
 * Class 6: files outside the recording. A recording is a file somebody sent you: a symlink
 * inside NAME.blobs/ must not make replay (or export, or show) read any file on the machine;
 * a symlink at NAME.blobs/.tmp must not make a writing command delete files elsewhere; a
 * body file whose size or digest is wrong is never served; a body store that is not a plain
 * directory owned by the user is refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRegtapeError } from '../../src/errors/index.js';
import { startReplay } from '../../src/replay/index.js';
import { Recording } from '../../src/store/index.js';
import { buildPullRecording, type Fixture } from '../support/replay-fixture.js';

let tmp: string;
let fx: Fixture;
const SECRET = 'TOP-SECRET-FILE-CONTENT\n';

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-sec6-'));
  fx = await buildPullRecording(path.join(tmp, 'pull.db'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fresh copy of the pull recording (db + blobs) under `name`. */
function copy(name: string): { db: string; blobs: string } {
  const db = path.join(tmp, `${name}.db`);
  fs.copyFileSync(fx.path, db);
  fs.cpSync(fx.path.replace(/\.db$/, '.blobs'), path.join(tmp, `${name}.blobs`), { recursive: true });
  return { db, blobs: path.join(tmp, `${name}.blobs`) };
}

function errCode(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return isRegtapeError(e) ? e.code : `not a RegtapeError: ${(e as Error).message}`;
  }
}

async function mirrorGet(db: string, digest: string): Promise<{ status: number; body: Buffer } | { error: string }> {
  const replay = await startReplay({ recording: db, home: path.join(tmp, 'ca'), listen: false });
  try {
    const r = await fetch(`${replay.mirrorUrl}/regtape/blobs/${digest}`);
    return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
  } catch (e) {
    return { error: (e as Error).message };
  } finally {
    await replay.close();
  }
}

describe('class 6: files outside the recording', () => {
  it('a body file replaced by a symlink to another file is never served by replay', async () => {
    const { db, blobs } = copy('symlinked');
    const secret = path.join(tmp, 'secret.txt');
    fs.writeFileSync(secret, SECRET.repeat(Math.ceil(fx.blobs.amd64Layer.bytes.length / SECRET.length)).slice(0, fx.blobs.amd64Layer.bytes.length));
    const file = path.join(blobs, fx.blobs.amd64Layer.digest.slice(7));
    fs.rmSync(file);
    fs.symlinkSync(secret, file);
    const got = await mirrorGet(db, fx.blobs.amd64Layer.digest);
    if ('status' in got) {
      expect(got.body.toString('latin1')).not.toContain('TOP-SECRET');
      expect(got.status).not.toBe(200);
    }
    // The store API says why.
    const rec = Recording.open(db, { readonly: true });
    try {
      expect(rec.readBodySync(fx.blobs.amd64Layer.digest.slice(7), 1 << 20)).toBeNull();
      await expect(rec.readBodyBuffer(fx.blobs.amd64Layer.digest.slice(7))).rejects.toMatchObject({ code: 'body-store-unsafe' });
    } finally {
      rec.close();
    }
  });

  it('a body file with the right size but other bytes is not served (digest checked before serving)', async () => {
    const { db, blobs } = copy('tampered');
    const file = path.join(blobs, fx.blobs.amd64Layer.digest.slice(7));
    const bad = Buffer.from(fs.readFileSync(file));
    bad.write('EVIL', 1000);
    fs.writeFileSync(file, bad);
    const got = await mirrorGet(db, fx.blobs.amd64Layer.digest);
    if ('status' in got) expect(got.body.includes(Buffer.from('EVIL'))).toBe(false);
    const rec = Recording.open(db, { readonly: true });
    try {
      await expect(rec.readBodyBuffer(fx.blobs.amd64Layer.digest.slice(7))).rejects.toMatchObject({ code: 'body-missing' });
    } finally {
      rec.close();
    }
  });

  it('a body file of the wrong size is not served', async () => {
    const { db, blobs } = copy('short');
    const file = path.join(blobs, fx.blobs.amd64Layer.digest.slice(7));
    fs.truncateSync(file, 1000);
    const rec = Recording.open(db, { readonly: true });
    try {
      await expect(rec.readBodyBuffer(fx.blobs.amd64Layer.digest.slice(7))).rejects.toMatchObject({ code: 'body-missing' });
    } finally {
      rec.close();
    }
  });

  it('a symlink at NAME.blobs/.tmp: opening for writing refuses, and deletes nothing elsewhere', () => {
    const { db, blobs } = copy('tmplink');
    const victim = path.join(tmp, 'victim');
    fs.mkdirSync(victim);
    fs.writeFileSync(path.join(victim, 'precious.txt'), 'keep me');
    fs.rmSync(path.join(blobs, '.tmp'), { recursive: true, force: true });
    fs.symlinkSync(victim, path.join(blobs, '.tmp'));
    expect(errCode(() => Recording.open(db, { create: true }).close())).toBe('body-store-unsafe');
    expect(fs.readdirSync(victim)).toEqual(['precious.txt']);
  });

  it('NAME.blobs itself a symlink, or not a directory, or owned by someone else: refused', () => {
    const a = copy('blobslink');
    fs.renameSync(a.blobs, `${a.blobs}.real`);
    fs.symlinkSync(`${a.blobs}.real`, a.blobs);
    expect(errCode(() => Recording.open(a.db, { readonly: true }).close())).toBe('body-store-unsafe');
    expect(errCode(() => Recording.open(a.db, { create: true }).close())).toBe('body-store-unsafe');

    const b = copy('blobsfile');
    fs.rmSync(b.blobs, { recursive: true });
    fs.writeFileSync(b.blobs, 'not a directory');
    expect(errCode(() => Recording.open(b.db, { readonly: true }).close())).toBe('body-store-unsafe');

    if (process.getuid?.() === 0) {
      const c = copy('blobsother');
      fs.chownSync(c.blobs, 65534, 65534);
      expect(errCode(() => Recording.open(c.db, { readonly: true }).close())).toBe('body-store-unsafe');
    }
  });
});
