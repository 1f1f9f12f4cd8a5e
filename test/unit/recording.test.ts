import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FlowRecord, HeaderList } from '../../src/flow/index.js';
import { RegtapeError } from '../../src/errors/index.js';
import {
  BodyStore,
  INLINE_LIMIT,
  Recording,
  SCHEMA_VERSION,
  blobDirFor,
  type BodyTap,
  type CapturedBody,
  type StoredBody,
} from '../../src/store/index.js';

let tmp: string;
const open: Recording[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-rec-'));
});

afterEach(() => {
  for (const r of open.splice(0)) r.close();
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function dbPath(): string {
  return path.join(tmp, `rec-${++n}`, 'tape.db');
}

function openRec(p: string, opts: Parameters<typeof Recording.open>[1] = { create: true }): Recording {
  const r = Recording.open(p, opts);
  open.push(r);
  return r;
}

function closeRec(r: Recording): void {
  r.close();
  open.splice(open.indexOf(r), 1);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function fingerprint(p: string): { sha: string; mtimeMs: number; size: number } {
  const st = fs.statSync(p);
  return { sha: sha256(fs.readFileSync(p)), mtimeMs: st.mtimeMs, size: st.size };
}

function mode(p: string): number {
  return fs.statSync(p).mode & 0o777;
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

/** Push `body` through a tap in chunks; returns what came out the other side and the capture. */
async function feed(tap: BodyTap, body: Buffer, chunkSize = 16 * 1024): Promise<{ passed: Buffer; captured: CapturedBody | null }> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunkSize) chunks.push(body.subarray(i, i + chunkSize));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    tap,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return { passed: Buffer.concat(out), captured: await tap.result() };
}

async function capture(rec: Recording, body: Buffer, opts: { bufferLimit?: number; expectedSize?: number } = {}): Promise<StoredBody> {
  const tap = rec.bodies.tap({ bufferLimit: opts.bufferLimit ?? INLINE_LIMIT, expectedSize: opts.expectedSize });
  const { passed, captured } = await feed(tap, body);
  expect(passed.equals(body)).toBe(true);
  expect(captured).not.toBeNull();
  const stored = await rec.storeBody(captured!, false);
  expect(stored).not.toBeNull();
  return stored!;
}

function blobFiles(rec: Recording): string[] {
  return fs.readdirSync(rec.bodies.dir).filter((f) => f !== '.tmp');
}

const ACCEPTS = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/json',
];

function makeFlow(over: Partial<FlowRecord> = {}): FlowRecord {
  const reqHeaders: HeaderList = [
    ['Host', 'registry.test'],
    ['User-Agent', 'docker/27.3.1 go/go1.22.7'],
    ...ACCEPTS.map((a): [string, string] => ['Accept', a]),
    ['Authorization', 'Bearer REDACTED-0123abcd'],
  ];
  return {
    id: 0,
    uuid: randomUUID(),
    state: 'complete',
    request: { method: 'GET', scheme: 'https', host: 'registry.test', port: 443, target: '/v2/library/alpine/manifests/3.20', httpVersion: '1.1', headers: reqHeaders },
    requestBody: null,
    response: {
      status: 200,
      reason: 'OK',
      httpVersion: '1.1',
      headers: [
        ['Content-Type', 'application/vnd.oci.image.index.v1+json'],
        ['Docker-Content-Digest', 'sha256:' + 'a'.repeat(64)],
        ['Set-Cookie', 'a=REDACTED-11111111; Path=/'],
        ['Set-Cookie', 'b=REDACTED-22222222; Path=/'],
      ],
    },
    responseBody: null,
    timings: { start: 1764200000123.25, connect: 1764200000130.5, tls: 1764200000150.75, requestSent: 1764200000151.125, firstByte: 1764200000200.0625, end: 1764200000210.5 },
    clientAddr: '127.0.0.1:51234',
    serverAddr: '127.0.0.1:5443',
    error: null,
    requestBytes: 0,
    responseBytes: 0,
    registry: null,
    marked: false,
    comment: null,
    facts: {
      redactions: [{ where: 'request.header:authorization', marker: 'REDACTED-0123abcd' }],
      tokens: [{ where: 'request.header:authorization', marker: 'REDACTED-0123abcd', claims: { sub: 'alice', access: [{ type: 'repository', actions: ['pull'] }] } }],
    },
    ...over,
  };
}

/** Insert as open, then finish: what the recorder does. Returns the flow as it should read back. */
function record(rec: Recording, f: FlowRecord, req: StoredBody | null = null, res: StoredBody | null = null): FlowRecord {
  const id = rec.insertOpenFlow(f);
  const done = { ...f, id };
  rec.finishFlow(done, req, res);
  return done;
}

function expectRefused(p: string, code: string, opts: Parameters<typeof Recording.open>[1] = { create: true }): RegtapeError {
  const dir = path.dirname(p);
  const before = fingerprint(p);
  const filesBefore = fs.readdirSync(dir).sort();
  let err: unknown;
  try {
    openRec(p, opts);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(RegtapeError);
  expect((err as RegtapeError).code).toBe(code);
  expect((err as Error).message).toContain(p);
  // Untouched: same bytes, same mtime, no -wal/-shm/.blobs created beside it.
  expect(fingerprint(p)).toEqual(before);
  expect(fs.readdirSync(dir).sort()).toEqual(filesBefore);
  return err as RegtapeError;
}

describe('Recording.open', () => {
  it('creates NAME.db with mode 0600 and NAME.blobs/ with mode 0700', () => {
    const p = dbPath();
    const rec = openRec(p, { create: true });
    expect(rec.path).toBe(p);
    expect(mode(p)).toBe(0o600);
    const blobs = path.join(path.dirname(p), 'tape.blobs');
    expect(blobDirFor(p)).toBe(blobs);
    expect(rec.bodies.dir).toBe(blobs);
    expect(fs.statSync(blobs).isDirectory()).toBe(true);
    expect(mode(blobs)).toBe(0o700);
    expect(mode(path.join(blobs, '.tmp'))).toBe(0o700);
    // WAL and SHM files, while open, are owner-only too.
    for (const f of fs.readdirSync(path.dirname(p)).filter((x) => x.startsWith('tape.db-'))) expect(mode(path.join(path.dirname(p), f))).toBe(0o600);
    expect(rec.count()).toBe(0);
  });

  it('refuses a missing file without create, and does not create it', () => {
    const p = dbPath();
    let err: unknown;
    try {
      openRec(p, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegtapeError);
    expect((err as RegtapeError).code).toBe('recording-not-found');
    expect(fs.existsSync(p)).toBe(false);
    expect(fs.existsSync(blobDirFor(p))).toBe(false);
  });

  it('refuses a non-SQLite file untouched (NOT_SQLITE)', () => {
    const p = dbPath();
    fs.mkdirSync(path.dirname(p));
    fs.writeFileSync(p, 'These are my notes, not a database.\n'.repeat(20));
    const err = expectRefused(p, 'recording-not-sqlite');
    expect(err.message).toMatch(/not an SQLite database/);
    expect(err.message).toMatch(/left untouched/);
  });

  it('refuses a short non-SQLite file untouched (NOT_SQLITE)', () => {
    const p = dbPath();
    fs.mkdirSync(path.dirname(p));
    fs.writeFileSync(p, 'x');
    expectRefused(p, 'recording-not-sqlite');
  });

  it('refuses a foreign SQLite database untouched (NOT_REGTAPE)', () => {
    const p = dbPath();
    fs.mkdirSync(path.dirname(p));
    const db = new Database(p);
    db.exec("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('alice')");
    db.close();
    const err = expectRefused(p, 'recording-not-regtape');
    expect(err.message).toMatch(/not a regtape recording/);
    // Still the user's database, with its data.
    const again = new Database(p, { readonly: true });
    expect(again.prepare('SELECT name FROM contacts').all()).toEqual([{ name: 'alice' }]);
    expect(again.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'flows'").get()).toEqual({ n: 0 });
    again.close();
  });

  it('refuses a recording from a newer regtape untouched (NEWER_SCHEMA)', async () => {
    const p = dbPath();
    const rec = openRec(p);
    rec.beginSession('test');
    record(rec, makeFlow());
    closeRec(rec);
    const db = new Database(p);
    db.pragma('user_version = 99');
    db.close();
    expect(99).toBeGreaterThan(SCHEMA_VERSION);
    // Make any mtime change visible.
    await new Promise((r) => setTimeout(r, 20));
    const err = expectRefused(p, 'recording-newer-schema');
    expect(err.message).toMatch(/newer regtape/);
    expect(err.message).toMatch(/upgrade/);
    expectRefused(p, 'recording-newer-schema', { readonly: true });
  });

  it('an empty existing file is initialised as a recording', () => {
    const p = dbPath();
    fs.mkdirSync(path.dirname(p));
    fs.writeFileSync(p, '');
    const rec = openRec(p, {});
    expect(rec.count()).toBe(0);
    expect(rec.schemaVersion()).toBe(SCHEMA_VERSION);
  });
});

describe('flows', () => {
  it('round trip: get, list and iterate return what was recorded', async () => {
    const p = dbPath();
    const rec = openRec(p);
    rec.beginSession('test', { listen: '127.0.0.1:0' });
    const reqBody = await capture(rec, Buffer.from('{"grant_type":"password","password":"REDACTED-99999999"}'));
    const resBody = await capture(rec, Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })));
    const a = record(rec, makeFlow({ requestBytes: 57, responseBytes: 33 }), { ...reqBody, ref: { ...reqBody.ref, redacted: true } }, resBody);
    const b = record(
      rec,
      makeFlow({
        state: 'error',
        request: { method: 'HEAD', scheme: 'http', host: '::1', port: 5000, target: '/v2/', httpVersion: '1.1', headers: [['Host', '[::1]:5000']] },
        response: null,
        timings: { start: 1764200001000.5, connect: 1764200001001, end: 1764200001002.75 },
        serverAddr: null,
        error: 'ECONNRESET: socket hang up',
        facts: {},
      }),
    );
    const expectedA: FlowRecord = {
      ...a,
      requestBody: { sha256: reqBody.ref.sha256, size: reqBody.ref.size, redacted: true },
      responseBody: { sha256: resBody.ref.sha256, size: resBody.ref.size, redacted: false },
    };
    // An error flow with no bodies: no body refs, no response.
    const expectedB: FlowRecord = { ...b, requestBody: null, responseBody: null };

    expect(a.id).toBeGreaterThan(0);
    expect(b.id).toBeGreaterThan(a.id);
    expect(rec.get(a.id)).toEqual(expectedA);
    expect(rec.get(b.id)).toEqual(expectedB);
    expect(rec.get(b.id + 100)).toBeUndefined();
    expect(rec.list()).toEqual([expectedA, expectedB]);
    expect(rec.list({ afterId: a.id })).toEqual([expectedB]);
    expect(rec.list({ limit: 1 })).toEqual([expectedA]);
    expect([...rec.iterate()]).toEqual([expectedA, expectedB]);
    expect(rec.count()).toBe(2);

    // Headers: order and the six duplicate Accept lines survive.
    const got = rec.get(a.id)!;
    expect(got.request.headers.filter(([k]) => k === 'Accept').map(([, v]) => v)).toEqual(ACCEPTS);
    expect(got.response!.headers.filter(([k]) => k === 'Set-Cookie')).toHaveLength(2);

    // The bodies read back byte for byte.
    expect((await rec.readBodyBuffer(got.requestBody!.sha256!)).toString()).toBe('{"grant_type":"password","password":"REDACTED-99999999"}');
    expect(JSON.parse((await rec.readBodyBuffer(got.responseBody!.sha256!)).toString())).toEqual({ schemaVersion: 2, manifests: [] });

    // Same through a second, read-only connection after close.
    closeRec(rec);
    const ro = openRec(p, { readonly: true });
    expect(ro.list()).toEqual([expectedA, expectedB]);
  });

  it('a complete flow without bodies reads back with empty (size 0) bodies', () => {
    const rec = openRec(dbPath());
    const f = record(rec, makeFlow());
    const got = rec.get(f.id)!;
    expect(got.state).toBe('complete');
    expect(got.requestBody).toEqual({ sha256: null, size: 0, redacted: false });
    expect(got.responseBody).toEqual({ sha256: null, size: 0, redacted: false });
  });

  it('an open flow (never finished) reads back as open with its progress byte counts', () => {
    const rec = openRec(dbPath());
    rec.beginSession('test');
    const f = makeFlow();
    const id = rec.insertOpenFlow(f);
    let got = rec.get(id)!;
    expect(got.state).toBe('open');
    expect(got.requestBytes).toBe(0);
    expect(got.responseBytes).toBe(0);
    rec.updateProgress(id, 1234, 5_000_000);
    got = rec.get(id)!;
    expect(got).toEqual({
      id,
      uuid: f.uuid,
      state: 'open',
      request: f.request,
      requestBody: null,
      response: null,
      responseBody: null,
      timings: { start: f.timings.start },
      clientAddr: f.clientAddr,
      serverAddr: null,
      error: null,
      requestBytes: 1234,
      responseBytes: 5_000_000,
      facts: {},
      registry: null,
      marked: false,
      comment: null,
    });
  });

  it('a recorder killed mid-session (db + wal, no checkpoint) leaves a recording that opens, with its open flow', () => {
    const p = dbPath();
    const rec = openRec(p);
    rec.beginSession('test');
    const f = makeFlow();
    const id = rec.insertOpenFlow(f);
    rec.updateProgress(id, 10, 20);
    // Snapshot the files as a SIGKILL would leave them: the WAL holds the uncheckpointed transactions.
    const crashed = path.join(path.dirname(p), 'crashed.db');
    fs.copyFileSync(p, crashed);
    if (fs.existsSync(`${p}-wal`)) fs.copyFileSync(`${p}-wal`, `${crashed}-wal`);
    // Read-only (show, ui, replay): the flow is as the crash left it.
    const ro = openRec(crashed, { readonly: true });
    expect(ro.get(id)!.state).toBe('open');
    ro.close();
    // Opened for writing (a new recording session appends): it can never end now, so it is marked.
    const again = openRec(crashed, {});
    const got = again.get(id)!;
    expect(got.uuid).toBe(f.uuid);
    expect(got.state).toBe('aborted');
    expect(got.error).toMatch(/incomplete: the recorder stopped/);
    expect([got.requestBytes, got.responseBytes]).toEqual([10, 20]);
  });

  it('a reopened recording appends: ids continue, earlier flows kept', () => {
    const p = dbPath();
    const rec = openRec(p);
    rec.beginSession('first');
    const a = record(rec, makeFlow());
    const b = record(rec, makeFlow());
    closeRec(rec);
    const rec2 = openRec(p, {});
    rec2.beginSession('second');
    const c = record(rec2, makeFlow());
    expect(c.id).toBe(b.id + 1);
    expect(rec2.list().map((f) => f.uuid)).toEqual([a.uuid, b.uuid, c.uuid]);
    expect(rec2.list().map((f) => f.id)).toEqual([a.id, b.id, c.id]);
    const sessions = rec2.sessions().map((s) => ({ tool: s.tool, ended: s.ended !== null }));
    expect(sessions).toEqual([
      { tool: 'first', ended: true },
      { tool: 'second', ended: false },
    ]);
  });

  it('close() checkpoints the WAL and leaves a consistent database', async () => {
    const p = dbPath();
    const rec = openRec(p);
    rec.beginSession('test');
    for (let i = 0; i < 50; i++) record(rec, makeFlow(), null, await capture(rec, Buffer.from(`body ${i} `.repeat(100))));
    expect(fs.existsSync(`${p}-wal`) && fs.statSync(`${p}-wal`).size > 0).toBe(true);
    closeRec(rec);
    expect(rec.isOpen).toBe(false);
    const wal = `${p}-wal`;
    expect(!fs.existsSync(wal) || fs.statSync(wal).size === 0).toBe(true);
    // The main file alone holds everything (as if copied without its -wal).
    const copy = path.join(path.dirname(p), 'copy.db');
    fs.copyFileSync(p, copy);
    const db = new Database(copy, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.prepare('SELECT count(*) AS n FROM flows').get()).toEqual({ n: 50 });
    expect(db.prepare('SELECT count(*) AS n FROM sessions WHERE ended IS NULL').get()).toEqual({ n: 0 });
    db.close();
    // Closing twice is harmless.
    expect(() => rec.close()).not.toThrow();
  });
});

describe('bodies', () => {
  it('a small body is stored inline in the database, no file', async () => {
    const rec = openRec(dbPath());
    const body = Buffer.from('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    const stored = await capture(rec, body);
    expect(stored.ref).toEqual({ sha256: sha256(body), size: body.length, redacted: false });
    expect(stored.inline?.equals(body)).toBe(true);
    record(rec, makeFlow(), null, stored);
    expect(blobFiles(rec)).toEqual([]);
    expect(rec.hasBody(sha256(body))).toBe(true);
    expect((await readAll(rec.readBody(sha256(body)))).equals(body)).toBe(true);
  });

  it.each([
    ['growing past the buffer limit', {}],
    ['with a Content-Length above the limit', { expectedSize: 300 * 1024 + 7 }],
  ])('a large body (%s) goes to NAME.blobs/<sha256>, mode 0600', async (_name, opts) => {
    const rec = openRec(dbPath());
    const body = randomBytes(300 * 1024 + 7);
    const stored = await capture(rec, body, opts);
    const digest = sha256(body);
    expect(stored.ref).toEqual({ sha256: digest, size: body.length, redacted: false });
    expect(stored.inline).toBeUndefined();
    const file = path.join(rec.bodies.dir, digest);
    expect(fs.readFileSync(file).equals(body)).toBe(true);
    expect(mode(file)).toBe(0o600);
    expect(fs.readdirSync(rec.bodies.tmpDir)).toEqual([]);
    const f = record(rec, makeFlow(), null, stored);
    expect(rec.get(f.id)!.responseBody).toEqual({ sha256: digest, size: body.length, redacted: false });
    expect((await readAll(rec.readBody(digest))).equals(body)).toBe(true);
    expect((await rec.readBodyBuffer(digest)).equals(body)).toBe(true);
  });

  it('a buffered body too big to inline (redaction buffer) also becomes a file', async () => {
    const rec = openRec(dbPath());
    const body = Buffer.from(JSON.stringify({ big: 'x'.repeat(INLINE_LIMIT * 2) }));
    const stored = await capture(rec, body, { bufferLimit: 4 << 20 });
    expect(stored.inline).toBeUndefined();
    expect(fs.readFileSync(path.join(rec.bodies.dir, sha256(body))).equals(body)).toBe(true);
    expect(mode(path.join(rec.bodies.dir, sha256(body)))).toBe(0o600);
  });

  it('an empty body is not stored', async () => {
    const rec = openRec(dbPath());
    const tap = rec.bodies.tap({ bufferLimit: INLINE_LIMIT });
    const { captured } = await feed(tap, Buffer.alloc(0));
    expect(captured).toEqual({ sha256: sha256(Buffer.alloc(0)), size: 0, buffer: Buffer.alloc(0) });
    expect(await rec.storeBody(captured!, false)).toBeNull();
  });

  type Range = { start?: number; end?: number } | undefined;

  describe('ranges (inclusive, like HTTP Range)', () => {
    const small = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    const large = randomBytes(200 * 1024);
    let rec: Recording;

    beforeAll(async () => {
      rec = Recording.open(dbPath(), { create: true });
      record(rec, makeFlow(), await capture(rec, small), await capture(rec, large));
      expect(blobFiles(rec)).toEqual([sha256(large)]);
    });

    afterAll(() => rec.close());

    it.each<[string, Range]>([
      ['whole', undefined],
      ['start and end', { start: 10, end: 19 }],
      ['single byte', { start: 5, end: 5 }],
      ['from start', { start: 30 }],
      ['up to end', { end: 3 }],
    ])('inline body, %s', async (_name, range) => {
      const got = await readAll(rec.readBody(sha256(small), range));
      const start = range?.start ?? 0;
      const end = range?.end ?? small.length - 1;
      expect(got.length).toBe(end - start + 1);
      expect(got.equals(small.subarray(start, end + 1))).toBe(true);
    });

    it.each<[string, Range]>([
      ['whole', undefined],
      ['start and end', { start: 70_000, end: 140_000 }],
      ['single byte', { start: 65_536, end: 65_536 }],
      ['from start', { start: 150_000 }],
      ['up to end', { end: 99 }],
    ])('file body, %s', async (_name, range) => {
      const got = await readAll(rec.readBody(sha256(large), range));
      const start = range?.start ?? 0;
      const end = range?.end ?? large.length - 1;
      expect(got.length).toBe(end - start + 1);
      expect(got.equals(large.subarray(start, end + 1))).toBe(true);
    });
  });

  it('the same content stored twice gives one file', async () => {
    const rec = openRec(dbPath());
    const body = randomBytes(100 * 1024);
    const s1 = await capture(rec, body);
    const s2 = await capture(rec, body, { expectedSize: body.length });
    expect(s2.ref.sha256).toBe(s1.ref.sha256);
    record(rec, makeFlow(), null, s1);
    record(rec, makeFlow(), null, s2);
    expect(blobFiles(rec)).toEqual([sha256(body)]);
    expect(fs.readdirSync(rec.bodies.tmpDir)).toEqual([]);
    expect(rec.bodyCount()).toBe(1);
    const small = Buffer.from('same small body');
    record(rec, makeFlow(), await capture(rec, small), await capture(rec, small));
    expect(rec.bodyCount()).toBe(2);
  });

  it.each([
    ['after it outgrew memory', 200 * 1024, undefined],
    ['with a Content-Length above the limit', 1024, 1 << 20],
    ['while still in memory', 1024, undefined],
  ])('a tap destroyed mid-stream (%s) yields null and leaves no temp file', async (_name, sent, expectedSize) => {
    const rec = openRec(dbPath());
    const tap = rec.bodies.tap({ bufferLimit: INLINE_LIMIT, expectedSize });
    tap.on('error', () => {});
    tap.resume();
    tap.write(randomBytes(sent));
    await new Promise((r) => setTimeout(r, 20));
    // A temp file exists exactly when the body was headed for disk.
    expect(fs.readdirSync(rec.bodies.tmpDir)).toHaveLength(sent > INLINE_LIMIT || expectedSize ? 1 : 0);
    tap.destroy(new Error('client went away'));
    expect(await tap.result()).toBeNull();
    // Cleanup is asynchronous; it must finish promptly.
    await vi.waitFor(() => expect(fs.readdirSync(rec.bodies.tmpDir)).toEqual([]), { timeout: 2000 });
    expect(blobFiles(rec)).toEqual([]);
  });

  it('BodyStore.init() (and opening a recording) clears stale temp files, keeps bodies', async () => {
    const p = dbPath();
    const rec = openRec(p);
    const body = randomBytes(100 * 1024);
    record(rec, makeFlow(), null, await capture(rec, body));
    closeRec(rec);
    const tmpDir = path.join(blobDirFor(p), '.tmp');
    fs.writeFileSync(path.join(tmpDir, 'stale-1'), 'half a layer');
    fs.writeFileSync(path.join(tmpDir, 'stale-2'), 'another');
    const store = new BodyStore(blobDirFor(p));
    store.init();
    expect(fs.readdirSync(tmpDir)).toEqual([]);
    expect(store.has(sha256(body))).toBe(true);

    fs.writeFileSync(path.join(tmpDir, 'stale-3'), 'x');
    const again = openRec(p, {});
    expect(fs.readdirSync(tmpDir)).toEqual([]);
    expect((await again.readBodyBuffer(sha256(body))).equals(body)).toBe(true);
  });

  it('reading an unknown or lost body throws BODY_MISSING', async () => {
    const rec = openRec(dbPath());
    const unknown = sha256(Buffer.from('never stored'));
    expect(rec.hasBody(unknown)).toBe(false);
    expect(() => rec.readBody(unknown)).toThrow(RegtapeError);
    try {
      rec.readBody(unknown);
    } catch (e) {
      expect((e as RegtapeError).code).toBe('body-missing');
      expect((e as Error).message).toContain(unknown);
    }
    // A file body whose blob was not copied along with the .db.
    const body = randomBytes(100 * 1024);
    record(rec, makeFlow(), null, await capture(rec, body));
    fs.rmSync(path.join(rec.bodies.dir, sha256(body)));
    expect(rec.hasBody(sha256(body))).toBe(false);
    expect(() => rec.readBody(sha256(body))).toThrow(expect.objectContaining({ code: 'body-missing', message: expect.stringMatching(/blobs/) }));
  });
});
