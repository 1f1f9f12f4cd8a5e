import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type { FlowRecord } from '../../src/flow/index.js';
import { hexDump, isBinary, textLines } from '../../src/tui/body-views/hex.js';
import { prettyJson, tokenizeJsonLine } from '../../src/tui/body-views/json.js';
import { tokenView } from '../../src/tui/body-views/token.js';
import { handleKey } from '../../src/tui/commands.js';
import { Controller } from '../../src/tui/controller.js';
import { createEnv } from '../../src/tui/env.js';
import { toRaw } from '../../src/tui/export.js';
import { columnsFor, flowRow, shortTarget } from '../../src/tui/flow-row.js';
import { fit, line, plain, seg, wrap } from '../../src/tui/lines.js';
import { attachLive, type LiveSource } from '../../src/tui/live.js';
import { FlowModel } from '../../src/tui/model.js';
import { renderFrame } from '../../src/tui/render.js';
import { bodyHeight } from '../../src/tui/state.js';
import { MemoryBackend } from '../../src/tui/rows.js';
import { computeView, updateView, type ViewSpec } from '../../src/tui/view.js';
import { parseFilter } from '../../src/filter/index.js';
import { makeFacts as facts, makeFlow } from '../support/flows.js';

function flow(id: number, p: Partial<FlowRecord> = {}): FlowRecord {
  return makeFlow({
    id,
    uuid: `u-${id}`,
    request: { host: id % 3 ? 'registry.test' : 'cdn.test', target: `/v2/lab/r${id % 5}/blobs/x${id}`, headers: [['Host', 'registry.test']] },
    response: { status: [200, 307, 401, 404, 500][id % 5]!, reason: '' },
    timings: { start: 1_000 + id, end: 1_000 + id + (id % 7) },
    responseBytes: (id * 7919) % 1000,
    registry: { role: 'blob', repo: `lab/r${id % 5}` },
    ...p,
  });
}

describe('json body view', () => {
  it('colours keys, strings, numbers and literals', () => {
    const segs = tokenizeJsonLine('  "size": 1500, "ok": true, "name": "a\\"b", "x": null');
    const by = (t: string) => segs.find((s) => s.text.includes(t));
    expect(by('"size"')?.color).toBe('cyan');
    expect(by('1500')?.color).toBe('yellow');
    expect(by('true')?.color).toBe('magenta');
    expect(by('"a\\"b"')?.color).toBe('green');
    expect(segs.map((s) => s.text).join('')).toBe('  "size": 1500, "ok": true, "name": "a\\"b", "x": null');
  });

  it('never loses or invents text', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(tokenizeJsonLine(s).map((x) => x.text).join('')).toBe(s);
      }),
    );
  });

  it('pretty-prints JSON and refuses what is not', () => {
    expect(prettyJson('{"a":[1,2]}')!.map(plain)).toEqual(['{', '  "a": [', '    1,', '    2', '  ]', '}']);
    expect(prettyJson('not json')).toBeNull();
  });
});

describe('hex and text views', () => {
  it('dumps offset, bytes and ASCII', () => {
    const lines = hexDump(Buffer.from('hello, registry!\x00\x01')).map(plain);
    expect(lines[0]).toBe('00000000  68 65 6c 6c 6f 2c 20 72  65 67 69 73 74 72 79 21  hello, registry!');
    expect(lines[1]).toMatch(/^00000010 {2}00 01 {3}/);
  });

  it('tells binary from text', () => {
    expect(isBinary(Buffer.from([0x1f, 0x8b, 0x00, 0x01]))).toBe(true);
    expect(isBinary(Buffer.from('plain text ünïcode'))).toBe(false);
    expect(isBinary(Buffer.from([0xff, 0xfe, 0x41, 0x42, 0x43, 0x44, 0x45]))).toBe(true);
  });

  it('shows control characters as dots', () => {
    expect(textLines('a\tb\x1bc\nd').map(plain)).toEqual(['a    b.c', 'd']);
  });
});

describe('token view', () => {
  it('says when a token is opaque', () => {
    const f = flow(1, { facts: { tokens: [{ where: 'response.body:token', marker: 'REDACTED-12345678', claims: null }] } });
    const text = tokenView(f, 'response', null).map(plain).join('\n');
    expect(text).toContain('REDACTED-12345678');
    expect(text).toContain('opaque token');
  });
});

describe('lines', () => {
  it('fits a line to a width with an ellipsis, and pads', () => {
    const l = line(seg('abc', { color: 'red' }), 'defgh');
    expect(plain(fit(l, 5))).toBe('abcd…');
    expect(plain(fit(l, 8))).toBe('abcdefgh');
    expect(plain(fit(l, 10, true))).toBe('abcdefgh  ');
    expect(fit(l, 5).segs[0]!.color).toBe('red');
  });

  it('wraps with an indent and keeps the link', () => {
    const l = { ...line('x'.repeat(25)), link: { flowId: 7 } };
    const w = wrap(l, 10, 2);
    expect(w.map(plain)).toEqual(['xxxxxxxxxx', '  xxxxxxxx', '  xxxxxxx']);
    expect(w.every((x) => x.link?.flowId === 7)).toBe(true);
  });

  it('cuts long paths in the middle so the end stays', () => {
    const p = shortTarget(`/v2/lab/alpine/blobs/sha256:${'a'.repeat(64)}/data`, 30);
    expect(p).toHaveLength(30);
    expect(p).toMatch(/^\/v2\/lab\/alpine\/bl.*…\/data$/);
    expect(shortTarget('/v2/', 30)).toBe('/v2/');
  });

  it('colours status codes by class', () => {
    const st = (status: number, state: FlowRecord['state'] = 'complete') => {
      const l = flowRow(flow(1, { state, response: { status, reason: '', httpVersion: '1.1', headers: [] } }), columnsFor(140));
      return l.segs.find((s) => s.text.trim() === String(status))?.color;
    };
    expect(st(200)).toBe('green');
    expect(st(307)).toBe('cyan');
    expect(st(404)).toBe('yellow');
    expect(st(429)).toBe('red');
    expect(st(503)).toBe('red');
    expect(st(200, 'aborted')).toBe('red');
  });
});

describe('raw export', () => {
  it('writes the request and response heads in wire order and says when there was no response', () => {
    const f = flow(3, { state: 'error', error: 'ECONNREFUSED', response: null, request: { method: 'HEAD', scheme: 'https', host: 'r.test', port: 5000, target: '/v2/', httpVersion: '1.1', headers: [['Host', 'r.test'], ['Accept', 'a/b'], ['Accept', 'c/d']] } });
    const model = new FlowModel(new MemoryBackend([f]));
    expect(toRaw(f, model)).toBe('HEAD /v2/ HTTP/1.1\r\nHost: r.test\r\nAccept: a/b\r\nAccept: c/d\r\n\r\n\n(no response: error: ECONNREFUSED)\n');
  });
});

describe('view updates', () => {
  const spec = (p: Partial<ViewSpec> = {}): ViewSpec => ({ filter: null, markedOnly: false, hidden: new Set(), order: 'time', reverse: false, ...p });

  it('updating in place gives the same view as computing it again', () => {
    const orders = ['time', 'size', 'duration', 'status', 'host'] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...orders),
        fc.boolean(),
        fc.constantFrom('', '~c 200', '~d cdn', '!~c 401'),
        fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 30 }),
        (order, reverse, expr, changedIds) => {
          const model = new FlowModel(new MemoryBackend([]));
          model.upsert(Array.from({ length: 40 }, (_, i) => flow(i + 1)));
          const sp = spec({ order, reverse, filter: expr ? parseFilter(expr) : null });
          const before = computeView(model, sp);
          // Changed rows: new ones (ids > 40) and replaced ones with new sizes and statuses.
          const changed = model.upsert([...new Set(changedIds)].map((id) => flow(id, { responseBytes: id * 13, response: { status: [200, 401][id % 2]!, reason: '', httpVersion: '1.1', headers: [] } })));
          const updated = updateView(before, changed, model, sp);
          expect(updated.map((f) => f.id)).toEqual(computeView(model, sp).map((f) => f.id));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('many flows', () => {
  it('formats only the rows on screen: 20,000 flows page and draw fast', () => {
    const flows = Array.from({ length: 20_000 }, (_, i) => flow(i + 1));
    const env = createEnv(new MemoryBackend(flows));
    const c = new Controller(env, { size: { cols: 160, rows: 40 } });
    c.loadAll();
    expect(c.state.view).toHaveLength(20_000);
    const t0 = performance.now();
    for (const k of ['G', 'ctrl-b', 'ctrl-b', 'k', 'g', 'space', 'space']) {
      c.key(k);
      expect(renderFrame(c.state, env)).toHaveLength(39);
    }
    expect(performance.now() - t0).toBeLessThan(500); // ~20 ms on an idle machine
    expect(c.state.list.cursor).toBe(2 * bodyHeight(c.state));
  });
});

describe('live', () => {
  it('applies arriving flows at most every 100 ms, follows them, and shows in-flight bytes and rate', () => {
    vi.useFakeTimers();
    try {
      const backend = new MemoryBackend([flow(1), flow(2)]);
      const env = createEnv(backend);
      const c = new Controller(env, { size: { cols: 160, rows: 20 }, live: true });
      c.loadAll();
      let onFlow: ((f: FlowRecord) => void) | null = null;
      let active = [{ id: 3, requestBytes: 0, responseBytes: 0, status: 200, responseLength: 10_000_000 }];
      const src: LiveSource = { url: 'http://127.0.0.1:8080', setOnFlow: (fn) => (onFlow = fn), activeExchanges: () => active };
      // The in-flight flow's open row, as the recording has it.
      backend.adopt(flow(3, { state: 'open', response: null, timings: { start: 2000 }, responseBytes: 0 }));
      let frames = 0;
      c.subscribe(() => frames++);
      const detach = attachLive(c, src);
      expect(c.state.follow).toBe(true);

      vi.advanceTimersByTime(500); // first sample: the open row appears
      vi.advanceTimersByTime(100);
      expect(c.state.view.map((f) => f.id)).toEqual([1, 2, 3]);
      active = [{ ...active[0]!, responseBytes: 2_000_000 }];
      vi.advanceTimersByTime(500);
      const row = renderFrame(c.state, env).map(plain).find((l) => l.includes('/x3'))!;
      expect(row).toMatch(/██░+ 20%/);
      expect(row).toMatch(/2\.0 MB\s+4\.0MB\/s/);
      expect(c.state.list.cursor).toBe(2);

      // A burst of committed flows: one view update, not one per flow.
      const before = frames;
      active = [];
      onFlow!(flow(3));
      for (let id = 4; id < 54; id++) onFlow!(flow(id));
      expect(c.state.view).toHaveLength(3);
      vi.advanceTimersByTime(100);
      expect(c.state.view).toHaveLength(53);
      expect(frames - before).toBe(1);
      expect(c.state.view[c.state.list.cursor]!.id).toBe(53); // follow
      expect(env.model.inFlight.size).toBe(0);

      // z hides what is shown so far; new flows still appear.
      c.state = handleKey(c.state, env, 'z');
      onFlow!(flow(60));
      vi.advanceTimersByTime(100);
      expect(c.state.view.map((f) => f.id)).toEqual([60]);
      detach();
      expect(onFlow).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});
