import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplay } from '../../src/index.js';
import { CLI } from '../support/cli.js';

let dir: string;

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { env: { PATH: process.env.PATH!, ...env }, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-setup-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('regtape ca --setup dockerd', () => {
  it('prints the systemd drop-in with the proxy and both ways to trust the CA', async () => {
    const home = path.join(dir, 'home');
    const r = await run(process.execPath, [CLI, 'ca', '--setup', 'dockerd', '--proxy', 'http://127.0.0.1:9999'], { REGTAPE_HOME: home });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\/etc\/systemd\/system\/docker\.service\.d\/regtape-proxy\.conf/);
    expect(r.stdout).toMatch(/Environment="HTTPS_PROXY=http:\/\/127\.0\.0\.1:9999"/);
    expect(r.stdout).toMatch(/Environment="NO_PROXY=/);
    expect(r.stdout).toMatch(/update-ca-certificates/);
    expect(r.stdout).toMatch(/SSL_CERT_FILE=/);
    expect(r.stdout).toContain(path.join(home, 'ca.pem'));
    expect(fs.statSync(home).mode & 0o777).toBe(0o700);
    const p = await run(process.execPath, [CLI, 'ca', '--path'], { REGTAPE_HOME: home });
    expect(p.stdout.trim()).toBe(path.join(home, 'ca.pem'));
  });
});

describe('replay mirror over TLS', () => {
  it('serves the mirror with a certificate from the regtape CA', async () => {
    const fixture = path.resolve(path.dirname(CLI), '../../fixtures/dockerd-pull-multiarch.db');
    const replay = await startReplay({ recording: fixture, listen: false, mirrorTls: true, home: path.join(dir, 'home') });
    try {
      expect(replay.mirrorUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ok = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', replay.caCertPath, '-H', 'Authorization: Bearer x', `${replay.mirrorUrl}/v2/`]);
      expect(ok.stdout).toBe('200');
      const untrusted = await run('curl', ['-sS', '-o', '/dev/null', `${replay.mirrorUrl}/v2/`]);
      expect(untrusted.code).not.toBe(0);
    } finally {
      await replay.close();
    }
  });
});
