import { getHeader, getHeaders, hostWithPort, type AuthClass, type BodyRef, type FlowRecord, type RegistryFacts, type Role, type Scope } from '../flow/index.js';
import { baseMediaType } from './media-types.js';
import { digestInPath, isDigest, matchRoute, splitTarget } from './routes.js';

/** Facts of a flow nothing is known about yet (role `other`, no registry). */
export function emptyFacts(): RegistryFacts {
  return {
    role: 'other',
    registry: null,
    repo: null,
    reference: null,
    digest: null,
    mediaType: null,
    accept: [],
    auth: 'none',
    scopesRequested: [],
    scopesGranted: [],
    redirectFrom: null,
    redirectTo: null,
    digestCheck: null,
    digestProblem: null,
  };
}

/** Parse one scope string `type:name:actions`; the name may itself contain ':' (host:port/repo), so split from both ends. */
export function parseScope(s: string): Scope | null {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return null;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

/** Scopes from `scope=` values (repeated, or one space-separated list as in OAuth POST). */
export function parseScopes(values: string[]): Scope[] {
  return values.flatMap((v) => v.split(' ')).filter(Boolean).map(parseScope).filter((s): s is Scope => !!s);
}

/** Parse a `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge. */
export function parseChallenge(value: string): { scheme: string; params: Record<string, string> } | null {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/.exec(value);
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!))) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

/** Accept header lines split on commas, parameters dropped, lower-cased, deduplicated, sorted. */
export function acceptSet(headers: FlowRecord['request']['headers']): string[] {
  const set = new Set<string>();
  for (const v of getHeaders(headers, 'accept')) for (const part of v.split(',')) {
    const t = baseMediaType(part);
    if (t) set.add(t);
  }
  return [...set].sort();
}

export function authClass(headers: FlowRecord['request']['headers']): AuthClass {
  const v = getHeader(headers, 'authorization');
  if (!v) return 'none';
  const scheme = v.trim().split(/\s+/)[0]!.toLowerCase();
  return scheme === 'basic' ? 'basic' : scheme === 'bearer' ? 'bearer' : 'other';
}

function scopesFromClaims(claims: Record<string, unknown> | null | undefined): Scope[] {
  const access = claims?.access;
  if (!Array.isArray(access)) return [];
  return access
    .filter((a): a is { type: string; name: string; actions?: unknown } => !!a && typeof a === 'object' && typeof a.type === 'string' && typeof a.name === 'string')
    .map((a) => ({ type: a.type, name: a.name, actions: Array.isArray(a.actions) ? a.actions.filter((x): x is string => typeof x === 'string') : [] }));
}

/** host + path of a URL, the key CDN requests are matched by (signature queries vary per run). */
function urlKey(url: string): string | null {
  try {
    const u = new URL(url);
    return `${u.hostname.toLowerCase()}${u.pathname}`;
  } catch {
    return null;
  }
}

interface RedirectInfo {
  flowId: number;
  registry: string;
  repo: string;
  digest: string;
}

/**
 * Classifies flows one after another, remembering what earlier flows taught it: token
 * realms from challenges (so any token endpoint is recognised) and blob redirects (so
 * a CDN download is attributed to its registry, repository and digest). Pure: no I/O.
 */
export class Classifier {
  private readonly realms = new Map<string, string>();
  private readonly redirects = new Map<string, RedirectInfo>();
  private readonly redirectsByDigest = new Map<string, RedirectInfo>();

  /** Classify one flow and check its body against the digests it claims (`describe` + `checkDigests`). */
  classify(flow: FlowRecord, extra: { requestBody?: Buffer | null } = {}): RegistryFacts {
    return checkDigests(flow, this.describe(flow, extra));
  }

  /**
   * What one flow is (role, registry, repository, digest, scopes; no digest check).
   * `extra.requestBody` (the stored, redacted bytes of a small request body) lets an
   * OAuth POST token request show its scopes, which travel in the form.
   */
  describe(flow: FlowRecord, extra: { requestBody?: Buffer | null } = {}): RegistryFacts {
    const req = flow.request;
    const res = flow.response;
    const { path, query } = splitTarget(req.target);
    const host = req.host.toLowerCase();
    const hostPort = hostWithPort(req.scheme, host, req.port);
    const facts: RegistryFacts = {
      ...emptyFacts(),
      mediaType: baseMediaType(res ? getHeader(res.headers, 'content-type') : null),
      accept: acceptSet(req.headers),
      auth: authClass(req.headers),
    };
    const requestToken = (flow.facts.tokens ?? []).find((t) => t.where === 'request.header:authorization');
    if (requestToken) facts.scopesGranted = scopesFromClaims(requestToken.claims);

    // Remember challenges: any later request to the realm is a token request for this registry.
    for (const v of res ? getHeaders(res.headers, 'www-authenticate') : []) {
      const c = parseChallenge(v);
      if (c?.scheme === 'bearer' && c.params.realm) {
        const k = urlKey(c.params.realm);
        if (k) this.realms.set(k, hostPort);
        if (c.params.scope) facts.scopesRequested = parseScopes([c.params.scope]);
      }
    }

    const route = matchRoute(path);
    const realmRegistry = this.realms.get(`${host}${path}`);
    if (realmRegistry !== undefined || (!route && isTokenPath(path, query))) {
      facts.role = 'token';
      facts.registry = realmRegistry ?? query.get('service') ?? null;
      facts.scopesRequested = parseScopes(query.getAll('scope'));
      const form = formOf(flow, extra.requestBody);
      if (form) {
        facts.scopesRequested.push(...parseScopes(form.getAll('scope')));
        facts.registry ??= form.get('service');
      }
      const granted = (flow.facts.tokens ?? []).filter((t) => t.where.startsWith('response.body'));
      if (granted.length) facts.scopesGranted = granted.flatMap((t) => scopesFromClaims(t.claims));
      return facts;
    }

    if (route) {
      facts.registry = hostPort;
      switch (route.kind) {
        case 'ping':
          facts.role = 'ping';
          break;
        case 'catalog':
          facts.role = 'catalog';
          break;
        case 'tags':
          facts.role = 'tags';
          facts.repo = route.repo;
          break;
        case 'referrers':
          facts.role = 'referrers';
          facts.repo = route.repo;
          facts.digest = route.digest;
          facts.reference = route.digest;
          break;
        case 'manifest':
          facts.role = 'manifest';
          facts.repo = route.repo;
          facts.reference = route.reference;
          facts.digest = isDigest(route.reference) ? route.reference : (res ? (getHeader(res.headers, 'docker-content-digest') ?? null) : null);
          break;
        case 'blob': {
          facts.repo = route.repo;
          facts.reference = route.digest;
          facts.digest = route.digest;
          const location = res && res.status >= 300 && res.status < 400 ? getHeader(res.headers, 'location') : undefined;
          if (location) {
            facts.role = 'blob-redirect';
            facts.redirectTo = location;
            const info: RedirectInfo = { flowId: flow.id, registry: hostPort, repo: route.repo, digest: route.digest };
            const k = urlKey(new URL(location, `${req.scheme}://${hostPort}`).toString());
            if (k) this.redirects.set(k, info);
            this.redirectsByDigest.set(route.digest, info);
          } else facts.role = 'blob';
          break;
        }
        case 'uploads': {
          facts.repo = route.repo;
          const method = req.method.toUpperCase();
          if (method === 'POST') {
            facts.role = query.get('mount') ? 'mount' : 'upload-start';
            facts.digest = query.get('mount') ?? query.get('digest') ?? null;
          } else if (method === 'PATCH') facts.role = 'upload-chunk';
          else if (method === 'PUT') {
            facts.role = 'upload-finish';
            facts.digest = query.get('digest');
          } else if (method === 'DELETE') facts.role = 'upload-cancel';
          else facts.role = 'upload-status';
          facts.reference = facts.digest;
          break;
        }
      }
      return facts;
    }

    // Not a registry path: a CDN / storage download we were redirected to?
    const redirect = this.redirects.get(`${host}${path}`) ?? (() => {
      const d = digestInPath(path);
      return d ? this.redirectsByDigest.get(d) : undefined;
    })();
    if (redirect) {
      facts.role = 'cdn-blob';
      facts.registry = redirect.registry;
      facts.repo = redirect.repo;
      facts.digest = redirect.digest;
      facts.reference = redirect.digest;
      facts.redirectFrom = redirect.flowId;
    } else if (digestInPath(path) && /\/(data|blobs?)\b/.test(path)) {
      facts.role = 'cdn-blob';
      facts.digest = digestInPath(path);
      facts.reference = facts.digest;
    }
    return facts;
  }

  /**
   * For flows read back from a recording: learn from the flow (realms, redirects) and give
   * it facts unless it already carries the ones stored while recording. Flows must come
   * in recording order.
   */
  fill(flow: FlowRecord): RegistryFacts {
    const facts = this.classify(flow);
    flow.registry ??= facts;
    return flow.registry;
  }
}

/**
 * Digest checks: the body's sha256 against the URL digest and Docker-Content-Digest.
 * `body` defaults to the stored response body; an import passes the one its source
 * describes when the bytes were left out (sets `facts.digestCheck`, returns `facts`).
 */
export function checkDigests(flow: FlowRecord, facts: RegistryFacts, body: BodyRef | null | undefined = flow.responseBody): RegistryFacts {
  const res = flow.response;
  const role: Role = facts.role;
  const checkable = (role === 'manifest' || role === 'blob' || role === 'cdn-blob') && flow.request.method === 'GET' && res?.status === 200 && flow.state === 'complete';
  if (!checkable || !body || body.redacted || !body.sha256) return facts;
  const actual = `sha256:${body.sha256}`;
  const problems: string[] = [];
  const urlDigest = facts.reference && isDigest(facts.reference) ? facts.reference : null;
  if (urlDigest?.startsWith('sha256:') && urlDigest !== actual) problems.push(`body is ${actual}, URL asks for ${urlDigest}`);
  const dcd = getHeader(res.headers, 'docker-content-digest');
  if (dcd?.startsWith('sha256:') && dcd !== actual && role !== 'cdn-blob') problems.push(`body is ${actual}, Docker-Content-Digest says ${dcd}`);
  const sha256Known = !!urlDigest?.startsWith('sha256:') || !!dcd?.startsWith('sha256:');
  if (problems.length) {
    facts.digestCheck = 'mismatch';
    facts.digestProblem = problems.join('; ');
  } else if (sha256Known) facts.digestCheck = 'ok';
  return facts;
}

/** The form fields of a urlencoded POST body, if that is what the flow carried. */
function formOf(flow: FlowRecord, body: Buffer | null | undefined): URLSearchParams | null {
  if (!body?.length || flow.request.method.toUpperCase() !== 'POST') return null;
  const type = baseMediaType(getHeader(flow.request.headers, 'content-type'));
  if (type !== 'application/x-www-form-urlencoded') return null;
  return new URLSearchParams(body.toString('utf8'));
}

function isTokenPath(path: string, query: URLSearchParams): boolean {
  if (/\/(token|oauth2?\/token|v2\/auth|auth)$/.test(path) || path === '/v2/token') return true;
  return query.has('scope') && query.has('service');
}

/** Classify a whole recording's flows in order. */
export function classifyAll(flows: Iterable<FlowRecord>): Map<number, RegistryFacts> {
  const c = new Classifier();
  const out = new Map<number, RegistryFacts>();
  for (const f of flows) out.set(f.id, c.classify(f));
  return out;
}
