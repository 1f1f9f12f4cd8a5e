/**
 * Class 7: secrets still stored. Every case of the redaction corpus (corpus/redaction.json)
 * goes through the real recorder; afterwards no secret may be found anywhere on disk — the
 * database, its WAL, every body file, also after undoing any compression — nor in the
 * recorder's -v log. Grow the corpus with every secret found.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger, startLab, type Lab } from './support.js';

interface Side {
  method?: string;
  headers?: Array<[string, string]>;
  type?: string;
  body?: string;
  query?: string;
  status?: number;
  encodings?: string[];
  header_encoding?: string;
}
interface Case {
  name: string;
  request: Side;
  response?: Side;
  secrets: string[];
  kept?: string[];
  unreachable?: boolean;
}

const corpus = JSON.parse(fs.readFileSync(path.join(__dirname, 'corpus', 'redaction.json'), 'utf8')) as { cases: Case[] };
const expand = (s: string) => s.replace(/\{\{PAD:(\d+)\}\}/g, (_m, n: string) => 'p'.repeat(Number(n)));

let lab: Lab;
const log = memoryLogger();
let stored: string;

/** `b` and every decompression of it (gzip, deflate, brotli; nested), as latin1 text. */
function views(b: Buffer, depth = 0): string[] {
  const out = [b.toString('latin1')];
  if (depth > 4 || b.length < 2) return out;
  for (const f of [zlib.gunzipSync, zlib.inflateSync, zlib.brotliDecompressSync]) {
    try {
      out.push(...views(f(b), depth + 1));
    } catch {
      // not this encoding
    }
  }
  return out;
}

beforeAll(async () => {
  lab = await startLab(
    ['registry.test'],
    (req, res) => {
      const c = corpus.cases[Number(/^\/case\/(\d+)/.exec(req.url ?? '')?.[1])];
      const r = c?.response ?? {};
      let body = Buffer.from(expand(r.body ?? 'ok'));
      for (const e of r.encodings ?? []) body = e === 'gzip' ? zlib.gzipSync(body) : zlib.deflateSync(body);
      const headers: Array<[string, string]> = [...(r.headers ?? []), ['Content-Length', String(body.length)]];
      if (r.type) headers.push(['Content-Type', r.type]);
      if (r.header_encoding) headers.push(['Content-Encoding', r.header_encoding]);
      res.writeHead(r.status ?? 200, headers.flat());
      res.end(body);
    },
    { verbose: true },
    log,
  );
  const dispatcher = new ProxyAgent({ uri: lab.session.proxy.url, requestTls: { ca: fs.readFileSync(lab.caPath) } });
  for (const [i, c] of corpus.cases.entries()) {
    const q = c.request;
    const headers: string[] = (q.headers ?? []).flat();
    if (q.type) headers.push('content-type', q.type);
    const host = c.unreachable ? 'unreachable.invalid' : 'registry.test';
    const r = await request(`https://${host}/case/${i}${q.query ? `?${q.query}` : ''}`, { dispatcher, method: (q.method ?? 'GET') as 'GET', headers, body: q.body ? expand(q.body) : undefined });
    await r.body.arrayBuffer();
  }
  await dispatcher.close();
  await lab.session.stop();
  const dir = path.dirname(lab.session.recording.path);
  const parts: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/^r\.(db|db-wal|blobs)/.test(path.relative(dir, p))) parts.push(...views(fs.readFileSync(p)));
    }
  };
  walk(dir);
  // Inline bodies inside the database (compressed ones too).
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(lab.session.recording.path, { readonly: true });
  for (const row of db.prepare('SELECT inline FROM bodies WHERE inline IS NOT NULL').all() as Array<{ inline: Buffer }>) parts.push(...views(row.inline));
  db.close();
  stored = parts.join('\n');
}, 120_000);
afterAll(async () => lab?.close());

describe('class 7: secrets are redacted by default', () => {
  for (const c of corpus.cases) {
    it(c.name, () => {
      for (const s of c.secrets) {
        expect(stored.includes(s), `on disk: ${s}`).toBe(false);
        expect(log.lines.find((l) => l.includes(s)), `in the log: ${s}`).toBeUndefined();
      }
      if (c.unreachable) expect(log.lines.some((l) => l.startsWith('debug:') && l.includes('unreachable.invalid/case/'))).toBe(true);
      for (const k of c.kept ?? []) expect(stored.includes(k), `kept: ${k}`).toBe(true);
    });
  }
});
