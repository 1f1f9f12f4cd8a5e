import type { FlowRecord } from '../flow/index.js';
import { getHeader } from '../flow/index.js';
import { acceptSet, isDigest, isIndex, isOci, MediaTypes } from '../registry/index.js';
import { isSuccess, pickAnswer, routeKey, type Prefer } from './answers.js';
import { resolveTag, type Catalog, type StoredManifest } from './catalog.js';
import type { Ctx } from './context.js';
import { RegistryError } from './errors.js';
import type { MissBook } from './misses.js';
import type { RateLimit } from './ratelimit.js';
import { sendBody, sendRecorded, type BodySource, type RecordedRewrite } from './serve.js';
import { replayHeaders } from './headers.js';

/** What manifest serving needs from the responder. */
export interface ManifestEnv {
  catalog: Catalog;
  bodies: BodySource;
  prefer: Prefer;
  rateLimit: RateLimit | null;
  book: MissBook;
  flow(id: number): FlowRecord | undefined;
  /** A manifest pushed during this replay (push sessions are replay's own). */
  pushed(repo: string, ref: string): { mediaType: string; digest: string; body: Buffer } | undefined;
  /** Rewrites of a recorded answer for this request (the realm in mirror mode). */
  rewrite(ctx: Ctx): RecordedRewrite;
}

/** Only the platform dockerd and distribution choose when a list is asked for by tag without the list type. */
const DEFAULT_PLATFORM = 'linux/amd64';

/** Manifest selection refused the stored manifest: the registry's 404, and why. */
interface Refusal {
  error: RegistryError;
  missingType?: string;
  platform?: string;
}

/**
 * Manifest selection as distribution does it (registry-protocol.md §3): the stored type
 * when accepted; an OCI type not accepted → 404 with distribution's message; a Docker list
 * asked for by tag without the list type → the linux/amd64 image.
 */
export function selectManifest(cat: Catalog, m: StoredManifest, ref: string, accept: string[]): StoredManifest | Refusal {
  const set = new Set(accept);
  if (set.size === 0 || set.has(m.mediaType) || set.has('*/*')) {
    if (set.size > 0 || !isOci(m.mediaType)) return m;
  }
  if (isOci(m.mediaType)) {
    const index = isIndex(m.mediaType);
    const message = index ? 'OCI index found, but accept header does not support OCI indexes' : 'OCI manifest found, but accept header does not support OCI manifests';
    return { error: new RegistryError(404, 'MANIFEST_UNKNOWN', message), missingType: index ? MediaTypes.OCIIndex : MediaTypes.OCIManifest };
  }
  if (isIndex(m.mediaType) && !isDigest(ref) && m.parsed?.kind === 'index') {
    const child = m.parsed.manifests.find((d) => d.platform === DEFAULT_PLATFORM);
    const stored = child ? cat.manifests.get(child.digest) : undefined;
    if (stored) return stored;
    return { error: new RegistryError(404, 'MANIFEST_UNKNOWN', `manifest unknown: the ${DEFAULT_PLATFORM} image of this manifest list was not recorded`), platform: DEFAULT_PLATFORM };
  }
  return m;
}

/**
 * Whether a recorded answer can answer this request: a recorded content-negotiation 404
 * only when this request's Accept lacks the type too; a success only when selection under
 * this Accept succeeds (or there is no stored content to select from); other failures
 * (401, 403, 404 unknown, 429, 5xx) always.
 */
function compatible(cat: Catalog, f: FlowRecord, accept: string[], selected: StoredManifest | Refusal | null): boolean {
  const lacked = cat.negotiation.get(f.id);
  if (lacked) return !accept.includes(lacked);
  if (isSuccess(f)) return !selected || !('error' in selected);
  return true;
}

/** GET/HEAD of a manifest from the recording: recorded failures as recorded, successes re-selected from content. */
export async function serveManifest(env: ManifestEnv, ctx: Ctx, repo: string, ref: string): Promise<void> {
  const pushed = env.pushed(repo, ref);
  if (pushed) {
    ctx.res.writeHead(200, { 'content-type': pushed.mediaType, 'docker-content-digest': pushed.digest, etag: `"${pushed.digest}"`, 'content-length': pushed.body.length });
    return void ctx.res.end(ctx.method === 'HEAD' ? undefined : pushed.body);
  }
  const cat = env.catalog;
  const accept = acceptSet(ctx.headers);
  const m = isDigest(ref) ? (cat.manifests.get(ref) ?? null) : ctx.reg ? resolveTag(cat, ctx.reg, repo, ref) : null;
  const selected = m ? selectManifest(cat, m, ref, accept) : null;
  const answers = cat.answers.lookup(ctx.registry, ctx.method, ctx.auth, routeKey(`/v2/${repo}/manifests/${ref}`, new URLSearchParams())!);
  const pick = pickAnswer(answers.filter((f) => compatible(cat, f, accept, selected)), env.prefer);
  if (pick && !isSuccess(pick)) {
    cat.used.add(pick.id);
    return sendRecorded(ctx.req, ctx.res, env.bodies, pick, env.rewrite(ctx));
  }
  const missReq = { method: ctx.method, host: ctx.registry, path: `/v2/${repo}/manifests/${ref}`, query: ctx.query, headers: ctx.headers };
  if (selected && 'error' in selected) {
    const r = selected;
    throw env.book.miss(ctx.url, ctx.at.mode, { ...missReq, matcher: 'selection', selection: { manifest: m!, missingType: r.missingType, platform: r.platform } }, 'MANIFEST_UNKNOWN', { status: 404, message: r.error.message });
  }
  if (!selected) {
    // A recorded HEAD whose body was never fetched still answers a HEAD.
    if (pick && ctx.method === 'HEAD' && pick.request.method === 'HEAD') {
      cat.used.add(pick.id);
      return sendRecorded(ctx.req, ctx.res, env.bodies, pick, env.rewrite(ctx));
    }
    throw env.book.miss(ctx.url, ctx.at.mode, { ...missReq, matcher: isDigest(ref) ? 'digest' : 'tag' }, 'MANIFEST_UNKNOWN');
  }
  for (const f of answers) if (isSuccess(f)) cat.used.add(f.id);
  cat.used.add(selected.flowId);
  sendSelected(env, ctx, selected, pick);
}

function sendSelected(env: ManifestEnv, ctx: Ctx, chosen: StoredManifest, pick: FlowRecord | null): void {
  const limited = env.rateLimit?.take(ctx.method);
  if (limited instanceof RegistryError) throw limited;
  // Headers as recorded: those of the answer to this very request when it carried this manifest, else of the flow that carried it.
  const same = pick && pick.response?.status === 200 && getHeader(pick.response.headers, 'docker-content-digest') === chosen.digest;
  const source = same ? pick : env.flow(chosen.flowId);
  const set: Record<string, string> = { 'content-type': chosen.mediaType, 'docker-content-digest': chosen.digest, ...(limited ?? {}) };
  const headers = source?.response ? replayHeaders(source.response.headers, set) : replayHeaders([['Docker-Distribution-Api-Version', 'registry/2.0'], ['Etag', `"${chosen.digest}"`]], set);
  const inm = ctx.req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '').replace(/"/g, '') === chosen.digest)) {
    const kept: string[] = [];
    for (let i = 0; i + 1 < headers.length; i += 2) if (!/^content-/i.test(headers[i]!)) kept.push(headers[i]!, headers[i + 1]!);
    ctx.res.writeHead(304, kept as unknown as Record<string, string>);
    return void ctx.res.end();
  }
  sendBody(ctx.req, ctx.res, env.bodies, chosen.bodySha, chosen.size, headers);
}
