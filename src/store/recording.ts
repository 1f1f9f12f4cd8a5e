import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import type { BodyRef, FlowFacts, FlowRecord, FlowState, HeaderList, RegistryFacts } from '../flow/index.js';
import { assertSafeDir, BodyStore, INLINE_LIMIT, type BodyReadOptions, type CapturedBody } from './body-store.js';
import { createHash } from 'node:crypto';
import { checkedHeaders, checkedObject, flowRowProblem } from './row-check.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { copyRecording, copySelected, type CopyStats, type FlowSelection } from './copy.js';
import { fromSystemError, RegtapeError } from '../errors/index.js';

/** NAME.db → NAME.blobs (any other name: NAME.blobs beside it). */
export function blobDirFor(dbPath: string): string {
  return dbPath.endsWith('.db') ? `${dbPath.slice(0, -3)}.blobs` : `${dbPath}.blobs`;
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Look at a file without changing it: is it a regtape recording we can open?
 * Returns its schema version (0 for an empty file).
 */
export function inspectFile(dbPath: string): { version: number } {
  let fd: number;
  try {
    fd = fs.openSync(dbPath, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new RegtapeError('recording-not-found', `${dbPath}: no such recording`);
    throw new RegtapeError('recording-not-found', `${dbPath}: ${err.message}`);
  }
  const head = Buffer.alloc(100);
  const n = fs.readSync(fd, head, 0, 100, 0);
  fs.closeSync(fd);
  if (n === 0) return { version: 0 };
  if (n < 100 || !head.subarray(0, 16).equals(SQLITE_MAGIC)) {
    throw new RegtapeError('recording-not-sqlite', `${dbPath} is not a regtape recording (not an SQLite database); left untouched`);
  }
  // Header fields (sqlite.org/fileformat.html §1.3): user_version at 60, application_id at 68.
  const userVersion = head.readUInt32BE(60);
  const appId = head.readUInt32BE(68);
  if (appId !== APPLICATION_ID) {
    throw new RegtapeError('recording-not-regtape', `${dbPath} is an SQLite database but not a regtape recording (application_id ${appId}); left untouched`);
  }
  if (userVersion > SCHEMA_VERSION) {
    throw new RegtapeError('recording-newer-schema',
      `${dbPath} was written by a newer regtape (schema ${userVersion}; this regtape reads up to ${SCHEMA_VERSION}); upgrade regtape to open it. The file was left untouched`,
    );
  }
  return { version: userVersion };
}

export interface OpenOptions {
  /** Open for reading only; never migrates or writes. */
  readonly?: boolean;
  /** Create the file if missing (record). */
  create?: boolean;
  /**
   * With `readonly`: leave no trace (the default for read-only opens; `untouched: false` opens in place). SQLite opening a WAL-mode file read-only creates
   * `-wal` and `-shm` beside it and, read-only, cannot remove them. When no `-wal` is
   * there (no writer: a cleanly closed recording):
   *  - up to UNTOUCHED_MEMORY_MAX bytes, the file is read into memory: nothing is
   *    created beside it at any time;
   *  - larger files are opened in place (reading 100k flows into memory would cost
   *    seconds), and the empty `-wal` and the `-shm` SQLite created are removed again
   *    on close, unless another connection holds a lock on them (Linux: /proc/locks).
   * With a `-wal` present (a recorder is writing) the file is opened read-only in
   * place and sees new commits (`regtape ui --follow`). The file's bytes never change.
   */
  untouched?: boolean;
  /** Untouched: the size up to which the file is read into memory (default UNTOUCHED_MEMORY_MAX). */
  memoryMax?: number;
}

/** Recordings up to this size are read into memory by an untouched open. */
export const UNTOUCHED_MEMORY_MAX = 16 << 20;

/** SQLite header bytes 18/19 (read/write format versions): 2 means WAL. */
function isWalFile(head: Buffer): boolean {
  return head.length >= 20 && (head[18] === 2 || head[19] === 2);
}

/** The database file as an in-memory image (header set to rollback-journal format). */
function memoryImage(p: string): Buffer {
  const buf = fs.readFileSync(p);
  if (isWalFile(buf)) {
    buf[18] = 1;
    buf[19] = 1;
  }
  return buf;
}

/**
 * Open the SQLite file: in place, or (read-only, untouched, no -wal) as an in-memory
 * image; `sideFiles` says whether the -wal/-shm SQLite may create should go on close.
 */
function openDb(p: string, opts: OpenOptions): { db: Database.Database; sideFiles: boolean } {
  if (opts.readonly && opts.untouched !== false && !fs.existsSync(`${p}-wal`)) {
    const fd = fs.openSync(p, 'r');
    const head = Buffer.alloc(20);
    const n = fs.readSync(fd, head, 0, 20, 0);
    const size = fs.fstatSync(fd).size;
    fs.closeSync(fd);
    if (n > 0 && isWalFile(head)) {
      if (size <= (opts.memoryMax ?? UNTOUCHED_MEMORY_MAX)) return { db: new Database(memoryImage(p), { readonly: true }), sideFiles: false };
      return { db: new Database(p, { readonly: true, fileMustExist: true }), sideFiles: !fs.existsSync(`${p}-shm`) };
    }
  }
  return { db: new Database(p, { readonly: !!opts.readonly, fileMustExist: true }), sideFiles: false };
}

/**
 * After an untouched read-only connection closed: remove the -wal (only if empty:
 * nothing to lose) and -shm SQLite created, unless another process holds a lock on the
 * -shm (every SQLite connection to a WAL database does). Linux only (/proc/locks);
 * elsewhere they stay.
 */
function removeSideFiles(p: string): void {
  const wal = `${p}-wal`;
  const shm = `${p}-shm`;
  try {
    if (process.platform !== 'linux' || fs.statSync(wal).size !== 0) return;
    const ino = fs.statSync(shm).ino;
    const locked = fs
      .readFileSync('/proc/locks', 'utf8')
      .split('\n')
      .some((l) => l.split(/\s+/).some((f) => /^[0-9a-f]+:[0-9a-f]+:\d+$/.test(f) && Number(f.split(':')[2]) === ino));
    if (locked) return;
    fs.rmSync(wal, { force: true });
    fs.rmSync(shm, { force: true });
  } catch {
    // gone already, or unreadable: leave them
  }
}

/**
 * The columns of a flow a list needs (no headers, no facts JSON except registry):
 * cheap enough to read 100k of them at once.
 */
export interface FlowSummaryRow {
  id: number;
  state: FlowState;
  scheme: 'http' | 'https';
  host: string;
  port: number;
  method: string;
  target: string;
  http_version: string;
  status: number | null;
  reason: string | null;
  res_http_version: string | null;
  t_start: number;
  t_first_byte: number | null;
  t_end: number | null;
  req_bytes: number;
  res_bytes: number;
  error: string | null;
  registry: string | null;
  marked: number;
  comment: string | null;
}

interface FlowRow extends FlowSummaryRow {
  uuid: string;
  session: number;
  req_headers: string;
  req_body_sha256: string | null;
  req_body_size: number | null;
  req_body_redacted: number;
  res_headers: string | null;
  res_body_sha256: string | null;
  res_body_size: number | null;
  res_body_redacted: number;
  t_connect: number | null;
  t_tls: number | null;
  t_request_sent: number | null;
  client_addr: string | null;
  server_addr: string | null;
  facts: string;
}

const INSERT_FLOW = `INSERT INTO flows (uuid, session, state, scheme, host, port, method, target, http_version, req_headers, t_start, client_addr, facts)
        VALUES (@uuid, @session, 'open', @scheme, @host, @port, @method, @target, @http_version, @req_headers, @t_start, @client_addr, '{}')`;

const FINISH_FLOW = `UPDATE flows SET state=@state, req_headers=@req_headers, target=@target,
        req_body_sha256=@req_body_sha256, req_body_size=@req_body_size, req_body_redacted=@req_body_redacted,
        status=@status, reason=@reason, res_http_version=@res_http_version, res_headers=@res_headers,
        res_body_sha256=@res_body_sha256, res_body_size=@res_body_size, res_body_redacted=@res_body_redacted,
        t_connect=@t_connect, t_tls=@t_tls, t_request_sent=@t_request_sent, t_first_byte=@t_first_byte, t_end=@t_end,
        server_addr=@server_addr, error=@error, req_bytes=@req_bytes, res_bytes=@res_bytes, facts=@facts, registry=@registry WHERE id=@id`;

const INSERT_BODY = 'INSERT OR IGNORE INTO bodies (sha256, size, inline) VALUES (?, ?, ?)';
const GET_BODY = 'SELECT size, inline FROM bodies WHERE sha256 = ?';

const SUMMARY_COLUMNS =
  'id, state, scheme, host, port, method, target, http_version, status, reason, res_http_version, t_start, t_first_byte, t_end, req_bytes, res_bytes, error, registry, marked, comment';

/** One run of record, import or merge. */
export interface SessionRow {
  id: number;
  started: number;
  ended: number | null;
  tool: string;
  options: Record<string, unknown>;
  flows: number;
}

/** A body ready to be referenced by a flow: placed on disk, or to be stored inline. */
export interface StoredBody {
  ref: BodyRef;
  /** Bytes to store inside the database (small bodies). */
  inline?: Buffer;
}

/**
 * A recording: NAME.db (SQLite, WAL) plus NAME.blobs/ (content-addressed body files).
 * Copying both moves the recording.
 *
 * Write order guarantees: body files are renamed into place before the transaction
 * that makes a flow reference them commits, so a committed flow never points to a
 * missing body. A flow row is inserted when its request head arrives (state 'open')
 * so a crash leaves it visible as incomplete, with its byte counts as last updated.
 */
export class Recording {
  readonly bodies: BodyStore;
  readonly readonly: boolean;
  private readonly db: Database.Database;
  private sessionId = 0;
  /** Prepared statements by SQL text: each prepared once, on first use. */
  private readonly statements = new Map<string, Database.Statement>();
  /** Inline bodies whose digest was checked in this process. */
  private readonly inlineChecked = new Set<string>();

  private constructor(
    readonly path: string,
    db: Database.Database,
    readonly: boolean,
  ) {
    this.db = db;
    this.readonly = readonly;
    this.bodies = new BodyStore(blobDirFor(path));
  }

  private st(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /**
   * Open for reading only, leaving no trace: no -wal/-shm/-journal file is created and
   * no byte changes (`untouched`, the default for every read-only open: a WAL-mode file
   * with no -wal beside it is read as an in-memory image; one with a -wal, which a
   * recorder is writing, is read in place).
   */
  static openReadOnly(dbPath: string): Recording {
    return Recording.open(dbPath, { readonly: true });
  }

  /** Open (and with `create`, create) a recording. Bad files are refused untouched. */
  static open(dbPath: string, opts: OpenOptions = {}): Recording {
    const p = path.resolve(dbPath);
    const exists = fs.existsSync(p);
    if (!exists && !opts.create) throw new RegtapeError('recording-not-found', `${dbPath}: no such recording`);
    if (exists) {
      try {
        inspectFile(p);
      } catch (e) {
        throw fromSystemError(e, dbPath); // EISDIR, EACCES: a sentence naming the path
      }
    }
    // A body store that is a symlink, a file or someone else's is refused before anything is read from it.
    assertSafeDir(blobDirFor(p));
    assertSafeDir(path.join(blobDirFor(p), '.tmp'), 'temporary directory');
    if (!exists) {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      // Recordings hold traffic: owner-only from the first byte (SQLite gives -wal/-shm the same mode).
      fs.closeSync(fs.openSync(p, 'wx', 0o600));
    }
    let db: Database.Database;
    let sideFiles = false;
    try {
      const opened = openDb(p, opts);
      db = opened.db;
      sideFiles = opened.sideFiles;
      db.pragma('busy_timeout = 5000');
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        migrate(db);
        // Flows left open by a recorder that died: they will never end now.
        db.prepare("UPDATE flows SET state = 'aborted', error = coalesce(error, 'incomplete: the recorder stopped before this flow ended') WHERE state = 'open'").run();
      }
      // Touch the schema so corruption surfaces here, not later.
      db.prepare('SELECT count(*) FROM flows WHERE id < 0').get();
    } catch (e) {
      if (e instanceof RegtapeError) throw e;
      throw new RegtapeError('recording-corrupt', `${dbPath}: cannot read the recording (${(e as Error).message}); run \`sqlite3 ${dbPath} "PRAGMA integrity_check"\``);
    }
    const rec = new Recording(p, db, !!opts.readonly);
    rec.removeSideFiles = sideFiles;
    if (!opts.readonly) rec.bodies.init();
    return rec;
  }

  /**
   * Switch a closed recording to rollback-journal mode (a committed fixture: a read-only
   * open of a WAL file leaves empty -wal/-shm files beside it). Opening it for writing
   * switches it back to WAL.
   */
  static useRollbackJournal(dbPath: string): void {
    inspectFile(dbPath);
    const db = new Database(dbPath, { fileMustExist: true });
    try {
      db.pragma('journal_mode = DELETE');
    } finally {
      db.close();
    }
  }

  /** Start a recording session (one run of `regtape record`). */
  beginSession(tool: string, options: Record<string, unknown> = {}): number {
    const r = this.st('INSERT INTO sessions (started, tool, options) VALUES (?, ?, ?)').run(Date.now(), tool, JSON.stringify(options));
    this.sessionId = Number(r.lastInsertRowid);
    return this.sessionId;
  }

  /** Insert a flow whose request head just arrived; returns its id. Headers must already be redacted. */
  insertOpenFlow(f: Pick<FlowRecord, 'uuid' | 'request' | 'timings' | 'clientAddr'>): number {
    const r = this.st(INSERT_FLOW).run({
      uuid: f.uuid,
      session: this.sessionId,
      scheme: f.request.scheme,
      host: f.request.host,
      port: f.request.port,
      method: f.request.method,
      target: f.request.target,
      http_version: f.request.httpVersion,
      req_headers: JSON.stringify(f.request.headers),
      t_start: f.timings.start,
      client_addr: f.clientAddr,
    });
    return Number(r.lastInsertRowid);
  }

  /** Record how many body bytes have passed so far (live view, crash forensics). */
  updateProgress(id: number, requestBytes: number, responseBytes: number): void {
    this.st('UPDATE flows SET req_bytes = ?, res_bytes = ? WHERE id = ?').run(requestBytes, responseBytes, id);
  }

  /**
   * Store a body captured by a tap: big ones are renamed into NAME.blobs/ now (before
   * any flow can reference them), small ones are returned for inline storage.
   */
  async storeBody(body: CapturedBody, redacted: boolean): Promise<StoredBody | null> {
    if (body.size === 0) return null;
    if (body.tmpFile) {
      await this.bodies.placeFile(body);
      return { ref: { sha256: body.sha256, size: body.size, redacted } };
    }
    const buf = body.buffer!;
    if (buf.length > INLINE_LIMIT) {
      await this.bodies.placeBuffer(body.sha256, buf);
      return { ref: { sha256: body.sha256, size: body.size, redacted } };
    }
    return { ref: { sha256: body.sha256, size: body.size, redacted }, inline: buf };
  }

  /** Commit a finished flow (already redacted) and its inline bodies in one transaction. */
  finishFlow(f: FlowRecord, reqBody: StoredBody | null, resBody: StoredBody | null): void {
    this.db.transaction(() => {
      for (const b of [reqBody, resBody]) {
        if (!b?.ref.sha256) continue;
        this.st(INSERT_BODY).run(b.ref.sha256, b.ref.size, b.inline ?? null);
      }
      this.st(FINISH_FLOW).run({
        id: f.id,
        state: f.state,
        target: f.request.target,
        req_headers: JSON.stringify(f.request.headers),
        // No body stored although bytes passed (the disk refused it): unknown, not "empty".
        req_body_sha256: reqBody?.ref.sha256 ?? null,
        req_body_size: reqBody?.ref.size ?? (f.state === 'complete' && !f.requestBytes ? 0 : null),
        req_body_redacted: reqBody?.ref.redacted ? 1 : 0,
        status: f.response?.status ?? null,
        reason: f.response?.reason ?? null,
        res_http_version: f.response?.httpVersion ?? null,
        res_headers: f.response ? JSON.stringify(f.response.headers) : null,
        res_body_sha256: resBody?.ref.sha256 ?? null,
        res_body_size: resBody?.ref.size ?? (f.state === 'complete' && !f.responseBytes ? 0 : null),
        res_body_redacted: resBody?.ref.redacted ? 1 : 0,
        t_connect: f.timings.connect ?? null,
        t_tls: f.timings.tls ?? null,
        t_request_sent: f.timings.requestSent ?? null,
        t_first_byte: f.timings.firstByte ?? null,
        t_end: f.timings.end ?? null,
        server_addr: f.serverAddr,
        error: f.error,
        req_bytes: f.requestBytes,
        res_bytes: f.responseBytes,
        facts: JSON.stringify(f.facts),
        registry: f.registry ? JSON.stringify(f.registry) : null,
      });
    })();
  }

  /** Store registry facts for flows (classification of a recording made without it). */
  setRegistryFacts(entries: Array<{ id: number; registry: RegistryFacts | null }>): void {
    const set = this.st('UPDATE flows SET registry = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const e of entries) set.run(e.registry ? JSON.stringify(e.registry) : null, e.id);
    })();
  }

  /** Mark or unmark a flow. */
  setMarked(id: number, marked: boolean): void {
    this.st('UPDATE flows SET marked = ? WHERE id = ?').run(marked ? 1 : 0, id);
  }

  /** Set or clear a flow's comment. */
  setComment(id: number, comment: string | null): void {
    this.st('UPDATE flows SET comment = ? WHERE id = ?').run(comment, id);
  }

  /** End the current session. */
  endSession(): void {
    if (this.sessionId) this.st('UPDATE sessions SET ended = ? WHERE id = ?').run(Date.now(), this.sessionId);
  }

  get(id: number): FlowRecord | undefined {
    return this.guard(() => {
      const row = this.st('SELECT * FROM flows WHERE id = ?').get(id) as FlowRow | undefined;
      return row ? rowToFlow(row) : undefined;
    });
  }

  /** SQLite errors while reading (a damaged file) become RegtapeError recording-corrupt naming the file. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof RegtapeError) throw e;
      if ((e as { code?: string }).code?.startsWith('SQLITE_')) {
        throw new RegtapeError('recording-corrupt', `${this.path}: cannot read the recording (${(e as Error).message}); check it with sqlite3 "${this.path}" "PRAGMA integrity_check"`);
      }
      throw e;
    }
  }

  /** Flows in arrival order, paged by id (cheap for 100k flows). */
  list(opts: { afterId?: number; limit?: number } = {}): FlowRecord[] {
    return this.guard(() => {
      const rows = this.st('SELECT * FROM flows WHERE id > ? ORDER BY id LIMIT ?').all(opts.afterId ?? 0, opts.limit ?? -1) as FlowRow[];
      return rows.map(rowToFlow);
    });
  }

  /** List columns of flows in arrival order, paged by id (the TUI's 100k-row list). */
  listSummaries(afterId: number, limit: number): FlowSummaryRow[] {
    return this.guard(() => {
      return this.st(`SELECT ${SUMMARY_COLUMNS} FROM flows WHERE id > ? ORDER BY id LIMIT ?`).all(afterId, limit) as FlowSummaryRow[];
    });
  }

  /** A flow's request and response headers as stored (JSON text), without parsing the rest. */
  rawHeaders(id: number): [string | null, string | null] {
    return this.guard(() => {
      const row = this.st('SELECT req_headers, res_headers FROM flows WHERE id = ?').get(id) as { req_headers: string; res_headers: string | null } | undefined;
      return row ? [row.req_headers, row.res_headers] : [null, null];
    });
  }

  /** Every flow, in order, without loading them all at once. */
  *iterate(): IterableIterator<FlowRecord> {
    for (const row of this.st('SELECT * FROM flows ORDER BY id').iterate() as IterableIterator<FlowRow>) yield rowToFlow(row);
  }

  count(): number {
    return (this.st('SELECT count(*) AS n FROM flows').get() as { n: number }).n;
  }

  /** Is this body stored (inline or as a file)? */
  hasBody(sha256: string): boolean {
    const row = this.st('SELECT inline IS NOT NULL AS inl FROM bodies WHERE sha256 = ?').get(sha256) as { inl: number } | undefined;
    if (row?.inl) return true;
    return this.bodies.has(sha256);
  }

  private bodyRow(sha256: string): { size: number; inline: Buffer | null } | undefined {
    const row = this.db.prepare('SELECT size, inline FROM bodies WHERE sha256 = ?').get(sha256) as { size: unknown; inline: unknown } | undefined;
    if (!row) return undefined;
    if (typeof row.size !== 'number' || !Number.isSafeInteger(row.size) || row.size < 0 || (row.inline !== null && !Buffer.isBuffer(row.inline))) {
      throw new RegtapeError('recording-corrupt', `${this.path}: the bodies row for ${sha256.slice(0, 80)} is damaged (size ${JSON.stringify(row.size)}); run \`regtape verify\``);
    }
    const inline = row.inline as Buffer | null;
    if (inline && !this.inlineChecked.has(sha256)) {
      const got = createHash('sha256').update(inline).digest('hex');
      if (got !== sha256 || inline.length !== row.size) {
        throw new RegtapeError('body-missing', `${this.path}: the stored body ${sha256} does not match its digest (it hashes to ${got}); it is not served (run \`regtape verify\`)`);
      }
      this.inlineChecked.add(sha256);
    }
    return { size: row.size, inline };
  }

  /**
   * Stream a stored body, optionally a byte range [start, end] (inclusive, like
   * HTTP Range). Body files are opened without following symlinks, must have the
   * recorded size and are digest-checked before the first byte. Throws body-missing
   * when the recording has no such body (or it does not check out), body-store-unsafe
   * for a symlink.
   */
  readBody(sha256: string, range?: { start?: number; end?: number }, opts: Pick<BodyReadOptions, 'verify'> = {}): Readable {
    const row = opts.verify === false ? this.rawBodyRow(sha256) : this.bodyRow(sha256);
    if (row?.inline) {
      const start = range?.start ?? 0;
      const end = range?.end !== undefined ? range.end + 1 : row.inline.length;
      return Readable.from([row.inline.subarray(start, end)], { objectMode: false });
    }
    return this.bodies.read(sha256, range, { size: opts.verify === false ? undefined : row?.size, verify: opts.verify });
  }

  private rawBodyRow(sha256: string): { size: number; inline: Buffer | null } | undefined {
    const row = this.db.prepare('SELECT size, inline FROM bodies WHERE sha256 = ?').get(sha256) as { size: number; inline: unknown } | undefined;
    return row ? { size: row.size, inline: Buffer.isBuffer(row.inline) ? row.inline : null } : undefined;
  }

  /** Read a (small) body whole. Refuses bodies above `max` bytes. */
  async readBodyBuffer(sha256: string, max = 16 << 20): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of this.readBody(sha256)) {
      n += (c as Buffer).length;
      if (n > max) throw new RegtapeError('body-too-large', `body ${sha256} is larger than ${max} bytes`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }

  /**
   * A body's bytes, synchronously, if it is at most `max` bytes (filters, previews).
   * Returns null when absent or larger.
   */
  readBodySync(sha256: string, max = 1 << 20): Buffer | null {
    try {
      const row = this.bodyRow(sha256);
      if (row?.inline) return row.inline.length <= max ? row.inline : null;
      if (!this.bodies.has(sha256)) return null;
      return this.bodies.readSync(sha256, max, row?.size);
    } catch (e) {
      // Absent, tampered or unsafe bodies are simply not shown (verify and replay say why).
      if (e instanceof RegtapeError && (e.code === 'body-missing' || e.code === 'body-store-unsafe' || e.code === 'recording-corrupt')) return null;
      throw e;
    }
  }

  /** Has this flow uuid been stored already? */
  hasFlowUuid(uuid: string): boolean {
    return this.st('SELECT 1 FROM flows WHERE uuid = ?').get(uuid) !== undefined;
  }

  /** Replace a session's options (an import learns the HAR's creator as it goes). */
  setSessionOptions(id: number, options: Record<string, unknown>): void {
    this.st('UPDATE sessions SET options = ? WHERE id = ?').run(JSON.stringify(options), id);
  }

  /** The sessions (runs of record, import, merge) in order, with how many flows each has. */
  sessions(): SessionRow[] {
    const rows = this.st('SELECT id, started, ended, tool, options, (SELECT count(*) FROM flows WHERE flows.session = sessions.id) AS flows FROM sessions ORDER BY id').all() as Array<Omit<SessionRow, 'options'> & { options: string }>;
    return rows.map((s) => ({ ...s, options: JSON.parse(s.options) as Record<string, unknown> }));
  }

  /** Flows counted by state and error text (a load test's tally of what went wrong). */
  stateCounts(): Array<{ state: FlowState; error: string | null; n: number }> {
    return this.st('SELECT state, error, count(*) AS n FROM flows GROUP BY state, error ORDER BY state, error').all() as Array<{ state: FlowState; error: string | null; n: number }>;
  }

  /** Distinct bodies stored (inline or as files). */
  bodyCount(): number {
    return (this.st('SELECT count(*) AS n FROM bodies').get() as { n: number }).n;
  }

  /** Run `fn` in one transaction: all its writes or none (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Run an async `fn` in one transaction (an import reads its input as it writes). Nothing
   * else may write to this recording meanwhile; on a throw every write of `fn` is rolled back.
   */
  async transactionAsync<T>(fn: () => Promise<T>): Promise<T> {
    this.db.exec('BEGIN');
    try {
      const r = await fn();
      this.db.exec('COMMIT');
      return r;
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }

  /** Append another recording's sessions, bodies and flows (see copyRecording); `name` labels `src` in report lines. */
  appendFrom(src: Recording, opts: { name?: string; report?: (line: string) => void } = {}): CopyStats {
    return copyRecording({ db: this.db, bodies: this.bodies }, { db: src.db, bodies: src.bodies }, opts.name ?? src.path, opts.report ?? (() => undefined));
  }

  /** Copy chosen flows of `src` (with new marks and comments; duplicates get fresh uuids) into this recording (see copySelected). */
  appendSelected(src: Recording, entries: readonly FlowSelection[]): number {
    return copySelected({ db: this.db, bodies: this.bodies }, { db: src.db, bodies: src.bodies }, entries);
  }

  /** SQLite's integrity check: empty when the database is sound, else its complaints. */
  integrityProblems(): string[] {
    const rows = this.guard(() => this.db.pragma('integrity_check') as Array<{ integrity_check: string }>);
    return rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
  }

  /** The schema version written in the file. */
  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  /** Set by an untouched open in place: remove the -wal/-shm SQLite created, on close. */
  private removeSideFiles = false;

  /** Checkpoint the WAL into the main file and close. */
  close(): void {
    if (!this.db.open) return;
    if (this.removeSideFiles) {
      this.db.close();
      removeSideFiles(this.path);
      return;
    }
    if (!this.readonly) {
      this.endSession();
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // a reader holds the WAL; it will be checkpointed later
      }
    }
    if (!this.readonly) {
      // Leave the file in rollback-journal mode: a reader of a closed recording then needs no
      // -shm/-wal beside it, so looking at a recording never creates files (a live reader
      // holding it makes this fail quietly; the file stays in WAL mode, which readers handle).
      try {
        this.db.pragma('journal_mode = DELETE');
      } catch {
        // busy: another connection has it open
      }
    }
    this.db.close();
  }
}


function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) throw new RegtapeError('recording-newer-schema', `schema ${current} is newer than ${SCHEMA_VERSION}`);
  const pending = MIGRATIONS.filter((m) => m.version > current);
  if (!pending.length) return;
  db.transaction(() => {
    for (const m of pending) {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('format', 'regtape-recording');
  })();
  // Until a checkpoint, the new header (application_id, user_version) is only in the WAL;
  // a recorder killed before then would leave a file inspectFile refuses as foreign.
  db.pragma('wal_checkpoint(TRUNCATE)');
}

function rowToFlow(r: FlowRow): FlowRecord {
  try {
    return rowToFlowUnchecked(r);
  } catch (e) {
    throw new RegtapeError('recording-corrupt', `flow ${r.id} is damaged (${(e as Error).message}); the recording may be corrupt: check it with sqlite3 FILE "PRAGMA integrity_check"`);
  }
}

function rowToFlowUnchecked(r: FlowRow): FlowRecord {
  const bad = flowRowProblem(r as unknown as Record<string, unknown>);
  if (bad) throw new Error(bad);
  return {
    id: r.id,
    uuid: r.uuid,
    state: r.state,
    request: { method: r.method, scheme: r.scheme, host: r.host, port: r.port, target: r.target, httpVersion: r.http_version, headers: checkedHeaders(r.req_headers, 'req_headers') },
    requestBody: r.req_body_size != null ? { sha256: r.req_body_sha256, size: r.req_body_size, redacted: !!r.req_body_redacted } : null,
    response:
      r.status != null
        ? { status: r.status, reason: r.reason ?? '', httpVersion: r.res_http_version ?? '1.1', headers: checkedHeaders(r.res_headers, 'res_headers') }
        : null,
    responseBody: r.res_body_size != null ? { sha256: r.res_body_sha256, size: r.res_body_size, redacted: !!r.res_body_redacted } : null,
    timings: {
      start: r.t_start,
      connect: r.t_connect ?? undefined,
      tls: r.t_tls ?? undefined,
      requestSent: r.t_request_sent ?? undefined,
      firstByte: r.t_first_byte ?? undefined,
      end: r.t_end ?? undefined,
    },
    clientAddr: r.client_addr,
    serverAddr: r.server_addr,
    error: r.error,
    requestBytes: r.req_bytes,
    responseBytes: r.res_bytes,
    facts: r.facts ? checkedObject<FlowFacts>(r.facts, 'facts') : {},
    registry: r.registry ? checkedObject<RegistryFacts>(r.registry, 'registry') : null,
    marked: !!r.marked,
    comment: r.comment,
  };
}
