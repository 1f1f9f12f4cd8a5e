/**
 * Names users know: the registry, image and digest spellings docker prints, and sizes in docker's units.
 * Pure.
 */

/** Hosts that are Docker Hub's registry; users call all of them `docker.io`. */
const DOCKER_HUB_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io', 'registry.hub.docker.com', 'docker.io']);

/** The name a user gives a registry host: `registry-1.docker.io` → `docker.io`; other hosts as they are. */
export function registryName(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_HOSTS.has(h) || DOCKER_HUB_HOSTS.has(h.replace(/:443$/, '')) ? 'docker.io' : host;
}

/** `sha256:` and the first 12 hex digits (what docker prints as an image or layer id); other strings as they are. */
export function shortDigest(d: string | null | undefined): string {
  if (!d) return '';
  const i = d.indexOf(':');
  return i > 0 && /^[a-z0-9+._-]+$/i.test(d.slice(0, i)) && d.length - i - 1 > 12 ? `${d.slice(0, i + 1)}${d.slice(i + 1, i + 13)}` : d;
}

/** `docker.io/library/alpine:3.19`, `registry.test/lab/tiny@sha256:04acf6ea374a` (a digest reference shortened). */
export function imageName(registry: string, repo: string, reference: string | null, opts: { fullDigest?: boolean } = {}): string {
  const base = repo ? `${registryName(registry)}/${repo}` : registryName(registry);
  if (!reference) return base;
  return /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-f]{32,}$/i.test(reference) ? `${base}@${opts.fullDigest ? reference : shortDigest(reference)}` : `${base}:${reference}`;
}

/**
 * A size as docker prints it (go-units HumanSize: decimal units, 4 significant digits, no space):
 * 536B, 704.1kB, 1.504MB, 2.208GB.
 */
export function dockerSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** A rate in docker's units per second. */
export function dockerRate(bytesPerSecond: number): string {
  return `${dockerSize(Math.round(bytesPerSecond))}/s`;
}

/** Which client a User-Agent belongs to, as `regtape ca --setup` names it (null when unknown). */
export function clientName(userAgent: string | null | undefined): string | null {
  const ua = (userAgent ?? '').toLowerCase();
  if (!ua) return null;
  if (ua.startsWith('docker/')) return 'dockerd';
  if (ua.startsWith('containerd/') || ua.startsWith('ctr/')) return 'containerd';
  // podman and buildah send containers/image's own User-Agent (skopeo sends its own name).
  if (ua.startsWith('podman/') || ua.includes('libpod') || ua.startsWith('containers/')) return 'podman';
  if (ua.startsWith('skopeo/')) return 'skopeo';
  if (ua.startsWith('buildah/')) return 'buildah';
  if (ua.startsWith('curl/')) return 'curl';
  if (ua.startsWith('go-http-client/')) return 'go';
  return null;
}

/** The platform a client says it runs on in its User-Agent (dockerd: `os/linux arch/amd64`), or null. */
export function platformFromUserAgent(userAgent: string | null | undefined): string | null {
  const os = /\bos\/([a-z0-9]+)/i.exec(userAgent ?? '')?.[1];
  const arch = /\barch\/([a-z0-9_]+)/i.exec(userAgent ?? '')?.[1];
  return os && arch ? `${os}/${arch}` : null;
}
