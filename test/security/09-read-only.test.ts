/**
 * Class 9: read-only means read-only. Looking at a recording (show, flows, export, verify,
 * diff, and the store API the TUI's `ui --read-only` uses) must leave no -wal/-shm/-journal
 * file beside it and not change one byte — also for a recording still in WAL mode, which is
 * what `regtape record` leaves behind. Copies of the shipped fixtures are used; fixtures/
 * itself is checked to be untouched at the end.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recording } from '../../src/store/index.js';
import { CLI } from '../support/cli.js';
import { FIXTURES_DIR } from '../support/fixtures.js';

let tmp: string;

/** sha256 of every file under `dir` (recursively), by relative path. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, HOME: tmp, REGTAPE_HOME: path.join(tmp, 'home'), NO_COLOR: '1' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

let fixturesBefore: Record<string, string>;

/** Copy a fixture into its own directory; `wal` switches the copy to WAL mode (as `record` leaves files today). */
function copyFixture(name: string, wal: boolean): { dir: string; db: string } {
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  fs.copyFileSync(path.join(FIXTURES_DIR, `${name}.db`), path.join(dir, `${name}.db`));
  fs.cpSync(path.join(FIXTURES_DIR, `${name}.blobs`), path.join(dir, `${name}.blobs`), { recursive: true });
  const db = path.join(dir, `${name}.db`);
  if (wal) {
    const d = new Database(db);
    d.pragma('journal_mode = WAL');
    d.close();
  }
  return { dir, db };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-sec9-'));
  fixturesBefore = snapshot(FIXTURES_DIR);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.each([
  ['WAL-mode copy', true],
  ['rollback-journal copy', false],
])('class 9: read-only commands on a %s', (_label, wal) => {
  const commands: Array<[string, (db: string, other: string) => string[]]> = [
    ['show', (db) => ['show', db]],
    ['flows', (db) => ['flows', db]],
    ['flows --json', (db) => ['flows', db, '--json']],
    ['verify', (db) => ['verify', db]],
    ['export --har -', (db) => ['export', db, '--har', '-']],
    ['export --curl', (db) => ['export', db, '--curl']],
    ['diff', (db, other) => ['diff', db, other]],
  ];
  for (const [label, args] of commands) {
    it(`${label} leaves the recording byte for byte as it was, and nothing beside it`, async () => {
      const a = copyFixture('dockerd-pull-multiarch', wal);
      const b = copyFixture('skopeo-copy', wal);
      const before = [snapshot(a.dir), snapshot(b.dir)];
      const r = await run(args(a.db, b.db));
      expect(r.stderr).not.toMatch(/internal/);
      expect([0, 1]).toContain(r.code);
      expect(snapshot(a.dir)).toEqual(before[0]);
      expect(snapshot(b.dir)).toEqual(before[1]);
    }, 60_000);
  }

  it('Recording.openReadOnly (what `ui --read-only` uses): list, headers and bodies read, nothing written', () => {
    const a = copyFixture('dockerd-pull-multiarch', wal);
    const before = snapshot(a.dir);
    const rec = Recording.openReadOnly(a.db);
    try {
      const rows = rec.listSummaries(0, 1000);
      expect(rows.length).toBeGreaterThan(0);
      rec.rawHeaders(rows[0]!.id);
      for (const f of rec.list()) if (f.responseBody?.sha256) rec.readBodySync(f.responseBody.sha256, 1 << 20);
      expect(fs.readdirSync(a.dir).sort()).toEqual(Object.keys(before).map((p) => p.split(path.sep)[0]!).filter((v, i, s) => s.indexOf(v) === i).sort());
    } finally {
      rec.close();
    }
    expect(snapshot(a.dir)).toEqual(before);
  });
});

describe('class 9: writers leave recordings that readers cannot change', () => {
  it('a recording closed by its writer is in rollback-journal mode (no -wal/-shm appear when it is read)', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
    const db = path.join(dir, 'w.db');
    const w = Recording.open(db, { create: true });
    w.beginSession('test');
    w.close();
    expect(fs.readFileSync(db)[18]).toBe(1); // file format write version: 1 = rollback journal, 2 = WAL
    const before = snapshot(dir);
    const r = Recording.openReadOnly(db);
    r.list();
    r.close();
    expect(snapshot(dir)).toEqual(before);
  });

  it('fixtures/ was not changed by anything in this file', () => {
    expect(snapshot(FIXTURES_DIR)).toEqual(fixturesBefore);
  });
});
