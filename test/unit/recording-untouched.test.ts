import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Recording } from '../../src/store/index.js';
import { writeTinyRecording } from './tui-support.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const digest = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');
const sideFiles = (p: string) => ['-wal', '-shm', '-journal'].filter((s) => fs.existsSync(p + s));

/** Writers now leave rollback-journal files on close; put one back in WAL mode (older recordings, a writer that died). */
async function walRecording(dir: string) {
  const t = await writeTinyRecording(dir);
  const { default: Database } = await import('better-sqlite3');
  const d = new Database(t.file);
  d.pragma('journal_mode = WAL');
  d.close();
  return t;
}

describe('Recording.open({ readonly, untouched })', () => {
  it('reads a cleanly closed WAL-mode recording without creating -wal/-shm or changing a byte', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ro-'));
    dirs.push(dir);
    const t = await walRecording(dir);
    expect(fs.readFileSync(t.file).subarray(18, 20)).toEqual(Buffer.from([2, 2])); // a WAL-mode recording
    const before = digest(t.file);
    const rec = Recording.open(t.file, { readonly: true, untouched: true });
    expect(rec.count()).toBeGreaterThan(10);
    expect(rec.get(t.ids['alpine.index']!)?.request.target).toBe('/v2/lab/alpine/manifests/3.9');
    rec.close();
    expect(sideFiles(t.file)).toEqual([]);
    expect(digest(t.file)).toBe(before);
  });

  it('an in-place read-only open (untouched: false) of the same file leaves -wal/-shm behind (why untouched is the default)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ro-'));
    dirs.push(dir);
    const t = await walRecording(dir);
    Recording.open(t.file, { readonly: true, untouched: false }).close();
    expect(sideFiles(t.file)).toEqual(['-wal', '-shm']);
  });

  it('a file over the in-memory size is opened in place; the empty -wal and the -shm go on close', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ro-'));
    dirs.push(dir);
    const t = await walRecording(dir);
    const before = digest(t.file);
    const rec = Recording.open(t.file, { readonly: true, untouched: true, memoryMax: 1000 });
    expect(rec.count()).toBeGreaterThan(10);
    expect(sideFiles(t.file)).toEqual(['-wal', '-shm']); // SQLite's, while open
    rec.close();
    expect(sideFiles(t.file)).toEqual([]);
    expect(digest(t.file)).toBe(before);
  });

  it('keeps the side files when another connection uses them (a recorder started meanwhile)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ro-'));
    dirs.push(dir);
    const t = await walRecording(dir);
    const reader = Recording.open(t.file, { readonly: true, untouched: true, memoryMax: 1000 });
    reader.count();
    const other = Recording.open(t.file, { readonly: true }); // a second connection: holds a lock on the -shm
    other.count();
    reader.close();
    expect(sideFiles(t.file)).toEqual(['-wal', '-shm']);
    other.close();
  });

  it('with a writer present (-wal exists) opens in place and sees later commits', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ro-'));
    dirs.push(dir);
    const t = await writeTinyRecording(dir);
    const writer = Recording.open(t.file);
    const reader = Recording.open(t.file, { readonly: true, untouched: true });
    const n = reader.count();
    writer.beginSession('test');
    writer.insertOpenFlow({ uuid: 'u-1', request: { method: 'GET', scheme: 'https', host: 'h', port: 443, target: '/v2/', httpVersion: '1.1', headers: [] }, timings: { start: 1 }, clientAddr: null });
    expect(reader.count()).toBe(n + 1);
    reader.close();
    writer.close();
  });
});
