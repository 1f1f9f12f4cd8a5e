import { createHash } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LeafFactory, loadOrCreateAuthority } from '../../src/ca/index.js';
import { Recording } from '../../src/store/index.js';
import { plain } from '../../src/tui/lines.js';
import { current, type OpsScreen } from '../../src/tui/state.js';
import { controllerFor, frameText, keys, writeTinyRecording, type Tiny } from './tui-support.js';

/**
 * The inspector's hands: comment, delete, duplicate, save (w), load (L), body (b),
 * the : prompt, options (O), the waterfall, r against a live registry. Every test
 * works on a copy of the tiny recording and checks that the copy is never written
 * unless the user saved over it with --write.
 */

let tiny: Tiny;
let work: string;
const open: Array<{ close(): void }> = [];

beforeAll(async () => {
  tiny = await writeTinyRecording();
});
afterEach(() => {
  for (const h of open.splice(0)) h.close();
  fs.rmSync(work, { recursive: true, force: true });
});
afterAll(() => {
  fs.rmSync(tiny.dir, { recursive: true, force: true });
});

const digest = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

/** A fresh copy of the tiny recording (db + blobs) and a controller over it. */
function ui(opts: { write?: boolean; size?: { cols: number; rows: number } } = {}) {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-edits-'));
  const file = path.join(work, 'tiny.db');
  fs.copyFileSync(tiny.file, file);
  fs.cpSync(tiny.file.replace(/\.db$/, '.blobs'), path.join(work, 'tiny.blobs'), { recursive: true });
  const h = controllerFor(file, opts.size ?? { cols: 140, rows: 40 }, { cwd: work, write: opts.write });
  open.push(h);
  return { ...h, file, before: digest(file) };
}

function untouched(h: ReturnType<typeof ui>) {
  expect(digest(h.file)).toBe(h.before);
  expect(fs.existsSync(`${h.file}-wal`)).toBe(false);
  expect(fs.existsSync(`${h.file}-shm`)).toBe(false);
}

const flowsIn = (file: string) => {
  const rec = Recording.open(file, { readonly: true, untouched: true });
  try {
    return rec.list();
  } finally {
    rec.close();
  }
};

describe('comment, delete, duplicate (in memory)', () => {
  it('; comments the focused flow; the comment shows in the list and the details, not in the file', () => {
    const h = ui();
    keys(h.c, ';', 'first ping', 'enter');
    expect(h.c.env.model.get(1)?.comment).toBe('first ping');
    expect(frameText(h.c)).toContain('comment on #1 (1 unsaved change: w saves)');
    keys(h.c, 'enter', 'tab');
    expect(frameText(h.c)).toMatch(/comment\s+first ping/);
    keys(h.c, 'q');
    keys(h.c, ';', 'ctrl-u', 'enter');
    expect(h.c.env.model.get(1)?.comment).toBeNull();
    untouched(h);
  });

  it('d deletes from the view, D duplicates at the end', () => {
    const h = ui();
    keys(h.c, 'd');
    expect(h.c.state.view.map((f) => f.id)).not.toContain(1);
    expect(h.c.state.view).toHaveLength(15);
    keys(h.c, 'D');
    expect(h.c.state.view).toHaveLength(16);
    const copy = h.c.state.view.at(-1)!;
    expect(copy.request.target).toBe(h.c.state.view[0]!.request.target); // flow 2, focused after 1 left
    expect(frameText(h.c)).toContain('2 unsaved');
    // The copy opens like the flow it copies.
    keys(h.c, 'G', 'enter');
    expect(frameText(h.c)).toContain('copy 1 (saved as a new flow) GET https://auth.test/token');
    expect(frameText(h.c)).toContain('REDACTED-aaaaaaaa (redacted when recorded)');
    untouched(h);
  });
});

describe('w: save flows', () => {
  it('saves marked flows with their marks and comments to a new recording; the source stays as it was', async () => {
    const h = ui();
    keys(h.c, 'j', ';', 'token of alpine', 'enter', 'm', 'j', 'm');
    keys(h.c, 'w', 'm');
    expect(frameText(h.c)).toContain('save marked flows to: tiny-marked.db');
    keys(h.c, 'enter');
    await vi.waitFor(() => expect(frameText(h.c)).toContain('saved 2 flows'));
    const saved = flowsIn(path.join(work, 'tiny-marked.db'));
    expect(saved.map((f) => f.request.host)).toEqual(['auth.test', 'registry.test']);
    expect(saved.map((f) => f.marked)).toEqual([true, true]);
    expect(saved[0]!.comment).toBe('token of alpine');
    expect(frameText(h.c)).toContain('read-only'); // nothing unsaved any more
    untouched(h);
  });

  it('saves all flows, with duplicates as new flows and without deleted ones; bodies come along', async () => {
    const h = ui();
    keys(h.c, 'd', 'D', 'w', 'a', 'enter');
    await vi.waitFor(() => expect(frameText(h.c)).toContain('saved 16 flows'));
    const out = path.join(work, 'tiny-all.db');
    const saved = flowsIn(out);
    expect(saved).toHaveLength(16);
    expect(new Set(saved.map((f) => f.uuid)).size).toBe(16);
    const rec = Recording.open(out, { readonly: true, untouched: true });
    const layer = saved.find((f) => f.request.host === 'cdn.test' && (f.responseBody?.size ?? 0) === 3000)!;
    expect(rec.readBodySync(layer.responseBody!.sha256!, 1 << 20)?.length).toBe(3000);
    rec.close();
    untouched(h);
  });

  it('saves the shown (filtered) flows; refuses an existing file and the file shown without --write', async () => {
    const h = ui();
    keys(h.c, 'f', '~repo lab/oci', 'enter', 'w', 's', 'enter');
    await vi.waitFor(() => expect(frameText(h.c)).toContain('saved 5 flows'));
    keys(h.c, 'w', 's', 'enter');
    expect(h.c.state.prompt?.error?.message).toMatch(/exists; choose another name/);
    keys(h.c, 'ctrl-u', 'tiny.db', 'enter');
    expect(h.c.state.prompt?.error?.message).toMatch(/is the recording shown; start regtape ui with --write/);
    untouched(h);
  });

  it('with --write, saves marks over the file shown (and only then does it change)', async () => {
    const h = ui({ write: true });
    keys(h.c, 'm', 'w', 'a', 'ctrl-u', 'tiny.db', 'enter');
    await vi.waitFor(() => expect(frameText(h.c)).toContain('saved 16 flows'));
    expect(digest(h.file)).not.toBe(h.before);
    expect(flowsIn(h.file)[0]!.marked).toBe(true);
    expect(fs.existsSync(`${h.file}-wal`)).toBe(false);
  });
});

describe('b, L, :, O', () => {
  it('b saves the response body of the focused flow to the path prompted', async () => {
    const h = ui();
    const layerId = tiny.ids['alpine.layer.cdn']!;
    keys(h.c, 'g');
    while (h.c.state.view[h.c.state.list.cursor]!.id !== layerId) h.c.key('j');
    keys(h.c, 'b');
    expect(h.c.state.prompt?.kind).toBe('body');
    keys(h.c, 'ctrl-u', 'layer.bin', 'enter');
    await vi.waitFor(() => expect(frameText(h.c)).toContain('wrote 3000 bytes'));
    const bytes = fs.readFileSync(path.join(work, 'layer.bin'));
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(tiny.digests['alpine.layer']);
    expect(fs.statSync(path.join(work, 'layer.bin')).mode & 0o777).toBe(0o600);
  });

  it('L loads another recording (asking first when changes are unsaved)', async () => {
    const h = ui();
    keys(h.c, 'f', '~repo lab/oci', 'enter', 'w', 's', 'enter');
    await vi.waitFor(() => expect(frameText(h.c)).toContain('saved 5 flows'));
    keys(h.c, 'm', 'L', 'tiny-shown.db', 'enter');
    expect(frameText(h.c)).toContain('1 unsaved change will be lost: load tiny-shown.db? (y/n, w saves first)');
    keys(h.c, 'y');
    expect(h.c.state.view).toHaveLength(5);
    expect(frameText(h.c)).toContain('tiny-shown.db  5 flows');
    keys(h.c, 'L', 'nope.db', 'enter');
    expect(h.c.state.prompt?.error?.message).toMatch(/no such recording/);
    untouched(h);
  });

  it(': completes command ids with tab and runs the one typed', () => {
    const h = ui();
    keys(h.c, ':', 'list.ma', 'tab');
    expect(h.c.state.prompt?.text).toBe('list.mark');
    expect(frameText(h.c)).toContain('list.mark  list.markedOnly');
    keys(h.c, 'enter');
    expect(h.c.state.prompt).toBeNull();
    expect(h.c.env.model.get(1)?.marked).toBe(true);
    keys(h.c, ':', 'nope', 'enter');
    expect(frameText(h.c)).toContain('no command starts with nope');
  });

  it('O lists options; enter changes the one on the line', () => {
    const h = ui();
    keys(h.c, 'O');
    expect(current(h.c.state).kind).toBe('options');
    const text = frameText(h.c);
    expect(text).toMatch(/view\.order\s+time/);
    expect(text).toContain('not allowed: w writes a new recording');
    keys(h.c, 'enter');
    expect(h.c.state.spec.order).toBe('method');
    expect(frameText(h.c)).toMatch(/view\.order\s+method/);
  });
});

describe('registry eyes', () => {
  it('T then tab: the waterfall joins each redirect with its CDN download, phases by glyph', () => {
    const h = ui({ size: { cols: 160, rows: 50 } });
    keys(h.c, 'T', 'tab');
    const sc = current(h.c.state) as OpsScreen;
    expect(sc.mode).toBe('waterfall');
    const text = sc.lines.map(plain);
    expect(text[0]).toContain('░ redirect  ▒ connect  ▓ TLS  ─ wait  █ transfer');
    const layer = text.find((l) => l.includes(tiny.digests['alpine.layer']!.slice(7, 19)) && l.includes('cdn-blob'));
    expect(layer).toBeDefined();
    expect(layer).toContain('registry.test → cdn.test');
    expect(layer).toMatch(/░+.*▒+.*▓+.*─+.*█+/);
    // No row of its own for the redirect that was joined.
    expect(text.filter((l) => l.includes('blob-redirect'))).toHaveLength(0);
    keys(h.c, 'tab');
    expect((current(h.c.state) as OpsScreen).mode).toBe('tree');
  });

  it('escapes control characters in what is drawn (a hostile header value)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-hostile-'));
    const file = path.join(dir, 'h.db');
    const rec = Recording.open(file, { create: true });
    rec.beginSession('test');
    const f = { id: 0, uuid: 'u', state: 'complete' as const, request: { method: 'GET', scheme: 'https' as const, host: 'evil.test', port: 443, target: '/v2/\x1b]52;c;aGk=\x07x', httpVersion: '1.1', headers: [['X-Evil', '\x1b[2J\u202egnp.exe'] as [string, string]] }, requestBody: null, response: { status: 200, reason: 'OK\x1b[31m', httpVersion: '1.1', headers: [] }, responseBody: null, timings: { start: 1, end: 2 }, clientAddr: null, serverAddr: null, error: null, requestBytes: 0, responseBytes: 0, facts: {} };
    f.id = rec.insertOpenFlow(f);
    rec.finishFlow(f, null, null);
    rec.close();
    work = dir;
    const h = controllerFor(file, { cols: 140, rows: 30 }, { cwd: dir });
    open.push(h);
    keys(h.c, 'enter', 'shift-tab');
    const frame = frameText(h.c);
    expect(frame).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u202e]/);
    expect(frame).toContain('\\x1b[2J\\u202egnp.exe');
  });

  it('r re-asks a live registry (fresh token) and shows the tag moved and a blob gone, marked live, writing nothing', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 2 }, layers: [] }));
    const live = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
    const seen: string[] = [];
    const ca = loadOrCreateAuthority(fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ca-')));
    const leaf = new LeafFactory(ca).get('registry.test');
    const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
      if (req.url!.startsWith('/token')) return res.end(JSON.stringify({ token: 'fresh-1', expires_in: 60 }));
      if (req.headers.authorization !== 'Bearer fresh-1') {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="https://registry.test/token",service="t",scope="repository:lab/oci:pull"' });
        return res.end();
      }
      if (req.url!.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': live });
        return res.end(manifest);
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const h = ui();
      const port = (server.address() as AddressInfo).port;
      const recorded = h.c.env.model.full(tiny.ids['oci.manifest']!)!;
      // The recorded flow asked registry.test:443; point r at the local server the way record --map does.
      const lines = await (await import('../../src/cli/ui-refetch.js')).refetchLines(recorded, h.c.env, { upstreamCa: [ca.certPath], insecureUpstream: false, map: [`registry.test:443=127.0.0.1:${port}`] });
      const text = lines.map(plain).join('\n');
      expect(text).toContain(' LIVE ');
      expect(text).toContain('not recorded, never written unless saved');
      expect(text).toMatch(/fresh anonymous token from registry\.test for repository:lab\/oci:pull, expires in 60 s/);
      expect(text).toContain(`CHANGED: tag 1 moved from ${tiny.digests['oci.manifest']} to ${live}`);
      expect(text).toMatch(/GONE\s+sha256:\w+ \(404\)/);
      expect(seen.some((s) => s.includes('Bearer fresh-1'))).toBe(true);
      untouched(h);
    } finally {
      server.close();
    }
  });
});

describe('operations: the diagnosis show makes', () => {
  it('lists every problem regtape show finds, per operation, on a fixture of failing pulls', async () => {
    const { loadRecording } = await import('../../src/inspect/index.js');
    const { problemLine } = await import('../../src/registry/index.js');
    const file = path.resolve('fixtures/failing-pulls.db');
    const rec = Recording.open(file, { readonly: true, untouched: true });
    const loaded = await loadRecording(rec);
    rec.close();
    const expected = loaded.operations.flatMap((op) => op.problems.map(problemLine));
    expect(expected.length).toBeGreaterThan(2);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ops-'));
    const h = controllerFor(file, { cols: 600, rows: 60 }, { cwd: work });
    open.push(h);
    keys(h.c, 'T');
    const text = (current(h.c.state) as OpsScreen).lines.map(plain).join('\n');
    for (const p of expected) expect(text).toContain(`problem: ${p}`);
    // enter on a problem opens the flow it is about
    const i = (current(h.c.state) as OpsScreen).lines.findIndex((l) => plain(l).includes('problem: '));
    keys(h.c, 'g');
    for (let k = 0; k < i; k++) h.c.key('j');
    keys(h.c, 'enter');
    expect(current(h.c.state).kind).toBe('detail');
  });
});

describe('more keys', () => {
  it('space / p step through flows in the flow view, P opens the focused flow, e is export as x, C and K open help', () => {
    const h = ui();
    keys(h.c, 'P');
    expect(current(h.c.state)).toMatchObject({ kind: 'detail', flowId: 1 });
    keys(h.c, 'space');
    expect(current(h.c.state)).toMatchObject({ kind: 'detail', flowId: 2 });
    keys(h.c, 'space', 'p');
    expect(current(h.c.state)).toMatchObject({ kind: 'detail', flowId: 2 });
    keys(h.c, 'p', 'p');
    expect(frameText(h.c)).toContain('first flow of the list');
    keys(h.c, 'q');
    expect(h.c.state.list.cursor).toBe(0); // the list focus followed
    keys(h.c, 'e');
    expect(h.c.state.menu).toBe('export');
    keys(h.c, 'esc', 'C');
    expect(current(h.c.state).kind).toBe('help');
    expect(frameText(h.c)).toContain('Flow list');
    keys(h.c, 'q', 'K');
    expect(current(h.c.state).kind).toBe('help');
    const help = (current(h.c.state) as { lines: Parameters<typeof plain>[0][] }).lines.map(plain).join('\n');
    expect(help).toContain('mitmproxy keys regtape does not bind, and why');
    expect(help).toMatch(/Commands \(: runs one by id; tab completes\)/);
    expect(help).toMatch(/flow\.refetch\s+re-ask the live registry/);
  });

  it('r on a flow that is not a manifest says what r is for', () => {
    const h = ui();
    keys(h.c, 'r');
    expect(frameText(h.c)).toContain('r re-asks the registry for a manifest or tag; #1 is ping');
  });
});
