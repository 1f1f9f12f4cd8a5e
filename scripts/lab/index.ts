/**
 * The regtape test lab: a Docker-Hub-shaped registry setup on loopback.
 *
 * - `registry.test` — distribution 2.8 (docker-registry) with token auth and blob redirects,
 * - `auth.test` — our token server (Docker Hub style JWTs),
 * - `cdn.test` — our static blob CDN over the registry's storage,
 *
 * each on its own loopback address at port 443, all with one TLS leaf issued by a fresh test CA, seeded with
 * deterministic images. Reach it directly via {@link Lab.hostsFileLines} (a private /etc/hosts) or through a
 * proxy with {@link Lab.map} (`--map HOST=ADDR:PORT`).
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { startHubFront, type HubFront } from './hub-front.js';
import { makeLabCerts } from './certs.js';
import { startCdnServer, type CdnRequestLog, type CdnServer } from './cdn-server.js';
import { defaultCacheDir, ensureImageSet, type BlobRef, type BuiltImage, type ExtraImageSet, type ManifestRef, type Progress } from './images.js';
import { markOwner, sweepStaleDirs } from './proc.js';
import { startRegistry, type RegistryProcess } from './registry.js';
import { seedStorage } from './seed.js';
import { startTokenServer, type TokenRequestLog, type TokenServer } from './token-server.js';

export type { ExtraImageSet } from './images.js';
export { allBlobs } from './images.js';
export { storageBlobPath } from './seed.js';
export type { CdnRequestLog } from './cdn-server.js';
export type { TokenRequestLog, AccessEntry } from './token-server.js';

/** The three lab services. */
export type LabService = 'registry' | 'auth' | 'cdn';

/** Public host names of the lab services. */
export interface LabNames {
  registry: string;
  auth: string;
  cdn: string;
}

/** Options for {@link startLab}. */
export interface LabOptions {
  /** Lab directory (CA, TLS files, storage, logs). Default: a new temp dir, removed by stop(). */
  dir?: string;
  /** Keep a temp `dir` after stop() (a given `dir` is always kept). */
  keepDir?: boolean;
  /** First three octets of the service addresses (registry .1, auth .2, cdn .3). Default '127.77.0'. */
  ipBase?: string;
  /** Port of every service. Default 443 (URLs then carry no port, like Docker Hub). */
  port?: number;
  /** Override public names (default registry.test, auth.test, cdn.test). */
  names?: Partial<LabNames>;
  /** Extra image sets to seed (the base set is always seeded). */
  images?: ExtraImageSet[];
  /** Cache of generated images. Default `$REGTAPE_LAB_CACHE` or /tmp/regtape-lab-cache. */
  cacheDir?: string;
  /** Registry account allowed to push. Default 'labuser'. */
  user?: string;
  /** Its password. Default: random per lab (so leak checks are meaningful). */
  password?: string;
  /** Token lifetime in seconds. Default 300 (Docker Hub). */
  tokenExpiresIn?: number;
  /** docker-registry binary. Default: from PATH. */
  registryBinary?: string;
  /** Progress messages (image generation can take a while the first time). */
  onProgress?: Progress;
  /**
   * Behave more like Docker Hub (hub-front.ts): tokens without `pull` for repositories that do not
   * exist (so the registry answers 401 insufficient_scope), rate-limit headers on manifest answers,
   * blob redirects to signed CDN URLs (`?verify=`) that the CDN checks. distribution then listens
   * on `<ipBase>.4` behind the front.
   */
  hubLike?: boolean;
}

/** A seeded image as clients see it. */
export interface LabImage {
  /** Full reference, e.g. 'registry.test/lab/alpine:3.9'. */
  ref: string;
  /** 'lab/alpine' */
  repo: string;
  tag: string;
  /** Digest of the top-level manifest (list/index or single manifest). */
  digest: string;
  mediaType: string;
  /** Size of the top-level manifest. */
  size: number;
  /** e.g. ['linux/amd64', 'linux/arm64', 'linux/arm/v7']. */
  platforms: string[];
  /** Platform manifests (lists/indexes only). */
  manifests: ManifestRef[];
  /** Configs and layers of every platform. */
  blobs: BlobRef[];
}

/** A running lab. */
export interface Lab {
  dir: string;
  names: LabNames;
  /** 'ip:port' per service. */
  addresses: Record<LabService, string>;
  /** Listen IP per service. */
  ips: Record<LabService, string>;
  port: number;
  /** Base URLs, e.g. https://registry.test (with :port when port != 443). */
  urls: Record<LabService, string>;
  /** `HOST=ADDR:PORT` entries for the proxy's `--map`. */
  map: string[];
  /** /etc/hosts lines mapping the names to their addresses (direct access). */
  hostsFileLines: string[];
  /** A complete hosts file (localhost + {@link Lab.hostsFileLines}) in the lab dir, for bind-mounting. */
  hostsFile: string;
  /** The lab CA (the recorder's `--upstream-ca`). */
  caCertPath: string;
  caCertPem: string;
  /** A directory holding only `ca.crt` (for skopeo/podman `--cert-dir`). */
  certDir: string;
  user: string;
  password: string;
  /** Token issuer / service as configured in distribution. */
  tokenIssuer: string;
  tokenService: string;
  storageRoot: string;
  registryLogPath: string;
  images: LabImage[];
  /** Finds an image by 'lab/alpine:3.9' or full ref; throws if absent. */
  image(name: string): LabImage;
  /** Every secret the token server issued or accepted (tokens, refresh tokens, password, Basic value). */
  secrets(): string[];
  tokenRequests(): TokenRequestLog[];
  cdnRequests(): CdnRequestLog[];
  registryLogTail(bytes?: number): string;
  /** Stops the registry and servers; removes a temp dir unless keepDir. Idempotent. */
  stop(): Promise<void>;
}

const TOKEN_ISSUER = 'regtape-lab-auth';

function baseUrl(name: string, port: number): string {
  return port === 443 ? `https://${name}` : `https://${name}:${port}`;
}

function toLabImage(img: BuiltImage, registryHost: string): LabImage {
  return {
    ref: `${registryHost}/${img.repo}:${img.tag}`,
    repo: img.repo,
    tag: img.tag,
    digest: img.digest,
    mediaType: img.mediaType,
    size: img.size,
    platforms: img.platforms,
    manifests: img.manifests,
    blobs: img.blobs,
  };
}

/** Starts the lab: certificates, images (cached), storage seeding, token server, CDN and registry. */
export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const ipBase = opts.ipBase ?? '127.77.0';
  if (!/^127\.\d{1,3}\.\d{1,3}$/.test(ipBase)) throw new Error(`ipBase must look like '127.77.0', got ${ipBase}`);
  const port = opts.port ?? 443;
  const names: LabNames = { registry: 'registry.test', auth: 'auth.test', cdn: 'cdn.test', ...opts.names };
  const ips: Record<LabService, string> = { registry: `${ipBase}.1`, auth: `${ipBase}.2`, cdn: `${ipBase}.3` };
  const services: LabService[] = ['registry', 'auth', 'cdn'];
  const addresses = Object.fromEntries(services.map((s) => [s, `${ips[s]}:${port}`])) as Record<LabService, string>;
  const urls = Object.fromEntries(services.map((s) => [s, baseUrl(names[s], port)])) as Record<LabService, string>;
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const progress = opts.onProgress ?? (() => undefined);

  const tempDir = opts.dir === undefined;
  if (tempDir) await sweepStaleDirs(tmpdir(), 'regtape-lab-');
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'regtape-lab-')));
  if (tempDir) await markOwner(dir);
  const tlsDir = join(dir, 'tls');
  const certDir = join(dir, 'certs.d');
  const storageRoot = join(dir, 'storage');
  await Promise.all([tlsDir, certDir, storageRoot].map((d) => mkdir(d, { recursive: true })));

  let token: TokenServer | undefined;
  let cdn: CdnServer | undefined;
  let registry: RegistryProcess | undefined;
  let front: HubFront | undefined;
  let stopped = false;
  const stop = async (removeDir = tempDir && !opts.keepDir): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.allSettled([front?.close(), registry?.stop(), token?.close(), cdn?.close()]);
    if (removeDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const images = await ensureImageSet(cacheDir, 'base', progress);
    for (const set of new Set(opts.images ?? [])) images.push(...(await ensureImageSet(cacheDir, set, progress)));
    await seedStorage(cacheDir, storageRoot, images);

    const certs = makeLabCerts([names.registry, names.auth, names.cdn], Object.values(ips));
    const caCertPath = join(dir, 'ca.pem');
    const leafPath = join(tlsDir, 'leaf.pem');
    const leafKeyPath = join(tlsDir, 'leaf-key.pem');
    const signerPath = join(tlsDir, 'token-signer.pem');
    await Promise.all([
      writeFile(caCertPath, certs.ca.certPem),
      writeFile(join(certDir, 'ca.crt'), certs.ca.certPem),
      writeFile(leafPath, certs.leaf.certPem + certs.ca.certPem),
      writeFile(leafKeyPath, certs.leaf.keyPem, { mode: 0o600 }),
      writeFile(signerPath, certs.tokenSigner.certPem),
      writeFile(join(tlsDir, 'token-signer-key.pem'), certs.tokenSigner.keyPem, { mode: 0o600 }),
    ]);

    const user = opts.user ?? 'labuser';
    const password = opts.password ?? `lab-${randomBytes(12).toString('hex')}`;
    const tls = { certPem: certs.leaf.certPem, keyPem: certs.leaf.keyPem };
    const hubSecret = opts.hubLike ? randomBytes(32) : undefined;
    const repositoryExists = opts.hubLike ? (name: string) => existsSync(join(storageRoot, 'docker/registry/v2/repositories', name, '_manifests')) : undefined;
    [token, cdn] = await Promise.all([
      startTokenServer({
        host: ips.auth,
        port,
        tls,
        signer: certs.tokenSigner,
        issuer: TOKEN_ISSUER,
        service: names.registry,
        user,
        password,
        expiresIn: opts.tokenExpiresIn,
        repositoryExists,
      }),
      startCdnServer({ host: ips.cdn, port, tls, storageRoot, verifySecret: hubSecret }),
    ]);
    registry = await startRegistry({
      dir,
      binary: opts.registryBinary,
      host: opts.hubLike ? `${ipBase}.4` : ips.registry,
      port,
      publicUrl: urls.registry,
      serverName: names.registry,
      storageRoot,
      tlsCertPath: leafPath,
      tlsKeyPath: leafKeyPath,
      caPem: certs.ca.certPem,
      token: { realm: `${urls.auth}/token`, service: names.registry, issuer: TOKEN_ISSUER, rootCertBundlePath: signerPath },
      cdnUrl: urls.cdn,
    });
    if (hubSecret) {
      front = await startHubFront({
        host: ips.registry,
        port,
        tls,
        upstream: { host: `${ipBase}.4`, port, serverName: names.registry, caPem: certs.ca.certPem },
        cdnUrl: urls.cdn,
        secret: hubSecret,
      });
    }

    const registryHost = port === 443 ? names.registry : `${names.registry}:${port}`;
    const labImages = images.map((img) => toLabImage(img, registryHost));
    const hostsFileLines = services.map((s) => `${ips[s]} ${names[s]}`);
    const hostsFile = join(dir, 'hosts');
    await writeFile(hostsFile, `127.0.0.1 localhost\n::1 localhost\n${hostsFileLines.join('\n')}\n`);
    const tokenServer = token;
    const cdnServer = cdn;
    const registryProcess = registry;
    const lab: Lab = {
      dir,
      names,
      addresses,
      ips,
      port,
      urls,
      map: services.map((s) => `${names[s]}=${addresses[s]}`),
      hostsFileLines,
      hostsFile,
      caCertPath,
      caCertPem: certs.ca.certPem,
      certDir,
      user,
      password,
      tokenIssuer: TOKEN_ISSUER,
      tokenService: names.registry,
      storageRoot,
      registryLogPath: registryProcess.logPath,
      images: labImages,
      image(name: string): LabImage {
        const found = labImages.find((i) => i.ref === name || `${i.repo}:${i.tag}` === name);
        if (!found) throw new Error(`no lab image ${name}; have ${labImages.map((i) => `${i.repo}:${i.tag}`).join(', ')}`);
        return found;
      },
      secrets: () => tokenServer.secrets(),
      tokenRequests: () => tokenServer.requests(),
      cdnRequests: () => cdnServer.requests(),
      registryLogTail: (bytes?: number) => registryProcess.logTail(bytes),
      stop: () => stop(),
    };
    return lab;
  } catch (e) {
    await stop(false); // keep the dir (registry.log) for debugging; a later start sweeps it
    throw e;
  }
}
