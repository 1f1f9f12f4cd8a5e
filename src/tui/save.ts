import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { Recording } from '../store/index.js';

/**
 * `w` in the inspector: flows (all, marked, shown) into a new recording, with the
 * marks and comments made in the UI. A flow may be listed twice (`D` duplicates it):
 * the copy gets a fresh uuid. Bodies are shared by content: inline rows copied, body
 * files hard-linked (or copied, 0600). The caller writes to a temp name and installs
 * it, so the output appears complete or not at all; the source is only read.
 */
export interface SaveEntry {
  /** The flow's id in the source recording. */
  sourceId: number;
  marked: boolean;
  comment: string | null;
  /** A duplicate (D): stored as a new flow with its own uuid. */
  copy?: boolean;
}

function linkOrCopy(src: string, dest: string): void {
  try {
    fs.linkSync(src, dest);
  } catch {
    fs.copyFileSync(src, dest);
    fs.chmodSync(dest, 0o600);
  }
}

type Row = Record<string, unknown> & { id: number; session: number; registry: string | null; req_body_sha256: string | null; res_body_sha256: string | null };

/** Write `entries` from `src` into a new recording at `tmp` (which must not exist). Returns the number of flows written. */
export function writeFlows(src: Recording, tmp: string, entries: readonly SaveEntry[]): number {
  const out = Recording.open(tmp, { create: true });
  try {
    const db = out.db;
    const cols = (db.prepare('PRAGMA table_info(flows)').all() as Array<{ name: string }>).map((c) => c.name).filter((c) => c !== 'id');
    const srcCols = new Set((src.db.prepare('PRAGMA table_info(flows)').all() as Array<{ name: string }>).map((c) => c.name));
    const insertFlow = db.prepare(`INSERT INTO flows (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
    const insertSession = db.prepare('INSERT INTO sessions (started, ended, tool, options) VALUES (?, ?, ?, ?)');
    const insertBody = db.prepare('INSERT OR IGNORE INTO bodies (sha256, size, inline) VALUES (?, ?, ?)');
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
      if (b.inline === null && fs.existsSync(src.bodies.pathOf(sha)) && !fs.existsSync(out.bodies.pathOf(sha))) linkOrCopy(src.bodies.pathOf(sha), out.bodies.pathOf(sha));
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
    db.transaction(() => {
      for (const e of entries) {
        const row = getFlow.get(e.sourceId) as Row | undefined;
        if (!row) continue;
        copyBody(row.req_body_sha256);
        copyBody(row.res_body_sha256);
        const values: Record<string, unknown> = {};
        for (const c of cols) values[c] = srcCols.has(c) ? (row[c] ?? null) : null;
        values.session = sessionFor(row.session);
        values.marked = e.marked ? 1 : 0;
        values.comment = e.comment;
        if (e.copy) values.uuid = randomUUID();
        values.registry = remapRedirect(row.registry, ids);
        const id = Number(insertFlow.run(values).lastInsertRowid);
        if (!e.copy) ids.set(row.id, id);
        n++;
      }
    })();
    return n;
  } finally {
    out.close();
  }
}

/** A CDN download's `redirectFrom` follows its redirect's new id (null when that flow was not saved). */
function remapRedirect(registry: string | null, ids: ReadonlyMap<number, number>): string | null {
  if (!registry) return registry;
  try {
    const facts = JSON.parse(registry) as { redirectFrom?: number | null };
    if (typeof facts.redirectFrom !== 'number') return registry;
    facts.redirectFrom = ids.get(facts.redirectFrom) ?? null;
    return JSON.stringify(facts);
  } catch {
    return registry;
  }
}
