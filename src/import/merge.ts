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
    for (const [n, src] of sources.entries()) {
      const c = target.appendFrom(src, { name: inputs[n]!, report });
      summary.inputs.push({ path: inputs[n]!, flows: c.flows, sessions: c.sessions });
      summary.flows += c.flows;
      summary.duplicates += c.duplicates;
      summary.bodies.deduplicated += c.bodiesDeduplicated;
      summary.bodies.linked += c.bodiesLinked;
      summary.bodies.copied += c.bodiesCopied;
      summary.bodies.missing += c.bodiesMissing;
    }
    if (summary.duplicates) report(`${summary.duplicates} flows were already in the output (same uuid: a recording given twice?) and were not copied again`);
    summary.bodies.total = target.bodyCount();
    target.close();
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
