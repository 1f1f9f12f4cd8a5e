import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CLEAN_PATH, run, sleep, spawnTracked, stopChild } from './proc.js';

/** A running private containerd. */
export interface Containerd {
  /** Socket for `ctr --address`. */
  sock: string;
  logPath: string;
  /** Run ctr against it (extra env for the client: HTTPS_PROXY, SSL_CERT_FILE …). */
  ctr(args: readonly string[], env?: Record<string, string>): ReturnType<typeof run>;
  stop(): Promise<void>;
}

/**
 * A private containerd (own root, state and socket, no CRI plugin) that dies with this
 * process. `ctr images pull` fetches client side, so the registry traffic comes from
 * ctr's process and its environment (proxy, CA) — containerd itself never connects.
 */
export async function startContainerd(dir: string): Promise<Containerd> {
  await mkdir(dir, { recursive: true });
  const sock = path.join(dir, 'c.sock');
  const config = path.join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${path.join(dir, 'root')}"`,
      `state = "${path.join(dir, 'state')}"`,
      // The CRI plugin would want a CNI setup and /var/lib paths; ctr needs none of it.
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      // Default /opt/containerd: keep even that inside the temp dir.
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${path.join(dir, 'opt')}"`,
      '',
    ].join('\n'),
  );
  const logPath = path.join(dir, 'containerd.log');
  const fd = openSync(logPath, 'a');
  const child = spawnTracked('containerd', ['-c', config], { env: { PATH: CLEAN_PATH, HOME: dir }, stdio: ['ignore', fd, fd] }, 'SIGKILL');
  closeSync(fd);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`containerd exited (code ${child.exitCode}); log ${logPath}`);
    const v = await run('ctr', ['--address', sock, 'version'], { env: { PATH: CLEAN_PATH }, timeoutMs: 10_000 });
    if (v.code === 0) break;
    if (Date.now() > deadline) throw new Error(`containerd not ready: ${v.stderr}`);
    await sleep(200);
  }
  return {
    sock,
    logPath,
    ctr: (args, env = {}) => run('ctr', ['--address', sock, ...args], { env: { PATH: CLEAN_PATH, HOME: dir, ...env }, timeoutMs: 300_000 }),
    stop: () => stopChild(child, 10_000),
  };
}
