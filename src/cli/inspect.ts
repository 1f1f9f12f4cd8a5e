import { FilterSyntaxError, parseFilter, type Filter } from '../filter/index.js';
import { filterSubject, flowJson, flowLine, loadRecording, renderShow, styleFor } from '../inspect/index.js';
import { Recording } from '../store/index.js';

function compile(expr: string | undefined): Filter | null {
  if (!expr) return null;
  try {
    return parseFilter(expr);
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new Error(`${e.message}\n(see \`regtape flows --help\` for the filter language)`);
    throw e;
  }
}

/** `regtape show FILE.db`: operations (pulls and pushes) and their flows. */
export async function runShow(file: string, opts: { flows?: boolean; filter?: string }): Promise<void> {
  const rec = Recording.open(file, { readonly: true });
  try {
    const loaded = await loadRecording(rec);
    const filter = compile(opts.filter);
    if (filter) {
      const keep = new Set(loaded.flows.filter((f) => filter(filterSubject(f, rec))).map((f) => f.id));
      loaded.flows = loaded.flows.filter((f) => keep.has(f.id));
      loaded.operations = loaded.operations.filter((op) => op.flowIds.some((id) => keep.has(id)));
      for (const op of loaded.operations) op.flowIds = op.flowIds.filter((id) => keep.has(id));
    }
    process.stdout.write(`${renderShow(loaded, styleFor(process.stdout), { flows: opts.flows })}\n`);
  } finally {
    rec.close();
  }
}

/** `regtape flows FILE.db [--filter EXPR] [--json]`. */
export async function runFlows(file: string, opts: { filter?: string; json?: boolean }): Promise<void> {
  const filter = compile(opts.filter);
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
