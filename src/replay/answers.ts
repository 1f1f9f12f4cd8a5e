import type { FlowRecord } from '../flow/index.js';
import { matchRoute, splitTarget } from '../registry/index.js';

/**
 * Recorded answers by the protocol meaning of their request (registry-protocol.md §6), in
 * order of recording: registry (Docker Hub's names folded), method, auth class (none /
 * credentials: the value never matters), and the route — manifest repo + reference, blob
 * repo + digest, tags/catalog/referrers with their sorted query, or the exact path and
 * sorted query for anything else. `ns=` is never part of a key. Accept is not part of the
 * key: manifest answers are re-selected by Accept (see manifests.ts), and a recorded
 * content-negotiation 404 only answers requests whose Accept lacks what it lacked.
 */
export type AuthKey = 'none' | 'auth';

/** Which recorded answer wins when one request was answered differently at different times. */
export type Prefer = 'last' | 'success';

function sortedQuery(q: URLSearchParams): string {
  const copy = new URLSearchParams(q);
  copy.delete('ns');
  return [...copy.entries()].sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : x > y ? 1 : 0) : a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join('&');
}

/** The route part of a key; null for push routes (replay keeps push sessions of its own). */
export function routeKey(path: string, query: URLSearchParams): string | null {
  const r = matchRoute(path);
  if (!r) return `path ${path} ${sortedQuery(query)}`;
  switch (r.kind) {
    case 'ping':
      return 'ping';
    case 'manifest':
      return `manifest ${r.repo} ${r.reference}`;
    case 'blob':
      return `blob ${r.repo} ${r.digest}`;
    case 'tags':
      return `tags ${r.repo} ${sortedQuery(query)}`;
    case 'catalog':
      return `catalog ${sortedQuery(query)}`;
    case 'referrers':
      return `referrers ${r.repo} ${r.digest} ${sortedQuery(query)}`;
    default:
      return null;
  }
}

function answerKey(registry: string, method: string, auth: AuthKey, route: string): string {
  return `${registry} ${method.toUpperCase()} ${auth} ${route}`;
}

export function isSuccess(f: FlowRecord): boolean {
  const s = f.response?.status ?? 0;
  return s >= 200 && s < 400;
}

/** Recorded answers, indexed once; `lookup` is the only way to read them. */
export class Answers {
  private readonly byKey = new Map<string, FlowRecord[]>();

  add(registry: string, f: FlowRecord): void {
    const { path, query } = splitTarget(f.request.target);
    const route = routeKey(path, query);
    if (!route || !f.response || f.state !== 'complete') return;
    const auth: AuthKey = f.registry?.auth && f.registry.auth !== 'none' ? 'auth' : 'none';
    const k = answerKey(registry, f.request.method, auth, route);
    const list = this.byKey.get(k);
    if (list) list.push(f);
    else this.byKey.set(k, [f]);
  }

  /**
   * The recorded answers to a request, in order of recording: same method (a HEAD falls
   * back to the GETs), same auth class (a credentialed request falls back to anonymous
   * answers that were not 401s: a registry without auth).
   */
  lookup(registry: string, method: string, auth: AuthKey, route: string): FlowRecord[] {
    const m = method.toUpperCase();
    const methods = m === 'HEAD' ? ['HEAD', 'GET'] : [m];
    for (const meth of methods) {
      const own = this.byKey.get(answerKey(registry, meth, auth, route));
      if (own?.length) return own;
      if (auth === 'auth') {
        const anon = (this.byKey.get(answerKey(registry, meth, 'none', route)) ?? []).filter((f) => f.response!.status !== 401);
        if (anon.length) return anon;
      }
    }
    return [];
  }
}

/**
 * The policy: among the recorded answers a request may get (in order of recording), the
 * last one sticks — a registry that answered 429 and later 200 is replayed as 200, one that
 * answered 200 and later 404 (a deleted tag) as 404. `prefer: 'success'` (`--prefer
 * success`) takes the last success if there is any.
 */
export function pickAnswer(answers: readonly FlowRecord[], prefer: Prefer): FlowRecord | null {
  if (prefer === 'success') {
    const ok = answers.filter(isSuccess);
    if (ok.length) return ok.at(-1)!;
  }
  return answers.at(-1) ?? null;
}
