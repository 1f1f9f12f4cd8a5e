/**
 * `regtape export --oci-layout` checked with real skopeo: record skopeo pulls of the
 * lab through `regtape record` (`copy --all`, so every platform is fetched), export the
 * recording as an OCI image layout, and read it back with `skopeo inspect oci:…` and
 * `skopeo copy oci:… dir:…`; every digest must be the registry's. A fixture recorded
 * from a dockerd pull (one platform of an index) exports that platform alone. Then the
 * tag is re-pushed with another image and pulled again: `regtape diff` names the
 * digest the tag moved to.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWithHosts } from '../../scripts/lab/hosts-ns.js';
import { startLab, type Lab } from '../../scripts/lab/index.js';
import { CLI, spawnRecord, type RecorderProcess } from '../support/cli.js';
import { e2eRequirements } from '../support/e2e.js';

const missing = e2eRequirements(['docker-registry', 'skopeo', 'unshare']);
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { PATH: process.env.PATH!, HOME: os.tmpdir(), ...env }, maxBuffer: 64 << 20, timeout: 300_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const regtape = (args: string[]) => run(process.execPath, [CLI, ...args], { NO_COLOR: '1' });
const digestOf = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface IndexJson {
  manifests: Array<{ mediaType: string; digest: string; size: number; platform?: { os: string; architecture: string; variant?: string }; annotations?: Record<string, string> }>;
}

/** Every file of a skopeo `dir:` copy that is named by a digest hashes to that digest. */
function checkDirBlobs(dir: string): string[] {
  const names = fs.readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n));
  for (const n of names) expect(digestOf(fs.readFileSync(path.join(dir, n))), n).toBe(`sha256:${n}`);
  return names.map((n) => `sha256:${n}`);
}

describe.skipIf(missing.length > 0)('export --oci-layout: skopeo reads back the registry’s exact images', () => {
  let lab: Lab;
  let work: string;
  let home: string;
  let certDir: string;
  const dbA = () => path.join(work, 'a.db');
  const dbB = () => path.join(work, 'b.db');

  const recordWith = async (db: string, commands: Array<(env: Record<string, string>) => Promise<void>>): Promise<void> => {
    const rec: RecorderProcess = await spawnRecord(['--out', db, '-q', ...lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', lab.caCertPath], { REGTAPE_HOME: home });
    try {
      const env = { HTTPS_PROXY: rec.url, HTTP_PROXY: rec.url };
      for (const c of commands) await c(env);
    } finally {
      const stopped = await rec.stop('SIGINT');
      expect(stopped.code, stopped.stderr).toBe(0);
    }
  };
  const skopeo = async (args: string[], env: Record<string, string>) => {
    const r = await run('skopeo', args, env);
    expect(r.code, `skopeo ${args.join(' ')}\n${r.stderr}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-oci-e2e-'));
    home = path.join(work, 'home');
    lab = await startLab({ ipBase: '127.87.0' });
    // The CA is created by the first recorder; its cert dir is for skopeo.
    certDir = path.join(work, 'certs');
    await recordWith(dbA(), [
      async (env) => {
        fs.mkdirSync(certDir);
        fs.copyFileSync(path.join(home, 'ca.pem'), path.join(certDir, 'ca.crt'));
        for (const image of ['lab/oci:1', 'lab/alpine:3.9']) {
          await skopeo(['--insecure-policy', 'copy', '--all', '--src-cert-dir', certDir, `docker://${lab.image(image).ref}`, `dir:${path.join(work, `pulled-${image.replace(/\W/g, '-')}`)}`], env);
        }
        await skopeo(['--insecure-policy', 'copy', '--src-cert-dir', certDir, `docker://${lab.image('lab/tiny:latest').ref}`, `dir:${path.join(work, 'pulled-tiny')}`], env);
      },
    ]);
  });

  afterAll(async () => {
    await lab?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('writes a complete OCI index whole: skopeo inspect and copy --all give the registry digests', async () => {
    const oci = lab.image('lab/oci:1');
    const dir = path.join(work, 'layout-oci');
    const exp = await regtape(['export', dbA(), '--oci-layout', dir, '--image', 'registry.test/lab/oci:1']);
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stderr).toMatch(/registry\.test\/lab\/oci:1 → .*index with linux\/amd64, linux\/arm64.* as 1/);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJson;
    expect(index.manifests).toEqual([
      {
        mediaType: oci.mediaType,
        digest: oci.digest,
        size: oci.size,
        annotations: { 'io.containerd.image.name': 'registry.test/lab/oci:1', 'org.opencontainers.image.ref.name': '1' },
      },
    ]);
    // Every blob of every platform, byte-identical.
    for (const b of [...oci.manifests, ...oci.blobs]) {
      const file = path.join(dir, 'blobs', 'sha256', b.digest.slice(7));
      expect(digestOf(fs.readFileSync(file)), b.digest).toBe(b.digest);
    }
    const raw = await skopeo(['inspect', '--raw', `oci:${dir}:1`], {});
    expect(digestOf(raw.stdout)).toBe(oci.digest);
    const inspect = JSON.parse((await skopeo(['inspect', `oci:${dir}:1`], {})).stdout) as { Architecture: string; Layers: string[] };
    expect(inspect.Layers.length).toBeGreaterThan(0);
    const out = path.join(work, 'copy-oci');
    await skopeo(['--insecure-policy', 'copy', '--all', `oci:${dir}:1`, `dir:${out}`], {});
    expect(digestOf(fs.readFileSync(path.join(out, 'manifest.json')))).toBe(oci.digest);
    const copied = checkDirBlobs(out);
    for (const b of oci.blobs) expect(copied).toContain(b.digest);
  });

  it('writes a complete Docker manifest list whole, found by skopeo as the layout’s only image', async () => {
    const alpine = lab.image('lab/alpine:3.9');
    const dir = path.join(work, 'layout-alpine');
    const exp = await regtape(['export', dbA(), '--oci-layout', dir, '--image', 'lab/alpine:3.9']);
    expect(exp.code, exp.stderr).toBe(0);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJson;
    expect(index.manifests.map((m) => [m.mediaType, m.digest, m.annotations?.['org.opencontainers.image.ref.name']])).toEqual([[alpine.mediaType, alpine.digest, '3.9']]);
    // containers/image looks names up among OCI-typed entries only: a Docker list is read as oci:DIR.
    const raw = await skopeo(['inspect', '--raw', `oci:${dir}`], {});
    expect(digestOf(raw.stdout)).toBe(alpine.digest);
    const out = path.join(work, 'copy-alpine');
    await skopeo(['--insecure-policy', 'copy', '--all', `oci:${dir}`, `dir:${out}`], {});
    expect(digestOf(fs.readFileSync(path.join(out, 'manifest.json')))).toBe(alpine.digest);
    const copied = checkDirBlobs(out);
    for (const b of alpine.blobs) expect(copied).toContain(b.digest);
  });

  it('exports every image pulled when no --image is given', async () => {
    const dir = path.join(work, 'layout-all');
    const exp = await regtape(['export', dbA(), '--oci-layout', dir]);
    expect(exp.code, exp.stderr).toBe(0);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJson;
    expect(index.manifests.map((m) => m.digest).sort()).toEqual(['lab/oci:1', 'lab/alpine:3.9', 'lab/tiny:latest'].map((i) => lab.image(i).digest).sort());
    expect(exp.stderr).toMatch(/Docker format.*export one Docker-format image per directory/);
    const raw = await skopeo(['inspect', '--raw', `oci:${dir}:1`], {});
    expect(digestOf(raw.stdout)).toBe(lab.image('lab/oci:1').digest);
    // Exporting again into the same layout replaces entries of the same name instead of duplicating them.
    const again = await regtape(['export', dbA(), '--oci-layout', dir, '--image', 'lab/oci:1']);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJson).manifests).toHaveLength(3);
  });

  it('writes only the fetched platform of a partial pull (fixture: dockerd pulled linux/amd64 of an OCI index)', async () => {
    const fixture = path.join(FIXTURES, 'dockerd-pull-multiarch.db');
    const oci = lab.image('lab/oci:1');
    const amd64 = oci.manifests.find((m) => m.platform.os === 'linux' && m.platform.architecture === 'amd64')!;
    const dir = path.join(work, 'layout-partial');
    const exp = await regtape(['export', fixture, '--oci-layout', dir, '--image', 'lab/oci:1']);
    expect(exp.code, exp.stderr).toBe(0);
    expect(exp.stderr).toMatch(/1 of 2 platforms were not fetched, so the index .* is not written/);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJson;
    expect(index.manifests).toEqual([
      {
        mediaType: amd64.mediaType,
        digest: amd64.digest,
        size: amd64.size,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: { 'io.containerd.image.name': 'registry.test/lab/oci:1', 'org.opencontainers.image.ref.name': '1' },
      },
    ]);
    expect(fs.existsSync(path.join(dir, 'blobs', 'sha256', oci.digest.slice(7)))).toBe(false);
    const raw = await skopeo(['inspect', '--raw', `oci:${dir}:1`], {});
    expect(digestOf(raw.stdout)).toBe(amd64.digest);
    const out = path.join(work, 'copy-partial');
    await skopeo(['--insecure-policy', 'copy', `oci:${dir}:1`, `dir:${out}`], {});
    expect(digestOf(fs.readFileSync(path.join(out, 'manifest.json')))).toBe(amd64.digest);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
    const copied = checkDirBlobs(out);
    for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
      expect(copied).toContain(d);
      expect(oci.blobs.map((b) => b.digest)).toContain(d);
    }
  });

  it('refuses an unknown image and a directory that is not a layout, clearly', async () => {
    const unknown = await regtape(['export', dbA(), '--oci-layout', path.join(work, 'nope'), '--image', 'lab/missing:1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^regtape: export-failed: --image lab\/missing:1: no such image pulled .*; pulled: registry\.test\/lab\/oci:1/);
    const busy = path.join(work, 'busy');
    fs.mkdirSync(busy);
    fs.writeFileSync(path.join(busy, 'x'), '');
    const notLayout = await regtape(['export', dbA(), '--oci-layout', busy]);
    expect(notLayout.code).toBe(2);
    expect(notLayout.stderr).toMatch(/^regtape: export-failed: .*not empty and not an OCI layout/);
  });

  it('diff names the digest a tag moved to after a re-push', async () => {
    const before = lab.image('lab/alpine:3.9').digest;
    const tiny = lab.image('lab/tiny:latest');
    // Re-push: lab/tiny's image under lab/alpine:3.9, straight to the lab (not recorded).
    const push = await runWithHosts(lab.hostsFile, [
      'skopeo',
      '--insecure-policy',
      'copy',
      '--src-cert-dir',
      lab.certDir,
      '--dest-cert-dir',
      lab.certDir,
      '--dest-creds',
      `${lab.user}:${lab.password}`,
      `docker://${tiny.ref}`,
      `docker://${lab.image('lab/alpine:3.9').ref}`,
    ]);
    expect(push.code, push.stderr).toBe(0);
    let after = '';
    await recordWith(dbB(), [
      async (env) => {
        await skopeo(['--insecure-policy', 'copy', '--all', '--src-cert-dir', certDir, `docker://${lab.image('lab/alpine:3.9').ref}`, `dir:${path.join(work, 'pulled-again')}`], env);
        after = digestOf((await skopeo(['inspect', '--raw', '--cert-dir', certDir, `docker://${lab.image('lab/alpine:3.9').ref}`], env)).stdout);
      },
    ]);
    expect(after).toBe(tiny.digest);
    expect(after).not.toBe(before);

    const json = await regtape(['diff', dbA(), dbB(), '--json']);
    expect(json.code, json.stderr).toBe(0);
    const result = JSON.parse(json.stdout) as { operations: Array<{ repo: string; reference: string; presence: string; changed: boolean; digest: { a: string; b: string; changed: boolean }; platforms: { removed: string[] } }> };
    const alpine = result.operations.find((d) => d.repo === 'lab/alpine' && d.reference === '3.9' && d.presence === 'both')!;
    expect(alpine).toBeDefined();
    expect(alpine.changed).toBe(true);
    expect(alpine.digest).toEqual({ a: before, b: after, changed: true });
    expect(alpine.platforms.removed).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    const human = await regtape(['diff', dbA(), dbB(), '--exit-code']);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`pull registry.test/lab/alpine:3.9: changed`);
    expect(human.stdout).toContain(`${before.slice(0, 19)} → ${after.slice(0, 19)}`);
    expect(human.stdout).not.toContain('\x1b[');
  });
});

describe.runIf(missing.length > 0)('oci-layout e2e prerequisites', () => {
  it('reports what is missing', () => {
    if (process.env.CI) throw new Error(`e2e prerequisites missing: ${missing.join(', ')}`);
    console.warn(`skipping oci-layout e2e: ${missing.join(', ')} (run as root after: apt-get install docker-registry skopeo)`);
  });
});
