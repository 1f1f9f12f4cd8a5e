import fs from 'node:fs';
import path from 'node:path';
import { loadRecording } from '../inspect/index.js';
import { buildReportModel, renderReport } from '../report/index.js';
import { Recording } from '../store/index.js';
import { safeText } from '../term/index.js';

/** Default output: NAME.report.html in the current directory for NAME.db. */
export function defaultReportPath(file: string): string {
  return `${path.basename(file).replace(/\.db$/, '')}.report.html`;
}

/**
 * `regtape report FILE.db [-o report.html] [--json]`: one self-contained HTML page (or its model as JSON
 * on stdout). The page is written to a temp file beside the target and renamed, so a failure leaves no
 * half-written report.
 */
export async function runReport(file: string, opts: { output?: string; json?: boolean }): Promise<void> {
  const rec = Recording.open(file, { readonly: true });
  let model;
  try {
    model = await buildReportModel(await loadRecording(rec), rec, file);
  } finally {
    rec.close();
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(model, null, 2)}\n`);
    return;
  }
  const out = path.resolve(opts.output ?? defaultReportPath(file));
  const html = renderReport(model);
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, html, { mode: 0o600 });
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  process.stderr.write(`wrote ${safeText(out)} (${(Buffer.byteLength(html) / 1000).toFixed(1)} kB, ${model.operations.length} operations, ${model.summary.problems} problems)\n`);
}
