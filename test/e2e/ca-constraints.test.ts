/**
 * Narrow trust: a CA made with `regtape ca --name-constraints` is accepted by a Go client
 * (skopeo) for hosts inside the list and rejected for a host outside it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLab, type Lab } from '../../scripts/lab/index.js';
import { CLI, runCmd, spawnRecord, type RecorderProcess } from '../support/cli.js';
import { e2eRequirements } from '../support/e2e.js';

const missing = e2eRequirements(['docker-registry', 'skopeo']);


describe.skipIf(missing.length > 0)('regtape ca --name-constraints with a Go client', () => {
  let lab: Lab;
  let work: string;
  let rec: RecorderProcess;
  let certDir: string;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-nc-'));
    const home = path.join(work, 'home');
    const made = await runCmd(process.execPath, [CLI, 'ca', '--name-constraints', 'registry.test,auth.test,cdn.test'], { REGTAPE_HOME: home });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/Limited to:\s+registry\.test, auth\.test, cdn\.test/);
    lab = await startLab({ ipBase: '127.82.0' });
    // outside.test reaches the same registry, but is not in the CA's permitted names.
    rec = await spawnRecord(['--out', path.join(work, 'nc.db'), '-q', ...lab.map.flatMap((m) => ['--map', m]), '--map', `outside.test=${lab.addresses.registry}`, '--upstream-ca', lab.caCertPath], {
      REGTAPE_HOME: home,
    });
    certDir = path.join(work, 'certs');
    fs.mkdirSync(certDir);
    fs.copyFileSync(path.join(home, 'ca.pem'), path.join(certDir, 'ca.crt'));
  });

  afterAll(async () => {
    await rec?.stop();
    await lab?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('works for a host inside the constraints (registry, token server and CDN)', async () => {
    const r = await runCmd('skopeo', ['--insecure-policy', 'copy', '--src-cert-dir', certDir, `docker://${lab.image('lab/tiny:latest').ref}`, `dir:${path.join(work, 'tiny')}`], { HTTPS_PROXY: rec.url });
    expect(r.code, r.stderr).toBe(0);
  });

  it('is rejected by the client for a host outside them', async () => {
    const r = await runCmd('skopeo', ['inspect', '--raw', '--cert-dir', certDir, 'docker://outside.test/lab/tiny:latest'], { HTTPS_PROXY: rec.url });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/x509: .*(not permitted|constraint)/i);
  });
});
