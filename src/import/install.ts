import fs from 'node:fs';
import { tempBeside } from '../export/index.js';
import { blobDirFor } from '../store/index.js';
import { RegtapeError } from '../errors/index.js';

/** Remove a recording's files: NAME.db, its -wal/-shm/-journal, and NAME.blobs/. */
export function removeRecordingFiles(db: string): void {
  for (const s of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${db}${s}`, { force: true });
  fs.rmSync(blobDirFor(db), { recursive: true, force: true });
}

function hasBlobs(dir: string): boolean {
  return fs.existsSync(dir) && fs.readdirSync(dir).some((n) => n !== '.tmp' && n !== '.gitkeep');
}

/**
 * Move a finished recording written under a temp name (closed, checkpointed) to its
 * final name: NAME.blobs/ first, NAME.db last, so NAME.db only ever appears complete.
 * With `force` an existing recording there is replaced (its stale -wal/-shm removed
 * first: SQLite would otherwise replay the old log into the new file).
 */
export function installRecording(tmpDb: string, outDb: string, opts: { force: boolean }): void {
  const outBlobs = blobDirFor(outDb);
  if (!opts.force && fs.existsSync(outDb)) throw new RegtapeError('recording-exists', `${outDb} already exists (use --force to replace it)`);
  if (!opts.force && hasBlobs(outBlobs)) throw new RegtapeError('recording-exists', `${outBlobs} already exists (use --force to replace it)`);
  let trash: string | null = null;
  if (fs.existsSync(outBlobs)) {
    trash = tempBeside(outDb, 'replaced', '.blobs');
    fs.renameSync(outBlobs, trash);
  }
  for (const s of ['-wal', '-shm', '-journal']) fs.rmSync(`${outDb}${s}`, { force: true });
  const tmpBlobs = blobDirFor(tmpDb);
  fs.rmSync(`${tmpBlobs}/.tmp`, { recursive: true, force: true });
  if (fs.existsSync(tmpBlobs)) fs.renameSync(tmpBlobs, outBlobs);
  else fs.mkdirSync(outBlobs, { mode: 0o700 });
  for (const s of ['-wal', '-shm']) fs.rmSync(`${tmpDb}${s}`, { force: true });
  fs.renameSync(tmpDb, outDb);
  if (trash) fs.rmSync(trash, { recursive: true, force: true });
}
