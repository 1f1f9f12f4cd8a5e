import type { HeaderList } from '../flow/index.js';
import { forwardableHeaders } from '../proxy/index.js';

/**
 * Recorded response headers as replay sends them: every recorded header, in recorded order,
 * except
 * - hop-by-hop ones and those named in `Connection` (RFC 9110 §7.6.1),
 * - framing, which is recomputed for the bytes replay sends: `Content-Length`,
 *   `Transfer-Encoding`, and `Content-Range`/`Accept-Ranges` when a range is synthesised,
 * - `Date` (Node sends the current one; a recorded Date is of another day).
 * Everything else (rate-limit headers, Docker-Content-Digest, Content-Type, ETag,
 * Docker-Distribution-API-Version, Link, Warning, Strict-Transport-Security, CDN headers)
 * comes back as recorded.
 */
const RECOMPUTED = /^(content-length|transfer-encoding|date|content-range)$/i;

/** Header rewrites applied on the way out (lower-case name → new value, or null to drop). */
export type HeaderRewrites = Record<string, string | null>;

/** A flat [name, value, …] list of the recorded headers to send, with `rewrites` applied (missing ones appended). */
export function replayHeaders(recorded: HeaderList, rewrites: HeaderRewrites = {}): string[] {
  const flat = forwardableHeaders(recorded.filter(([k]) => !RECOMPUTED.test(k)).flat());
  const out: string[] = [];
  const done = new Set<string>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const n = flat[i]!.toLowerCase();
    if (n in rewrites) {
      const v = rewrites[n];
      if (v != null && !done.has(n)) out.push(flat[i]!, v);
      done.add(n);
      continue;
    }
    out.push(flat[i]!, flat[i + 1]!);
  }
  for (const [n, v] of Object.entries(rewrites)) if (!done.has(n) && v != null) out.push(n, v);
  return out;
}

/** Point the realm of every Bearer challenge at `realm` (mirror mode: the mirror's own token endpoint). */
export function rewriteRealm(value: string, realm: string): string {
  return value.replace(/realm="[^"]*"/i, `realm="${realm}"`);
}

/** The value of a header in a flat list (first one, case-insensitive). */
export function flatGet(flat: readonly string[], name: string): string | undefined {
  const n = name.toLowerCase();
  for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i]!.toLowerCase() === n) return flat[i + 1];
  return undefined;
}
