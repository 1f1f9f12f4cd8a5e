/**
 * What regtape knows about a flow as registry traffic. Pure data, derived by
 * `classify()` from a (redacted) FlowRecord plus what earlier flows taught us (which
 * 307 sent the client to which CDN URL, which token was granted which scopes).
 */

/** The part a flow plays in the distribution protocol. */
export type Role =
  /** GET /v2/ (API version check; 401 carries the auth challenge). */
  | 'ping'
  /** Request to a token endpoint (the realm of a Bearer challenge, or /token, /v2/auth …). */
  | 'token'
  /** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<ref>. */
  | 'manifest'
  /** GET/HEAD/DELETE /v2/<name>/blobs/<digest> answered by the registry itself. */
  | 'blob'
  /** A blob request the registry answered with a redirect (307/302/…) to storage or a CDN. */
  | 'blob-redirect'
  /** The download from the redirect target (CDN / object storage). */
  | 'cdn-blob'
  /** POST /v2/<name>/blobs/uploads/ (start an upload session). */
  | 'upload-start'
  /** PATCH <upload location> (a chunk). */
  | 'upload-chunk'
  /** PUT <upload location>?digest= (finish). */
  | 'upload-finish'
  /** DELETE <upload location> (cancel). */
  | 'upload-cancel'
  /** GET <upload location> (upload status). */
  | 'upload-status'
  /** POST /v2/<name>/blobs/uploads/?mount=&from= (cross-repository mount). */
  | 'mount'
  /** GET /v2/<name>/tags/list. */
  | 'tags'
  /** GET /v2/_catalog. */
  | 'catalog'
  /** GET /v2/<name>/referrers/<digest>. */
  | 'referrers'
  /** Anything else. */
  | 'other';

export const ROLES: readonly Role[] = [
  'ping',
  'token',
  'manifest',
  'blob',
  'blob-redirect',
  'cdn-blob',
  'upload-start',
  'upload-chunk',
  'upload-finish',
  'upload-cancel',
  'upload-status',
  'mount',
  'tags',
  'catalog',
  'referrers',
  'other',
];

/** How the request authenticated. */
export type AuthClass = 'none' | 'basic' | 'bearer' | 'other';

/** One `type:name:actions` scope, e.g. repository:library/alpine:pull. */
export interface Scope {
  type: string;
  name: string;
  actions: string[];
}

export interface RegistryFacts {
  role: Role;
  /** Registry host (for CDN flows: the registry that redirected there), e.g. registry-1.docker.io. */
  registry: string | null;
  /** Repository name, e.g. library/alpine. */
  repo: string | null;
  /** Tag or digest from the URL (manifests), or the digest (blobs). */
  reference: string | null;
  /** The content digest this flow is about (URL digest, else Docker-Content-Digest). */
  digest: string | null;
  /** Response Content-Type without parameters. */
  mediaType: string | null;
  /** Accept header values split on commas, parameters dropped, lower-cased, deduplicated, sorted. */
  accept: string[];
  auth: AuthClass;
  /** Scopes asked for (token requests: `scope=` query / form; challenges). */
  scopesRequested: Scope[];
  /** Scopes granted: from the token's claims (`access`), decoded while recording. */
  scopesGranted: Scope[];
  /** For cdn-blob: id of the blob-redirect flow that sent the client here. */
  redirectFrom: number | null;
  /** For blob-redirect: the redirect target (redacted URL). */
  redirectTo: string | null;
  /** Digest check of the stored body: 'ok', 'mismatch', or null when not applicable. */
  digestCheck: 'ok' | 'mismatch' | null;
  /** Why the digest check failed (expected vs actual). */
  digestProblem: string | null;
}
