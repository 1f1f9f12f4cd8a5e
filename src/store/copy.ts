import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { BodyStore } from './body-store.js';

/** What copying one recording into another did. */
export interface CopyStats {
  flows: number;
  sessions: number;
  /** Flows skipped because their uuid was already in the target. */
  duplicates: number;
  /** Body rows that were already there (deduplicated). */
  bodiesDeduplicated: number;
  /** Body files hard-linked / copied into the target. */
  bodiesLinked: number;
  bodiesCopied: number;
  /** Body files the source references but does not have. */
  bodiesMissing: number;
}

interface Side {
  db: Database.Database;
  bodies: BodyStore;
}

function columns(db: Database.Database, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name);
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

/**
 * Append every session, body and flow of `src` to `dst` in one transaction: sessions
 * and flow ids renumbered, a CDN download's `redirectFrom` remapped, bodies stored once
 * (inline rows deduplicated, files hard-linked or copied), flows whose uuid `dst`
 * already has skipped. `name` labels the source in `report` lines.
 */
export function copyRecording(dst: Side, src: Side, name: string, report: (line: string) => void): CopyStats {
  const stats: CopyStats = { flows: 0, sessions: 0, duplicates: 0, bodiesDeduplicated: 0, bodiesLinked: 0, bodiesCopied: 0, bodiesMissing: 0 };
  const outCols = new Set(columns(dst.db, 'flows'));
  const cols = columns(src.db, 'flows').filter((c) => c !== 'id' && outCols.has(c));
  const insertSession = dst.db.prepare('INSERT INTO sessions (started, ended, tool, options) VALUES (?, ?, ?, ?)');
  const insertFlow = dst.db.prepare(`INSERT INTO flows (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
  dst.db.transaction(() => {
    const sessionFor = copySessions(src.db, insertSession, name, stats);
    copyBodies(dst, src, name, report, stats);
    const byUuid = dst.db.prepare('SELECT id FROM flows WHERE uuid = ?');
    const ids = new Map<number, number>();
    for (const row of src.db.prepare('SELECT * FROM flows ORDER BY id').iterate() as IterableIterator<Record<string, unknown> & { id: number; uuid: string; session: number; registry?: string | null }>) {
      const existing = byUuid.get(row.uuid) as { id: number } | undefined;
      if (existing) {
        ids.set(row.id, existing.id);
        stats.duplicates++;
        continue;
      }
      const values: Record<string, unknown> = {};
      for (const c of cols) values[c] = row[c];
      values.session = sessionFor(row.session);
      if (typeof row.registry === 'string' && outCols.has('registry')) values.registry = remapRedirect(row.registry, ids);
      ids.set(row.id, Number(insertFlow.run(values).lastInsertRowid));
      stats.flows++;
    }
  })();
  return stats;
}

function copySessions(src: Database.Database, insert: Database.Statement, name: string, stats: CopyStats): (old: number) => number {
  const sessions = new Map<number, number>();
  for (const s of src.prepare('SELECT * FROM sessions ORDER BY id').all() as Array<{ id: number; started: number; ended: number | null; tool: string; options: string }>) {
    sessions.set(s.id, Number(insert.run(s.started, s.ended, s.tool, s.options).lastInsertRowid));
    stats.sessions++;
  }
  return (old) => {
    let id = sessions.get(old);
    if (id === undefined) {
      // Flows written without a session row (store API used directly): give them one.
      id = Number(insert.run(Date.now(), null, 'merge', JSON.stringify({ from: path.basename(name), session: old })).lastInsertRowid);
      sessions.set(old, id);
    }
    return id;
  };
}

function copyBodies(dst: Side, src: Side, name: string, report: (line: string) => void, stats: CopyStats): void {
  const insertBody = dst.db.prepare('INSERT OR IGNORE INTO bodies (sha256, size, inline) VALUES (?, ?, ?)');
  for (const b of src.db.prepare('SELECT sha256, size, inline FROM bodies').iterate() as IterableIterator<{ sha256: string; size: number; inline: Buffer | null }>) {
    if (b.inline === null) {
      const from = src.bodies.pathOf(b.sha256);
      const to = dst.bodies.pathOf(b.sha256);
      if (!fs.existsSync(to)) {
        if (src.bodies.has(b.sha256)) stats[linkOrCopy(from, to) === 'linked' ? 'bodiesLinked' : 'bodiesCopied']++;
        else {
          stats.bodiesMissing++;
          report(`${name}: body ${b.sha256} is referenced but missing from ${src.bodies.dir}; the merged recording references it too`);
        }
      }
    }
    if (insertBody.run(b.sha256, b.size, b.inline).changes === 0) stats.bodiesDeduplicated++;
  }
}

/** A CDN download's `redirectFrom` follows its redirect's new id (null when that flow was not copied). */
function remapRedirect(registry: string, ids: ReadonlyMap<number, number>): string {
  let facts: { redirectFrom?: number | null };
  try {
    facts = JSON.parse(registry) as { redirectFrom?: number | null };
  } catch {
    return registry;
  }
  if (typeof facts.redirectFrom !== 'number') return registry;
  facts.redirectFrom = ids.get(facts.redirectFrom) ?? null;
  return JSON.stringify(facts);
}

/** One flow to copy by `copySelected`, with the marks and comment to give it. */
export interface FlowSelection {
  /** The flow's id in the source recording. */
  sourceId: number;
  marked: boolean;
  comment: string | null;
  /** A duplicate: stored as a new flow with its own uuid. */
  copy?: boolean;
}

type FlowRow = Record<string, unknown> & { id: number; session: number; registry: string | null; req_body_sha256: string | null; res_body_sha256: string | null };

/**
 * Copy chosen flows of `src` into `dst` in one transaction, in the order given, with
 * their marks and comments replaced; the sessions they belong to come along, bodies are
 * shared by content (inline rows copied, files hard-linked or copied). Returns how many
 * flows were written (ids `src` does not have are skipped).
 */
export function copySelected(dst: Side, src: Side, entries: readonly FlowSelection[]): number {
  const srcCols = new Set(columns(src.db, 'flows'));
  const cols = columns(dst.db, 'flows').filter((c) => c !== 'id');
  const insertFlow = dst.db.prepare(`INSERT INTO flows (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
  const insertSession = dst.db.prepare('INSERT INTO sessions (started, ended, tool, options) VALUES (?, ?, ?, ?)');
  const insertBody = dst.db.prepare('INSERT OR IGNORE INTO bodies (sha256, size, inline) VALUES (?, ?, ?)');
  const getFlow = src.db.prepare('SELECT * FROM flows WHERE id = ?');
  const getSession = src.db.prepare('SELECT started, ended, tool, options FROM sessions WHERE id = ?');
  const getBody = src.db.prepare('SELECT sha256, size, inline FROM bodies WHERE sha256 = ?');
  const sessions = new Map<number, number>();
  const ids = new Map<number, number>();
  const bodies = new Set<string>();
  const copyBody = (sha: string | null) => {
    if (!sha || bodies.has(sha)) return;
    bodies.add(sha);
    const b = getBody.get(sha) as { sha256: string; size: number; inline: Buffer | null } | undefined;
    if (!b) return;
    if (b.inline === null && src.bodies.has(sha) && !fs.existsSync(dst.bodies.pathOf(sha))) linkOrCopy(src.bodies.pathOf(sha), dst.bodies.pathOf(sha));
    insertBody.run(b.sha256, b.size, b.inline);
  };
  const sessionFor = (old: number): number => {
    let id = sessions.get(old);
    if (id === undefined) {
      const s = getSession.get(old) as { started: number; ended: number | null; tool: string; options: string } | undefined;
      id = Number(insertSession.run(s?.started ?? Date.now(), s?.ended ?? null, s?.tool ?? 'ui', s?.options ?? '{}').lastInsertRowid);
      sessions.set(old, id);
    }
    return id;
  };
  let n = 0;
  dst.db.transaction(() => {
    for (const e of entries) {
      const row = getFlow.get(e.sourceId) as FlowRow | undefined;
      if (!row) continue;
      copyBody(row.req_body_sha256);
      copyBody(row.res_body_sha256);
      const values: Record<string, unknown> = {};
      for (const c of cols) values[c] = srcCols.has(c) ? (row[c] ?? null) : null;
      values.session = sessionFor(row.session);
      values.marked = e.marked ? 1 : 0;
      values.comment = e.comment;
      if (e.copy) values.uuid = randomUUID();
      values.registry = row.registry === null ? null : remapRedirect(row.registry, ids);
      const id = Number(insertFlow.run(values).lastInsertRowid);
      if (!e.copy) ids.set(row.id, id);
      n++;
    }
  })();
  return n;
}
