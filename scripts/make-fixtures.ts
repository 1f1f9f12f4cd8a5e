/**
 * Makes the recordings in fixtures/: small, real, redacted recordings of real clients against the lab
 * (scripts/lab/), each made by the real CLI recorder (`node dist/cli/main.js record`).
 *
 *   bash scripts/make-fixtures [--only NAME,…] [--out DIR] [--keep-temp]      (see --help)
 *
 * Every fixture gets its own temp dir and REGTAPE_HOME (so its own regtape CA); the recorder runs with
 * `--map` for the three lab names and `--upstream-ca <lab ca>`, and is stopped with SIGINT so the file is
 * closed cleanly (no -wal/-shm). Each fixture is then checked (opens read-only, no flow left open, no lab
 * secret in any byte of the db or its blobs), written to fixtures/NAME.db + fixtures/NAME.blobs/, and
 * shown with `regtape show`. fixtures/README.md is regenerated from what was recorded.
 */
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, startProcess, type BenchProcess } from './bench/procs.js';
import { startContainerd } from './lab/containerd.js';
import { startDockerd, type Dockerd } from './lab/dockerd.js';
import { startLab, type Lab } from './lab/index.js';
import { CLEAN_PATH, isRoot, markOwner, run, sleep, spawnTracked, stopChild, sweepStaleDirs, which, type RunResult } from './lab/proc.js';
import { Recording } from '../src/store/index.js';
import type { FlowRecord } from '../src/flow/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
/**
 * Lab addresses: the first 127.X.0 from here on whose .1–.3 port 443 are free (the e2e tests use 127.78.0,
 * the benchmark 127.80.0, `lab up` 127.77.0; other labs may be running).
 */
const IP_BASES = Array.from({ length: 40 }, (_, i) => `127.${83 + i}.0`);
/** Keep fixtures/ small: it is committed. */
const MAX_TOTAL_BYTES = 15e6;

const HELP = `Usage: bash scripts/make-fixtures [options]

Records the fixtures in fixtures/ with real clients through the real recorder
(node dist/cli/main.js record) against the lab (scripts/lab/), checks them (open
read-only, nothing left open, no lab secret anywhere) and regenerates
fixtures/README.md. Needs root and: apt-get install docker.io docker-registry skopeo
util-linux (docker.io brings containerd and ctr). Builds dist/ first when it is stale.

Fixtures:
  dockerd-pull-multiarch  dockerd pulls lab/alpine:3.9 (manifest list) and lab/oci:1 (OCI index)
  skopeo-copy             skopeo inspect --raw lab/tiny, skopeo copy lab/alpine:3.9 to dir:
  ctr-pull                ctr (client side of a private containerd) pulls lab/tiny and lab/alpine:3.9
  dockerd-push            docker login, then docker push of lab/tiny retagged as lab/pushed:1
  podman-pull             podman pulls lab/alpine:3.9
  skopeo-copy-registry    skopeo copy lab/tiny to lab/copied:1 on the same registry
  curl-script             a curl script: ping, token, manifests, config via the CDN, tags, catalog
  failing-pulls           untrusted CA, missing repo, missing platform, push denied, Accept
                          fallback, repeated tokens, an expired token (its own lab, 5 s tokens)

Options:
  --only LIST     comma-separated subset of the fixtures above (README.md is rewritten
                  only when all of them are recorded)
  --out DIR       where to write NAME.db + NAME.blobs/ (default: fixtures/)
  --keep-temp     keep the temp dirs (recorder logs, client logs) and print where
  --no-build      use dist/ as it is (default: npm run build when src/ is newer)
  --ip-base A.B.C lab addresses (default: the first free one of 127.83.0, 127.84.0, …)
  -h, --help      this help
`;

function log(msg: string): void {
  process.stderr.write(`make-fixtures: ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Cleanup: everything started here is stopped on exit, error or Ctrl-C (children also die with us by
// pdeathsig, see scripts/lab/proc.ts).

const cleanups: Array<() => Promise<void>> = [];
function onCleanup(f: () => Promise<void>): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    const i = cleanups.indexOf(once);
    if (i >= 0) cleanups.splice(i, 1);
    await f();
  };
  cleanups.push(once);
  return once;
}
async function cleanupAll(): Promise<void> {
  while (cleanups.length) await cleanups[cleanups.length - 1]!().catch((e: Error) => log(`cleanup: ${e.message}`));
}

// ---------------------------------------------------------------------------------------------------------
// The recorder: `node dist/cli/main.js record`, as a user runs it.

interface Recorder {
  url: string;
  port: number;
  /** SIGINT (Ctrl-C) and wait for the exit; throws unless it exits 0 with its summary. */
  stop(): Promise<string>;
}

async function startRecorder(o: { name: string; out: string; home: string; lab: Lab; port: number; logDir: string }): Promise<Recorder> {
  const args = [CLI, 'record', '--listen', `127.0.0.1:${o.port}`, '--out', o.out, ...o.lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', o.lab.caCertPath];
  const proc: BenchProcess = await startProcess({
    name: `regtape record (${o.name})`,
    cmd: process.execPath,
    args,
    env: { PATH: process.env.PATH ?? CLEAN_PATH, HOME: o.home, REGTAPE_HOME: o.home, NO_COLOR: '1' },
    ready: /listening on (http:\/\/[\d.]+:\d+)/,
    logPath: path.join(o.logDir, `recorder-${o.name}.log`),
  });
  const stopNow = onCleanup(() => proc.stop('SIGINT', 15_000));
  return {
    url: proc.ready![1]!,
    port: o.port,
    async stop() {
      await stopNow();
      const code = proc.child.exitCode;
      const tail = proc.tail();
      if (code !== 0 || !/recorded \d+ flows/.test(tail)) throw new Error(`regtape record (${o.name}) exited with ${code} (signal ${proc.child.signalCode}):\n${tail}`);
      return tail;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Context given to each fixture's steps.

interface Ctx {
  lab: Lab;
  /** Temp dir of this fixture. */
  work: string;
  /** REGTAPE_HOME of this fixture (its CA is HOME/ca.pem once a recorder has started). */
  home: string;
  /** The fixture's recording path (in `work`). */
  db: string;
  /** Start the recorder writing `db` (or a scratch file) on a given port. */
  recorder(o?: { port?: number; out?: string; name?: string }): Promise<Recorder>;
  /** Run a client command; logged in the fixture's README section; throws on a non-zero exit. */
  run(display: string, cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; expectFailure?: boolean }): Promise<RunResult>;
  /** Remember a command for the README (for things run through helpers, e.g. dockerd.docker()). */
  note(display: string): void;
  /** Free-form notes for the README. */
  remark(text: string): void;
}

interface Fixture {
  name: string;
  client: string;
  /** One line: what it records. */
  what: string;
  /** Its own lab with these options (default: the shared lab). */
  lab?: { tokenExpiresIn?: number };
  /** Flows may end in `error` (a failed TLS handshake is recorded as a failed CONNECT). */
  failures?: boolean;
  record(ctx: Ctx): Promise<void>;
}

function must(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

async function withDockerd<T>(proxyUrl: string, caFile: string, f: (d: Dockerd) => Promise<T>): Promise<T> {
  const d = await startDockerd({ proxyUrl, caFile });
  const stop = onCleanup(() => d.stop());
  try {
    return await f(d);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- dockerd log tail:\n${d.logTail(3000)}`);
  } finally {
    await stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The fixtures.

const FIXTURES: Fixture[] = [
  {
    name: 'dockerd-pull-multiarch',
    client: 'dockerd',
    what: 'dockerd pulls a Docker manifest list (lab/alpine:3.9, 3 platforms; it picks linux/amd64) and an OCI index (lab/oci:1)',
    async record(ctx) {
      const rec = await ctx.recorder();
      await withDockerd(rec.url, path.join(ctx.home, 'ca.pem'), async (d) => {
        for (const ref of ['registry.test/lab/alpine:3.9', 'registry.test/lab/oci:1']) {
          ctx.note(`docker pull ${ref}`);
          await d.pull(ref);
        }
      });
      await rec.stop();
      ctx.remark(
        'dockerd runs in its own mount namespace where the lab names do not resolve (scripts/lab/dockerd.ts), with `HTTPS_PROXY`=the recorder and `SSL_CERT_FILE`=regtape\'s CA only, so TLS is verified against regtape\'s CA. It sends `Connection: close` (one CONNECT per request) and six separate `Accept` lines on manifest requests; blob downloads run up to 3 in parallel, so their order varies between runs.',
      );
    },
  },
  {
    name: 'skopeo-copy',
    client: 'skopeo',
    what: 'skopeo inspect --raw of a single Docker manifest (lab/tiny:latest) and skopeo copy of the linux/amd64 image of lab/alpine:3.9 to dir:',
    async record(ctx) {
      const rec = await ctx.recorder();
      const certDir = path.join(ctx.work, 'certs');
      await mkdir(certDir);
      await cp(path.join(ctx.home, 'ca.pem'), path.join(certDir, 'ca.crt'));
      const env = { PATH: CLEAN_PATH, HOME: ctx.work, HTTPS_PROXY: rec.url, HTTP_PROXY: rec.url };
      await ctx.run('skopeo inspect --raw --cert-dir CERTS docker://registry.test/lab/tiny:latest', 'skopeo', ['inspect', '--raw', '--cert-dir', certDir, 'docker://registry.test/lab/tiny:latest'], { env });
      await ctx.run(
        'skopeo --insecure-policy copy --src-cert-dir CERTS docker://registry.test/lab/alpine:3.9 dir:TMP',
        'skopeo',
        ['--insecure-policy', 'copy', '--src-cert-dir', certDir, 'docker://registry.test/lab/alpine:3.9', `dir:${path.join(ctx.work, 'alpine-dir')}`],
        { env },
      );
      await rec.stop();
      ctx.remark(
        'skopeo runs with `HTTPS_PROXY`=the recorder and a cert dir holding only regtape\'s CA as `ca.crt`. Each command is its own process: each pings `/v2/` and asks for its own token. containers/image sends six `Accept` lines in a fixed order plus `Docker-Distribution-API-Version: registry/2.0`, GETs manifests (no HEAD), and copies the two layers of the amd64 image in parallel.',
      );
    },
  },
  {
    name: 'ctr-pull',
    client: 'containerd (ctr)',
    what: 'ctr images pull of lab/tiny:latest and lab/alpine:3.9 (linux/amd64) against a private containerd; the registry traffic comes from ctr itself',
    async record(ctx) {
      const rec = await ctx.recorder();
      const cdir = await mkdtemp(path.join(os.tmpdir(), 'rtc-')); // short: the socket path must stay < 108 chars
      await markOwner(cdir);
      const stopDir = onCleanup(() => rm(cdir, { recursive: true, force: true }));
      const containerd = await startContainerd(cdir);
      onCleanup(() => containerd.stop());
      try {
        // ctr resolves and fetches in its own process (containerd's remotes/docker), so the proxy and
        // the CA go into ctr's environment. Go's crypto/x509 reads SSL_CERT_FILE on Linux; an empty
        // SSL_CERT_DIR keeps the system store out.
        const emptyDir = path.join(ctx.work, 'empty-certs');
        await mkdir(emptyDir);
        const env = {
          PATH: CLEAN_PATH,
          HOME: ctx.work,
          HTTPS_PROXY: rec.url,
          HTTP_PROXY: rec.url,
          SSL_CERT_FILE: path.join(ctx.home, 'ca.pem'),
          SSL_CERT_DIR: emptyDir,
        };
        for (const ref of ['registry.test/lab/tiny:latest', 'registry.test/lab/alpine:3.9']) {
          await ctx.run(
            `ctr --address SOCK images pull --platform linux/amd64 --snapshotter native ${ref}`,
            'ctr',
            ['--address', containerd.sock, 'images', 'pull', '--platform', 'linux/amd64', '--snapshotter', 'native', ref],
            { env, timeoutMs: 300_000 },
          );
        }
      } finally {
        await containerd.stop();
        await stopDir();
      }
      await rec.stop();
      ctx.remark(
        'containerd: a private `containerd -c config.toml` (`version = 2`; own `root`, `state`, `grpc.address`, `ttrpc.address` and opt-plugin `path` under a temp dir; `disabled_plugins = ["io.containerd.grpc.v1.cri"]`), started through `setpriv --pdeathsig SIGKILL`, with a clean environment. `ctr` gets `HTTPS_PROXY`=the recorder, `SSL_CERT_FILE`=regtape\'s CA and an empty `SSL_CERT_DIR`; no `--hosts-dir` is needed (https on 443 is the default). `--platform linux/amd64` pins the platform whatever the machine; `--snapshotter native` unpacks without overlayfs. containerd does not ping `/v2/`: its first request is the manifest HEAD, which gets the 401 challenge. It sends one comma-joined `Accept` line (with `*/*`) and fetches blobs with `Accept: <descriptor media type>, */*`.',
      );
    },
  },
  {
    name: 'dockerd-push',
    client: 'dockerd',
    what: 'docker login (Basic credentials to the token server), then docker push of lab/tiny retagged as registry.test/lab/pushed:1',
    async record(ctx) {
      // One port for two recorders: dockerd reads its proxy once, at start. The first recorder (a scratch
      // file, not the fixture) sees the pull of lab/tiny that gives dockerd something to push; the fixture's
      // recorder then takes over the port and sees only login, tag and push.
      const port = await freePort();
      const warm = await ctx.recorder({ port, out: path.join(ctx.work, 'scratch', 'pull-tiny.db'), name: 'scratch-pull' });
      await withDockerd(warm.url, path.join(ctx.home, 'ca.pem'), async (d) => {
        ctx.note('(not recorded: `docker pull registry.test/lab/tiny:latest` through a scratch recorder on the same port)');
        await d.pull('registry.test/lab/tiny:latest');
        await warm.stop();
        const rec = await ctx.recorder({ port });
        ctx.note('docker login registry.test -u labuser --password-stdin');
        must(await d.docker(['login', 'registry.test', '-u', ctx.lab.user, '--password-stdin'], { input: ctx.lab.password }), 'docker login');
        ctx.note('docker tag registry.test/lab/tiny:latest registry.test/lab/pushed:1');
        must(await d.docker(['tag', 'registry.test/lab/tiny:latest', 'registry.test/lab/pushed:1']), 'docker tag');
        ctx.note('docker push registry.test/lab/pushed:1');
        must(await d.docker(['push', 'registry.test/lab/pushed:1'], { timeoutMs: 300_000 }), 'docker push');
        await rec.stop();
      });
      ctx.remark(
        'dockerd as in dockerd-pull-multiarch. The image to push is pulled first through a scratch recorder on the same port (not in the fixture), so dockerd knows where its layer came from (lab/tiny) and mounts it (`POST …/blobs/uploads/?from=lab%2Ftiny&mount=…` → 201) instead of uploading it; the config blob is uploaded (POST 202, PATCH with the body, chunked, then PUT `?digest=`). `docker login` is a ping, a token GET with Basic credentials (user kept, password redacted) and `offline_token=true&client_id=docker`, and a ping with the token. The lab\'s token server answers with a refresh token (Docker Hub does not), so dockerd then asks for push tokens with the OAuth form POST (`grant_type=refresh_token`, `scope=repository:lab/pushed:push,pull`, plus `repository:lab/tiny:pull` for the mount); the refresh token is redacted in the form and the response. After each upload or mount dockerd HEADs the blob, which the registry redirects to the CDN (307, then HEAD on cdn.test). The layer keeps its pulled digest because it is mounted; an uploaded layer could be re-compressed by dockerd, so compare pushes by structure.',
      );
    },
  },
  {
    name: 'podman-pull',
    client: 'podman',
    what: 'podman pull of lab/alpine:3.9 (manifest list; podman picks linux/amd64) with its own storage',
    async record(ctx) {
      const rec = await ctx.recorder();
      const certDir = await certDirWith(ctx, path.join(ctx.home, 'ca.pem'));
      const root = path.join(ctx.work, 'podman');
      const env = { PATH: CLEAN_PATH, HOME: ctx.work, HTTPS_PROXY: rec.url, HTTP_PROXY: rec.url };
      const podman = ['--root', path.join(root, 'root'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs'];
      await ctx.run('podman --root DIR --runroot DIR --storage-driver vfs pull --cert-dir CERTS registry.test/lab/alpine:3.9', 'podman', [...podman, 'pull', '--arch', 'amd64', '--cert-dir', certDir, 'registry.test/lab/alpine:3.9'], { env });
      await rec.stop();
      ctx.remark('podman 4.3 as root with its own `--root`/`--runroot` (vfs), `HTTPS_PROXY`=the recorder and a cert dir holding only regtape\'s CA as `ca.crt`. podman uses containers/image like skopeo (same Accept lines), pings `/v2/`, GETs the tag, then the platform manifest, then config and layers.');
    },
  },
  {
    name: 'skopeo-copy-registry',
    client: 'skopeo',
    what: 'skopeo copy docker://registry.test/lab/tiny:latest docker://registry.test/lab/copied:1 (a pull and a push in one command)',
    async record(ctx) {
      const rec = await ctx.recorder();
      const certDir = await certDirWith(ctx, path.join(ctx.home, 'ca.pem'));
      const env = { PATH: CLEAN_PATH, HOME: ctx.work, HTTPS_PROXY: rec.url, HTTP_PROXY: rec.url };
      await ctx.run(
        'skopeo --insecure-policy copy --src-cert-dir CERTS --dest-cert-dir CERTS --dest-creds labuser:PASSWORD docker://registry.test/lab/tiny:latest docker://registry.test/lab/copied:1',
        'skopeo',
        ['--insecure-policy', 'copy', '--src-cert-dir', certDir, '--dest-cert-dir', certDir, '--dest-creds', `${ctx.lab.user}:${ctx.lab.password}`, 'docker://registry.test/lab/tiny:latest', 'docker://registry.test/lab/copied:1'],
        { env },
      );
      await rec.stop();
      ctx.remark('One skopeo process reads lab/tiny and writes lab/copied on the same registry: anonymous pull token for the source, Basic credentials for the destination token (redacted), HEAD of each blob at the destination, uploads (POST, PATCH with the whole blob, PUT `?digest=`), then the manifest PUT.');
    },
  },
  {
    name: 'curl-script',
    client: 'curl',
    what: 'a shell script of curl calls: ping, anonymous token, manifest list and platform manifest, the config blob through the CDN redirect, tags list, and the catalog with a login token',
    async record(ctx) {
      const rec = await ctx.recorder();
      const alpine = ctx.lab.image('lab/alpine:3.9');
      const amd64 = alpine.manifests.find((m) => m.platform.os === 'linux' && m.platform.architecture === 'amd64')!;
      // The linux/amd64 config of lab/alpine:3.9 (deterministic images: test/support/fixtures.ts).
      const config = { digest: 'sha256:50108d05ca2acd1ab78ac12e84d06c7721e0484171beac0417336f4c8d16bb4f' };
      const script = path.join(ctx.work, 'pull.sh');
      await writeFile(script, CURL_SCRIPT);
      const env = { PATH: CLEAN_PATH, HOME: ctx.work, PROXY: rec.url, CA: path.join(ctx.home, 'ca.pem'), MANIFEST: amd64.digest, CONFIG: config.digest, LAB_CREDS: `${ctx.lab.user}:${ctx.lab.password}`, OUT: ctx.work };
      await ctx.run('bash pull.sh   # the script below', 'bash', [script], { env });
      await rec.stop();
      ctx.remark(`The script (curl ${'7.88'}, one process per request, so one connection each; \`LAB_CREDS\` is user:password):\n\n\`\`\`sh\n${CURL_SCRIPT.trim()}\n\`\`\``);
    },
  },
  {
    name: 'failing-pulls',
    client: 'dockerd, skopeo, curl',
    what: 'things going wrong: dockerd not trusting regtape\'s CA, a missing repository, a platform the index lacks, a push without push rights, Accept fallbacks, a client fetching the same token again and again, and a token used after it expired',
    lab: { tokenExpiresIn: 5 },
    failures: true,
    async record(ctx) {
      const rec = await ctx.recorder();
      // dockerd trusting only the lab's CA, not regtape's: every TLS handshake through the proxy fails.
      await withDockerd(rec.url, ctx.lab.caCertPath, async (d) => {
        ctx.note('docker pull registry.test/lab/alpine:3.9   # fails: dockerd trusts another CA, not regtape\'s');
        const r = await d.docker(['pull', 'registry.test/lab/alpine:3.9'], { timeoutMs: 120_000 });
        if (r.code === 0) throw new Error('docker pull was meant to fail (untrusted CA)');
      });
      const certDir = await certDirWith(ctx, path.join(ctx.home, 'ca.pem'));
      const env = { PATH: CLEAN_PATH, HOME: ctx.work, HTTPS_PROXY: rec.url, HTTP_PROXY: rec.url };
      await ctx.run('skopeo inspect --cert-dir CERTS docker://registry.test/lab/missing:1', 'skopeo', ['inspect', '--cert-dir', certDir, 'docker://registry.test/lab/missing:1'], { env, expectFailure: true });
      await ctx.run(
        'skopeo --insecure-policy --override-arch s390x copy --src-cert-dir CERTS docker://registry.test/lab/alpine:3.9 dir:TMP',
        'skopeo',
        ['--insecure-policy', '--override-arch', 's390x', 'copy', '--src-cert-dir', certDir, 'docker://registry.test/lab/alpine:3.9', `dir:${path.join(ctx.work, 's390x')}`],
        { env, expectFailure: true },
      );
      await ctx.run(
        'skopeo --insecure-policy copy --src-cert-dir CERTS --dest-cert-dir CERTS docker://registry.test/lab/tiny:latest docker://registry.test/lab/denied:1',
        'skopeo',
        ['--insecure-policy', 'copy', '--src-cert-dir', certDir, '--dest-cert-dir', certDir, 'docker://registry.test/lab/tiny:latest', 'docker://registry.test/lab/denied:1'],
        { env, expectFailure: true },
      );
      const script = path.join(ctx.work, 'failing.sh');
      await writeFile(script, FAILING_SCRIPT);
      await ctx.run('bash failing.sh   # the script below', 'bash', [script], { env: { PATH: CLEAN_PATH, HOME: ctx.work, PROXY: rec.url, CA: path.join(ctx.home, 'ca.pem') }, timeoutMs: 180_000 });
      await rec.stop();
      ctx.remark(
        `A lab of its own whose tokens expire after 5 s (distribution accepts a token up to 60 s after its \`exp\`). dockerd trusts only the lab's CA, so it rejects regtape's certificate on its CONNECT and gives up (recorded as a failed CONNECT flow); skopeo asks for a repository that does not exist (distribution 2.8 answers 404 MANIFEST_UNKNOWN), for an s390x image the index does not have, and pushes without credentials (401 insufficient_scope on the mount and the upload). The curl script (\`curl -I\` sends \`Accept: */*\`, so distribution converts lab/tiny to schema 1):\n\n\`\`\`sh\n${FAILING_SCRIPT.trim()}\n\`\`\``,
      );
    },
  },
];

/** The curl-script fixture's script (env: PROXY, CA, MANIFEST, CONFIG, LAB_CREDS, OUT). */
const CURL_SCRIPT = `set -eu
R=https://registry.test
c() { curl -sS -x "$PROXY" --cacert "$CA" "$@"; }
tok() { sed -E 's/.*"token":"([^"]+)".*/\\1/'; }
c -o /dev/null $R/v2/                                   # 401 + Bearer challenge
T=$(c "https://auth.test/token?service=registry.test&scope=repository:lab/alpine:pull" | tok)
LIST='Accept: application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'
c -o /dev/null -H "Authorization: Bearer $T" -H "$LIST" $R/v2/lab/alpine/manifests/3.9
c -o /dev/null -H "Authorization: Bearer $T" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' $R/v2/lab/alpine/manifests/$MANIFEST
c -L -o "$OUT/config.json" -H "Authorization: Bearer $T" $R/v2/lab/alpine/blobs/$CONFIG   # 307 to the CDN
c -o /dev/null -H "Authorization: Bearer $T" $R/v2/lab/alpine/tags/list
C=$(c -u "$LAB_CREDS" "https://auth.test/token?service=registry.test&scope=registry:catalog:*" | tok)
c -o /dev/null -H "Authorization: Bearer $C" $R/v2/_catalog
`;

/** The failing-pulls fixture's curl script (env: PROXY, CA). */
const FAILING_SCRIPT = `set -eu
R=https://registry.test
c() { curl -sS -A failing-script/1 -x "$PROXY" --cacert "$CA" -o /dev/null "$@"; }
tok() { curl -sS -A failing-script/1 -x "$PROXY" --cacert "$CA" "https://auth.test/token?service=registry.test&scope=repository:$1:pull" | sed -E 's/.*"token":"([^"]+)".*/\\1/'; }
# A client that never reuses its token: the same token fetch before every request.
for i in 1 2 3 4; do T=$(tok lab/tiny); c -I -H "Authorization: Bearer $T" $R/v2/lab/tiny/manifests/latest; done
# Accept without manifest lists / OCI indexes: the registry picks linux/amd64 from the list, and has
# nothing to offer for an OCI index (404).
c -H "Authorization: Bearer $(tok lab/alpine)" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' $R/v2/lab/alpine/manifests/3.9
c -H "Authorization: Bearer $(tok lab/oci)" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' $R/v2/lab/oci/manifests/1
# A token kept past its expiry (5 s, plus the registry's 60 s leeway).
T=$(tok lab/tiny); sleep 66
c -H "Authorization: Bearer $T" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' $R/v2/lab/tiny/manifests/latest
`;

async function certDirWith(ctx: Ctx, caPem: string): Promise<string> {
  const certDir = path.join(ctx.work, 'certs');
  await mkdir(certDir, { recursive: true });
  await cp(caPem, path.join(certDir, 'ca.crt'));
  return certDir;
}

// ---------------------------------------------------------------------------------------------------------
// Verification and README.

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

async function findSecrets(file: string, secrets: Buffer[]): Promise<string[]> {
  if (!secrets.length) return [];
  const hits = new Set<string>();
  const overlap = Math.max(...secrets.map((s) => s.length));
  let carry = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { highWaterMark: 8 << 20 })) {
    const buf = Buffer.concat([carry, chunk as Buffer]);
    for (const s of secrets) if (buf.includes(s)) hits.add(`${path.basename(file)}: ${s.toString().slice(0, 10)}…`);
    carry = buf.subarray(Math.max(0, buf.length - overlap));
  }
  return [...hits];
}

interface FixtureReport {
  fixture: Fixture;
  commands: string[];
  remarks: string[];
  flows: FlowRecord[];
  dbBytes: number;
  blobBytes: number;
  blobFiles: number;
  /** Secrets of the fixture's own lab, if it had one. */
  secrets: string[];
}

function recordingFiles(db: string): string[] {
  return [db, ...listFiles(db.replace(/\.db$/, '.blobs'))];
}

/** Opens the recording read-only, checks it and returns its flows. */
async function verify(db: string, secrets: string[], failures = false): Promise<FlowRecord[]> {
  for (const ext of ['-wal', '-shm']) if (existsSync(db + ext)) throw new Error(`${db}${ext} left behind: the recorder did not close the file cleanly`);
  const rec = Recording.open(db, { readonly: true });
  let flows: FlowRecord[];
  try {
    flows = rec.list();
  } finally {
    rec.close();
  }
  if (!flows.length) throw new Error(`${db}: no flows recorded`);
  const unfinished = flows.filter((f) => f.state !== 'complete' && !(failures && f.state === 'error'));
  if (unfinished.length) throw new Error(`${db}: flows not complete: ${unfinished.map((f) => `${f.id} ${f.state} ${f.request.method} ${f.request.host}${f.request.target}`).join('; ')}`);
  const bufs = [...new Set(secrets)].filter((s) => s.length >= 8).map((s) => Buffer.from(s));
  const hits: string[] = [];
  for (const f of recordingFiles(db)) hits.push(...(await findSecrets(f, bufs)));
  if (hits.length) throw new Error(`${db}: lab secrets in the recording: ${hits.join(', ')}`);
  return flows;
}

function mb(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}

function roleCounts(flows: FlowRecord[]): string {
  const counts = new Map<string, number>();
  for (const f of flows) {
    const k = `${f.request.method} ${f.registry?.role ?? 'unclassified'}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n}× ${k}`).join(', ');
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 20_000 }).catch(() => ({ stdout: '', stderr: '?' }) as RunResult);
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? '?';
}

async function versions(): Promise<Record<string, string>> {
  return {
    node: process.version,
    dockerd: await firstLine('dockerd', ['--version']),
    containerd: await firstLine('containerd', ['--version']),
    ctr: await firstLine('ctr', ['--version']),
    skopeo: await firstLine('skopeo', ['--version']),
    podman: await firstLine('podman', ['--version']),
    curl: await firstLine('curl', ['--version']),
    'docker-registry': await firstLine('docker-registry', ['--version']),
  };
}

function readme(reports: FixtureReport[], v: Record<string, string>): string {
  const out: string[] = [
    '# Fixtures',
    '',
    'Small, real recordings of real clients against the project\'s lab (`scripts/lab/`: distribution 2.8 as',
    '`registry.test` with token auth from `auth.test` and blob GETs redirected (307) to `cdn.test`; deterministic',
    'images, so digests are the same on every machine). Each was recorded by the real CLI recorder,',
    '`node dist/cli/main.js record --out NAME.db --map registry.test=… --map auth.test=… --map cdn.test=… --upstream-ca <lab ca>`,',
    'with its own `REGTAPE_HOME`, stopped with SIGINT (clean close, no `-wal`/`-shm`), and redacted as recorded:',
    'no token, password or Basic credential of the lab is in any byte of a fixture (checked by the script).',
    'Each fixture is `NAME.db` plus `NAME.blobs/` (bodies over 64 KiB); open them read-only. The committed',
    'copies are switched from WAL to rollback-journal mode (`PRAGMA journal_mode=DELETE`: one header field, no',
    'flow touched), because a read-only open of a WAL database leaves empty `-wal`/`-shm` files beside it.',
    'A blob dir with no files holds a `.gitkeep`.',
    '',
    'Regenerate (root; Debian packages docker.io, docker-registry, skopeo, util-linux): `bash scripts/make-fixtures`.',
    'Flow order within parallel blob downloads, timings, token markers and upload ids change between runs;',
    'tests that read these files (`test/unit/classify-fixtures.test.ts`, `test/unit/operations.test.ts`) say where.',
    '',
    'Recorded with:',
    '',
    ...Object.entries(v).map(([k, s]) => `- ${k}: ${s}`),
    '',
    '| fixture | client | flows | db | blobs |',
    '|---|---|---|---|---|',
    ...reports.map(tableRow),
    '',
  ];
  for (const r of reports) out.push(...section(r));
  return out.join('\n');
}

function tableRow(r: FixtureReport): string {
  return `| [${r.fixture.name}](#${r.fixture.name}) | ${r.fixture.client} | ${r.flows.length} | ${mb(r.dbBytes)} | ${r.blobFiles} files, ${mb(r.blobBytes)} |`;
}

function section(r: FixtureReport): string[] {
  const out: string[] = [`## ${r.fixture.name}`, '', `${r.fixture.what}.`, '', 'Commands:', '', '```sh', ...r.commands, '```', ''];
  out.push(...r.remarks.flatMap((t) => [t, '']));
  out.push(`Flows (${r.flows.length}): ${roleCounts(r.flows)}.`, '');
  out.push('```');
  for (const f of r.flows) {
    const rr = f.registry;
    const target = f.request.target.replace(/([0-9a-f]{12})[0-9a-f]{52}/g, '$1…').replace(/_state=[^&]*/, '_state=…');
    out.push(`${String(f.id).padStart(3)} ${f.request.method.padEnd(5)} ${f.request.host} ${target} ${f.response?.status ?? f.state}${rr && rr.role !== 'other' ? ` [${rr.role}]` : ''}`);
  }
  out.push('```', '');
  return out;
}

/**
 * A run that recorded only some fixtures: their sections and table rows replace (or join) those of the
 * existing README, the others are kept as they were; version lines are updated.
 */
function mergeReadme(existing: string, reports: FixtureReport[], v: Record<string, string>): string {
  const parts = existing.split(/^(?=## )/m);
  let head = parts[0]!;
  const sections = new Map(parts.slice(1).map((p) => [/^## (\S+)/.exec(p)![1]!, p]));
  for (const r of reports) sections.set(r.fixture.name, `${section(r).join('\n')}\n`);
  for (const [k, val] of Object.entries(v)) {
    const re = new RegExp(`^- ${k}: .*$`, 'm');
    head = re.test(head) ? head.replace(re, `- ${k}: ${val}`) : head.replace(/(^- [^\n]+\n)(?!- )/m, `$1- ${k}: ${val}\n`);
  }
  const rows = new Map([...head.matchAll(/^\| \[([^\]]+)\].*$/gm)].map((m) => [m[1]!, m[0]]));
  for (const r of reports) rows.set(r.fixture.name, tableRow(r));
  const order = FIXTURES.map((f) => f.name).filter((n) => sections.has(n));
  head = head.replace(/(\|---\|---\|---\|---\|---\|\n)(?:\| \[.*\n)*/, `$1${order.map((n) => rows.get(n)).filter(Boolean).join('\n')}\n`);
  return `${head}${order.map((n) => sections.get(n)!.replace(/\n*$/, '\n\n')).join('')}`.replace(/\n+$/, '\n');
}

// ---------------------------------------------------------------------------------------------------------

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

async function freeIpBase(): Promise<string> {
  for (const base of IP_BASES) {
    const free = await Promise.all([1, 2, 3].map((n) => canListen(`${base}.${n}`, 443)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no free lab addresses (port 443 on ${IP_BASES[0]}.1 … ${IP_BASES.at(-1)}.3); pass --ip-base`);
}

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const f of listFiles(dir)) if (f.endsWith(ext)) newest = Math.max(newest, statSync(f).mtimeMs);
  return newest;
}

async function buildIfStale(): Promise<void> {
  const inputs = Math.max(newestMtime(path.join(ROOT, 'src'), '.ts'), ...['tsconfig.json', 'tsconfig.build.json', 'package.json'].map((f) => statSync(path.join(ROOT, f)).mtimeMs));
  if (existsSync(CLI) && statSync(CLI).mtimeMs >= inputs) return;
  log('dist/ is missing or older than src/: npm run build');
  must(await run('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 300_000 }), 'npm run build');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { only: { type: 'string' }, out: { type: 'string' }, 'keep-temp': { type: 'boolean' }, 'no-build': { type: 'boolean' }, 'ip-base': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const names = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : FIXTURES.map((f) => f.name);
  const unknown = names.filter((n) => !FIXTURES.some((f) => f.name === n));
  if (unknown.length) {
    process.stderr.write(`make-fixtures: unknown fixture ${unknown.join(', ')}\n\n${HELP}`);
    return 2;
  }
  if (!isRoot()) throw new Error('needs root (dockerd, containerd, mount namespaces)');
  const needed = ['docker-registry', 'dockerd', 'docker', 'containerd', 'ctr', 'skopeo', 'podman', 'curl', 'unshare', 'setpriv'];
  const missing = needed.filter((b) => !which(b, `${process.env.PATH ?? ''}:${CLEAN_PATH}`));
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: apt-get install docker.io docker-registry skopeo podman curl util-linux`);
  if (!values['no-build']) await buildIfStale();
  else if (!existsSync(CLI)) throw new Error(`${CLI} missing: npm run build`);

  const outDir = path.resolve(values.out ?? path.join(ROOT, 'fixtures'));
  await mkdir(outDir, { recursive: true });
  await sweepStaleDirs(os.tmpdir(), 'rtf-');
  await sweepStaleDirs(os.tmpdir(), 'rtc-');
  const temp = await mkdtemp(path.join(os.tmpdir(), 'rtf-'));
  await markOwner(temp);
  if (!values['keep-temp']) onCleanup(() => rm(temp, { recursive: true, force: true }));

  const ipBase = values['ip-base'] ?? (await freeIpBase());
  log(`starting the lab on ${ipBase}.1-3`);
  const sharedLab = await startLab({ ipBase, onProgress: (m) => log(m) });
  onCleanup(() => sharedLab.stop());

  const reports: FixtureReport[] = [];
  for (const fixture of FIXTURES.filter((f) => names.includes(f.name))) {
    log(`recording ${fixture.name}`);
    const own = fixture.lab ? await startLab({ ipBase: await freeIpBase(), ...fixture.lab, onProgress: (m) => log(m) }) : null;
    const stopOwn = own ? onCleanup(() => own.stop()) : async () => undefined;
    const lab = own ?? sharedLab;
    const work = path.join(temp, fixture.name);
    await mkdir(work);
    const home = path.join(work, 'home');
    const db = path.join(work, `${fixture.name}.db`);
    const commands: string[] = [];
    const remarks: string[] = [];
    const ctx: Ctx = {
      lab,
      work,
      home,
      db,
      recorder: async (o = {}) => startRecorder({ name: o.name ?? fixture.name, out: o.out ?? db, home, lab, port: o.port ?? (await freePort()), logDir: work }),
      run: async (display, cmd, args, opts = {}) => {
        commands.push(opts.expectFailure ? `${display}   # fails` : display);
        const r = await run(cmd, args, { env: opts.env, input: opts.input, timeoutMs: opts.timeoutMs ?? 300_000 });
        if (!opts.expectFailure) return must(r, display);
        if (r.code === 0) throw new Error(`${display} was meant to fail but exited 0`);
        return r;
      },
      note: (display) => commands.push(display),
      remark: (text) => remarks.push(text),
    };
    const t0 = Date.now();
    await fixture.record(ctx);
    const flows = await verify(db, lab.secrets(), fixture.failures);
    const ownSecrets = own ? own.secrets() : [];
    await stopOwn();
    // Replace the old fixture only once the new one checked out.
    const dest = path.join(outDir, `${fixture.name}.db`);
    const destBlobs = path.join(outDir, `${fixture.name}.blobs`);
    for (const p of [dest, `${dest}-wal`, `${dest}-shm`, destBlobs]) await rm(p, { recursive: true, force: true });
    await cp(db, dest);
    const srcBlobs = db.replace(/\.db$/, '.blobs');
    await mkdir(destBlobs);
    for (const f of listFiles(srcBlobs)) {
      const rel = path.relative(srcBlobs, f);
      if (rel.startsWith('.tmp')) continue; // the recorder's scratch dir (empty after a clean stop)
      await mkdir(path.dirname(path.join(destBlobs, rel)), { recursive: true });
      await cp(f, path.join(destBlobs, rel));
    }
    // Rollback-journal mode for the committed copy: a read-only open of a WAL database (tests,
    // `regtape show`) leaves empty NAME.db-wal and NAME.db-shm files beside it. Only the journal mode
    // in the header changes; the recorder switches a file back to WAL when it opens it for writing.
    Recording.useRollbackJournal(dest);
    // git keeps no empty dirs: an empty NAME.blobs/ gets a .gitkeep.
    if (!readdirSync(destBlobs).length) await writeFile(path.join(destBlobs, '.gitkeep'), '');
    const blobs = listFiles(destBlobs).filter((f) => !f.endsWith('.gitkeep'));
    const report: FixtureReport = {
      fixture,
      commands,
      remarks,
      flows,
      dbBytes: statSync(dest).size,
      blobBytes: blobs.reduce((n, f) => n + statSync(f).size, 0),
      blobFiles: blobs.length,
      secrets: ownSecrets,
    };
    reports.push(report);
    log(`${fixture.name}: ${flows.length} flows, db ${mb(report.dbBytes)}, ${report.blobFiles} blob files ${mb(report.blobBytes)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const show = await run(process.execPath, [CLI, 'show', dest], { env: { ...process.env, NO_COLOR: '1' }, timeoutMs: 60_000 });
    process.stdout.write(`\n$ regtape show fixtures/${fixture.name}.db\n${show.stdout}${show.stderr}\n`);
    if (show.code !== 0) throw new Error(`regtape show ${dest} failed (exit ${show.code})`);
  }

  // Secrets issued later (e.g. in the push) must not be in earlier fixtures either: check all again.
  const secrets = sharedLab.secrets();
  for (const r of reports) await verify(path.join(outDir, `${r.fixture.name}.db`), [...secrets, ...r.secrets], r.fixture.failures);
  const stray = readdirSync(outDir).filter((f) => /\.db-(wal|shm|journal)$/.test(f));
  if (stray.length) throw new Error(`reading the fixtures left ${stray.join(', ')} in ${outDir}`);

  const total = listFiles(outDir).reduce((n, f) => n + statSync(f).size, 0);
  log(`${outDir}: ${mb(total)} in all`);
  if (total > MAX_TOTAL_BYTES) log(`WARNING: fixtures/ is over ${mb(MAX_TOTAL_BYTES)}; keep fixtures small`);

  if (reports.length === FIXTURES.length) {
    await writeFile(path.join(outDir, 'README.md'), readme(reports, await versions()));
    log(`wrote ${path.join(outDir, 'README.md')}`);
  } else if (existsSync(path.join(outDir, 'README.md'))) {
    await writeFile(path.join(outDir, 'README.md'), mergeReadme(await readFile(path.join(outDir, 'README.md'), 'utf8'), reports, await versions()));
    log(`updated the sections of ${reports.map((r) => r.fixture.name).join(', ')} in ${path.join(outDir, 'README.md')}`);
  } else log('README.md not written (only some fixtures were recorded, and there is no README to update)');
  if (values['keep-temp']) log(`temp files kept in ${temp}`);
  return 0;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

main(process.argv.slice(2))
  .then(async (code) => {
    await cleanupAll();
    process.exitCode = code;
  })
  .catch(async (e: unknown) => {
    log(`error: ${(e as Error).stack ?? String(e)}`);
    await cleanupAll();
    process.exitCode = 1;
  });
