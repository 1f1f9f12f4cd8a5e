import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The dependency rules of docs/ARCHITECTURE.md, checked on the source: a module imports
 * only from the modules listed here, and the pure ones never touch I/O.
 */
const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

const ALLOWED: Record<string, string[]> = {
  errors: [],
  term: [],
  flow: [],
  log: [],
  redact: ['flow'],
  registry: ['flow'],
  filter: ['flow'],
  ca: [],
  store: ['flow'],
  proxy: ['flow', 'log', 'ca'],
  pipeline: ['flow', 'redact', 'registry'],
  record: ['flow', 'log', 'proxy', 'redact', 'store', 'pipeline'],
  inspect: ['flow', 'registry', 'filter', 'store', 'pipeline'],
  replay: ['flow', 'log', 'ca', 'proxy', 'registry', 'store', 'filter', 'pipeline'],
  tui: ['flow', 'log', 'registry', 'filter', 'store', 'inspect', 'record', 'export', 'ca', 'proxy', 'redact', 'pipeline'],
  export: ['flow', 'registry', 'filter', 'store', 'inspect', 'redact', 'log', 'pipeline'],
  import: ['flow', 'registry', 'store', 'redact', 'log', 'export', 'inspect', 'pipeline'],
  diff: ['flow', 'registry', 'store', 'inspect', 'filter', 'pipeline'],
  report: ['flow', 'registry', 'store', 'inspect', 'pipeline'],
  cli: ['*'],
};
const PURE = new Set(['flow', 'redact', 'registry', 'filter', 'errors', 'term']);
const IO = /^node:(net|tls|http|https|fs|fs\/promises|child_process|dgram)$/;

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [path.join(dir, e.name)] : []));
}

function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/g), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
}

describe('architecture', () => {
  const all = files(SRC);
  it('finds the source', () => expect(all.length).toBeGreaterThan(20));

  it('only src/store/ speaks SQL: no prepare(, pragma(, exec(SQL) or better-sqlite3 elsewhere', () => {
    const sql = /\.prepare\(|\.pragma\(|\.exec\(\s*['"`]|from ['"]better-sqlite3['"]/;
    const offenders = all
      .filter((f) => !path.relative(SRC, f).startsWith(`store${path.sep}`))
      .flatMap((f) => fs.readFileSync(f, 'utf8').split('\n').map((line, i) => [`${path.relative(SRC, f)}:${i + 1}`, line] as const))
      .filter(([, line]) => sql.test(line))
      .map(([where, line]) => `${where}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });

  for (const file of all) {
    const rel = path.relative(SRC, file);
    const mod = rel.includes(path.sep) ? rel.split(path.sep)[0]! : '(root)';
    it(`${rel} respects the layering`, () => {
      const bad: string[] = [];
      for (const spec of imports(file)) {
        if (PURE.has(mod) && IO.test(spec)) bad.push(`${spec} (I/O in a pure module)`);
        if (!spec.startsWith('.')) continue;
        const target = path.relative(SRC, path.resolve(path.dirname(file), spec));
        const tmod = target.includes(path.sep) ? target.split(path.sep)[0]! : '(root)';
        if (tmod === mod) continue;
        if (tmod === 'errors' || tmod === 'term') continue; // L0, importable from everywhere: error catalogue, safe text
        if (mod === '(root)') continue; // src/index.ts re-exports the public API
        const allowed = ALLOWED[mod];
        if (!allowed) {
          bad.push(`module ${mod} is not in the architecture table`);
          continue;
        }
        if (!allowed.includes('*') && !allowed.includes(tmod)) bad.push(`${spec} (${mod} may not import ${tmod})`);
        if (!target.endsWith(`${path.sep}index.js`) && !target.endsWith(`${path.sep}index.ts`) && mod !== 'cli' && tmod !== '(root)') {
          bad.push(`${spec} (import ${tmod} through its index.ts)`);
        }
      }
      expect(bad).toEqual([]);
    });
  }
});
