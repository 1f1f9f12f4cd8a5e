/**
 * A client that does not trust regtape's CA gives up during the TLS handshake inside its CONNECT tunnel and
 * sends no request. The recorder keeps that CONNECT as an `error` flow (with the client's CONNECT headers),
 * so `show` can say why nothing else happened. Real curl against the real recording proxy.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRecording, type RecordSession } from '../../src/cli/record.js';
import { getHeader } from '../../src/flow/index.js';
import { silentLogger } from '../../src/log/index.js';

let dir: string;
let session: RecordSession;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-handshake-test-'));
  session = await startRecording({ listen: '127.0.0.1:0', out: path.join(dir, 'rec.db'), map: ['registry.test=127.0.0.1:1'], upstreamCa: [], quiet: true, home: path.join(dir, 'home') }, silentLogger);
});
afterAll(async () => {
  await session?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('records the CONNECT of a client that refused regtape\'s certificate as a failed flow', async () => {
  // curl with only the system roots: regtape's CA is not among them.
  const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile('curl', ['-sS', '-A', 'handshake-test/1', '-x', session.proxy.url, 'https://registry.test/v2/'], (err, _o, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr })),
  );
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/certificate/i);
  let flows = session.recording.list();
  for (let i = 0; i < 100 && !flows.some((f) => f.state !== 'open'); i++) {
    await new Promise((res) => setTimeout(res, 20));
    await session.recorder.drain();
    flows = session.recording.list();
  }
  expect(flows).toHaveLength(1);
  const f = flows[0]!;
  expect(f).toMatchObject({ state: 'error', response: null, request: { method: 'CONNECT', host: 'registry.test', port: 443, target: 'registry.test:443' } });
  expect(f.error).toMatch(/^TLS handshake failed: the client refused regtape's certificate/);
  expect(getHeader(f.request.headers, 'user-agent')).toBe('handshake-test/1');
});
