import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERRORS, EXIT, formatError, RegtapeError } from '../../src/errors/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const doc = fs.readFileSync(path.join(root, 'docs/ERRORS.md'), 'utf8');

/** Rows of the markdown table that follows `heading`. */
function table(heading: string): string[][] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(heading));
  if (!section) throw new Error(`docs/ERRORS.md has no "## ${heading}" section`);
  return section
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-| ]+\|$/.test(l))
    .slice(1)
    .map((l) => l.slice(1, -1).split(' | ').map((c) => c.trim()));
}

describe('docs/ERRORS.md', () => {
  it('lists every code of the ERRORS catalogue, with its exit status and description, and no other', () => {
    const rows = table('Codes');
    const documented = Object.fromEntries(rows.map(([code, exit, when]) => [code!.replace(/`/g, ''), { exit: Number.parseInt(exit!, 10), doc: when }]));
    const catalogue = Object.fromEntries(Object.entries(ERRORS).map(([code, spec]) => [code, { exit: spec.exit, doc: spec.doc }]));
    expect(documented).toEqual(catalogue);
  });

  it('documents every exit status', () => {
    const statuses = table('Exit statuses').map(([status, name]) => [Number(status), name]);
    for (const [name, status] of Object.entries(EXIT)) expect(statuses).toContainEqual([status, name]);
  });
});

describe('formatError', () => {
  it('prints a RegtapeError as regtape: <code>: <sentence> with its exit status', () => {
    expect(formatError(new RegtapeError('bad-map', '--map x: expected HOST=ADDR:PORT'))).toEqual({ line: 'regtape: bad-map: --map x: expected HOST=ADDR:PORT', exitCode: 2 });
  });
  it('maps system errors and marks anything else as internal', () => {
    const enospc = Object.assign(new Error('ENOSPC'), { code: 'ENOSPC', path: '/x.db' });
    expect(formatError(enospc)).toMatchObject({ line: expect.stringMatching(/^regtape: no-space: \/x\.db: no space/), exitCode: 3 });
    expect(formatError(new TypeError('oops'))).toMatchObject({ line: expect.stringMatching(/^regtape: internal: oops/), exitCode: 70 });
  });
});
