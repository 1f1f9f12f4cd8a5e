import type { FlowRecord, HeaderList } from '../flow/index.js';
import { acceptSet, authClass, matchRoute, splitTarget } from '../registry/index.js';

export interface MissRequest {
  method: string;
  host: string;
  path: string;
  query: URLSearchParams;
  headers: HeaderList;
}

/**
 * The recorded flow closest to a request replay could not answer, and the fields that
 * differ (Hoverfly's "closest miss"): host, method, route, repository, reference,
 * path, query, accepted media types, auth class.
 */
export function explainMiss(flows: readonly FlowRecord[], req: MissRequest): { closest: FlowRecord | null; differences: string[] } {
  const route = matchRoute(req.path);
  let best: FlowRecord | null = null;
  let bestScore = -1;
  for (const f of flows) {
    const sp = splitTarget(f.request.target);
    const fr = matchRoute(sp.path);
    let score = 0;
    if (f.request.host === req.host || f.registry?.registry === req.host) score += 4;
    if (f.request.method === req.method) score += 2;
    if (fr && route && fr.kind === route.kind) score += 3;
    if (fr && route && 'repo' in fr && 'repo' in route && fr.repo === route.repo) score += 3;
    if (fr?.kind === 'manifest' && route?.kind === 'manifest' && fr.reference === route.reference) score += 2;
    score += commonPrefix(sp.path, req.path) / 100;
    if (score > bestScore) {
      bestScore = score;
      best = f;
    }
  }
  if (!best) return { closest: null, differences: [] };
  const d: string[] = [];
  const sp = splitTarget(best.request.target);
  const fr = matchRoute(sp.path);
  if (best.request.host !== req.host && best.registry?.registry !== req.host) d.push(`host (${req.host} vs recorded ${best.request.host})`);
  if (best.request.method !== req.method) d.push(`method (${req.method} vs recorded ${best.request.method})`);
  if (fr && route && 'repo' in fr && 'repo' in route && fr.repo !== route.repo) d.push(`repository (${route.repo} vs recorded ${fr.repo})`);
  if (fr?.kind === 'manifest' && route?.kind === 'manifest' && fr.reference !== route.reference) d.push(`reference (${route.reference} vs recorded ${fr.reference})`);
  if (fr?.kind === 'blob' && route?.kind === 'blob' && fr.digest !== route.digest) d.push(`digest (${route.digest} vs recorded ${fr.digest})`);
  if (sp.path !== req.path && !d.length) d.push(`path (${req.path} vs recorded ${sp.path})`);
  const qa = [...req.query.keys()].sort().join(',');
  sp.query.delete('ns');
  const qb = [...sp.query.keys()].sort().join(',');
  if (qa !== qb) d.push(`query parameters (${qa || 'none'} vs recorded ${qb || 'none'})`);
  const aa = acceptSet(req.headers).join(',');
  const ab = acceptSet(best.request.headers).join(',');
  if (route?.kind === 'manifest' && aa !== ab) d.push(`accepted media types (${aa || 'none'} vs recorded ${ab || 'none'})`);
  const ca = authClass(req.headers);
  const cb = authClass(best.request.headers);
  if (ca !== cb) d.push(`auth (${ca} vs recorded ${cb})`);
  if (!d.length) d.push('recorded response was not replayable (not complete, or body missing)');
  return { closest: best, differences: d };
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
