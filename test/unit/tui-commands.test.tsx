import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Recording } from '../../src/store/index.js';
import { applyFilter } from '../../src/tui/commands.js';
import { plain } from '../../src/tui/lines.js';
import { current, type DetailScreen, type OpsScreen } from '../../src/tui/state.js';
import { controllerFor, frameText, keys, writeTinyRecording, type Tiny } from './tui-support.js';

let tiny: Tiny;
const open: Array<{ close(): void }> = [];

beforeAll(async () => {
  tiny = await writeTinyRecording();
});
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});
afterAll(() => {
  fs.rmSync(tiny.dir, { recursive: true, force: true });
});

function ui(size = { cols: 140, rows: 40 }, opts: { live?: boolean; cwd?: string } = {}) {
  const h = controllerFor(tiny.file, size, opts);
  open.push(h);
  return h;
}

const ids = (h: ReturnType<typeof ui>) => h.c.state.view.map((f) => f.id);
const detail = (h: ReturnType<typeof ui>) => current(h.c.state) as DetailScreen;

describe('filter', () => {
  it('filters to a repository with the f prompt', () => {
    const h = ui();
    keys(h.c, 'f', '~repo lab/oci', 'enter');
    expect(h.c.state.prompt).toBeNull();
    expect(h.c.state.filterText).toBe('~repo lab/oci');
    expect(ids(h)).toEqual([tiny.ids['oci.manifest'], tiny.ids['oci.config.redirect'], tiny.ids['oci.config.cdn'], tiny.ids['oci.layer.redirect'], tiny.ids['oci.layer.cdn']]);
    const text = frameText(h.c);
    expect(text).toContain('16 flows, 5 shown');
    expect(text).toContain('lab/oci:1');
    expect(text).not.toContain('lab/alpine');
  });

  it('shows a syntax error inline and keeps the last good filter', () => {
    const h = ui();
    keys(h.c, 'f', '~repo lab/oci', 'enter');
    const before = ids(h);
    keys(h.c, 'f', 'ctrl-u', '~m GET ~u', 'enter');
    expect(h.c.state.prompt?.error?.message).toMatch(/a regex after ~u/);
    expect(h.c.state.filterText).toBe('~repo lab/oci');
    expect(ids(h)).toEqual(before);
    const text = frameText(h.c);
    expect(text).toContain('filter error: expected a regex after ~u');
    expect(text).toMatch(/\n {8,}\^/); // the caret under the place
    expect(text).toContain('lab/oci:1');
    // Fixing the text clears the error; enter applies it.
    keys(h.c, ' blobs');
    expect(h.c.state.prompt?.error).toBeUndefined();
    keys(h.c, 'enter');
    expect(h.c.state.filterText).toBe('~m GET ~u blobs');
    expect(h.c.state.view.every((f) => f.request.target.includes('blobs'))).toBe(true);
  });

  it('esc closes the prompt without applying; an empty filter shows everything', () => {
    const h = ui();
    keys(h.c, 'f', '~d cdn', 'esc');
    expect(h.c.state.view).toHaveLength(16);
    keys(h.c, 'f', '~d cdn', 'enter');
    expect(h.c.state.view).toHaveLength(5);
    keys(h.c, 'f', 'ctrl-u', 'enter');
    expect(h.c.state.view).toHaveLength(16);
  });

  it('edits the prompt: left, backspace, ctrl-a', () => {
    const h = ui();
    keys(h.c, 'f', '~m GT', 'left', 'E', 'ctrl-a', 'x', 'backspace', 'end', 'right');
    expect(h.c.state.prompt?.text).toBe('~m GET');
  });

  it('reads headers only when a filter asks for them', () => {
    const h = ui();
    const r = applyFilter(h.c.state, h.env, '~hs "www-authenticate: bearer"');
    expect(r.state.view.map((f) => f.id)).toEqual([tiny.ids['alpine.ping'], tiny.ids['oci.ping']]);
    expect(applyFilter(h.c.state, h.env, '~b UNAUTHORIZED').state.view).toHaveLength(2);
  });
});

describe('older recordings', () => {
  it('classifies flows recorded without registry facts, in order, as regtape show does', async () => {
    const t = await writeTinyRecording();
    try {
      const db = new Database(t.file);
      db.prepare('UPDATE flows SET registry = NULL').run();
      db.close();
      const h = controllerFor(t.file);
      open.push(h);
      expect(h.c.state.view.map((f) => f.registry?.role)).toEqual(['ping', 'token', 'manifest', 'manifest', 'blob-redirect', 'cdn-blob', 'blob-redirect', 'cdn-blob', 'ping', 'token', 'manifest', 'blob-redirect', 'cdn-blob', 'blob-redirect', 'cdn-blob', 'other']);
      keys(h.c, 'f', '~repo lab/oci & (~cdn | ~redirect)', 'enter');
      expect(h.c.state.view).toHaveLength(4);
    } finally {
      fs.rmSync(t.dir, { recursive: true, force: true });
    }
  });
});

describe('list', () => {
  it('moves with j/k, g/G and pages, keeping the focus on screen', () => {
    const h = ui({ cols: 120, rows: 10 });
    keys(h.c, 'G');
    expect(h.c.state.list.cursor).toBe(15);
    expect(h.c.state.list.top).toBeGreaterThan(0);
    keys(h.c, 'g', 'j', 'j');
    expect(h.c.state.list.cursor).toBe(2);
    keys(h.c, 'space');
    expect(h.c.state.list.cursor).toBe(2 + 5);
    keys(h.c, 'ctrl-b', 'k', 'k', 'k');
    expect(h.c.state.list.cursor).toBe(0);
  });

  it('orders by method, url, size, duration, status, host and back to time; v reverses', () => {
    const h = ui();
    keys(h.c, 'o');
    expect(h.c.state.spec.order).toBe('method');
    keys(h.c, 'o');
    expect(h.c.state.spec.order).toBe('url');
    const urls = h.c.state.view.map((f) => f.request.host + f.request.target);
    expect(urls).toEqual([...urls].sort());
    keys(h.c, 'o');
    expect(h.c.state.spec.order).toBe('size');
    const sizes = h.c.state.view.map((f) => f.responseBytes || f.requestBytes);
    expect(sizes).toEqual([...sizes].sort((a, b) => a - b));
    keys(h.c, 'v');
    expect(h.c.state.view[0]!.responseBytes).toBe(12345);
    keys(h.c, 'o', 'o', 'o');
    expect(h.c.state.spec.order).toBe('host');
    keys(h.c, 'o', 'v');
    expect(h.c.state.spec.order).toBe('time');
    expect(ids(h)).toEqual([...ids(h)].sort((a, b) => a - b));
  });

  it('marks flows and shows only marked ones, in memory: the recording is not written', () => {
    const before = fs.readFileSync(tiny.file);
    const h = ui();
    keys(h.c, 'j', 'm', 'j', 'm');
    expect(h.c.state.list.cursor).toBe(4); // m moves down, like mitmproxy
    keys(h.c, 'M');
    expect(ids(h)).toEqual([2, 4]);
    expect(frameText(h.c)).toContain('●');
    expect(frameText(h.c)).toContain('2 unsaved (w saves)');
    const rec = Recording.open(tiny.file, { readonly: true, untouched: true });
    expect([rec.get(2)?.marked, rec.get(4)?.marked]).toEqual([false, false]);
    rec.close();
    keys(h.c, 'g', 'm');
    expect(ids(h)).toEqual([4]);
    keys(h.c, 'm', 'M');
    expect(h.c.state.view).toHaveLength(16);
    expect(frameText(h.c)).toContain('read-only');
    expect(fs.readFileSync(tiny.file).equals(before)).toBe(true);
    expect(fs.existsSync(`${tiny.file}-wal`) || fs.existsSync(`${tiny.file}-shm`)).toBe(false);
  });

  it('U unmarks every flow', () => {
    const h = ui();
    keys(h.c, 'm', 'm', 'm', 'U');
    expect(h.c.env.model.rows.filter((f) => f.marked)).toHaveLength(0);
    expect(frameText(h.c)).toContain('unmarked 3 flows');
  });

  it('searches the shown lines with / and n/N', () => {
    const h = ui();
    keys(h.c, '/', 'cdn.test', 'enter');
    expect(h.c.state.view[h.c.state.list.cursor]!.id).toBe(tiny.ids['alpine.config.cdn']);
    keys(h.c, 'n');
    expect(h.c.state.view[h.c.state.list.cursor]!.id).toBe(tiny.ids['alpine.layer.cdn']);
    keys(h.c, 'N');
    expect(h.c.state.view[h.c.state.list.cursor]!.id).toBe(tiny.ids['alpine.config.cdn']);
    keys(h.c, '/', 'ctrl-u', '[', 'enter');
    expect(h.c.state.prompt?.error).toBeDefined();
  });

  it('z hides what is shown so far, Z brings it back; F follows the newest flow', () => {
    const h = ui();
    keys(h.c, 'z');
    expect(h.c.state.view).toHaveLength(0);
    expect(frameText(h.c)).toContain('no flow matches');
    keys(h.c, 'Z');
    expect(h.c.state.view).toHaveLength(16);
    keys(h.c, 'F');
    expect(h.c.state.follow).toBe(true);
    expect(h.c.state.list.cursor).toBe(15);
    keys(h.c, 'k');
    expect(h.c.state.follow).toBe(false);
  });

  it('q asks before quitting at the list, esc never quits; Q asks only with unsaved changes', () => {
    const h = ui();
    keys(h.c, 'esc');
    expect(h.c.state.quit).toBe(false);
    expect(frameText(h.c)).toContain('this is the flow list (q quits)');
    keys(h.c, 'q');
    expect(h.c.state.quit).toBe(false);
    expect(frameText(h.c)).toContain('quit regtape? (y/n)');
    keys(h.c, 'n');
    expect(h.c.state.quit).toBe(false);
    keys(h.c, 'q', 'y');
    expect(h.c.state.quit).toBe(true);
    const q = ui();
    keys(q.c, 'Q');
    expect(q.c.state.quit).toBe(true);
    const dirty = ui();
    keys(dirty.c, 'm', 'Q');
    expect(dirty.c.state.quit).toBe(false);
    expect(frameText(dirty.c)).toContain('1 unsaved change (marks, comments, deletions): quit without saving? (y/n, w saves first)');
    keys(dirty.c, 'w');
    expect(dirty.c.state.menu).toBe('save');
    keys(dirty.c, 'esc', 'q', 'y');
    expect(dirty.c.state.quit).toBe(true);
  });

  it('in a live session q asks to stop recording', () => {
    const live = ui(undefined, { live: true });
    keys(live.c, 'q');
    expect(live.c.state.quit).toBe(false);
    expect(frameText(live.c)).toContain('stop recording and quit? (y/n)');
    keys(live.c, 'n');
    expect(live.c.state.quit).toBe(false);
    expect(frameText(live.c)).toContain('still recording');
    keys(live.c, 'q', 'y');
    expect(live.c.state.quit).toBe(true);
  });
});

describe('detail', () => {
  const openFlow = (h: ReturnType<typeof ui>, id: number) => {
    keys(h.c, 'g');
    for (let i = 0; i < h.c.state.view.findIndex((f) => f.id === id); i++) h.c.key('j');
    h.c.key('enter');
    expect(detail(h).flowId).toBe(id);
  };

  it('opens a manifest as a tree; enter on a layer jumps to the flow that fetched it', () => {
    const h = ui();
    openFlow(h, tiny.ids['alpine.manifest']!);
    const d = detail(h);
    expect(d.tab).toBe('response');
    expect(d.mode).toBe('manifest');
    const text = frameText(h.c);
    expect(text).toContain('OCI manifest');
    expect(text).toMatch(/config\s+sha256:/);
    expect(text).toContain(`→ #${tiny.ids['alpine.config.cdn']}`);
    expect(text).toContain(`→ #${tiny.ids['alpine.layer.cdn']}`);
    // The cursor starts on the first link (the config); j goes to the layer.
    expect(plain(d.lines[d.cursor]!)).toMatch(/^config/);
    keys(h.c, 'j', 'j');
    expect(plain(detail(h).lines[detail(h).cursor]!)).toContain(tiny.digests['alpine.layer']!.slice(0, 19));
    keys(h.c, 'enter');
    expect(detail(h).flowId).toBe(tiny.ids['alpine.layer.cdn']);
    expect(detail(h).mode).toBe('hex'); // a gzip layer
    expect(frameText(h.c)).toMatch(/00000000 {2}1f 8b 00/);
    keys(h.c, 'q');
    expect(detail(h).flowId).toBe(tiny.ids['alpine.manifest']);
    keys(h.c, 'q');
    expect(current(h.c.state).kind).toBe('list');
  });

  it('opens an index; its platforms link to the platform manifest', () => {
    const h = ui();
    openFlow(h, tiny.ids['alpine.index']!);
    const text = frameText(h.c);
    expect(text).toContain('OCI index');
    expect(text).toMatch(/▶ linux\/amd64 .*→ #4.*chosen/);
    expect(text).toMatch(/^ {2}linux\/arm64\/v8 .*not fetched in this recording/m);
    expect(text).not.toMatch(/arm64.*chosen/);
    // The chosen platform is drawn bold green (and marked ▶ … chosen for NO_COLOR).
    const chosen = detail(h).lines.find((l) => plain(l).includes('linux/amd64'))!;
    expect(chosen.segs[0]).toMatchObject({ bold: true, color: 'green' });
    keys(h.c, 'enter');
    expect(detail(h).flowId).toBe(tiny.ids['alpine.manifest']);
  });

  it('m cycles the body views; tab cycles Request → Response → Details', () => {
    const h = ui();
    openFlow(h, tiny.ids['alpine.manifest']!);
    expect(detail(h).available).toEqual(['manifest', 'json', 'text', 'hex']);
    keys(h.c, 'm');
    expect(detail(h).mode).toBe('json');
    expect(frameText(h.c)).toContain('"schemaVersion": 2');
    keys(h.c, 'm', 'm', 'm');
    expect(detail(h).mode).toBe('manifest');
    keys(h.c, 'tab');
    expect(detail(h).tab).toBe('details');
    keys(h.c, 'tab');
    expect(detail(h).tab).toBe('request');
    expect(frameText(h.c)).toContain('Authorization: Bearer REDACTED-aaaaaaaa');
    keys(h.c, 'shift-tab');
    expect(detail(h).tab).toBe('details');
  });

  it('shows decoded token claims; the token stays a redaction marker', () => {
    const h = ui();
    openFlow(h, tiny.ids['alpine.token']!);
    expect(detail(h).mode).toBe('token');
    const text = frameText(h.c);
    expect(text).toContain('REDACTED-aaaaaaaa (redacted when recorded)');
    expect(text).toMatch(/issuer\s+lab-auth/);
    expect(text).toMatch(/subject\s+alice/);
    expect(text).toMatch(/audience\s+registry\.test/);
    expect(text).toMatch(/issued\s+2026-01-01T00:00:00Z/);
    expect(text).toMatch(/expires\s+2026-01-01T00:05:00Z\s+\(lifetime 300 s\)/);
    expect(text).toContain('repository:lab/alpine');
    expect(text).toMatch(/expires_in\s+300 s/);
  });

  it('shows timing, addresses, digest check, registry facts and redactions in Details', () => {
    const h = ui();
    openFlow(h, tiny.ids['alpine.config.cdn']!);
    keys(h.c, 'tab');
    const text = detail(h).lines.map(plain).join('\n');
    for (const want of ['Timing', 'connect', 'first byte', 'Connection', '127.0.0.9:443', 'handshake 2 ms', 'Digest', 'Registry', 'cdn-blob', 'Redactions']) expect(text).toContain(want);
    expect(text).toMatch(/check\s+ok: the stored body hashes to sha256:/);
    expect(text).toMatch(new RegExp(`redirected by\\s+→ #${tiny.ids['alpine.config.redirect']}`));
    expect(text).toMatch(/receive\s+▕\s*█+\s*▏ 2 ms/);
  });

  it('request tab of an authenticated request offers the token view of its bearer token', () => {
    const h = ui();
    openFlow(h, tiny.ids['oci.manifest']!);
    keys(h.c, 'shift-tab');
    expect(detail(h).tab).toBe('request');
    expect(detail(h).available).toContain('token');
    expect(frameText(h.c)).toContain('repository:lab/oci');
  });
});

describe('operations', () => {
  it('shows pulls as trees with per-layer time and throughput; enter opens the flow', () => {
    const h = ui();
    keys(h.c, 'T');
    const sc = current(h.c.state) as OpsScreen;
    expect(sc.kind).toBe('ops');
    const text = sc.lines.map(plain).join('\n');
    expect(text).toMatch(/pull registry\.test\/lab\/alpine:3\.9/);
    expect(text).toMatch(/pull registry\.test\/lab\/oci:1/);
    expect(text).toMatch(/index\s+sha256:/);
    expect(text).toContain('linux/amd64');
    expect(text).toMatch(/layer\s+sha256:\S+\s+3\.0 kB\s+8 ms\s+375 kB\/s\s+CDN cdn\.test\s+→ #8/);
    const layerLine = sc.lines.findIndex((l) => plain(l).includes('→ #8'));
    keys(h.c, 'g');
    for (let i = 0; i < layerLine; i++) h.c.key('j');
    keys(h.c, 'enter');
    expect(detail(h).flowId).toBe(8);
    keys(h.c, 'q');
    expect(current(h.c.state).kind).toBe('ops');
  });

  it('keeps only operations with a flow that matches the filter', () => {
    const h = ui();
    keys(h.c, 'f', '~repo oci', 'enter', 'T');
    const text = (current(h.c.state) as OpsScreen).lines.map(plain).join('\n');
    expect(text).toContain('lab/oci');
    expect(text).not.toContain('lab/alpine');
  });
});

describe('export', () => {
  it('writes curl, raw and HAR files to the path prompted, never overwriting', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-tui-export-'));
    const done = async (h: ReturnType<typeof ui>) => vi.waitFor(() => expect(h.c.state.message?.text).toMatch(/^wrote /));
    try {
      const h = ui(undefined, { cwd: out });
      keys(h.c, 'j', 'j', 'x', 'c');
      expect(h.c.state.prompt).toMatchObject({ kind: 'export', format: 'curl', text: 'flow-3.curl.sh' });
      keys(h.c, 'enter');
      await done(h);
      const curlFile = path.join(out, 'flow-3.curl.sh');
      const curl = fs.readFileSync(curlFile, 'utf8');
      expect(curl).toMatch(/^#!\/bin\/sh\n/);
      expect(curl).toContain('curl -X GET https://registry.test/v2/lab/alpine/manifests/3.9');
      // The project's curl export: a redacted token becomes a shell variable.
      expect(curl).toContain('"${REGTAPE_TOKEN}"');
      expect(curl).not.toContain('REDACTED-aaaaaaaa');
      expect(fs.statSync(curlFile).mode & 0o777).toBe(0o600);

      keys(h.c, 'x', 'c', 'enter');
      expect(h.c.state.prompt?.error?.message).toMatch(/exists; choose another name/);
      keys(h.c, 'esc');

      keys(h.c, 'x', 'r', 'enter');
      await done(h);
      const raw = fs.readFileSync(path.join(out, 'flow-3.txt'), 'utf8');
      expect(raw).toMatch(/^GET \/v2\/lab\/alpine\/manifests\/3\.9 HTTP\/1\.1\r\n/);
      expect(raw).toContain('HTTP/1.1 200 OK\r\n');
      expect(raw).toContain('"mediaType":"application/vnd.oci.image.index.v1+json"');

      keys(h.c, 'f', '~repo alpine', 'enter', 'x', 'h', 'ctrl-u', 'alpine.har', 'enter');
      await done(h);
      expect(frameText(h.c)).toContain('wrote HAR of 6 flows');
      const har = JSON.parse(fs.readFileSync(path.join(out, 'alpine.har'), 'utf8'));
      expect(har.log.entries).toHaveLength(6);
      expect(har.log.entries[0].request.url).toBe('https://registry.test/v2/lab/alpine/manifests/3.9');
      // har-validator (CommonJS, no types): checks against the HAR 1.2 JSON schema.
      const validate = createRequire(import.meta.url)('har-validator') as { har(h: unknown): Promise<unknown> };
      await expect(validate.har(har)).resolves.toBe(har); // rejects with the schema errors when invalid
      expect(h.env.events.entries.some((e) => e.text.startsWith('exported HAR of 6 flows'))).toBe(true);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('frame', () => {
  it('is exactly rows - 1 lines, none wider than the terminal, at any size', () => {
    for (const size of [
      { cols: 160, rows: 40 },
      { cols: 80, rows: 24 },
      { cols: 60, rows: 10 },
    ]) {
      const h = ui(size);
      for (const k of ['', 'enter', 'tab', 'T', 'O', '?', 'E']) {
        if (k) h.c.key(k);
        const lines = frameText(h.c).split('\n');
        expect(lines).toHaveLength(size.rows - 1);
        for (const l of lines) expect(l.length).toBeLessThanOrEqual(size.cols);
      }
    }
  });

  it('re-lays out on resize and keeps the cursor on screen', () => {
    const h = ui({ cols: 160, rows: 40 });
    keys(h.c, 'G');
    h.c.resize({ cols: 80, rows: 8 });
    const s = h.c.state;
    expect(s.list.cursor).toBe(15);
    expect(s.list.cursor).toBeGreaterThanOrEqual(s.list.top);
    expect(frameText(h.c).split('\n')).toHaveLength(7);
    expect(frameText(h.c)).toContain('aborted');
  });

  it('help and the event log are screens of their own', () => {
    const h = ui();
    keys(h.c, '?');
    expect(frameText(h.c)).toContain('Flow list');
    keys(h.c, 'q');
    h.env.events.add('warn', 'upstream registry.test: connection refused');
    keys(h.c, 'E');
    expect(frameText(h.c)).toContain('warn  upstream registry.test: connection refused');
    expect(frameText(h.c)).toContain('1 warning (E)');
  });
});
