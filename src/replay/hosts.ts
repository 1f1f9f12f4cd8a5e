import { hostWithPort } from '../flow/index.js';
/**
 * Registry names for matching. Docker uses three names for Docker Hub's registry:
 * `docker.io` (references, `ns=docker.io` from mirrors), `index.docker.io` (older
 * clients, `docker login`) and `registry-1.docker.io` (what clients connect to). A
 * recording made with any of them answers requests made with any other.
 */
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** `host[:port]` lower-cased, the default port dropped, Docker Hub's names folded into `docker.io`. */
export function canonicalRegistry(hostPort: string): string {
  const hp = hostPort.toLowerCase().replace(/:443$/, '');
  return DOCKER_HUB.has(hp) ? 'docker.io' : hp;
}

/** `host[:port]` of a request, with the scheme's default port left out. */
export function hostPortOf(scheme: string, host: string, port: number): string {
  return hostWithPort(scheme, host.toLowerCase(), port);
}
