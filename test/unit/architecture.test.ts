import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The dependency rules of docs/ARCHITECTURE.md, read from its module table and checked on
 * the source: a module imports only what its row's "may import" cell allows (through the
 * other module's index.ts), the pure ones never touch I/O, there are no import cycles
 * (type-only imports included), and only src/store/ speaks SQL. Change the table, not this test.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = path.join(ROOT, 'src');
const DOC = fs.readFileSync(path.join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8');

interface Row {
  layer: number;
  modules: string[];
  mayImport: string;
}

/** The rows of the "Modules and layers" table: layer, modules (`src/x/` → x, `src/index.ts` → (root)), may-import cell. */
function tableRows(): Row[] {
  const section = DOC.split(/^## /m).find((x) => x.startsWith('Modules and layers'))!;
  return section
    .split('\n')
    .filter((l) => /^\| (L\d|—) \|/.test(l))
    .map((l) => {
      const cells = l.split('|').map((c) => c.trim());
      const modules = [...cells[2]!.matchAll(/`src\/([^`]+)`/g)].map((m) => (m[1] === 'index.ts' ? '(root)' : m[1]!.replace(/\/$/, '')));
      return { layer: cells[1] === '—' ? 99 : Number(cells[1]!.slice(1)), modules, mayImport: cells[cells.length - 2]! };
    });
}

const ROWS = tableRows();
const UNIVERSAL = new Set(ROWS.filter((r) => /importable from every module/.test(r.mayImport)).flatMap((r) => r.modules));

/** A may-import cell as module names: `flow, log, ca (types)`, `L0–L3, export`, `everything`, `—`. */
function allowedBy(cell: string): string[] {
  if (/^everything/.test(cell)) return ['*'];
  if (/^—/.test(cell)) return [];
  return cell.split(',').flatMap((part) => {
    const p = part.replace(/\(.*?\)/g, '').trim();
    const range = /^L(\d)[–-]L(\d)$/.exec(p);
    if (range) return ROWS.filter((r) => r.layer >= Number(range[1]) && r.layer <= Number(range[2])).flatMap((r) => r.modules);
    return [p];
  });
}

const ALLOWED: Record<string, string[]> = Object.fromEntries(ROWS.flatMap((r) => r.modules.map((m) => [m, allowedBy(r.mayImport)])));
const rulesLine = DOC.split('\n').find((l) => l.startsWith('Rules'))!;
const PURE = new Set([...rulesLine.split('never touch')[0]!.matchAll(/`([a-z]+)`/g)].map((m) => m[1]!));
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

  it('reads the table: every module of src/ has a row, and the pure ones are named', () => {
    const mods = new Set(all.map((f) => path.relative(SRC, f)).map((r) => (r.includes(path.sep) ? r.split(path.sep)[0]! : '(root)')));
    expect([...mods].filter((m) => !ALLOWED[m])).toEqual([]);
    expect([...PURE].sort()).toEqual(['errors', 'filter', 'flow', 'redact', 'registry', 'term']);
    expect(ALLOWED.record).toContain('pipeline');
    expect(ALLOWED.tui).toContain('inspect'); // from a layer range
  });

  // File → files it imports (static, dynamic and type-only), resolved to .ts/.tsx.
  const graph = new Map<string, string[]>();
  for (const file of all) {
    const deps: string[] = [];
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const base = path.resolve(path.dirname(file), spec).replace(/\.js$/, '');
      const hit = [`${base}.ts`, `${base}.tsx`].find((p) => fs.existsSync(p));
      if (hit) deps.push(hit);
    }
    graph.set(file, deps);
  }

  it('has no import cycle between modules (type-only imports included)', () => {
    const modOf = (f: string) => {
      const r = path.relative(SRC, f);
      return r.includes(path.sep) ? r.split(path.sep)[0]! : '(root)';
    };
    const edges = new Map<string, Set<string>>();
    for (const [f, deps] of graph) for (const d of deps) if (modOf(f) !== modOf(d)) (edges.get(modOf(f)) ?? edges.set(modOf(f), new Set()).get(modOf(f))!).add(modOf(d));
    expect(cycles(edges)).toEqual([]);
  });

  it('has no import cycle between files, except the ones listed here to be untangled', () => {
    const edges = new Map([...graph].map(([f, deps]) => [path.relative(SRC, f), new Set(deps.map((d) => path.relative(SRC, d)))]));
    // Known cycles inside one module (their owners split a file and left a back reference); this list may only shrink.
    const KNOWN = [
      ['registry/operation-tree.ts', 'registry/operations.ts', 'registry/problems.ts'],
      ['tui/commands.ts', 'tui/edit-commands.ts', 'tui/help.ts', 'tui/keymap.ts'],
    ].map((c) => c.map((f) => f.split('/').join(path.sep)).join(' '));
    const found = cycles(edges).map((c) => c.join(' '));
    expect(found.filter((c) => !KNOWN.includes(c))).toEqual([]);
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
        if (UNIVERSAL.has(tmod)) continue; // L0, importable from everywhere: error catalogue, safe text
        const allowed = ALLOWED[mod];
        if (!allowed) {
          bad.push(`module ${mod} is not in the architecture table`);
          continue;
        }
        if (!allowed.includes('*') && !allowed.includes(tmod)) bad.push(`${spec} (${mod} may not import ${tmod})`);
        if (!target.endsWith(`${path.sep}index.js`) && !target.endsWith(`${path.sep}index.ts`) && mod !== 'cli' && mod !== '(root)' && tmod !== '(root)') {
          bad.push(`${spec} (import ${tmod} through its index.ts)`);
        }
      }
      expect(bad).toEqual([]);
    });
  }
});

/** Strongly connected components with more than one node (Tarjan), each sorted, as a sorted list. */
function cycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      for (let w = stack.pop()!; ; w = stack.pop()!) {
        on.delete(w);
        comp.push(w);
        if (w === v) break;
      }
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}
