/**
 * Command line for the lab: `npx tsx scripts/lab/cli.ts up [--dir D] [--images big100,big500] ...`.
 * Starts the lab, prints it as JSON on stdout, and stays up until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startLab, type ExtraImageSet, type Lab } from './index.js';

const HELP = `Usage: npx tsx scripts/lab/cli.ts up [options]

Starts the regtape test lab (registry.test, auth.test, cdn.test on loopback :443; needs root and
docker-registry), prints it as JSON and stays up until Ctrl-C.

Options:
  --dir DIR          lab directory (default: a temp dir, removed on exit)
  --keep             keep the temp lab directory on exit
  --images LIST      extra image sets, comma separated: big100,big500
  --ip-base A.B.C    first three octets of the service addresses (default 127.77.0)
  --port N           service port (default 443)
  --cache-dir DIR    image cache (default $REGTAPE_LAB_CACHE or /tmp/regtape-lab-cache)
  --password PW      registry password (default: random)
  -h, --help         show this help

Direct access example (private /etc/hosts in a mount namespace):
  unshare --mount sh -c 'mount --bind LABDIR/hosts /etc/hosts &&
    skopeo inspect --cert-dir LABDIR/certs.d docker://registry.test/lab/alpine:3.9'
`;

const EXTRA_SETS: readonly ExtraImageSet[] = ['big100', 'big500'];

/** The JSON printed by `up`. */
export function labSummary(lab: Lab): Record<string, unknown> {
  return {
    dir: lab.dir,
    names: lab.names,
    addresses: lab.addresses,
    map: lab.map,
    hostsFileLines: lab.hostsFileLines,
    hostsFile: `${lab.dir}/hosts`,
    caCertPath: lab.caCertPath,
    certDir: lab.certDir,
    user: lab.user,
    password: lab.password,
    registryLog: lab.registryLogPath,
    images: lab.images.map((i) => ({ ref: i.ref, digest: i.digest, mediaType: i.mediaType, platforms: i.platforms })),
  };
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      keep: { type: 'boolean' },
      images: { type: 'string' },
      'ip-base': { type: 'string' },
      port: { type: 'string' },
      'cache-dir': { type: 'string' },
      password: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (positionals[0] !== 'up' || positionals.length > 1) {
    process.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${HELP}`);
    return 2;
  }
  const images = (values.images ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const i of images) {
    if (!EXTRA_SETS.includes(i as ExtraImageSet)) {
      process.stderr.write(`unknown image set ${i}; known: ${EXTRA_SETS.join(', ')}\n`);
      return 2;
    }
  }
  const started = Date.now();
  const lab = await startLab({
    dir: values.dir,
    keepDir: values.keep,
    images: images as ExtraImageSet[],
    ipBase: values['ip-base'],
    port: values.port === undefined ? undefined : Number(values.port),
    cacheDir: values['cache-dir'],
    password: values.password,
    onProgress: (m) => process.stderr.write(`lab: ${m}\n`),
  });
  process.stdout.write(`${JSON.stringify(labSummary(lab), null, 2)}\n`);
  process.stderr.write(`lab: up in ${((Date.now() - started) / 1000).toFixed(1)} s; Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    const done = (): void => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  process.stderr.write('lab: stopping\n');
  await lab.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`lab: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
