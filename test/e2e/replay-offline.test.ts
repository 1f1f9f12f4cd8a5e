/**
 * Record lab pulls once, stop the lab (the network is gone), then pull the same images
 * again from `startReplay()`: dockerd through proxy mode (same image IDs), skopeo
 * `copy --all` from mirror mode (same digests), podman through a registries.conf
 * mirror; a request that was never recorded gets the explained 404 and the CLI's
 * `--strict` exits non-zero.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd } from '../../scripts/lab/containerd.js';
import { startDockerd, type Dockerd } from '../../scripts/lab/dockerd.js';
import { startLab, type Lab } from '../../scripts/lab/index.js';
import { startReplay, type ReplayHandle } from '../../src/index.js';
import { runCmd, spawnRecord, spawnReplay } from '../support/cli.js';
import { e2eRequirements } from '../support/e2e.js';

const missing = e2eRequirements(['docker-registry', 'dockerd', 'docker', 'skopeo', 'unshare']);
const havePodman = e2eRequirements(['podman']).length === 0;
const haveCtr = e2eRequirements(['containerd', 'ctr']).length === 0;


describe.skipIf(missing.length > 0)('replay: the same clients pull again offline from a recording', () => {
  let lab: Lab;
  let work: string;
  let home: string;
  let db: string;
  let replay: ReplayHandle;
  let dockerd: Dockerd | undefined;
  const images = ['lab/alpine:3.9', 'lab/oci:1', 'lab/big:100', 'lab/tiny:latest'];
  const recordedIds: Record<string, string> = {};
  const digests: Record<string, string> = {};
  const certDir = () => path.join(work, 'certs');

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-replay-e2e-'));
    home = path.join(work, 'home');
    db = path.join(work, 'lab.db');
    lab = await startLab({ images: ['big100'], ipBase: '127.91.0' });
    for (const i of images) digests[i] = lab.image(i).digest;
    const rec = await spawnRecord(['--out', db, '-q', ...lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', lab.caCertPath], { REGTAPE_HOME: home });
    fs.mkdirSync(certDir());
    fs.copyFileSync(path.join(home, 'ca.pem'), path.join(certDir(), 'ca.crt'));
    const recDockerd = await startDockerd({ proxyUrl: rec.url, caFile: path.join(home, 'ca.pem') });
    try {
      for (const i of images) {
        const ref = lab.image(i).ref;
        await recDockerd.pull(ref);
        recordedIds[i] = (await recDockerd.imageId(ref))!;
      }
    } finally {
      await recDockerd.stop();
    }
    // skopeo copy --all records every platform, so the mirror can serve all of them.
    for (const i of ['lab/alpine:3.9', 'lab/oci:1']) {
      const r = await runCmd('skopeo', ['--insecure-policy', 'copy', '--all', '--src-cert-dir', certDir(), `docker://${lab.image(i).ref}`, `oci:${path.join(work, 'recorded-oci')}:${i.replace(/[/:]/g, '-')}`], {
        HTTPS_PROXY: rec.url,
      });
      expect(r.code, r.stderr).toBe(0);
    }
    const stopped = await rec.stop();
    expect(stopped.code).toBe(0);
    // The network is gone: nothing of the lab answers any more.
    await lab.stop();
    replay = await startReplay({ recording: db, home });
  });

  afterAll(async () => {
    await dockerd?.stop();
    await replay?.close();
    await lab?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('dockerd pulls every image through proxy mode, with the image IDs it got when recording', async () => {
    dockerd = await startDockerd({ proxyUrl: replay.proxyUrl!, caFile: replay.caCertPath });
    for (const i of images) {
      const ref = lab.image(i).ref;
      await dockerd.pull(ref);
      expect(await dockerd.imageId(ref), i).toBe(recordedIds[i]);
    }
    expect(replay.misses()).toEqual([]);
  });

  it('skopeo copy --all from mirror mode gives the registry digests', async () => {
    const conf = path.join(work, 'registries.conf');
    const mirror = replay.mirrorUrl!.replace(/^http:\/\//, '');
    fs.writeFileSync(conf, `[[registry]]\nprefix = "registry.test"\nlocation = "registry.test"\n[[registry.mirror]]\nlocation = "${mirror}"\ninsecure = true\n`);
    for (const i of ['lab/alpine:3.9', 'lab/oci:1']) {
      const dir = path.join(work, `mirror-${i.replace(/[/:]/g, '-')}`);
      const r = await runCmd('skopeo', ['--registries-conf', conf, '--insecure-policy', 'copy', '--all', `docker://${lab.image(i).ref}`, `oci:${dir}:x`]);
      expect(r.code, r.stderr).toBe(0);
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      // skopeo converts a Docker list to an OCI index when writing oci: (new digests), so compare
      // with the copy it made from the live registry while recording; the OCI image is untouched.
      const recorded = JSON.parse(fs.readFileSync(path.join(work, 'recorded-oci', 'index.json'), 'utf8')) as {
        manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
      };
      const same = recorded.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === i.replace(/[/:]/g, '-'));
      expect(index.manifests[0]!.digest, i).toBe(same!.digest);
      if (i === 'lab/oci:1') expect(index.manifests[0]!.digest).toBe(digests[i]);
      // Every blob in the layout is byte-identical (the file name is its digest).
      for (const b of fs.readdirSync(path.join(dir, 'blobs', 'sha256'))) {
        expect(createHash('sha256').update(fs.readFileSync(path.join(dir, 'blobs', 'sha256', b))).digest('hex')).toBe(b);
      }
    }
  });

  it.skipIf(!havePodman)('podman pulls through a registries.conf mirror, with the same image ID', async () => {
    const conf = path.join(work, 'podman-registries.conf');
    const mirror = replay.mirrorUrl!.replace(/^http:\/\//, '');
    fs.writeFileSync(conf, `[[registry]]\nprefix = "registry.test"\nlocation = "registry.test"\n[[registry.mirror]]\nlocation = "${mirror}"\ninsecure = true\n`);
    const root = path.join(work, 'podman');
    const args = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs'];
    const env = { CONTAINERS_REGISTRIES_CONF: conf };
    const pull = await runCmd('podman', [...args, 'pull', lab.image('lab/alpine:3.9').ref], env);
    expect(pull.code, pull.stderr).toBe(0);
    const id = await runCmd('podman', [...args, 'image', 'inspect', '--format', '{{.Id}}', lab.image('lab/alpine:3.9').ref], env);
    expect(`sha256:${id.stdout.trim()}`).toBe(recordedIds['lab/alpine:3.9']);
  });

  it.skipIf(!haveCtr)('containerd (ctr) pulls through a hosts.toml mirror', async () => {
    const hostsDir = path.join(work, 'certs.d');
    fs.mkdirSync(path.join(hostsDir, 'registry.test'), { recursive: true });
    fs.writeFileSync(
      path.join(hostsDir, 'registry.test', 'hosts.toml'),
      `server = "https://registry.test"\n\n[host."${replay.mirrorUrl}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const c = await startContainerd(path.join(work, 'containerd'));
    try {
      const ref = lab.image('lab/tiny:latest').ref;
      const pull = await c.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--platform', 'linux/amd64', '--snapshotter', 'native', ref]);
      expect(pull.code, pull.stderr + pull.stdout).toBe(0);
      const ls = await c.ctr(['images', 'ls']);
      expect(ls.stdout).toContain(ref);
      expect(ls.stdout).toContain(digests['lab/tiny:latest']);
    } finally {
      await c.stop();
    }
  });

  it('explains a request that was never recorded', async () => {
    const res = await fetch(`${replay.mirrorUrl}/v2/lab/alpine/manifests/3.10`, { headers: { authorization: 'Bearer x', accept: 'application/vnd.docker.distribution.manifest.list.v2+json' } });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { errors: Array<{ code: string; message: string; detail: { closest: string; differences: string[] } }> };
    expect(body.errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    expect(body.errors[0]!.detail.closest).toMatch(/\/v2\/lab\/alpine\/manifests\//);
    expect(body.errors[0]!.detail.differences.join(' ')).toMatch(/reference \(3\.10 vs recorded/);
    expect(replay.misses().some((m) => m.url.endsWith('/v2/lab/alpine/manifests/3.10'))).toBe(true);
  });

  it('regtape replay --strict exits non-zero when something missed, and writes the report', async () => {
    const report = path.join(work, 'report.json');
    const { proc: p, mirrorUrl: url, stderr } = await spawnReplay([db, '--no-proxy', '--mirror', '127.0.0.1:0', '--strict', '--report', report], { REGTAPE_HOME: home });
    const miss = await fetch(`${url}/v2/lab/nothing/manifests/1`, { headers: { authorization: 'Bearer x' } });
    expect(miss.status).toBe(404);
    const code = await new Promise<number | null>((resolve) => {
      p.once('exit', resolve);
      p.kill('SIGINT');
    });
    expect(code).toBe(1);
    expect(stderr()).toMatch(/--strict: 1 request/);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8')) as { misses: Array<{ url: string }>; unused: unknown[] };
    expect(rep.misses.map((m) => m.url)).toEqual([`${url}/v2/lab/nothing/manifests/1`]);
  });

  it('faults: dockerd resumes a truncated layer (Range) and still gets the right image', async () => {
    const faulty = await startReplay({ recording: db, home, mirror: false, faults: ['~op cdn-blob & ~repo lab/big => truncate:20000000 once'] });
    const d = await startDockerd({ proxyUrl: faulty.proxyUrl!, caFile: faulty.caCertPath });
    try {
      const ref = lab.image('lab/big:100').ref;
      await d.pull(ref);
      expect(await d.imageId(ref)).toBe(recordedIds['lab/big:100']);
      expect(faulty.faults()).toEqual([{ rule: '~op cdn-blob & ~repo lab/big => truncate:20000000 once', fired: 1 }]);
    } finally {
      await d.stop();
      await faulty.close();
    }
  });

  it('faults: skopeo reports a flipped byte as a digest error; a 429 is retried', async () => {
    const layer = lab.image('lab/tiny:latest').blobs.find((b) => /layer|rootfs/.test(b.mediaType))!.digest;
    const faulty = await startReplay({ recording: db, home, listen: false, faults: ['~op manifest => 429 once', `~op cdn-blob & ~digest ${layer.slice(7, 23)} => flip`] });
    try {
      const conf = path.join(work, 'faulty-registries.conf');
      fs.writeFileSync(conf, `[[registry]]\nprefix = "registry.test"\nlocation = "registry.test"\n[[registry.mirror]]\nlocation = "${faulty.mirrorUrl!.replace(/^http:\/\//, '')}"\ninsecure = true\n`);
      const r = await runCmd('skopeo', ['--registries-conf', conf, '--insecure-policy', 'copy', `docker://${lab.image('lab/tiny:latest').ref}`, `dir:${path.join(work, 'flipped')}`]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/[Dd]igest did not match|does not match expected/);
      expect(r.stderr).toContain(layer);
      expect(faulty.faults().map((f) => f.fired)).toEqual([1, 1]); // the 429 was retried, the flip caught
    } finally {
      await faulty.close();
    }
  });
});
