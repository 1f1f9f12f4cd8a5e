/**
 * A throwaway dockerd (Debian docker.io 20.10) for end-to-end tests, isolated from the host:
 *
 * - own mount + PID namespace (`unshare --mount --pid --fork --mount-proc --propagation private`), in which
 *   a private hosts file is bind-mounted over /etc/hosts, a private resolv.conf over /etc/resolv.conf, and
 *   an empty dir over /etc/docker (no host daemon.json or certs.d); everything it starts (its own containerd)
 *   dies with it;
 * - a clean environment (`env -i`) plus the proxy variables and CA trust given here;
 * - its own data-root, exec-root, pidfile and socket under a temp dir; dockerd 20.10 supervises a private
 *   containerd under `<exec-root>/containerd` unless /run/containerd/containerd.sock exists, which the
 *   namespace hides with a tmpfs, so two instances never share one.
 *
 * By default the lab names do NOT resolve inside (only localhost is in the hosts file, and DNS goes to
 * 127.0.0.1:53 where nothing listens, so lookups fail fast). That matters: dockerd treats a registry whose
 * name resolves into 127.0.0.0/8 as insecure and skips TLS verification. Through a proxy, dockerd never
 * resolves the registry itself.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLEAN_PATH, isRoot, killGroup, markOwner, run, sleep, spawnTracked, sweepStaleDirs, tailFile, waitExit, which, type RunResult } from './proc.js';

/** Options for {@link startDockerd}. */
export interface DockerdOptions {
  /** Proxy for registry traffic: sets HTTPS_PROXY and HTTP_PROXY (e.g. http://127.0.0.1:8080). */
  proxyUrl?: string;
  /** NO_PROXY value (default: unset). */
  noProxy?: string;
  /**
   * Trust ONLY this CA file for registry TLS (SSL_CERT_FILE=caFile, SSL_CERT_DIR=an empty dir).
   * Absent: the system bundle.
   */
  caFile?: string;
  /** Extra /etc/hosts lines, e.g. lab.hostsFileLines for direct mode. Default: only localhost entries. */
  hosts?: readonly string[];
  /** resolv.conf content. Default: `nameserver 127.0.0.1` (nothing listens: lookups fail immediately). */
  resolvConf?: string;
  /** Extra environment variables for dockerd. */
  env?: Record<string, string>;
  /** Extra dockerd flags (e.g. ['--max-concurrent-downloads=1']). */
  extraArgs?: readonly string[];
  /** Parent for the temp dir (keep it short: the socket path must stay < 100 chars). Default os.tmpdir(). */
  parentDir?: string;
  /** Keep the temp dir after stop() (it can be big: vfs stores every layer unpacked). */
  keepDir?: boolean;
  readyTimeoutMs?: number;
}

/** Options for {@link Dockerd.docker}. */
export interface DockerCliOptions {
  timeoutMs?: number;
  input?: string;
  /** Extra environment for the CLI (it otherwise runs with PATH, HOME and DOCKER_CONFIG only). */
  env?: Record<string, string>;
}

/** A running dockerd. */
export interface Dockerd {
  /** Temp dir holding everything. */
  dir: string;
  /** Socket path (use as `-H unix://<sock>`). */
  sock: string;
  /** The CLI config dir (DOCKER_CONFIG) used by {@link Dockerd.docker}; `docker login` writes here. */
  configDir: string;
  logPath: string;
  /** Runs the docker CLI against this daemon with a clean environment. Never rejects on non-zero exit. */
  docker(args: readonly string[], opts?: DockerCliOptions): Promise<RunResult>;
  /** `docker pull ref`; throws (with stderr and the daemon log tail) on failure. */
  pull(ref: string, opts?: DockerCliOptions): Promise<RunResult>;
  /** Image ID (sha256:…) of a local image, or undefined. */
  imageId(ref: string): Promise<string | undefined>;
  /** `docker rmi -f` of everything and `docker image prune -af` (between benchmark runs). */
  removeAllImages(): Promise<void>;
  logTail(bytes?: number): string;
  /** SIGTERM, wait, then SIGKILL (the PID namespace takes containerd along); removes the dir unless keepDir. */
  stop(): Promise<void>;
}

const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** GET /_ping over the unix socket. */
function ping(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: sock, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Host PID of the first child of `pid` (the dockerd that `unshare --fork` started), if any. */
async function childPid(pid: number): Promise<number | undefined> {
  try {
    const first = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts dockerd as described in the module doc; resolves when `docker version` works. */
export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  if (!isRoot()) throw new Error('startDockerd needs root (dockerd, unshare and mount)');
  for (const bin of ['dockerd', 'docker', 'unshare']) {
    if (!which(bin, `${process.env.PATH ?? ''}:${CLEAN_PATH}`)) {
      throw new Error(`${bin} not found: apt-get install ${bin === 'unshare' ? 'util-linux' : 'docker.io'}`);
    }
  }
  const parent = opts.parentDir ?? tmpdir();
  await sweepStaleDirs(parent, 'rtd-');
  const dir = await mkdtemp(join(parent, 'rtd-'));
  await markOwner(dir);
  const sock = join(dir, 'docker.sock');
  if (sock.length >= 100) throw new Error(`socket path too long (${sock.length} chars): use a shorter parentDir`);
  const logPath = join(dir, 'dockerd.log');
  const configDir = join(dir, 'cli');
  const emptyCerts = join(dir, 'empty-certs');
  const etcDocker = join(dir, 'etc-docker');
  await Promise.all([configDir, emptyCerts, etcDocker, join(dir, 'data'), join(dir, 'exec')].map((d) => mkdir(d, { recursive: true })));
  await writeFile(join(dir, 'hosts'), ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback', ...(opts.hosts ?? []), ''].join('\n'));
  await writeFile(join(dir, 'resolv.conf'), opts.resolvConf ?? 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  await writeFile(join(dir, 'daemon.json'), '{}\n');
  await writeFile(join(configDir, 'config.json'), '{}\n');

  const env: Record<string, string> = { PATH: CLEAN_PATH, HOME: dir };
  if (opts.proxyUrl) {
    env.HTTPS_PROXY = opts.proxyUrl;
    env.HTTP_PROXY = opts.proxyUrl;
  }
  if (opts.noProxy !== undefined) env.NO_PROXY = opts.noProxy;
  if (opts.caFile) {
    env.SSL_CERT_FILE = opts.caFile;
    env.SSL_CERT_DIR = emptyCerts;
  } else {
    env.SSL_CERT_FILE = SYSTEM_BUNDLE;
  }
  Object.assign(env, opts.env);

  const dockerdArgs = [
    'dockerd',
    '--config-file', join(dir, 'daemon.json'),
    '--storage-driver=vfs',
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'pid'),
    '--host', `unix://${sock}`,
    ...(opts.extraArgs ?? []),
  ];
  const script = [
    'set -e',
    `mount --bind ${sh(join(dir, 'hosts'))} /etc/hosts`,
    `mount --bind ${sh(join(dir, 'resolv.conf'))} /etc/resolv.conf`,
    `if [ -d /etc/docker ]; then mount --bind ${sh(etcDocker)} /etc/docker; fi`,
    'if [ -d /run/containerd ]; then mount -t tmpfs tmpfs /run/containerd; fi',
    `exec env -i ${Object.entries(env).map(([k, v]) => sh(`${k}=${v}`)).join(' ')} ${dockerdArgs.map(sh).join(' ')}`,
  ].join('\n');

  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawnTracked(
      'unshare',
      ['--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', '--kill-child=SIGTERM', '--', '/bin/sh', '-c', script],
      { env: { PATH: CLEAN_PATH }, stdio: ['ignore', logFd, logFd] },
      // If this process dies, unshare gets SIGKILL (it ignores SIGTERM while waiting) and --kill-child
      // then sends SIGTERM to dockerd, which shuts down and takes its PID namespace along.
      'SIGKILL',
    );
  } finally {
    closeSync(logFd);
  }

  const cliEnv = (extra?: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: CLEAN_PATH, HOME: dir, DOCKER_CONFIG: configDir, ...extra });
  const docker = (args: readonly string[], o: DockerCliOptions = {}): Promise<RunResult> =>
    run('docker', ['-H', `unix://${sock}`, ...args], { env: cliEnv(o.env), timeoutMs: o.timeoutMs, input: o.input });
  const logTail = (bytes = 4000): string => tailFile(logPath, bytes);

  let stopped = false;
  const stop = async (removeDir = !opts.keepDir): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Signal dockerd itself (PID 1 of the namespace) so it shuts down cleanly; unshare then exits too.
    const inner = child.pid === undefined ? undefined : await childPid(child.pid);
    if (inner !== undefined) {
      try {
        process.kill(inner, 'SIGTERM');
      } catch {
        /* gone */
      }
    } else killGroup(child, 'SIGTERM');
    if (!(await waitExit(child, 15_000))) {
      if (inner !== undefined) {
        try {
          process.kill(inner, 'SIGKILL'); // PID 1 of the namespace: the kernel kills everything inside
        } catch {
          /* gone */
        }
      }
      killGroup(child, 'SIGKILL');
      await waitExit(child, 5000);
    }
    if (removeDir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };

  const handle: Dockerd = {
    dir,
    sock,
    configDir,
    logPath,
    docker,
    async pull(ref, o) {
      const r = await docker(['pull', ref], { timeoutMs: 15 * 60_000, ...o });
      if (r.code !== 0) throw new Error(`docker pull ${ref} failed (exit ${r.code}):\n${r.stderr.trim()}\n--- dockerd log tail:\n${logTail(3000)}`);
      return r;
    },
    async imageId(ref) {
      const r = await docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
      return r.code === 0 ? r.stdout.trim() : undefined;
    },
    async removeAllImages() {
      const ids = (await docker(['images', '-aq'])).stdout.split(/\s+/).filter(Boolean);
      if (ids.length) await docker(['rmi', '-f', ...new Set(ids)]);
      await docker(['image', 'prune', '-af']);
    },
    logTail,
    stop: () => stop(),
  };

  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`dockerd exited early (code ${child.exitCode}, signal ${child.signalCode}); log ${logPath}:\n${logTail()}`);
      }
      if (await ping(sock)) break;
      if (Date.now() > deadline) throw new Error(`dockerd not ready after ${opts.readyTimeoutMs ?? 30_000} ms; log ${logPath}:\n${logTail()}`);
      await sleep(100);
    }
    const v = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 20_000 });
    if (v.code !== 0) throw new Error(`docker version failed: ${v.stderr.trim()}\n--- dockerd log tail:\n${logTail()}`);
    return handle;
  } catch (e) {
    await stop(false); // keep the dir (and its dockerd.log) for debugging
    throw e;
  }
}
