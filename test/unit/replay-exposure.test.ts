/**
 * Exposure: the replay server binds loopback by default and only ever serves what the
 * recording holds — no path traversal into the file system, no digest tricks.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplay, type ReplayHandle } from '../../src/index.js';
import { CLI } from '../support/cli.js';
import { buildPullRecording, type Fixture } from '../support/replay-fixture.js';

let dir: string;
let fx: Fixture;
let replay: ReplayHandle;

/** A raw request, so nothing normalises the path on the way. */
function raw(url: string, target: string): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => s.write(`GET ${target} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer x\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.on('data', (c) => (out += c.toString('latin1')));
    s.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(out)?.[1] ?? 0), text: out }));
    s.on('error', reject);
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-exposure-'));
  fx = await buildPullRecording(path.join(dir, 'r.db'));
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'TOP-SECRET-FILE');
  replay = await startReplay({ recording: path.join(dir, 'r.db'), home: path.join(dir, 'home') });
});

afterAll(async () => {
  await replay?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('replay exposure', () => {
  it('listens on loopback by default', () => {
    expect(replay.proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(replay.mirrorUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it.each([
    '/../../../../etc/passwd',
    '/v2/../../../../etc/passwd',
    '/v2/lab/img/blobs/sha256:../../../../etc/passwd',
    '/v2/lab/img/blobs/..%2f..%2f..%2fsecret.txt',
    '/regtape/blobs/sha256:..%2F..%2Fsecret.txt',
    '/regtape/blobs/../../r.db',
    '/v2/lab/img/manifests/..%2F..%2Fr.db',
    '/v2/lab/img/blobs/sha256:' + '0'.repeat(64),
    '/v2/lab/img/blobs/sha512:' + '0'.repeat(128),
    '/v2/lab/img/blobs/SHA256:' + 'A'.repeat(64),
  ])('serves nothing for %s', async (target) => {
    const r = await raw(replay.mirrorUrl!, target);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.text).not.toMatch(/TOP-SECRET-FILE|root:x:0:0|SQLite format/);
  });

  it('a blob known under one digest is never served for a digest whose bytes differ', async () => {
    const blob = fx.blobs.amd64Layer;
    const other = `sha256:${'f'.repeat(64)}`;
    const r = await raw(replay.mirrorUrl!, `/regtape/blobs/${other}`);
    expect(r.status).toBe(404);
    const ok = await raw(replay.mirrorUrl!, `/regtape/blobs/${blob.digest}`);
    expect(ok.status).toBe(200);
  });

  it('the mirror token endpoint answers only with a recorded token, whatever the path says', async () => {
    const r = await raw(replay.mirrorUrl!, '/regtape/token/..%2F..%2Fetc');
    expect(r.status).toBe(200);
    const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'issued_at', 'token']);
  });

  it('refuses a non-loopback address without --expose, and warns with it', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        const p = execFile(process.execPath, [CLI, 'replay', path.join(dir, 'r.db'), ...args], { env: { PATH: process.env.PATH!, REGTAPE_HOME: path.join(dir, 'home') }, timeout: 20_000 }, (err, _o, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
        );
        setTimeout(() => p.kill('SIGINT'), 3000);
      });
    const refused = await run(['--listen', '0.0.0.0:0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/regtape: bad-argument: refusing --listen 0\.0\.0\.0:0.*--expose/);
    const exposed = await run(['--listen', '0.0.0.0:0', '--expose']);
    expect(exposed.stderr).toMatch(/--expose\): anyone who can reach this address/);
  });
});
