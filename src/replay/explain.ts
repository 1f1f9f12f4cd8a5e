import type { FlowRecord, HeaderList } from '../flow/index.js';
import { acceptSet, authClass, isDigest, isIndex, matchRoute, splitTarget } from '../registry/index.js';
import { flowRegistry, type Catalog, type StoredManifest } from './catalog.js';

/** Which matcher could not answer: the request kind replay looked the answer up by. */
export type MissMatcher = 'tag' | 'digest' | 'selection' | 'blob' | 'cdn' | 'exact' | 'endpoint';

export interface MissRequest {
  method: string;
  /** The registry (Docker Hub's names folded into docker.io) or, for other hosts, host[:port]. */
  host: string;
  path: string;
  query: URLSearchParams;
  headers: HeaderList;
  matcher: MissMatcher;
  /** Manifest selection refused a recorded manifest: the media type Accept lacked, or the platform child that is missing. */
  selection?: { manifest: StoredManifest; missingType?: string; platform?: string };
}

export interface Explanation {
  closest: FlowRecord | null;
  /** The one difference that made it a miss, and what to do about it. */
  explanation: string;
  /** Every field in which the request differs from the closest recorded one. */
  differences: string[];
}

/**
 * Why replay had no answer, for a user to act on: the closest recorded request (Hoverfly's
 * "closest miss") and the one difference that matters, named in registry terms (a platform
 * never fetched, an Accept that lacks a type, a tag or repository never recorded), with the
 * command that would have recorded it where there is one.
 */
export function explainMiss(cat: Catalog, req: MissRequest): Explanation {
  const closest = closestFlow(cat.flows, req);
  const differences = closest ? differencesFrom(closest, req) : [];
  const explanation = explanationOf(cat, req, closest, differences);
  return { closest, explanation, differences };
}

function explanationOf(cat: Catalog, req: MissRequest, closest: FlowRecord | null, differences: string[]): string {
  const route = matchRoute(req.path);
  const onHost = cat.flows.filter((f) => flowRegistry(f) === req.host || f.request.host.toLowerCase() === req.host);
  if (req.selection) return selectionExplanation(req.selection, route && 'repo' in route ? route.repo : '?', route?.kind === 'manifest' ? route.reference : '?');
  if (!onHost.length) {
    const hosts = [...new Set(cat.flows.map((f) => flowRegistry(f)))].sort();
    return `nothing was recorded for ${req.host} (recorded: ${list(hosts)}); record a session that talks to it`;
  }
  if (route?.kind === 'manifest') {
    const m = manifestExplanation(cat, req, route.repo, route.reference, onHost);
    if (m) return m;
  }
  if (route?.kind === 'blob') return blobExplanation(cat, route.repo, route.digest, req.host, onHost);
  if (req.matcher === 'cdn') return `no download of ${req.path} from ${req.host} was recorded (any query is ignored; the path must match)`;
  if (!closest) return 'nothing similar was recorded';
  if (closest.state !== 'complete') return `the recorded exchange (flow ${closest.id}) never completed${closest.error ? ` (${closest.error})` : ''}; record it again`;
  if (!differences.length) {
    const body = closest.responseBody;
    if (closest.response?.status === 200 && closest.request.method === 'GET' && (!body || body.redacted)) return `the recorded answer (flow ${closest.id}) has no usable body (${body ? 'it was redacted' : 'none was stored'}); record it again`;
    return `the recorded answer (flow ${closest.id}, ${closest.response?.status ?? 'no response'}) cannot answer ${req.method} ${req.path}; nothing else similar was recorded`;
  }
  return `closest recorded request is flow ${closest.id}; it differs in ${differences.join(', ')}`;
}

function selectionExplanation(s: NonNullable<MissRequest['selection']>, repo: string, ref: string): string {
  const m = s.manifest;
  if (s.missingType) {
    const what = isIndex(m.mediaType) ? 'an OCI index' : 'an OCI manifest';
    return `the recorded manifest ${m.digest} for ${repo}:${ref} is ${what}, and this request's Accept lacked ${s.missingType} (the registry answers such a request with 404 too); the recorded request (flow ${m.flowId}) accepted it`;
  }
  const tag = isDigest(ref) ? '' : ` (${repo}:${ref})`;
  return `the ${s.platform} entry of the recorded manifest list ${m.digest}${tag} was never fetched (a request without the list type in Accept gets it); record with \`docker pull --platform ${s.platform}\``;
}

function manifestExplanation(cat: Catalog, req: MissRequest, repo: string, ref: string, onHost: FlowRecord[]): string | null {
  if (isDigest(ref)) {
    const parent = parentOf(cat, ref);
    if (parent) {
      const tag = tagOf(cat, parent.list.digest);
      return `the ${parent.platform} entry of the recorded manifest list ${parent.list.digest}${tag ? ` (${tag})` : ''} was never fetched; record with \`docker pull --platform ${parent.platform}\` (or \`skopeo copy --all\`)`;
    }
    return `manifest ${ref} was never recorded (no recorded manifest list refers to it); record a pull of ${req.host}/${repo}@${ref}`;
  }
  const inRepo = onHost.filter((f) => f.registry?.repo === repo && f.registry.role === 'manifest');
  if (!inRepo.length) return repoExplanation(req.host, repo, onHost);
  const refused = inRepo.find((f) => f.registry?.reference === ref && f.response?.status === 404 && cat.negotiation.has(f.id));
  const asked = acceptSet(req.headers);
  if (refused && asked.includes(cat.negotiation.get(refused.id)!)) {
    const t = cat.negotiation.get(refused.id)!;
    return `recorded Accept lacked ${t}: the recorded request for ${repo}:${ref} (flow ${refused.id}) got 404, so the ${isIndex(t) ? 'index' : 'manifest'} itself was never recorded; record with a client that accepts ${t}`;
  }
  const tags = [...new Set(inRepo.map((f) => f.registry!.reference!).filter((r) => !isDigest(r)))].sort();
  if (tags.includes(ref)) return null;
  return `tag ${ref} of ${repo} was never recorded (recorded tags: ${list(tags)}); record a pull of ${req.host}/${repo}:${ref}`;
}

function repoExplanation(host: string, repo: string, onHost: FlowRecord[]): string {
  const repos = [...new Set(onHost.map((f) => f.registry?.repo).filter((r): r is string => !!r))].sort();
  return `repository ${repo} was never recorded on ${host} (recorded: ${list(repos)}); record a pull from it`;
}

function blobExplanation(cat: Catalog, repo: string, digest: string, host: string, onHost: FlowRecord[]): string {
  const bad = cat.flows.find((f) => f.registry?.digest === digest && f.registry.digestCheck === 'mismatch');
  if (bad) return `the recorded body of flow ${bad.id} does not match its digest (${bad.registry!.digestProblem ?? 'mismatch'}); replay never serves it — record the download again`;
  if (!onHost.some((f) => f.registry?.repo === repo)) return repoExplanation(host, repo, onHost);
  for (const m of cat.manifests.values()) {
    if (m.parsed?.kind !== 'image') continue;
    const what = m.parsed.config?.digest === digest ? 'config' : m.parsed.layers.some((l) => l.digest === digest) ? 'a layer' : null;
    if (!what) continue;
    const parent = parentOf(cat, m.digest);
    const of = parent ? ` (${parent.platform} of ${parent.list.digest})` : '';
    return `blob ${digest} is ${what} of the recorded manifest ${m.digest}${of} but was never downloaded (the client had it already?); record the pull with an empty image store`;
  }
  return `blob ${digest} was never downloaded and no recorded manifest refers to it`;
}

/** The recorded list/index that has `digest` as a platform entry. */
function parentOf(cat: Catalog, digest: string): { list: StoredManifest; platform: string } | null {
  for (const m of cat.manifests.values()) {
    if (m.parsed?.kind !== 'index') continue;
    const d = m.parsed.manifests.find((x) => x.digest === digest);
    if (d) return { list: m, platform: d.platform ?? 'unknown platform' };
  }
  return null;
}

function tagOf(cat: Catalog, digest: string): string | null {
  for (const r of cat.registries.values()) for (const [repo, tags] of r.tags) for (const [tag, ds] of tags) if (ds.includes(digest)) return `${repo}:${tag}`;
  return null;
}

function list(xs: string[]): string {
  if (!xs.length) return 'none';
  return xs.length > 8 ? `${xs.slice(0, 8).join(', ')}, … ${xs.length - 8} more` : xs.join(', ');
}

function closestFlow(flows: readonly FlowRecord[], req: MissRequest): FlowRecord | null {
  const route = matchRoute(req.path);
  let best: FlowRecord | null = null;
  let bestScore = -1;
  for (const f of flows) {
    const sp = splitTarget(f.request.target);
    const fr = matchRoute(sp.path);
    let score = 0;
    if (flowRegistry(f) === req.host || f.request.host.toLowerCase() === req.host) score += 4;
    if (f.request.method === req.method) score += 2;
    if (fr && route && fr.kind === route.kind) score += 3;
    if (fr && route && 'repo' in fr && 'repo' in route && fr.repo === route.repo) score += 3;
    if (fr?.kind === 'manifest' && route?.kind === 'manifest' && fr.reference === route.reference) score += 2;
    if (f.state === 'complete') score += 0.5;
    score += commonPrefix(sp.path, req.path) / 1000;
    if (score > bestScore) {
      bestScore = score;
      best = f;
    }
  }
  return best;
}

function differencesFrom(best: FlowRecord, req: MissRequest): string[] {
  const route = matchRoute(req.path);
  const d: string[] = [];
  const sp = splitTarget(best.request.target);
  const fr = matchRoute(sp.path);
  if (flowRegistry(best) !== req.host && best.request.host.toLowerCase() !== req.host) d.push(`host (${req.host} vs recorded ${best.request.host})`);
  if (best.request.method !== req.method) d.push(`method (${req.method} vs recorded ${best.request.method})`);
  if (fr && route && 'repo' in fr && 'repo' in route && fr.repo !== route.repo) d.push(`repository (${route.repo} vs recorded ${fr.repo})`);
  if (fr?.kind === 'manifest' && route?.kind === 'manifest' && fr.reference !== route.reference) d.push(`reference (${route.reference} vs recorded ${fr.reference})`);
  if (fr?.kind === 'blob' && route?.kind === 'blob' && fr.digest !== route.digest) d.push(`digest (${route.digest} vs recorded ${fr.digest})`);
  if (sp.path !== req.path && !d.length) d.push(`path (${req.path} vs recorded ${sp.path})`);
  sp.query.delete('ns');
  const q = new URLSearchParams(req.query);
  q.delete('ns');
  const qa = [...q.keys()].sort().join(',');
  const qb = [...sp.query.keys()].sort().join(',');
  if (qa !== qb) d.push(`query parameters (${qa || 'none'} vs recorded ${qb || 'none'})`);
  const aa = acceptSet(req.headers).join(',');
  const ab = acceptSet(best.request.headers).join(',');
  if (route?.kind === 'manifest' && aa !== ab) d.push(`accepted media types (${aa || 'none'} vs recorded ${ab || 'none'})`);
  const ca = authClass(req.headers);
  const cb = authClass(best.request.headers);
  if (ca !== cb) d.push(`auth (${ca} vs recorded ${cb})`);
  if (best.state !== 'complete') d.push(`the recorded exchange never completed (${best.state})`);
  else if (!best.response) d.push('no response was recorded');
  return d;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
