/**
 * Runs distribution (`docker-registry serve <config>`, Debian package docker-registry 2.8) for the lab:
 * filesystem storage, TLS, token auth against the lab token server, and blob redirects to the lab CDN.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { CLEAN_PATH, sleep, spawnTracked, stopChild, tailFile, which } from './proc.js';

/** Options for {@link startRegistry}. */
export interface RegistryOptions {
  /** Directory for config.yml and registry.log. */
  dir: string;
  /** Binary to run (default: docker-registry from PATH). */
  binary?: string;
  /** Listen address. */
  host: string;
  port: number;
  /** Public base URL of the registry, e.g. https://registry.test (used for absolute Location headers). */
  publicUrl: string;
  /** Public name, used as SNI when probing readiness. */
  serverName: string;
  storageRoot: string;
  tlsCertPath: string;
  tlsKeyPath: string;
  /** CA that issued the TLS certificate (for the readiness probe). */
  caPem: string;
  token: { realm: string; service: string; issuer: string; rootCertBundlePath: string };
  /** Base URL of the CDN, e.g. https://cdn.test. */
  cdnUrl: string;
  readyTimeoutMs?: number;
}

/** A running registry. */
export interface RegistryProcess {
  child: ChildProcess;
  configPath: string;
  logPath: string;
  logTail(bytes?: number): string;
  stop(): Promise<void>;
}

/** distribution's config (JSON is valid YAML, and avoids a YAML dependency). */
export function registryConfig(o: RegistryOptions): Record<string, unknown> {
  return {
    version: '0.1',
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: o.storageRoot },
      delete: { enabled: true },
      redirect: { disable: false },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `${o.host}:${o.port}`,
      host: o.publicUrl,
      secret: randomBytes(24).toString('hex'),
      tls: { certificate: o.tlsCertPath, key: o.tlsKeyPath },
      headers: { 'X-Content-Type-Options': ['nosniff'] },
    },
    auth: {
      token: {
        realm: o.token.realm,
        service: o.token.service,
        issuer: o.token.issuer,
        rootcertbundle: o.token.rootCertBundlePath,
      },
    },
    middleware: { storage: [{ name: 'redirect', options: { baseurl: o.cdnUrl } }] },
    health: { storagedriver: { enabled: false } },
  };
}

/** GET /v2/ once; resolves with the status code or rejects on connection errors. */
function probe(o: RegistryOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: o.host, port: o.port, servername: o.serverName, ca: o.caPem, path: '/v2/', method: 'GET', timeout: 2000, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Writes the config, starts docker-registry and waits until GET /v2/ answers 401 over verified TLS. */
export async function startRegistry(o: RegistryOptions): Promise<RegistryProcess> {
  const binary = which(o.binary ?? 'docker-registry', `${process.env.PATH ?? ''}:${CLEAN_PATH}`);
  if (!binary) throw new Error('docker-registry not found: apt-get install docker-registry (distribution 2.8)');
  const configPath = join(o.dir, 'registry-config.yml');
  const logPath = join(o.dir, 'registry.log');
  await writeFile(configPath, JSON.stringify(registryConfig(o), null, 2));
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawnTracked(binary, ['serve', configPath], {
      env: { PATH: CLEAN_PATH, HOME: o.dir },
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  const handle: RegistryProcess = {
    child,
    configPath,
    logPath,
    logTail: (bytes = 4000) => tailFile(logPath, bytes),
    stop: () => stopChild(child),
  };
  const died = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new Error(`docker-registry failed to start: ${e.message}`)));
    child.once('exit', (code, sig) =>
      reject(new Error(`docker-registry exited early (code ${code}, signal ${sig}); log ${logPath}:\n${handle.logTail()}`)),
    );
  });
  died.catch(() => undefined); // observed below; avoid an unhandled rejection after readiness
  const deadline = Date.now() + (o.readyTimeoutMs ?? 20_000);
  let last = '';
  try {
    for (;;) {
      const status = await Promise.race([probe(o).catch((e: Error) => e), died]);
      if (status === 401) return handle;
      last = status instanceof Error ? status.message : `HTTP ${status}`;
      if (Date.now() > deadline) {
        throw new Error(`docker-registry not ready after ${o.readyTimeoutMs ?? 20_000} ms (last probe: ${last}); log ${logPath}:\n${handle.logTail()}`);
      }
      await Promise.race([sleep(100), died]);
    }
  } catch (e) {
    await handle.stop();
    throw e;
  }
}
