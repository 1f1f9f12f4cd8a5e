/**
 * Class 5: terminal injection. A registry (or whoever made the recording) controls paths,
 * header values, error text and manifest strings; ESC/OSC/CSI sequences, C1 controls and bidi
 * overrides in them must reach the terminal escaped (visible as \x1b, \u202e) from every
 * human-readable output: show, flows, export --curl, diff, verify, log lines, the recorder's
 * flow lines and the TUI. JSON output stays exact.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { render } from 'ink-testing-library';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { shellQuote } from '../../src/export/curl.js';
import { createLogger } from '../../src/log/index.js';
import { flowLine as recorderFlowLine } from '../../src/inspect/index.js';
import { Recording } from '../../src/store/index.js';
import { App } from '../../src/tui/app.js';
import { CLI } from '../support/cli.js';
import { makeFlow } from '../support/flows.js';
import { storeBuffer } from '../support/replay-fixture.js';
import { controllerFor } from '../unit/tui-support.js';

const OSC52 = '\x1b]52;c;ZXZpbA==\x07'; // write "evil" to the clipboard
const TITLE = '\x1b]0;pwned\x07';
const CLEAR = '\x1b[2J\x1b[H';
const C1 = '\x9b31m';
const BIDI = '\u202e';
/** Anything that would act on a terminal. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

const TARGET = `/v2/lab/${OSC52}img/manifests/${BIDI}latest`;
const PLATFORM_OS = `linux${TITLE}`;
let tmp: string;
let file: string;
let other: string;

async function writeHostile(p: string): Promise<void> {
  const rec = Recording.open(p, { create: true });
  rec.beginSession('test');
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 100, digest: `sha256:${'a'.repeat(64)}`, platform: { os: PLATFORM_OS, architecture: `amd64${CLEAR}` }, annotations: { note: OSC52 } }],
    }),
  );
  const body = await storeBuffer(rec, index);
  const flows = [
    makeFlow({
      request: { target: TARGET, headers: [['Accept', 'application/vnd.oci.image.index.v1+json'], ['X-Evil', TITLE]] },
      response: { status: 200, reason: `OK${CLEAR}`, headers: [['Content-Type', 'application/vnd.oci.image.index.v1+json'], ['X-Evil', `${C1}${OSC52}`]] },
      responseBody: body!.ref,
      responseBytes: index.length,
    }),
    makeFlow({ id: 2, request: { host: `evil${CLEAR}.test` }, state: 'error', response: null, error: `connection reset ${TITLE}${BIDI}` }),
  ];
  for (const f of flows) {
    const id = rec.insertOpenFlow({ uuid: f.uuid, request: f.request, timings: f.timings, clientAddr: null });
    rec.finishFlow({ ...f, id }, null, f.responseBody && f.id === 1 ? body : null);
  }
  rec.close();
}

function run(args: string[]): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH!, HOME: tmp, REGTAPE_HOME: path.join(tmp, 'home'), FORCE_COLOR: '0', NO_COLOR: '1' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, stdout }),
    ),
  );
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-sec5-'));
  file = path.join(tmp, 'hostile.db');
  other = path.join(tmp, 'other.db');
  await writeHostile(file);
  const o = Recording.open(other, { create: true });
  o.close();
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('class 5: control sequences from recorded data are escaped in every human-readable output', () => {
  for (const [label, args] of [
    ['show', () => ['show', file]],
    ['flows', () => ['flows', file]],
    ['export --curl', () => ['export', file, '--curl']],
    ['diff', () => ['diff', other, file]],
    ['verify', () => ['verify', file]],
  ] as Array<[string, () => string[]]>) {
    it(label, async () => {
      const r = await run(args());
      expect(r.out, r.out).not.toMatch(RAW);
      expect(r.out).not.toMatch(/\x1b/);
      if (label !== 'verify' && label !== 'diff') expect(r.out).toMatch(/\\x1b/); // shown, visibly escaped
    });
  }

  it('flows --json keeps the exact strings (JSON escapes them itself)', async () => {
    const r = await run(['flows', file, '--json']);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { target: string; error: string | null });
    expect(rows.map((x) => x.target)).toContain(TARGET);
    expect(rows.map((x) => x.error)).toContain(`connection reset ${TITLE}${BIDI}`);
    expect(r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/); // JSON escapes C0 controls itself
  });

  it('curl export: a header value with control bytes is printed escaped and still sent exactly by sh', () => {
    for (const v of [`X-Evil: ${TITLE} 100% it's \\ ${BIDI}`, 'a\tb\nc']) {
      const q = shellQuote(v);
      expect(q).not.toMatch(RAW); // tab and newline stay: harmless on a terminal, fine inside sh quotes
      expect(execFileSync('sh', ['-c', `printf '%s' ${q}`]).toString()).toBe(v);
    }
  });

  it('log lines and the recorder’s per-flow lines', () => {
    let text = '';
    const sink = new Writable({ write: (c, _e, cb) => ((text += c.toString()), cb()) });
    const log = createLogger('debug', sink);
    log.warn(`upstream said: ${TITLE}${OSC52}`);
    log.info(recorderFlowLine(makeFlow({ request: { target: TARGET }, state: 'error', error: `boom${CLEAR}` })));
    expect(text).not.toMatch(RAW);
    expect(text.split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('the TUI (ink): list and detail views', async () => {
    const h = controllerFor(file, { cols: 160, rows: 40 });
    const app = render(<App controller={h.c} fixedSize />);
    try {
      await vi.waitFor(() => expect(app.lastFrame() ?? '').toContain('regtape'), { timeout: 5000 });
      const frames = [app.lastFrame() ?? ''];
      app.stdin.write('\r'); // open the first flow
      await new Promise((r) => setTimeout(r, 200));
      frames.push(app.lastFrame() ?? '');
      for (const f of frames) {
        expect(f.replace(/\x1b\[[0-9;]*m/g, '')).not.toMatch(RAW); // ink's own colours aside
        expect(f).not.toContain('\x1b]');
      }
    } finally {
      app.unmount();
      h.close();
    }
  });
});
