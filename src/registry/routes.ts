/**
 * Route predicates for the distribution API (OCI distribution-spec §endpoints). Pure:
 * take a method and a path, say what it is.
 */

export type Route =
  | { kind: 'ping' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; repo: string; reference: string }
  | { kind: 'blob'; repo: string; digest: string }
  | { kind: 'uploads'; repo: string; uploadId: string | null }
  | { kind: 'tags'; repo: string }
  | { kind: 'referrers'; repo: string; digest: string };

/** Repository names: path components of [a-z0-9] with . _ __ - separators (distribution-spec). */
const NAME = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:\\/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*';
const DIGEST = '[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+';

const RE_MANIFEST = new RegExp(`^/v2/(${NAME})/manifests/([^/]+)$`);
const RE_BLOB = new RegExp(`^/v2/(${NAME})/blobs/(${DIGEST})$`);
const RE_UPLOADS = new RegExp(`^/v2/(${NAME})/blobs/uploads/?([^/]*)$`);
const RE_TAGS = new RegExp(`^/v2/(${NAME})/tags/list$`);
const RE_REFERRERS = new RegExp(`^/v2/(${NAME})/referrers/(${DIGEST})$`);

/** Split a request target into path (percent-decoded) and query parameters. */
export function splitTarget(target: string): { path: string; query: URLSearchParams } {
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  let path = rawPath;
  try {
    path = decodeURI(rawPath);
  } catch {
    // keep raw
  }
  return { path, query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) };
}

/** Which distribution endpoint a path is, or null. */
export function matchRoute(path: string): Route | null {
  if (path === '/v2/' || path === '/v2') return { kind: 'ping' };
  if (path === '/v2/_catalog') return { kind: 'catalog' };
  let m = RE_UPLOADS.exec(path);
  if (m) return { kind: 'uploads', repo: m[1]!, uploadId: m[2] || null };
  m = RE_BLOB.exec(path);
  if (m) return { kind: 'blob', repo: m[1]!, digest: m[2]! };
  m = RE_MANIFEST.exec(path);
  if (m) return { kind: 'manifest', repo: m[1]!, reference: m[2]! };
  m = RE_TAGS.exec(path);
  if (m) return { kind: 'tags', repo: m[1]! };
  m = RE_REFERRERS.exec(path);
  if (m) return { kind: 'referrers', repo: m[1]!, digest: m[2]! };
  return null;
}

export function isDigest(ref: string | null | undefined): boolean {
  return !!ref && new RegExp(`^${DIGEST}$`).test(ref);
}

/** A sha256 digest anywhere in a storage/CDN path: `sha256:<hex>` or `sha256/<2>/<hex>` or `sha256/<hex>`. */
export function digestInPath(path: string): string | null {
  const m = /sha256(?::|\/(?:[0-9a-f]{2}\/)?)([0-9a-f]{64})(?![0-9a-f])/.exec(path);
  return m ? `sha256:${m[1]}` : null;
}
