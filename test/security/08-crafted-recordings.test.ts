/**
 * Class 8: crafted recordings. A recording is input: rows with wrong types, missing or
 * tampered bodies, absurd sizes, a schema from a newer regtape. Every command that reads one
 * (show, flows, verify, export) either works or says `regtape: <code>: <sentence>` and exits 2
 * (verify: 1 when it found problems) — never a stack trace, never "internal". fast-check
 * mutates copies of the real fixtures (fixtures/ itself is never touched).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRegtapeError } from '../../src/errors/index.js';
import { flowJson, loadRecording, renderShow } from '../../src/inspect/index.js';
import { Recording } from '../../src/store/index.js';
import { CLI } from '../support/cli.js';
import { FIXTURES_DIR } from '../support/fixtures.js';

let tmp: string;
const FIXTURES = ['dockerd-pull-multiarch', 'skopeo-copy', 'ctr-pull', 'dockerd-push'];
const FLOW_COLUMNS = ['state', 'scheme', 'host', 'port', 'method', 'target', 'http_version', 'req_headers', 'status', 'reason', 'res_headers', 'res_body_sha256', 'res_body_size', 'req_body_sha256', 't_start', 't_end', 'facts', 'registry', 'error', 'res_bytes'];
const VALUES: unknown[] = [null, 'x', '', 12345, -1, 1e300, 9007199254740993n, Buffer.from([0, 255]), '{"a":', '[]', '[[1,2]]', '[["a"]]', '{}', '"s"', 'zz'.repeat(40), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '../../../etc/passwd'];

type Mutation =
  | { kind: 'flow'; row: number; column: string; value: unknown }
  | { kind: 'body-size'; row: number; value: unknown }
  | { kind: 'body-inline'; row: number; value: unknown }
  | { kind: 'drop-blob'; row: number }
  | { kind: 'schema'; version: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flow' as const), row: fc.nat(200), column: fc.constantFrom(...FLOW_COLUMNS), value: fc.constantFrom(...VALUES) }),
  fc.record({ kind: fc.constant('body-size' as const), row: fc.nat(50), value: fc.constantFrom(-5, 0, 1, 1e18, 'big', 2 ** 53) }),
  fc.record({ kind: fc.constant('body-inline' as const), row: fc.nat(50), value: fc.constantFrom(Buffer.from('{"not":"it"}'), 'text', 42) }),
  fc.record({ kind: fc.constant('drop-blob' as const), row: fc.nat(50) }),
  fc.record({ kind: fc.constant('schema' as const), version: fc.constantFrom(3, 99, 2 ** 31 - 1) }),
);

let n = 0;
/** A mutated copy of a fixture; returns its path. */
function mutate(fixture: string, muts: Mutation[]): string {
  const dir = path.join(tmp, `m${n++}`);
  fs.mkdirSync(dir);
  const db = path.join(dir, 'r.db');
  fs.copyFileSync(path.join(FIXTURES_DIR, `${fixture}.db`), db);
  fs.cpSync(path.join(FIXTURES_DIR, `${fixture}.blobs`), path.join(dir, 'r.blobs'), { recursive: true });
  const d = new Database(db);
  const ids = (d.prepare('SELECT id FROM flows ORDER BY id').all() as Array<{ id: number }>).map((r) => r.id);
  const bodies = (d.prepare('SELECT sha256, inline IS NULL AS file FROM bodies ORDER BY sha256').all() as Array<{ sha256: string; file: number }>);
  const bind = (v: unknown) => (typeof v === 'bigint' ? v : v);
  for (const m of muts) {
    try {
      if (m.kind === 'flow' && ids.length) d.prepare(`UPDATE flows SET ${m.column} = ? WHERE id = ?`).run(bind(m.value), ids[m.row % ids.length]);
      else if (m.kind === 'body-size' && bodies.length) d.prepare('UPDATE bodies SET size = ? WHERE sha256 = ?').run(m.value, bodies[m.row % bodies.length]!.sha256);
      else if (m.kind === 'body-inline' && bodies.length) d.prepare('UPDATE bodies SET inline = ? WHERE sha256 = ?').run(m.value, bodies[m.row % bodies.length]!.sha256);
      else if (m.kind === 'drop-blob') {
        const files = bodies.filter((b) => b.file);
        if (files.length) fs.rmSync(path.join(dir, 'r.blobs', files[m.row % files.length]!.sha256), { force: true });
      } else if (m.kind === 'schema') d.pragma(`user_version = ${m.version}`);
    } catch {
      // a constraint refused this edit: the file stays as it was for this mutation
    }
  }
  d.close();
  return db;
}

function run(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, HOME: tmp, REGTAPE_HOME: path.join(tmp, 'home'), NO_COLOR: '1' }, maxBuffer: 64 << 20, timeout: 60_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-sec8-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What a user may see from a command on a bad recording. */
function expectClean(label: string, r: { code: number; stderr: string }): void {
  expect(r.stderr, label).not.toMatch(/\n\s+at .+:\d+:\d+/); // a stack trace
  expect(r.stderr, label).not.toMatch(/regtape: internal:/);
  expect([0, 1, 2], `${label}: exit ${r.code}\n${r.stderr}`).toContain(r.code);
  if (r.code === 2) expect(r.stderr, label).toMatch(/^regtape: [a-z][a-z-]+: \S/m);
}

describe('class 8: crafted recordings', () => {
  it('a newer schema: regtape: recording-newer-schema: …, exit 2, for every reading command', async () => {
    const db = mutate('skopeo-copy', [{ kind: 'schema', version: 99 }]);
    for (const args of [['show', db], ['flows', db], ['verify', db], ['export', db, '--har', '-']]) {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^regtape: recording-newer-schema: /);
    }
  });

  it('fuzz, in-process: open, load, render and JSON of mutated fixtures work or throw a RegtapeError (exit 2)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...FIXTURES), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (fixture, muts) => {
        const db = mutate(fixture, muts);
        try {
          const rec = Recording.openReadOnly(db);
          try {
            const loaded = await loadRecording(rec);
            renderShow(loaded);
            for (const f of loaded.flows) JSON.stringify(flowJson(f));
          } finally {
            rec.close();
          }
        } catch (e) {
          if (!isRegtapeError(e) || e.exitCode !== 2) throw new Error(`${JSON.stringify(muts)}: ${(e as Error).stack}`);
        }
      }),
      { numRuns: 150, seed: 812 },
    );
  }, 300_000);

  it('fuzz, CLI: show, flows, verify and export on mutated fixtures never print a stack trace', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...FIXTURES), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (fixture, muts) => {
        const db = mutate(fixture, muts);
        for (const args of [['show', db], ['flows', db], ['verify', db], ['export', db, '--har', '-']]) expectClean(`${args[0]} ${JSON.stringify(muts)}`, await run(args));
      }),
      { numRuns: 8, seed: 813 },
    );
  }, 300_000);
});
