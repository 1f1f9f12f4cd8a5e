import fs from 'node:fs';
import { render } from 'ink-testing-library';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { App, noColor, textProps } from '../../src/tui/app.js';
import { renderFrame } from '../../src/tui/render.js';
import { controllerFor, writeTinyRecording, type Tiny } from './tui-support.js';

/**
 * The ink app over a tiny recording written with the store API: keys go in through
 * stdin as a terminal sends them, frames come out as text.
 */

let tiny: Tiny;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  tiny = await writeTinyRecording();
});
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
afterAll(() => {
  fs.rmSync(tiny.dir, { recursive: true, force: true });
});

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

async function mount() {
  // ink-testing-library's stdout is 100 columns wide and has no rows.
  const h = controllerFor(tiny.file, { cols: 100, rows: 30 });
  const app = render(<App controller={h.c} fixedSize />);
  cleanups.push(() => {
    app.unmount();
    h.close();
  });
  const frame = () => app.lastFrame() ?? '';
  /** Wait until the frame passes `check` (React draws after the key is handled; slow machines are slow). */
  const until = (check: (f: string) => void) => vi.waitFor(() => check(frame()), { timeout: 5000, interval: 10 });
  await until((f) => expect(f).toContain('regtape'));
  await tick(50); // useInput listens from an effect after the first frame
  const type = async (...keys: string[]) => {
    for (const k of keys) {
      app.stdin.write(k);
      await tick();
    }
  };
  return { app, h, type, frame, until };
}

const ENTER = '\r';
const ESC = '\x1b';
const TAB = '\t';

describe('inspector app (ink)', () => {
  it('draws the flow list in one frame shorter than the terminal', async () => {
    const { frame } = await mount();
    const lines = frame().split('\n');
    expect(lines).toHaveLength(29);
    expect(lines[0]).toContain('regtape');
    expect(lines[0]).toContain('tiny.db  16 flows');
    expect(frame()).toContain('/v2/lab/alpine/manifests/3.9');
    expect(frame()).toContain('q:quit');
  });

  it('filters to a repository', async () => {
    const { type, frame, until } = await mount();
    await type('f', '~repo lab/oci');
    await until((f) => expect(f).toContain('filter: ~repo lab/oci'));
    await type(ENTER);
    await until((f) => expect(f).toContain('16 flows, 5 shown'));
    expect(frame()).toContain('/v2/lab/oci/manifests/1');
    expect(frame()).not.toContain('lab/alpine');
  });

  it('shows a syntax error inline and keeps the last good filter', async () => {
    const { type, frame, until } = await mount();
    await type('f', '~repo lab/oci', ENTER);
    await until((f) => expect(f).toContain('16 flows, 5 shown'));
    await type('f', '\x15', '~m GET ~u', ENTER); // ctrl-u clears the prompt
    await until((f) => expect(f).toContain('filter error: expected a regex after ~u'));
    expect(frame()).toContain('the list keeps the last good filter');
    expect(frame()).toContain('16 flows, 5 shown');
    expect(frame()).toContain('filter ~repo lab/oci');
    await type(ESC);
    await until((f) => expect(f).not.toContain('filter error'));
    expect(frame()).toContain('/v2/lab/oci/manifests/1');
  });

  it('opens a manifest and follows a layer to the flow that fetched it', async () => {
    const { type, frame, until } = await mount();
    await type('f', '~repo lab/oci & ~op manifest', ENTER);
    await until((f) => expect(f).toContain('16 flows, 1 shown'));
    await type(ENTER);
    await until((f) => expect(f).toContain('body view: manifest'));
    expect(frame()).toContain(' Response ');
    expect(frame()).toContain('OCI manifest');
    expect(frame()).toMatch(/config\s+sha256:/);
    expect(frame()).toMatch(/layers\s+1, 3\.0 kB compressed/);
    await type('j', 'j', ENTER); // the cursor starts on the config; down to the layer
    await until((f) => expect(f).toContain(`#${tiny.ids['oci.layer.cdn']} GET https://cdn.test/blobs/`));
    expect(frame()).toContain('body view: hex');
    await type('q');
    await until((f) => expect(f).toContain('OCI manifest'));
    await type(TAB);
    await until((f) => expect(f).toContain('Timing'));
  });

  it('shows the token view with decoded claims', async () => {
    const { type, frame, until } = await mount();
    await type('j', ENTER);
    await until((f) => expect(f).toContain('body view: token'));
    expect(frame()).toContain('REDACTED-aaaaaaaa (redacted when recorded)');
    expect(frame()).toMatch(/issuer\s+lab-auth/);
    expect(frame()).toMatch(/subject\s+alice/);
    expect(frame()).toMatch(/expires\s+2026-01-01T00:05:00Z/);
    expect(frame()).toContain('repository:lab/alpine');
    await type('m');
    await until((f) => expect(f).toContain('body view: json'));
    expect(frame()).toContain('"token": "REDACTED-aaaaaaaa"');
  });

  it('opens operations with T and help with ?', async () => {
    const { type, until } = await mount();
    await type('T');
    await until((f) => expect(f).toContain('pull registry.test/lab/alpine:3.9'));
    await type('?');
    await until((f) => expect(f).toContain('Flow list'));
    await type('q', 'q');
    await until((f) => expect(f).toContain('method'));
  });

  it('esc at the list keeps running; q asks, y quits', async () => {
    const { type, h, until } = await mount();
    await type(ESC);
    await until((f) => expect(f).toContain('this is the flow list (q quits)'));
    expect(h.c.state.quit).toBe(false);
    await type('q');
    await until((f) => expect(f).toContain('quit regtape? (y/n)'));
    expect(h.c.state.quit).toBe(false);
    await type('y');
    await vi.waitFor(() => expect(h.c.state.quit).toBe(true));
  });

  it('scrolls with the mouse wheel and opens a flow with two clicks', async () => {
    const { type, h, until } = await mount();
    await type('\x1b[<65;10;5M');
    await vi.waitFor(() => expect(h.c.state.list.cursor).toBe(3));
    await type('\x1b[<64;10;5M');
    await vi.waitFor(() => expect(h.c.state.list.cursor).toBe(0));
    // Row 3 of the terminal is the first flow (title bar, column titles): row 5 is the third.
    await type('\x1b[<0;10;5M', '\x1b[<0;10;5m');
    await vi.waitFor(() => expect(h.c.state.list.cursor).toBe(2));
    await type('\x1b[<0;10;5M');
    await until((f) => expect(f).toContain('Request'));
  });

  it('draws without colour under NO_COLOR, keeping bold, dim and the focus bar (inverse)', () => {
    expect(noColor({ NO_COLOR: '1' })).toBe(true);
    expect(noColor({ NO_COLOR: '' })).toBe(false);
    expect(noColor({})).toBe(false);
    const h = controllerFor(tiny.file, { cols: 100, rows: 30 });
    cleanups.push(() => h.close());
    const segs = renderFrame(h.c.state, h.c.env).flatMap((l) => l.segs);
    expect(segs.some((x) => x.color)).toBe(true);
    const props = segs.map((x) => textProps(x, false));
    expect(props.every((p) => p.color === undefined)).toBe(true);
    expect(props.some((p) => p.inverse)).toBe(true);
    expect(props.some((p) => p.bold)).toBe(true);
  });
});
