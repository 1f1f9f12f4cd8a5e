import { FilterSyntaxError, parseFilter, type Filter } from '../filter/index.js';
import { filterSubject, flowJson, flowLine, loadRecording, renderShow, showDocument, styleFor, VERIFY_SCHEMA, type VerifyDocument } from '../inspect/index.js';
import { safeText } from '../term/index.js';
import { Recording } from '../store/index.js';
import { RegtapeError } from '../errors/index.js';

/** A --filter option compiled, or a bad-filter error pointing at the place and at the help. */
export function compileFilterOption(expr: string | undefined): Filter | null {
  if (!expr) return null;
  try {
    return parseFilter(expr);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new RegtapeError('bad-filter', `--filter: ${e.message}\n(see \`regtape flows --help\` for the filter language)`, { cause: e });
    throw e;
  }
}

/** `regtape show FILE.db`: operations (pulls and pushes) and their flows. */
export async function runShow(file: string, opts: { flows?: boolean; filter?: string; json?: boolean }): Promise<void> {
  const rec = Recording.open(file, { readonly: true });
  try {
    const loaded = await loadRecording(rec);
    const filter = compileFilterOption(opts.filter);
    if (filter) {
      const keep = new Set(loaded.flows.filter((f) => filter(filterSubject(f, rec))).map((f) => f.id));
      loaded.flows = loaded.flows.filter((f) => keep.has(f.id));
      loaded.operations = loaded.operations.filter((op) => op.flowIds.some((id) => keep.has(id)));
      for (const op of loaded.operations) op.flowIds = op.flowIds.filter((id) => keep.has(id));
    }
    if (opts.json) process.stdout.write(`${JSON.stringify(showDocument(loaded, file), null, 2)}\n`);
    else process.stdout.write(`${renderShow(loaded, styleFor(process.stdout), { flows: opts.flows })}\n`);
  } finally {
    rec.close();
  }
}

/** `regtape flows FILE.db [--filter EXPR] [--json]`. */
export async function runFlows(file: string, opts: { filter?: string; json?: boolean }): Promise<void> {
  const filter = compileFilterOption(opts.filter);
  const rec = Recording.open(file, { readonly: true });
  try {
    const { flows } = await loadRecording(rec);
    const st = styleFor(process.stdout);
    for (const f of flows) {
      if (filter && !filter(filterSubject(f, rec))) continue;
      const line = opts.json ? JSON.stringify(flowJson(f)) : flowLine(f, st);
      if (!process.stdout.write(`${line}\n`)) await new Promise((r) => process.stdout.once('drain', r));
    }
  } finally {
    rec.close();
  }
}

/**
 * `regtape verify FILE.db`: re-hash every stored body (streaming) and check it against its
 * name, that every body a flow references is present, and the database's integrity.
 * Exit status 1 if anything is wrong.
 */
export async function runVerify(file: string, opts: { json?: boolean } = {}): Promise<void> {
  const { createHash } = await import('node:crypto');
  const rec = Recording.open(file, { readonly: true });
  const problems: VerifyDocument['problems'] = [];
  let integrityText = 'ok';
  let bodies = 0;
  let bytes = 0;
  try {
    const integrity = rec.integrityProblems();
    integrityText = integrity.length ? integrity.join('; ') : 'ok';
    for (const p of integrity) problems.push({ flowId: null, side: null, sha256: null, message: `integrity_check: ${p}` });
    const seen = new Set<string>();
    for (const f of rec.iterate()) {
      for (const [side, b] of [['request', f.requestBody], ['response', f.responseBody]] as const) {
        if (!b?.sha256 || seen.has(b.sha256)) continue;
        seen.add(b.sha256);
        if (!rec.hasBody(b.sha256)) {
          problems.push({ flowId: f.id, side, sha256: b.sha256, message: `flow ${f.id}: ${side} body ${b.sha256} is missing` });
          continue;
        }
        const h = createHash('sha256');
        let n = 0;
        try {
          // verify: false — this command reports mismatches itself (links are still never followed).
          for await (const c of rec.readBody(b.sha256, undefined, { verify: false })) {
            h.update(c as Buffer);
            n += (c as Buffer).length;
          }
        } catch (e) {
          problems.push({ flowId: f.id, side, sha256: b.sha256, message: `flow ${f.id}: ${side} body ${b.sha256}: ${(e as Error).message}` });
          continue;
        }
        bodies++;
        bytes += n;
        const got = h.digest('hex');
        if (got !== b.sha256) problems.push({ flowId: f.id, side, sha256: b.sha256, message: `flow ${f.id}: ${side} body ${b.sha256} hashes to ${got}` });
        if (n !== b.size) problems.push({ flowId: f.id, side, sha256: b.sha256, message: `flow ${f.id}: ${side} body ${b.sha256} has ${n} bytes, expected ${b.size}` });
      }
    }
  } finally {
    rec.close();
  }
  if (opts.json) {
    const doc: VerifyDocument = { schema: VERIFY_SCHEMA, recording: file, ok: problems.length === 0, bodies, bytes, integrity: integrityText, problems };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    for (const p of problems) process.stdout.write(`problem: ${safeText(p.message)}\n`);
    process.stdout.write(`${safeText(file)}: ${bodies} bodies (${bytes} bytes) re-hashed, ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
  }
  if (problems.length) throw new RegtapeError('verify-failed', `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} (listed above); the recording does not check out`);
}
