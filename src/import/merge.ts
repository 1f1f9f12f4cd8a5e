import fs from 'node:fs';
import path from 'node:path';
import { tempBeside } from '../export/index.js';
import { blobDirFor, Recording } from '../store/index.js';
import { installRecording, removeRecordingFiles } from './install.js';
import { RegtapeError } from '../errors/index.js';

/**
 * `regtape merge A.db B.db … --out C.db`: one recording from several (fixtures built
 * from several runs). Flows are appended in input order with their sessions, bodies
 * are deduplicated by content (inline rows once; body files hard-linked, or copied,
 * once). Written under a temp name and renamed into place, so the output appears
 * complete or not at all. Flow ids are renumbered; references between flows (a CDN
 * download's `redirectFrom`) follow. A flow whose uuid is already in the output (the
 * same recording given twice) is not copied again.
 */

export interface MergeOptions {
  /** Replace an existing output. */
  force?: boolean;
  /** Notes: missing body files, duplicate flows. */
  report?: (line: string) => void;
}

export interface MergeSummary {
  out: string;
  inputs: Array<{ path: string; flows: number; sessions: number }>;
  flows: number;
  /** Flows skipped because their uuid was already in the output. */
  duplicates: number;
  bodies: {
    /** Distinct bodies in the output. */
    total: number;
    /** Body rows that were already there (deduplicated). */
    deduplicated: number;
    /** Body files hard-linked / copied into the output. */
    linked: number;
    copied: number;
    /** Body files an input references but does not have. */
    missing: number;
  };
}

function columns(rec: Recording, table: string): string[] {
  return (rec.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
}

function linkOrCopy(src: string, dest: string): 'linked' | 'copied' {
  try {
    fs.linkSync(src, dest);
    return 'linked';
  } catch {
    fs.copyFileSync(src, dest);
    fs.chmodSync(dest, 0o600);
    return 'copied';
  }
}

export async function mergeRecordings(inputs: string[], out: string, opts: MergeOptions = {}): Promise<MergeSummary> {
  const report = opts.report ?? (() => undefined);
  if (!inputs.length) throw new RegtapeError('bad-argument', 'nothing to merge: give at least one recording');
  const outPath = path.resolve(out);
  const outBlobs = blobDirFor(outPath);
  if (!opts.force && fs.existsSync(outPath)) throw new RegtapeError('recording-exists', `${out} already exists; use --force to replace it`);
  if (!opts.force && fs.existsSync(outBlobs) && fs.readdirSync(outBlobs).some((n) => n !== '.tmp' && n !== '.gitkeep')) {
    throw new RegtapeError('recording-exists', `${outBlobs} already exists; use --force to replace it`);
  }
  // Open every input first: a bad file is refused before anything is written.
  const sources = inputs.map((p) => Recording.open(p, { readonly: true }));
  const tmp = tempBeside(outPath, 'merging', '.db');
  let target: Recording | null = null;
  const summary: MergeSummary = { out: outPath, inputs: [], flows: 0, duplicates: 0, bodies: { total: 0, deduplicated: 0, linked: 0, copied: 0, missing: 0 } };
  try {
    target = Recording.open(tmp, { create: true });
    const t = target;
    const outFlowCols = new Set(columns(t, 'flows'));
    const insertSession = t.db.prepare('INSERT INTO sessions (started, ended, tool, options) VALUES (?, ?, ?, ?)');
    const insertBody = t.db.prepare('INSERT OR IGNORE INTO bodies (sha256, size, inline) VALUES (?, ?, ?)');
    const byUuid = t.db.prepare('SELECT id FROM flows WHERE uuid = ?');
    for (const [n, src] of sources.entries()) {
      const name = inputs[n]!;
      const cols = columns(src, 'flows').filter((c) => c !== 'id' && outFlowCols.has(c));
      const insertFlow = t.db.prepare(`INSERT INTO flows (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
      const stat = { path: name, flows: 0, sessions: 0 };
      t.db.exec('BEGIN');
      try {
        // Sessions, renumbered.
        const sessions = new Map<number, number>();
        for (const s of src.db.prepare('SELECT * FROM sessions ORDER BY id').all() as Array<{ id: number; started: number; ended: number | null; tool: string; options: string }>) {
          sessions.set(s.id, Number(insertSession.run(s.started, s.ended, s.tool, s.options).lastInsertRowid));
          stat.sessions++;
        }
        const sessionFor = (old: number): number => {
          let id = sessions.get(old);
          if (id === undefined) {
            // Flows written without a session row (store API used directly): give them one.
            id = Number(insertSession.run(Date.now(), null, 'merge', JSON.stringify({ from: path.basename(name), session: old })).lastInsertRowid);
            sessions.set(old, id);
          }
          return id;
        };
        // Bodies, deduplicated by digest.
        for (const b of src.db.prepare('SELECT sha256, size, inline FROM bodies').all() as Array<{ sha256: string; size: number; inline: Buffer | null }>) {
          if (b.inline === null) {
            const from = src.bodies.pathOf(b.sha256);
            const to = t.bodies.pathOf(b.sha256);
            if (!fs.existsSync(to)) {
              if (fs.existsSync(from)) summary.bodies[linkOrCopy(from, to)]++;
              else {
                summary.bodies.missing++;
                report(`${name}: body ${b.sha256} is referenced but missing from ${src.bodies.dir}; the merged recording references it too`);
              }
            }
          }
          if (insertBody.run(b.sha256, b.size, b.inline).changes === 0) summary.bodies.deduplicated++;
        }
        // Flows, in order; ids renumbered, references between them remapped.
        const ids = new Map<number, number>();
        const rows = src.db.prepare('SELECT * FROM flows ORDER BY id').all() as Array<Record<string, unknown> & { id: number; uuid: string; session: number; registry?: string | null }>;
        for (const row of rows) {
          const existing = byUuid.get(row.uuid) as { id: number } | undefined;
          if (existing) {
            ids.set(row.id, existing.id);
            summary.duplicates++;
            continue;
          }
          const values: Record<string, unknown> = {};
          for (const c of cols) values[c] = row[c];
          values.session = sessionFor(row.session);
          if (typeof row.registry === 'string' && outFlowCols.has('registry')) {
            const facts = JSON.parse(row.registry) as { redirectFrom?: number | null };
            if (typeof facts.redirectFrom === 'number') {
              facts.redirectFrom = ids.get(facts.redirectFrom) ?? null;
              values.registry = JSON.stringify(facts);
            }
          }
          ids.set(row.id, Number(insertFlow.run(values).lastInsertRowid));
          stat.flows++;
          summary.flows++;
        }
        t.db.exec('COMMIT');
      } catch (e) {
        if (t.db.inTransaction) t.db.exec('ROLLBACK');
        throw e;
      }
      summary.inputs.push(stat);
    }
    if (summary.duplicates) report(`${summary.duplicates} flows were already in the output (same uuid: a recording given twice?) and were not copied again`);
    summary.bodies.total = (t.db.prepare('SELECT count(*) AS n FROM bodies').get() as { n: number }).n;
    t.close();
    for (const s of sources) s.close();
    installRecording(tmp, outPath, { force: !!opts.force });
    return summary;
  } catch (e) {
    target?.close();
    for (const s of sources) s.close();
    removeRecordingFiles(tmp);
    throw e;
  }
}
