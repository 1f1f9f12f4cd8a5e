import type { FlowRecord, HeaderList } from '../flow/index.js';
import { ROLES, type AuthClass, type Role } from '../flow/index.js';
import type { FilterSubject, Predicate, UrlMemo } from './types.js';

/**
 * The `~` operators, one entry each (mitmproxy's flowfilter has one class per
 * operator; here an entry is `code` + `help` + a `make` that compiles the argument
 * into a closure). `FILTER_OPERATORS` and `filterHelp()` are generated from this
 * table, so an operator added here is parsed, documented and listed in one place.
 *
 * Argument kinds: `regex` (case-insensitive, searched anywhere in the field),
 * `int` (digits), `word` (one of `values`, case-insensitive), `none`.
 */

export type ArgKind = 'regex' | 'int' | 'none' | 'word';
export type OperatorGroup = 'flow' | 'registry';

interface Common {
  /** Operator name without the `~`. */
  readonly code: string;
  readonly help: string;
  readonly group: OperatorGroup;
  /** Reads `requestBody()` / `responseBody()`. */
  readonly usesBody?: boolean;
  /** An example expression using it (every registry operator has one; `regtape help filters` lists them). */
  readonly example?: string;
}

export type OperatorDef = Common &
  (
    | { readonly arg: 'none'; make(): Predicate }
    | { readonly arg: 'regex'; make(re: RegExp, url: UrlMemo): Predicate }
    | { readonly arg: 'int'; make(n: number): Predicate }
    | {
        readonly arg: 'word';
        /** Accepted words, lower-case, in help order. */
        readonly values: readonly string[];
        /** What the argument is, for error messages: "a role". */
        readonly expects: string;
        make(word: string): Predicate;
      }
  );

// ---------------------------------------------------------------- flow helpers

function hasError(f: FlowRecord): boolean {
  return f.error !== null || f.state === 'error' || f.state === 'aborted';
}

/** Any header line `name: value` matches. */
function headerLine(re: RegExp, headers: HeaderList): boolean {
  for (const [k, v] of headers) if (re.test(`${k}: ${v}`)) return true;
  return false;
}

/** Any Content-Type header value matches. */
function contentType(re: RegExp, headers: HeaderList): boolean {
  for (const [k, v] of headers) {
    // The length test keeps toLowerCase() (an allocation) off almost every header.
    if (k.length === 12 && k.toLowerCase() === 'content-type' && re.test(v)) return true;
  }
  return false;
}

function reqBody(re: RegExp, s: FilterSubject): boolean {
  const b = s.requestBody ? s.requestBody() : null;
  return b !== null && b !== undefined && re.test(b);
}

function resBody(re: RegExp, s: FilterSubject): boolean {
  const b = s.responseBody ? s.responseBody() : null;
  return b !== null && b !== undefined && re.test(b);
}

/** A regex operator over one optional string field: absent (null/undefined) never matches. */
function field(
  code: string,
  group: OperatorGroup,
  help: string,
  get: (s: FilterSubject) => string | null | undefined,
): OperatorDef {
  return {
    code,
    group,
    help,
    arg: 'regex',
    make: (re) => (s) => {
      const v = get(s);
      return v !== null && v !== undefined && re.test(v);
    },
  };
}

// ------------------------------------------------------------ registry helpers

/** `~op` words: every role, plus group aliases. */
const ROLE_ALIASES: ReadonlyMap<string, readonly Role[]> = new Map<string, readonly Role[]>([
  ['upload', [...ROLES.filter((r) => r.startsWith('upload-')), 'mount']],
  ['cdn', ['cdn-blob']],
]);

/** Keyed by AuthClass so that a new class fails to compile here until it is listed. */
const AUTH_CLASSES: Record<AuthClass, true> = { none: true, basic: true, bearer: true, other: true };

function digestMatches(re: RegExp, d: string): boolean {
  if (re.test(d)) return true;
  // `^abc…` should find sha256:abc…; `sha256:abc…` should find a bare abc….
  const i = d.indexOf(':');
  return i >= 0 ? re.test(d.slice(i + 1)) : re.test(`sha256:${d}`);
}

// ------------------------------------------------------------------- the table

export const OPERATORS: readonly OperatorDef[] = [
  // Flow state and user marks.
  { code: 'all', group: 'flow', arg: 'none', help: 'every flow', make: () => () => true },
  {
    code: 'q',
    group: 'flow',
    arg: 'none',
    help: 'request with no response and no error (yet)',
    make: () => (s) => s.flow.response === null && !hasError(s.flow),
  },
  { code: 's', group: 'flow', arg: 'none', help: 'has a response', make: () => (s) => s.flow.response !== null },
  {
    code: 'e',
    group: 'flow',
    arg: 'none',
    help: 'has an error (transport error, or state error/aborted)',
    make: () => (s) => hasError(s.flow),
  },
  { code: 'marked', group: 'flow', arg: 'none', help: 'marked flow', make: () => (s) => s.marked === true },
  field('comment', 'flow', 'flow comment (no comment is the empty string)', (s) => s.comment ?? ''),

  // Request line and URL.
  field('m', 'flow', 'request method', (s) => s.flow.request.method),
  {
    code: 'u',
    group: 'flow',
    arg: 'regex',
    help: 'URL scheme://host[:port]/path?query (a bare regex means ~u)',
    make: (re, url) => (s) => re.test(url.of(s.flow.request)),
  },
  field('d', 'flow', 'domain: the request host', (s) => s.flow.request.host),
  {
    code: 'c',
    group: 'flow',
    arg: 'int',
    help: 'response status code',
    make: (n) => (s) => s.flow.response !== null && s.flow.response.status === n,
  },

  // Headers: one "name: value" line at a time.
  {
    code: 'h',
    group: 'flow',
    arg: 'regex',
    help: 'header line "name: value", request or response',
    make: (re) => (s) => headerLine(re, s.flow.request.headers) || (s.flow.response !== null && headerLine(re, s.flow.response.headers)),
  },
  {
    code: 'hq',
    group: 'flow',
    arg: 'regex',
    help: 'request header line "name: value"',
    make: (re) => (s) => headerLine(re, s.flow.request.headers),
  },
  {
    code: 'hs',
    group: 'flow',
    arg: 'regex',
    help: 'response header line "name: value"',
    make: (re) => (s) => s.flow.response !== null && headerLine(re, s.flow.response.headers),
  },

  // Bodies (decoded text, supplied lazily by the caller).
  {
    code: 'b',
    group: 'flow',
    arg: 'regex',
    usesBody: true,
    help: 'body, request or response',
    make: (re) => (s) => reqBody(re, s) || resBody(re, s),
  },
  { code: 'bq', group: 'flow', arg: 'regex', usesBody: true, help: 'request body', make: (re) => (s) => reqBody(re, s) },
  { code: 'bs', group: 'flow', arg: 'regex', usesBody: true, help: 'response body', make: (re) => (s) => resBody(re, s) },

  // Content-Type headers.
  {
    code: 't',
    group: 'flow',
    arg: 'regex',
    help: 'Content-Type header, request or response',
    make: (re) => (s) => contentType(re, s.flow.request.headers) || (s.flow.response !== null && contentType(re, s.flow.response.headers)),
  },
  {
    code: 'tq',
    group: 'flow',
    arg: 'regex',
    help: 'request Content-Type header',
    make: (re) => (s) => contentType(re, s.flow.request.headers),
  },
  {
    code: 'ts',
    group: 'flow',
    arg: 'regex',
    help: 'response Content-Type header',
    make: (re) => (s) => s.flow.response !== null && contentType(re, s.flow.response.headers),
  },

  // Registry facts (flows that are not registry traffic never match these).
  { ...field('registry', 'registry', 'registry host (for CDN flows: the registry that redirected there)', (s) => s.registry?.registry), example: '~registry docker\\.io' },
  { ...field('repo', 'registry', 'repository name, e.g. library/alpine', (s) => s.registry?.repo), example: "~repo '^library/alpine$'" },
  { ...field('ref', 'registry', 'reference from the URL: tag or digest', (s) => s.registry?.reference), example: '~ref 3.19' },
  {
    code: 'digest',
    group: 'registry',
    arg: 'regex',
    help: 'content digest; the sha256: prefix may be given or left out',
    example: '~digest 20ded9c7f836',
    make: (re) => (s) => {
      const d = s.registry?.digest;
      return d !== null && d !== undefined && digestMatches(re, d);
    },
  },
  {
    code: 'op',
    group: 'registry',
    arg: 'word',
    expects: 'a role',
    values: [...ROLES, ...ROLE_ALIASES.keys()],
    help: 'registry role, exact; alias upload = upload-* and mount, cdn = cdn-blob',
    example: '~op manifest & ~m HEAD',
    make: (word) => {
      const roles = new Set<Role>(ROLE_ALIASES.get(word) ?? [word as Role]);
      return (s) => s.registry !== null && roles.has(s.registry.role);
    },
  },
  {
    code: 'mt',
    group: 'registry',
    arg: 'regex',
    help: 'media type: the response type, or any accepted type',
    example: '~mt oci.image.index',
    make: (re) => (s) => {
      const r = s.registry;
      if (r === null) return false;
      if (r.mediaType !== null && re.test(r.mediaType)) return true;
      for (const a of r.accept) if (re.test(a)) return true;
      return false;
    },
  },
  {
    code: 'auth',
    group: 'registry',
    arg: 'word',
    expects: 'an auth class',
    values: Object.keys(AUTH_CLASSES),
    help: 'how the request authenticated',
    example: '~auth basic',
    make: (word) => (s) => s.registry !== null && s.registry.auth === word,
  },
  {
    code: 'cdn',
    group: 'registry',
    arg: 'none',
    help: "flows to the CDN host a registry redirected to (role cdn-blob), not the registry's redirects",
    example: '~cdn & ~c 403',
    make: () => (s) => s.registry !== null && s.registry.role === 'cdn-blob',
  },
  {
    code: 'redirect',
    group: 'registry',
    arg: 'none',
    help: "the registry's blob redirects (307 and other 3xx to storage or a CDN; role blob-redirect)",
    example: '~redirect & ~repo library/',
    make: () => (s) => s.registry !== null && s.registry.role === 'blob-redirect',
  },
];

export const OPERATOR_BY_CODE: ReadonlyMap<string, OperatorDef> = new Map(OPERATORS.map((d) => [d.code, d]));

/** Known operator codes closest to an unknown one, best first (prefixes, then edit distance ≤ 2). */
export function nearestOperators(name: string, max = 4): string[] {
  const scored: Array<{ code: string; prefix: boolean; dist: number; order: number }> = [];
  OPERATORS.forEach((d, order) => {
    const prefix = name !== '' && (d.code.startsWith(name) || name.startsWith(d.code));
    const dist = editDistance(name, d.code);
    if (prefix || dist <= 2) scored.push({ code: d.code, prefix, dist, order });
  });
  scored.sort((a, b) => Number(b.prefix) - Number(a.prefix) || a.dist - b.dist || a.order - b.order);
  return scored.slice(0, max).map((x) => x.code);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
