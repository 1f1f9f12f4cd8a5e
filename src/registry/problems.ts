/**
 * Diagnosis: what went wrong in an operation, each problem one line that cites its flows and says what
 * to do. Pure: works on classified flows (and parsed error bodies when the caller has them).
 */
import { getHeader, getHeaders, type FlowRecord, type RegistryFacts, type Scope } from '../flow/index.js';
import { isIndex, isSchema1 } from './media-types.js';
import { parseChallenge } from './classify.js';
import { dockerSize, platformFromUserAgent, registryName, shortDigest } from './names.js';
import type { BuildOptions, ClassifiedFlow, Operation, OperationClient } from './operations.js';

export type ProblemCode =
  | 'ca-untrusted'
  | 'denied'
  | 'not-found'
  | 'rate-limited'
  | 'platform-missing'
  | 'accept-fallback'
  | 'repeated-token'
  | 'expired-token'
  | 'auth-loop'
  | 'digest-mismatch'
  | 'cdn-failed'
  | 'transfer-failed'
  | 'retried'
  | 'mirror'
  | 'slow-first-byte';

export interface Problem {
  code: ProblemCode;
  /** One line: what happened. */
  message: string;
  /** The flows it is about. */
  flowIds: number[];
  /** What to do about it. */
  advice: string;
}

/** One entry of a registry's `{"errors":[{code,message,detail}]}` body. */
export interface RegistryErrorBody {
  code: string;
  message: string;
}

/** A response taking longer than this to its first byte is slow. */
export const SLOW_FIRST_BYTE_MS = 2_000;
/** This many identical token requests in one operation are the client not reusing its token. */
export const REPEATED_TOKENS = 3;

const MODERN = ['application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.index.v1+json'];
const INDEX_TYPES = ['application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.index.v1+json'];

/** `#3, #5` */
export function citeFlows(ids: readonly number[]): string {
  return ids.map((id) => `#${id}`).join(', ');
}

/** A problem as one line of text: message (flows) — advice. */
export function problemLine(p: Problem): string {
  return `${p.message}${p.flowIds.length ? ` (${citeFlows(p.flowIds)})` : ''}: ${p.advice}`;
}

const scopeText = (s: Scope) => `${s.type}:${s.name}:${s.actions.join(',')}`;
const requestLine = (f: FlowRecord) => `${f.request.method} ${f.request.target.replace(/([0-9a-f]{12})[0-9a-f]{52}/g, '$1…').replace(/_state=[^&]*/, '_state=…')}`;

/** Every check, in the order problems are listed. */
export function findProblems(op: Operation, flows: ClassifiedFlow[], opts: BuildOptions): Problem[] {
  const errors = opts.errors ?? new Map<number, RegistryErrorBody[]>();
  const all = [
    ...deniedProblems(flows, errors),
    ...notFoundProblems(flows, errors),
    ...rateLimitProblems(op, flows),
    ...platformProblems(op, flows),
    ...acceptProblems(flows, errors),
    ...tokenProblems(flows),
    ...transferProblems(flows),
    ...mirrorProblems(flows),
    ...slowProblems(flows),
  ];
  return merged(all);
}

/** The same problem on several flows is one problem citing them all; a 401 loop already explained as denied is not repeated. */
function merged(problems: Problem[]): Problem[] {
  const out: Problem[] = [];
  for (const p of problems) {
    const same = out.find((q) => q.code === p.code && q.message === p.message);
    if (same) same.flowIds = [...new Set([...same.flowIds, ...p.flowIds])].sort((a, b) => a - b);
    else out.push({ ...p, flowIds: [...p.flowIds] });
  }
  const denied = new Set(out.filter((p) => p.code === 'denied' || p.code === 'expired-token').flatMap((p) => p.flowIds));
  return out.filter((p) => p.code !== 'auth-loop' || !p.flowIds.every((id) => denied.has(id)));
}

/** The `regtape ca --setup` line(s) for a client. */
function setupLine(client: OperationClient): string {
  const n = client.name;
  if (n && ['dockerd', 'containerd', 'podman', 'skopeo', 'curl'].includes(n)) return `\`regtape ca --setup ${n}\``;
  if (n === 'buildah') return '`regtape ca --setup podman` (buildah reads the same cert dirs)';
  return '`regtape ca --setup dockerd` (or containerd, podman, skopeo, curl, system: whichever client this is; a Go program without its own User-Agent here)';
}

/** Failed TLS handshakes inside CONNECT tunnels: the client does not trust regtape's CA. */
export function connectProblems(flows: FlowRecord[], client: OperationClient): Problem[] {
  const refused = flows.filter((f) => /refused regtape's certificate/.test(f.error ?? ''));
  const other = flows.filter((f) => !refused.includes(f));
  const host = flows[0]!.request.host;
  const out: Problem[] = [];
  if (refused.length)
    out.push({
      code: 'ca-untrusted',
      message: `the client does not trust regtape's CA: TLS handshake with ${host} failed after CONNECT${refused.length > 1 ? ` (${refused.length} times)` : ''}`,
      flowIds: refused.map((f) => f.id),
      advice: `make it trust regtape's CA: ${setupLine(client)}, then run the command again`,
    });
  if (other.length)
    out.push({
      code: 'ca-untrusted',
      message: `the TLS handshake with ${host} failed after CONNECT (${other[0]!.error ?? 'no reason given'})`,
      flowIds: other.map((f) => f.id),
      advice: `if the client does not trust regtape's CA: ${setupLine(client)}; if it speaks plain HTTP to this port, use http:// for it`,
    });
  return out;
}

function challengeOf(f: FlowRecord): Record<string, string> {
  for (const v of f.response ? getHeaders(f.response.headers, 'www-authenticate') : []) {
    const c = parseChallenge(v);
    if (c?.scheme === 'bearer') return c.params;
  }
  return {};
}

/** insufficient_scope / DENIED / UNAUTHORIZED after a token: the repository is missing or private, or no push right. */
function deniedProblems(flows: ClassifiedFlow[], errors: ReadonlyMap<number, RegistryErrorBody[]>): Problem[] {
  const out: Problem[] = [];
  for (const f of flows) {
    const status = f.response?.status;
    if ((status !== 401 && status !== 403) || f.registry.role === 'ping' || f.registry.role === 'token') continue;
    const ch = challengeOf(f);
    const codes = (errors.get(f.id) ?? []).map((e) => e.code);
    const withToken = f.registry.auth === 'bearer';
    if (!(ch.error === 'insufficient_scope' || codes.includes('DENIED') || (withToken && ch.error !== 'invalid_token' && status === 401))) continue;
    const asked = ch.scope ?? (f.registry.repo ? `repository:${f.registry.repo}:${/PUT|POST|PATCH|DELETE/.test(f.request.method) ? 'push' : 'pull'}` : '?');
    const had = f.registry.scopesGranted.map(scopeText).join(' ') || 'no access';
    const push = /push/.test(asked);
    out.push({
      code: 'denied',
      message: `${registryName(f.registry.registry ?? f.request.host)} denied ${requestLine(f)} (${status}${ch.error ? ` ${ch.error}` : ''}${codes.length ? ` ${codes.join(',')}` : ''}): it asks for ${asked}, the token had ${had}`,
      flowIds: [f.id],
      advice: push
        ? `log in with an account that may push to ${f.registry.repo ?? 'it'} (\`docker login ${registryName(f.registry.registry ?? f.request.host)}\`, skopeo --dest-creds), or check the repository name`
        : `pull access denied: the repository does not exist or is private; check the name, or log in (\`docker login ${registryName(f.registry.registry ?? f.request.host)}\`)`,
    });
  }
  return out;
}

/** 404 NAME_UNKNOWN / MANIFEST_UNKNOWN on the reference the client asked for. */
function notFoundProblems(flows: ClassifiedFlow[], errors: ReadonlyMap<number, RegistryErrorBody[]>): Problem[] {
  const out: Problem[] = [];
  for (const f of flows) {
    if (f.response?.status !== 404 || f.registry.role !== 'manifest') continue;
    const errs = errors.get(f.id) ?? [];
    if (errs.some((e) => /accept/i.test(e.message))) continue; // an Accept problem, below
    const name = `${f.registry.repo}${f.registry.reference && !f.registry.reference.includes(':') ? `:${f.registry.reference}` : `@${shortDigest(f.registry.reference)}`}`;
    const repoMissing = errs.some((e) => e.code === 'NAME_UNKNOWN');
    out.push({
      code: 'not-found',
      message: repoMissing ? `${registryName(f.registry.registry ?? f.request.host)} has no repository ${f.registry.repo} (404 NAME_UNKNOWN)` : `${name} not found (404${errs[0] ? ` ${errs[0].code}` : ''})`,
      flowIds: [f.id],
      advice: repoMissing ? 'check the repository name (and the registry: docker.io names need library/ for official images)' : `check the tag or digest; list the tags with GET /v2/${f.registry.repo}/tags/list`,
    });
  }
  return out;
}

/** 429s, and a quota at 0 before a 429 happens. */
function rateLimitProblems(op: Operation, flows: ClassifiedFlow[]): Problem[] {
  const out: Problem[] = [];
  const limited = flows.filter((f) => f.response?.status === 429);
  if (limited.length) {
    const h = limited[0]!.response!.headers;
    const parts = [
      getHeader(h, 'retry-after') && `Retry-After ${getHeader(h, 'retry-after')}`,
      getHeader(h, 'ratelimit-limit') && `limit ${getHeader(h, 'ratelimit-limit')}`,
      getHeader(h, 'ratelimit-remaining') && `remaining ${getHeader(h, 'ratelimit-remaining')}`,
    ].filter(Boolean);
    out.push({
      code: 'rate-limited',
      message: `429 Too Many Requests${parts.length ? ` (${parts.join(', ')})` : ''}`,
      flowIds: limited.map((f) => f.id),
      advice: 'wait for the window to pass (Retry-After), log in (authenticated pulls have a higher quota), or pull through a mirror or cache',
    });
  } else if (op.rateLimit?.remaining && /^0\b/.test(op.rateLimit.remaining)) {
    out.push({ code: 'rate-limited', message: `rate-limit quota used up (ratelimit-remaining ${op.rateLimit.remaining})`, flowIds: [op.rateLimit.flowId], advice: 'the next pull will get 429: wait for the window, or log in for a higher quota' });
  }
  return out;
}

/** An index was fetched but no platform manifest from it: the platform the client wanted is not there. */
function platformProblems(op: Operation, flows: ClassifiedFlow[]): Problem[] {
  if (!op.index || op.manifests.length || (op.kind !== 'pull' && op.kind !== 'inspect' && op.kind !== 'copy')) return [];
  if (flows.some((f) => f.id > op.index!.flowId && f.registry.role === 'manifest' && (f.response?.status ?? 0) >= 400)) return [];
  const wanted = platformFromUserAgent(op.client.userAgent);
  return [
    {
      code: 'platform-missing',
      message: `${op.name} has no manifest for ${wanted ? `the client's platform (${wanted}, from its User-Agent)` : 'the platform the client wanted'}: the index offers ${op.index.platforms.join(', ')}, and no platform manifest was fetched`,
      flowIds: [op.index.flowId],
      advice: 'pull one of the platforms it offers (--platform / --override-arch), or publish the image for yours',
    },
  ];
}

/** Accept negotiation: an index the client cannot take (404), a registry choosing a platform for it, schema 1. */
function acceptProblems(flows: ClassifiedFlow[], errors: ReadonlyMap<number, RegistryErrorBody[]>): Problem[] {
  const out: Problem[] = [];
  for (const f of flows) {
    const r = f.registry;
    if (r.role !== 'manifest' || f.request.method === 'PUT') continue;
    const explicit = r.accept.length > 0 && !r.accept.includes('*/*');
    const noIndex = explicit && !INDEX_TYPES.some((t) => r.accept.includes(t));
    const status = f.response?.status;
    const errs = errors.get(f.id) ?? [];
    if (status === 404 && (errs.some((e) => /accept/i.test(e.message)) || (noIndex && errs.some((e) => e.code === 'MANIFEST_UNKNOWN') && !r.reference?.includes(':')))) {
      out.push({ code: 'accept-fallback', message: `${r.repo}:${r.reference} is an index the client's Accept does not include (${r.accept.join(', ')}): 404${errs[0] ? ` "${errs[0].message}"` : ''}`, flowIds: [f.id], advice: 'send Accept with application/vnd.oci.image.index.v1+json and application/vnd.docker.distribution.manifest.list.v2+json (a current client does)' });
    } else if (status === 200 && noIndex && r.reference && !r.reference.includes(':') && r.mediaType && !isIndex(r.mediaType) && !isSchema1(r.mediaType)) {
      out.push({ code: 'accept-fallback', message: `the client's Accept has no manifest list or OCI index type, so the registry chose a platform manifest for ${r.repo}:${r.reference} itself (${shortDigest(r.digest)}, ${r.mediaType})`, flowIds: [f.id], advice: 'add the index types to Accept to choose the platform yourself (the registry picks linux/amd64 or fails for OCI indexes)' });
    }
    if (status === 200 && isSchema1(r.mediaType)) {
      const asked = r.accept.some((t) => MODERN.includes(t));
      out.push({
        code: 'accept-fallback',
        message: asked
          ? `the registry answered with Docker schema 1 (${r.mediaType}) for ${r.repo}:${r.reference} although the client accepts schema 2 / OCI`
          : `the client's Accept (${r.accept.join(', ') || 'none'}) has no schema 2 or OCI type, so the registry fell back to Docker schema 1 for ${r.repo}:${r.reference}`,
        flowIds: [f.id],
        advice: asked ? 'the image is stored as schema 1 (deprecated; current docker refuses it): rebuild or re-push it with a current client' : 'send Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json (and the index types)',
      });
    }
  }
  return out;
}

/** The bearer token sent by a request, decoded while recording. */
function sentToken(f: FlowRecord): { marker: string; exp: number | null; iat: number | null } | null {
  const t = (f.facts.tokens ?? []).find((x) => x.where === 'request.header:authorization');
  if (!t) return null;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return { marker: t.marker, exp: num(t.claims?.exp), iat: num(t.claims?.iat) };
}

/** Repeated identical token fetches, tokens used after they expired, 401 loops. */
function tokenProblems(flows: ClassifiedFlow[]): Problem[] {
  const out: Problem[] = [];
  const same = new Map<string, number[]>();
  for (const f of flows.filter((x) => x.registry.role === 'token')) {
    const k = `${f.request.method} ${f.request.host} ${f.registry.auth} ${scopeKey(f.registry)}`;
    same.set(k, [...(same.get(k) ?? []), f.id]);
  }
  for (const [k, ids] of same) {
    if (ids.length < REPEATED_TOKENS) continue;
    out.push({ code: 'repeated-token', message: `${ids.length} identical token requests for ${k.split(' ').slice(3).join(' ')}: the client does not reuse its token`, flowIds: ids, advice: 'a token is good for its expires_in (300 s on Docker Hub): cache it per scope; if the client is fine, check that the token server sends a current issued_at' });
  }
  const issuedBy = new Map<string, number>();
  const expired: number[] = [];
  let lateBy = 0;
  for (const f of flows) {
    for (const t of f.facts.tokens ?? []) if (t.where.startsWith('response.body')) issuedBy.set(t.marker, f.id);
    const sent = sentToken(f);
    const rejected = f.response?.status === 401 && challengeOf(f).error === 'invalid_token';
    if ((sent?.exp != null && f.timings.start / 1000 > sent.exp) || (rejected && sent)) {
      expired.push(...[issuedBy.get(sent!.marker)].filter((x): x is number => x !== undefined && !expired.includes(x)), f.id);
      if (sent!.exp != null) lateBy = Math.max(lateBy, f.timings.start / 1000 - sent!.exp);
    }
  }
  if (expired.length) {
    out.push({ code: 'expired-token', message: `an expired token was reused${lateBy > 0 ? ` (${Math.round(lateBy)} s after its exp)` : ''}`, flowIds: expired, advice: 'fetch a new token when expires_in runs out (the registry answers 401 invalid_token once its leeway is over)' });
  }
  const unauthorized = new Map<string, number[]>();
  for (const f of flows) if (f.response?.status === 401 && f.registry.role !== 'ping' && f.registry.auth === 'bearer') unauthorized.set(requestLine(f), [...(unauthorized.get(requestLine(f)) ?? []), f.id]);
  for (const [k, ids] of unauthorized) if (ids.length >= 2) out.push({ code: 'auth-loop', message: `${ids.length}× 401 with a token for ${k}`, flowIds: ids, advice: 'the token does not grant what the registry wants: compare the scope asked in WWW-Authenticate with the token\'s access claim (regtape ui, token tab)' });
  return out;
}

function scopeKey(r: RegistryFacts): string {
  const s = r.scopesRequested.length ? r.scopesRequested : r.scopesGranted;
  return s.map(scopeText).join(' ') || '(no scope)';
}

/** Digest mismatches, failed CDN legs, aborted transfers, blobs fetched more than once. */
function transferProblems(flows: ClassifiedFlow[]): Problem[] {
  const out: Problem[] = [];
  const gets = new Map<string, number[]>();
  const followed = new Set(flows.map((f) => f.registry.redirectFrom).filter((x): x is number => x !== null));
  for (const f of flows) {
    const r = f.registry;
    if (r.digestCheck === 'mismatch') out.push({ code: 'digest-mismatch', message: `digest mismatch: ${r.digestProblem}`, flowIds: [f.id], advice: 'the bytes are not what the manifest names: a corrupting proxy or cache, or a broken registry; clients refuse such blobs, so retrying the same path fails again' });
    const failed = f.state === 'aborted' || f.state === 'error' || (f.response?.status ?? 0) >= 400;
    if (r.role === 'cdn-blob' && failed) {
      out.push({ code: 'cdn-failed', message: `the redirect to ${f.request.host} failed: ${f.response && f.response.status >= 400 ? `${f.response.status}` : f.state}${f.error ? ` (${f.error})` : ''} after ${dockerSize(f.responseBytes)}`, flowIds: [r.redirectFrom, f.id].filter((x): x is number => x !== null), advice: f.response?.status === 403 ? 'a signed CDN URL expired or was altered: pull again (and keep the query string intact)' : `the client must reach ${f.request.host} (NO_PROXY, firewall, DNS); pull again to retry` });
    } else if ((r.role === 'blob' || r.role === 'manifest') && (f.state === 'aborted' || f.state === 'error')) {
      out.push({ code: 'transfer-failed', message: `${r.role} ${shortDigest(r.digest ?? r.reference)} ${f.state} after ${dockerSize(f.responseBytes)}${f.error ? `: ${f.error}` : ''}`, flowIds: [f.id], advice: 'the connection broke mid-transfer: pull again; if it repeats, check the network or the upstream timeout (--upstream-timeout)' });
    }
    if (r.role === 'blob-redirect' && f.request.method === 'GET' && r.redirectTo && !followed.has(f.id)) {
      out.push({ code: 'cdn-failed', message: `the client never followed the redirect for ${shortDigest(r.digest)} to ${hostOf(r.redirectTo)} through this proxy`, flowIds: [f.id], advice: `if the client gave up, check that it may reach ${hostOf(r.redirectTo)}; if it went around the proxy (NO_PROXY), that leg is not in the recording` });
    }
    if ((r.role === 'cdn-blob' || r.role === 'blob') && f.request.method === 'GET' && r.digest) gets.set(r.digest, [...(gets.get(r.digest) ?? []), f.id]);
  }
  for (const [d, ids] of gets) if (ids.length > 1) out.push({ code: 'retried', message: `${shortDigest(d)} downloaded ${ids.length} times (retried or resumed)`, flowIds: ids, advice: 'look at the first download: an aborted transfer or a digest mismatch makes clients retry' });
  return out;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** A mirror answering for another registry (`?ns=` as containerd and dockerd's mirror support send it). */
function mirrorProblems(flows: ClassifiedFlow[]): Problem[] {
  const byMirror = new Map<string, { ns: string; ids: number[] }>();
  for (const f of flows) {
    const ns = new URLSearchParams(f.request.target.split('?')[1] ?? '').get('ns');
    const host = f.registry.registry ?? f.request.host;
    if (!ns || registryName(ns) === registryName(host)) continue;
    const k = `${host}|${ns}`;
    const e = byMirror.get(k) ?? { ns, ids: [] };
    e.ids.push(f.id);
    byMirror.set(k, e);
  }
  return [...byMirror].map(([k, e]) => ({
    code: 'mirror' as const,
    message: `the mirror ${k.split('|')[0]} answered instead of ${registryName(e.ns)} (ns=${e.ns})`,
    flowIds: e.ids,
    advice: `content came from the mirror, which can be stale or lack images; to ask ${registryName(e.ns)} itself, remove the mirror (daemon.json registry-mirrors, containerd hosts.toml)`,
  }));
}

/** Responses whose first byte took long. */
function slowProblems(flows: ClassifiedFlow[]): Problem[] {
  const out: Problem[] = [];
  for (const f of flows) {
    const t = f.timings;
    if (t.firstByte === undefined) continue;
    const wait = t.firstByte - (t.requestSent ?? t.tls ?? t.connect ?? t.start);
    if (wait < SLOW_FIRST_BYTE_MS) continue;
    out.push({ code: 'slow-first-byte', message: `${f.request.host} took ${(wait / 1000).toFixed(1)} s to start answering ${requestLine(f)}`, flowIds: [f.id], advice: 'the server (or something in front of it) is slow: compare with a direct `curl -w %{time_starttransfer}`; a CDN or token server far away shows here first' });
  }
  return out;
}
