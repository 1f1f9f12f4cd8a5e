import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flow/index.js';
import { mergeRecordings } from '../../src/import/index.js';
import { Classifier } from '../../src/registry/index.js';
import { blobDirFor, Recording } from '../../src/store/index.js';
import { patternBytes } from '../support/origin.js';
import { RegtapeError } from '../../src/errors/index.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BIG = patternBytes(300_000, 7); // a file in NAME.blobs/
const SMALL = Buffer.from('{"schemaVersion":2}'); // inline

let tmp: string;

/** A recording with one session: a blob redirect to the CDN and its download (body BIG), plus a small body. */
async function build(file: string, tool: string, extra: Buffer): Promise<string[]> {
  const rec = Recording.open(file, { create: true });
  rec.beginSession(tool, { run: tool });
  const classifier = new Classifier();
  const uuids: string[] = [];
  let t = 1_700_000_000_000;
  const add = async (host: string, target: string, status: number, headers: Array<[string, string]>, body?: Buffer) => {
    const f: FlowRecord = {
      id: 0,
      uuid: randomUUID(),
      state: 'complete',
      request: { method: 'GET', scheme: 'https', host, port: 443, target, httpVersion: '1.1', headers: [] },
      requestBody: null,
      response: { status, reason: '', httpVersion: '1.1', headers },
      responseBody: null,
      timings: { start: (t += 10), end: t + 1 },
      clientAddr: null,
      serverAddr: null,
      error: null,
      requestBytes: 0,
      responseBytes: body?.length ?? 0,
      facts: {},
    };
    f.id = rec.insertOpenFlow(f);
    const stored = body ? await rec.storeBody({ sha256: sha(body), size: body.length, buffer: body }, false) : null;
    const done = { ...f, responseBody: stored?.ref ?? null };
    done.registry = classifier.classify(done);
    rec.finishFlow(done, null, stored);
    uuids.push(f.uuid);
  };
  const hex = sha(BIG);
  await add('registry.test', '/v2/lab/x/manifests/1', 200, [['Content-Type', 'application/json']], SMALL);
  await add('registry.test', `/v2/lab/x/blobs/sha256:${hex}`, 307, [['Location', `https://cdn.test/blobs/sha256/${hex}/data`]]);
  await add('cdn.test', `/blobs/sha256/${hex}/data`, 200, [], BIG);
  await add('registry.test', '/v2/lab/x/tags/list', 200, [], extra);
  rec.close();
  return uuids;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-merge-'));
  await build(path.join(tmp, 'a.db'), 'run-a', Buffer.from('{"tags":["a"]}'));
  await build(path.join(tmp, 'b.db'), 'run-b', Buffer.from('{"tags":["b"]}'));
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('merge', () => {
  it('appends flows in order with their sessions, and stores shared bodies once', async () => {
    const out = path.join(tmp, 'c.db');
    const s = await mergeRecordings([path.join(tmp, 'a.db'), path.join(tmp, 'b.db')], out);
    expect(s.flows).toBe(8);
    expect(s.inputs.map((i) => [path.basename(i.path), i.flows, i.sessions])).toEqual([
      ['a.db', 4, 1],
      ['b.db', 4, 1],
    ]);
    // BIG and SMALL are in both inputs: one row each; the two tag lists differ.
    expect(s.bodies).toMatchObject({ total: 4, deduplicated: 2, missing: 0 });
    expect(s.bodies.linked + s.bodies.copied).toBe(1);

    const rec = Recording.open(out, { readonly: true });
    const flows = rec.list();
    const a = Recording.open(path.join(tmp, 'a.db'), { readonly: true });
    const b = Recording.open(path.join(tmp, 'b.db'), { readonly: true });
    expect(flows.map((f) => f.uuid)).toEqual([...a.list(), ...b.list()].map((f) => f.uuid));
    expect(flows.map((f) => f.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const sessions = rec.sessions();
    expect(sessions.map((x) => x.tool)).toEqual(['run-a', 'run-b']);
    expect(sessions.map((x) => x.flows)).toEqual([4, 4]);
    // The CDN flow of B still points at B's redirect, renumbered.
    expect(flows[6]!.registry?.role).toBe('cdn-blob');
    expect(flows[6]!.registry?.redirectFrom).toBe(6);
    expect(flows[2]!.registry?.redirectFrom).toBe(2);
    // One body file, the same bytes (hard-linked when on the same file system).
    const files = fs.readdirSync(blobDirFor(out)).filter((n) => !n.startsWith('.'));
    expect(files).toEqual([sha(BIG)]);
    expect(fs.statSync(path.join(blobDirFor(out), sha(BIG))).ino).toBe(fs.statSync(path.join(blobDirFor(path.join(tmp, 'a.db')), sha(BIG))).ino);
    expect((await rec.readBodyBuffer(sha(BIG))).equals(BIG)).toBe(true);
    expect((await rec.readBodyBuffer(sha(SMALL))).equals(SMALL)).toBe(true);
    a.close();
    b.close();
    rec.close();
    // Nothing left under a temp name.
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses an existing output unless --force, then replaces it atomically', async () => {
    const out = path.join(tmp, 'twice.db');
    await mergeRecordings([path.join(tmp, 'a.db')], out);
    const err = await mergeRecordings([path.join(tmp, 'a.db'), path.join(tmp, 'b.db')], out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegtapeError);
    expect((err as Error).message).toMatch(/already exists; use --force/);
    let rec = Recording.open(out, { readonly: true });
    expect(rec.count()).toBe(4);
    rec.close();
    await mergeRecordings([path.join(tmp, 'a.db'), path.join(tmp, 'b.db')], out, { force: true });
    rec = Recording.open(out, { readonly: true });
    expect(rec.count()).toBe(8);
    rec.close();
  });

  it('does not copy a flow twice when the same recording is given twice', async () => {
    const notes: string[] = [];
    const s = await mergeRecordings([path.join(tmp, 'a.db'), path.join(tmp, 'a.db')], path.join(tmp, 'aa.db'), { report: (l) => notes.push(l) });
    expect(s.flows).toBe(4);
    expect(s.duplicates).toBe(4);
    expect(notes.join('\n')).toMatch(/already in the output/);
  });

  it('refuses a file that is not a recording before writing anything', async () => {
    fs.writeFileSync(path.join(tmp, 'junk.db'), 'not sqlite at all, but long enough to have a header of one hundred bytes ......................');
    await expect(mergeRecordings([path.join(tmp, 'a.db'), path.join(tmp, 'junk.db')], path.join(tmp, 'never.db'))).rejects.toThrow(/not a regtape recording/);
    expect(fs.readdirSync(tmp).filter((n) => n.includes('never'))).toEqual([]);
  });
});
