/**
 * Manual end-to-end check of the lab with real clients, printing timings:
 * `npx tsx scripts/lab/verify.ts [--big] [--ip-base 127.77.0]`
 *
 * 1. skopeo (direct, private /etc/hosts): inspect --raw alpine, copy --all alpine, authed push, anonymous
 *    push refused;
 * 2. dockerd (direct, private /etc/hosts): docker pull alpine, tiny, oci (and big:100, big:500 with --big).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startDockerd } from './dockerd.js';
import { runWithHosts } from './hosts-ns.js';
import { startLab, type Lab } from './index.js';

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await fn();
  } finally {
    process.stdout.write(`${label}: ${((performance.now() - t) / 1000).toFixed(2)} s\n`);
  }
}

async function skopeoChecks(lab: Lab, work: string): Promise<void> {
  const skopeo = async (args: string[], expectOk = true): Promise<void> => {
    const r = await runWithHosts(lab.hostsFile, ['skopeo', ...args], { timeoutMs: 300_000 });
    if ((r.code === 0) !== expectOk) throw new Error(`skopeo ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  };
  const alpine = lab.image('lab/alpine:3.9');
  await timed('skopeo inspect --raw alpine', () => skopeo(['inspect', '--raw', '--cert-dir', lab.certDir, `docker://${alpine.ref}`]));
  const dest = join(work, 'alpine');
  await timed('skopeo copy --all alpine -> oci:', () => skopeo(['copy', '--all', '--src-cert-dir', lab.certDir, `docker://${alpine.ref}`, `oci:${dest}:a`]));
  const reg = lab.names.registry;
  await timed('skopeo push with credentials', () =>
    skopeo(['copy', '--all', '--insecure-policy', '--dest-cert-dir', lab.certDir, '--dest-creds', `${lab.user}:${lab.password}`, `oci:${dest}:a`, `docker://${reg}/verify/alpine:1`]),
  );
  await timed('skopeo anonymous push (refused)', () =>
    skopeo(['copy', '--insecure-policy', '--dest-cert-dir', lab.certDir, `oci:${dest}:a`, `docker://${reg}/verify/anon:1`], false),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { big: { type: 'boolean' }, 'ip-base': { type: 'string' } } });
  const lab = await timed('lab start', () =>
    startLab({ ipBase: values['ip-base'], images: values.big ? ['big100', 'big500'] : [], onProgress: (m) => process.stdout.write(`  ${m}\n`) }),
  );
  const work = await mkdtemp(join(tmpdir(), 'lab-verify-'));
  try {
    await skopeoChecks(lab, work);
    const d = await timed('dockerd start', () => startDockerd({ hosts: lab.hostsFileLines, caFile: lab.caCertPath }));
    try {
      const refs = lab.images.map((i) => i.ref);
      for (const ref of refs) await timed(`docker pull ${ref}`, () => d.pull(ref));
    } finally {
      await timed('dockerd stop', () => d.stop());
    }
    process.stdout.write('OK\n');
  } finally {
    await rm(work, { recursive: true, force: true });
    await lab.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`verify failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
