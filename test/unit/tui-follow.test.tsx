import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Recording } from '../../src/store/index.js';
import { attachFollow } from '../../src/tui/index.js';
import { controllerFor, frameText, writeTinyRecording, type Tiny } from './tui-support.js';

/** `ui --follow`: a reader beside a writer sees new flows and open flows finishing. */

let tiny: Tiny;
beforeAll(async () => {
  tiny = await writeTinyRecording();
});
afterAll(() => {
  fs.rmSync(tiny.dir, { recursive: true, force: true });
});

describe('ui --follow', () => {
  it('shows flows another writer commits, and an open flow when it finishes', async () => {
    const writer = Recording.open(tiny.file);
    writer.beginSession('test');
    const h = controllerFor(tiny.file, { cols: 140, rows: 40 }, { follow: true });
    const stop = attachFollow(h.c, 20);
    try {
      expect(h.c.state.view).toHaveLength(16);
      const f = { id: 0, uuid: 'follow-1', state: 'open' as const, request: { method: 'GET', scheme: 'https' as const, host: 'registry.test', port: 443, target: '/v2/lab/new/manifests/2', httpVersion: '1.1', headers: [] }, requestBody: null, response: null, responseBody: null, timings: { start: Date.now() }, clientAddr: null, serverAddr: null, error: null, requestBytes: 0, responseBytes: 0, facts: {} };
      f.id = writer.insertOpenFlow(f);
      await vi.waitFor(() => expect(frameText(h.c)).toMatch(/\/v2\/lab\/new\/manifests\/2\s+…/), { timeout: 2000 });
      expect(h.c.state.view).toHaveLength(17);
      expect(h.c.state.view[h.c.state.list.cursor]!.id).toBe(f.id); // focus follows the newest
      writer.finishFlow({ ...f, state: 'complete', response: { status: 404, reason: 'Not Found', httpVersion: '1.1', headers: [] }, timings: { start: f.timings.start, end: f.timings.start + 5 } }, null, null);
      await vi.waitFor(() => expect(frameText(h.c)).toMatch(/\/v2\/lab\/new\/manifests\/2\s+404/), { timeout: 2000 });
    } finally {
      stop();
      h.close();
      writer.close();
    }
  });
});
