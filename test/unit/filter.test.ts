import { describe, expect, it } from 'vitest';
import type { FlowRecord, FlowState, HeaderList } from '../../src/flow/index.js';
import type { RegistryFacts } from '../../src/registry/types.js';
import { FILTER_OPERATORS, FilterSyntaxError, filterHelp, parseFilter, type FilterSubject } from '../../src/filter/index.js';
import { makeFacts, makeFlow } from '../support/flows.js';

// ------------------------------------------------------------------ fixtures

interface Fx {
  method?: string;
  url: string;
  /** null: no response. */
  status?: number | null;
  req?: HeaderList;
  res?: HeaderList;
  /** null: not registry traffic. */
  facts?: Partial<RegistryFacts> | null;
  state?: FlowState;
  error?: string | null;
  marked?: boolean;
  comment?: string;
  reqBody?: string | null;
  resBody?: string | null;
}

let ids = 0;

function flow(fx: Fx): FlowRecord {
  const status = fx.status === undefined ? 200 : fx.status;
  return makeFlow({
    id: ++ids,
    url: fx.url,
    state: fx.state ?? (status === null ? 'open' : 'complete'),
    request: { method: fx.method ?? 'GET', headers: fx.req ?? [] },
    response: status === null ? null : { status, reason: '', headers: fx.res ?? [] },
    timings: { start: 1_700_000_000_000 },
    clientAddr: '127.0.0.1:40000',
    error: fx.error ?? null,
  });
}

function subject(fx: Fx): FilterSubject {
  const s: FilterSubject = { flow: flow(fx), registry: fx.facts ? makeFacts(fx.facts) : null };
  if (fx.marked !== undefined) s.marked = fx.marked;
  if (fx.comment !== undefined) s.comment = fx.comment;
  if (fx.reqBody !== undefined) s.requestBody = () => fx.reqBody ?? null;
  if (fx.resBody !== undefined) s.responseBody = () => fx.resBody ?? null;
  return s;
}

const A1 = `sha256:${'a1'.repeat(32)}`;
const B2 = `sha256:${'b2'.repeat(32)}`;
const C3 = `sha256:${'c3'.repeat(32)}`;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

const SUBJECTS = {
  ping: subject({
    url: 'https://registry.test/v2/',
    status: 401,
    res: [
      ['Content-Type', 'application/json'],
      ['WWW-Authenticate', 'Bearer realm="https://auth.test/token",service="registry.test"'],
    ],
    facts: { role: 'ping', registry: 'registry.test' },
  }),
  token: subject({
    url: 'https://auth.test/token?scope=repository%3Alab%2Falpine%3Apull&service=registry.test',
    req: [['Authorization', 'Basic REDACTED-0000aaaa']],
    res: [['Content-Type', 'application/json']],
    resBody: '{"token":"REDACTED-11112222"}',
    facts: { role: 'token', registry: 'registry.test', auth: 'basic' },
  }),
  manifest: subject({
    url: 'https://registry.test/v2/lab/alpine/manifests/3.20',
    req: [
      ['Accept', OCI_INDEX],
      ['Accept', DOCKER_V2],
      ['Authorization', 'Bearer REDACTED-33334444'],
    ],
    res: [
      ['Content-Type', OCI_INDEX],
      ['Docker-Content-Digest', A1],
    ],
    resBody: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
    marked: true,
    facts: {
      role: 'manifest',
      registry: 'registry.test',
      repo: 'lab/alpine',
      reference: '3.20',
      digest: A1,
      mediaType: OCI_INDEX,
      accept: [DOCKER_V2, OCI_INDEX],
      auth: 'bearer',
    },
  }),
  redirect: subject({
    url: `https://registry.test/v2/lab/alpine/blobs/${B2}`,
    status: 307,
    res: [['Location', `https://cdn.test:8443/blobs/${B2.slice(7)}?sig=REDACTED-55556666`]],
    facts: { role: 'blob-redirect', registry: 'registry.test', repo: 'lab/alpine', reference: B2, digest: B2, auth: 'bearer' },
  }),
  cdn: subject({
    url: `https://cdn.test:8443/blobs/${B2.slice(7)}?sig=REDACTED-55556666`,
    res: [['content-type', 'application/octet-stream']],
    resBody: null,
    comment: 'layer one',
    facts: { role: 'cdn-blob', registry: 'registry.test', repo: 'lab/alpine', digest: B2, redirectFrom: 4 },
  }),
  upload: subject({
    method: 'PATCH',
    url: 'http://localhost:5000/v2/lab/app/blobs/uploads/0b1c?_state=xyz',
    status: 202,
    req: [['Content-Type', 'application/octet-stream']],
    reqBody: null,
    facts: { role: 'upload-chunk', registry: 'localhost:5000', repo: 'lab/app', auth: 'basic' },
  }),
  mount: subject({
    method: 'POST',
    url: `http://localhost:5000/v2/lab/app/blobs/uploads/?mount=${C3}&from=lab/base`,
    status: 201,
    facts: { role: 'mount', registry: 'localhost:5000', repo: 'lab/app', digest: C3, auth: 'basic' },
  }),
  pending: subject({
    method: 'HEAD',
    url: 'https://registry.test/v2/lab/alpine/manifests/latest',
    status: null,
    req: [['Accept', DOCKER_V2]],
    facts: { role: 'manifest', registry: 'registry.test', repo: 'lab/alpine', reference: 'latest', accept: [DOCKER_V2], auth: 'bearer' },
  }),
  failed: subject({
    url: 'https://down.test/v2/',
    status: null,
    state: 'error',
    error: 'ECONNRESET: socket hang up',
  }),
  aborted: subject({
    url: `https://cdn.test/blobs/${'dd'.repeat(32)}`,
    state: 'aborted',
    res: [['Content-Type', 'application/octet-stream']],
    facts: { role: 'cdn-blob', registry: 'registry.test', repo: 'library/busybox', digest: `sha256:${'dd'.repeat(32)}` },
  }),
  web: subject({
    url: 'http://example.com/index.html',
    res: [['Content-Type', 'text/html; charset=utf-8']],
    reqBody: null,
    resBody: '<html>Hello</html>',
    comment: 'not registry',
  }),
  push: subject({
    method: 'PUT',
    url: 'https://registry.test/v2/lab/app/manifests/v1',
    status: 201,
    req: [
      ['Content-Type', 'application/vnd.oci.image.manifest.v1+json'],
      ['Authorization', 'Bearer REDACTED-77778888'],
    ],
    reqBody: '{"schemaVersion":2,"config":{}}',
    facts: { role: 'manifest', registry: 'registry.test', repo: 'lab/app', reference: 'v1', auth: 'bearer' },
  }),
} satisfies Record<string, FilterSubject>;

type Name = keyof typeof SUBJECTS;
const NAMES = Object.keys(SUBJECTS) as Name[];
const ALL = NAMES;
const GETS: Name[] = ['ping', 'token', 'manifest', 'redirect', 'cdn', 'failed', 'aborted', 'web'];
const but = (...out: Name[]): Name[] => NAMES.filter((n) => !out.includes(n));

function matching(expr: string): Name[] {
  const f = parseFilter(expr);
  return NAMES.filter((n) => f(SUBJECTS[n]));
}

// ------------------------------------------------------------------ matching

/** [expression, the subjects it must match (and no others)]. */
const CASES: Array<[string, Name[]]> = [
  // empty, ~all
  ['', ALL],
  ['  \t ', ALL],
  ['~all', ALL],
  ['!~all', []],

  // ~m
  ['~m GET', GETS],
  ['~m get', GETS],
  ['~m ^P', ['upload', 'mount', 'push']],
  ['~m GET|HEAD', [...GETS, 'pending']],

  // ~u and bare regexes
  ['~u manifests', ['manifest', 'pending', 'push']],
  ['manifests', ['manifest', 'pending', 'push']],
  ['MANIFESTS', ['manifest', 'pending', 'push']],
  ['~u ^https://cdn\\.test:8443/blobs/', ['cdn']],
  ['~u ^https://registry\\.test/v2/$', ['ping']],
  ['~u ^http://localhost:5000/', ['upload', 'mount']],
  ['~u mount=sha256:c3', ['mount']],
  ["'scope=repository%3Alab'", ['token']],
  ['"(manifests|tags)/"', ['manifest', 'pending', 'push']],
  ['~u manifests ~u alpine', ['manifest', 'pending']],

  // ~d
  ['~d ^cdn\\.test$', ['cdn', 'aborted']],
  ['~d REGISTRY.TEST', ['ping', 'manifest', 'redirect', 'pending', 'push']],

  // ~c
  ['~c 200', ['token', 'manifest', 'cdn', 'aborted', 'web']],
  ['~c 401', ['ping']],
  ['~c 307', ['redirect']],
  ["~c '201'", ['mount', 'push']],

  // ~h ~hq ~hs
  ['~h www-authenticate', ['ping']],
  ['~h "WWW-Authenticate: bearer realm"', ['ping']],
  ["~h '^accept: application/vnd\\.oci'", ['manifest']],
  ['~hq authorization', ['token', 'manifest', 'push']],
  ['~hs authorization', []],
  ['~hs ^location:', ['redirect']],
  ['~hq ^location:', []],
  ['~h ^docker-content-digest:.*a1a1$', ['manifest']],

  // ~b ~bq ~bs
  ['~b REDACTED-1111', ['token']],
  ['~bq schemaVersion', ['push']],
  ['~bs schemaVersion', ['manifest']],
  ['~b schemaversion', ['manifest', 'push']],
  ['~b hello', ['web']],
  ["~b '\"token\"'", ['token']],
  ['~b "\\"token\\""', ['token']],

  // ~t ~tq ~ts
  ['~t octet-stream', ['cdn', 'upload', 'aborted']],
  ['~tq octet', ['upload']],
  ['~ts octet', ['cdn', 'aborted']],
  ['~t ^text/html', ['web']],
  ['~tq oci.image.manifest', ['push']],

  // ~q ~s ~e
  ['~q', ['pending']],
  ['~s', but('pending', 'failed')],
  ['~e', ['failed', 'aborted']],
  ['!~s', ['pending', 'failed']],
  ['!~e & !~q', but('failed', 'aborted', 'pending')],

  // ~marked ~comment
  ['~marked', ['manifest']],
  ['!~marked', but('manifest')],
  ['~comment layer', ['cdn']],
  ['~comment "layer one"', ['cdn']],
  ["~comment 'LAYER ONE'", ['cdn']],
  ['~comment ^$', but('cdn', 'web')],

  // registry operators
  ['~registry localhost', ['upload', 'mount']],
  ['~registry ^registry\\.test$', ['ping', 'token', 'manifest', 'redirect', 'cdn', 'pending', 'aborted', 'push']],
  ['~repo lab/alpine', ['manifest', 'redirect', 'cdn', 'pending']],
  ['~repo ^lab/', ['manifest', 'redirect', 'cdn', 'upload', 'mount', 'pending', 'push']],
  ['~repo lab/alpine & ~op cdn-blob', ['cdn']],
  ['~ref ^3\\.20$', ['manifest']],
  ['~ref latest', ['pending']],
  ['~digest sha256:b2b2', ['redirect', 'cdn']],
  ['~digest ^b2b2', ['redirect', 'cdn']],
  ['~digest ^sha256:a1a1', ['manifest']],
  ['~digest c3c3', ['mount']],
  [`~digest ^${'dd'.repeat(32)}$`, ['aborted']],
  ['~op manifest', ['manifest', 'pending', 'push']],
  ['~op MANIFEST', ['manifest', 'pending', 'push']],
  ['~op "manifest"', ['manifest', 'pending', 'push']],
  ['~op blob', []],
  ['~op blob-redirect', ['redirect']],
  ['~op upload', ['upload', 'mount']],
  ['~op upload-chunk', ['upload']],
  ['~op mount', ['mount']],
  ['~op cdn', ['cdn', 'aborted']],
  ['~op cdn-blob', ['cdn', 'aborted']],
  ['~op token', ['token']],
  ['~op ping', ['ping']],
  ['~op other', []],
  // ~cdn: the flows to the CDN host; ~redirect: the registry's 3xx that sent the client there.
  ['~cdn', ['cdn', 'aborted']],
  ['~redirect', ['redirect']],
  ['~mt oci.image.index', ['manifest']],
  ['~mt manifest.v2', ['manifest', 'pending']],
  ['~mt ^application/vnd\\.docker\\.distribution\\.manifest\\.v2\\+json$', ['manifest', 'pending']],
  ['~auth bearer', ['manifest', 'redirect', 'pending', 'push']],
  ['~auth BASIC', ['token', 'upload', 'mount']],
  ['~auth none', ['ping', 'cdn', 'aborted']],
  ['~auth other', []],

  // registry: null never matches a registry operator, but does match its negation
  ['!~repo .', ['ping', 'token', 'failed', 'web']],
  ['!~op manifest', but('manifest', 'pending', 'push')],
  ['!~cdn', but('cdn', 'aborted')],
  ['!~redirect', but('redirect')],
  ['!~auth none', but('ping', 'cdn', 'aborted')],
  ['~registry . | ~mt . | ~ref . | ~digest .', but('failed', 'web')],

  // precedence: ! > & > |
  ['~m GET | ~m HEAD & ~c 200', GETS],
  ['(~m GET | ~m HEAD) & ~c 200', ['token', 'manifest', 'cdn', 'aborted', 'web']],
  ['~c 401 | ~m PATCH & ~c 202', ['ping', 'upload']],
  ['~c 401 | ~m PATCH & ~c 200', ['ping']],
  ['~m PATCH & ~c 202 | ~c 401', ['ping', 'upload']],
  ['!~m GET & ~c 201', ['mount', 'push']],
  ['!(~m GET & ~c 200)', but('token', 'manifest', 'cdn', 'aborted', 'web')],
  ['!!~q', ['pending']],
  ['! ! ! ~q', but('pending')],
  ['~q | ~e & ~c 200', ['pending', 'aborted']],

  // juxtaposition = AND, binding loosest (as in mitmproxy)
  ['~m GET ~c 200', ['token', 'manifest', 'cdn', 'aborted', 'web']],
  ['~op manifest ~m GET | ~m PATCH', ['manifest']],
  ['~op manifest & ~m GET | ~m PATCH', ['manifest', 'upload']],
  ['(~m GET ~c 200) | ~q', ['token', 'manifest', 'cdn', 'aborted', 'web', 'pending']],
  ['~repo lab/alpine manifests', ['manifest', 'pending']],

  // operators glued to bare words
  ['~m GET&~c 200', ['token', 'manifest', 'cdn', 'aborted', 'web']],
  ['~m PUT|~m POST', ['mount', 'push']],
  ['(~m PUT)(~c 201)', ['push']],
  ['~q|~e', ['pending', 'failed', 'aborted']],

  // quoting keeps regex escapes; \' and \" escape the quote
  ["~u '\\d{4}/blobs'", ['cdn']],
  ["~u 'blobs/\\w+\\?sig='", ['cdn']],
  ['~u "~"', []],
  ["~comment 'it\\'s'", []],
];

describe('matching', () => {
  it.each(CASES)('%j', (expr, want) => {
    expect(matching(expr)).toEqual(NAMES.filter((n) => want.includes(n)));
  });

  it('covers every operator', () => {
    const used = new Set(CASES.flatMap(([e]) => [...e.matchAll(/~([a-z]+)/g)].map((m) => m[1])));
    expect(FILTER_OPERATORS.map((o) => o.code).filter((c) => !used.has(c))).toEqual([]);
  });

  it('keeps the source and reports body use', () => {
    const f = parseFilter('~m GET & ~bs foo');
    expect(f.source).toBe('~m GET & ~bs foo');
    expect(f.usesBody).toBe(true);
    expect(parseFilter('~m GET').usesBody).toBe(false);
    expect(parseFilter('!~bq x').usesBody).toBe(true);
    expect(parseFilter('').source).toBe('');
    expect(parseFilter('').usesBody).toBe(false);
  });

  it('decodes bodies only when a body term is reached', () => {
    let calls = 0;
    const s: FilterSubject = {
      ...SUBJECTS.token,
      requestBody: () => (calls++, null),
      responseBody: () => (calls++, '{"token":"x"}'),
    };
    expect(parseFilter('~m GET')(s)).toBe(true);
    expect(parseFilter('~m GET | ~b token')(s)).toBe(true);
    expect(parseFilter('~m PUT & ~b token')(s)).toBe(false);
    expect(calls).toBe(0);
    expect(parseFilter('~bs token')(s)).toBe(true);
    expect(calls).toBe(1);
    expect(parseFilter('~bq token')(s)).toBe(false);
    expect(calls).toBe(2);
  });

  it('treats subjects without body accessors as having no body', () => {
    expect(parseFilter('~b .')(SUBJECTS.ping)).toBe(false);
    expect(parseFilter('!~b .')(SUBJECTS.ping)).toBe(true);
  });

  it('reuses one filter across subjects (no state leaks between calls)', () => {
    const f = parseFilter('~u alpine ~u manifests');
    expect(NAMES.filter((n) => f(SUBJECTS[n]))).toEqual(['manifest', 'pending']);
    expect(NAMES.filter((n) => f(SUBJECTS[n]))).toEqual(['manifest', 'pending']);
  });
});

// ------------------------------------------------------------------ errors

function syntaxError(expr: string): FilterSyntaxError {
  try {
    parseFilter(expr);
  } catch (e) {
    if (e instanceof FilterSyntaxError) return e;
    throw e;
  }
  throw new Error(`parsed: ${expr}`);
}

/** [expression, position, text the first message line must contain]. */
const ERRORS: Array<[string, number, string]> = [
  ['~m GET ~u', 7, 'expected a regex after ~u'],
  ['~u', 0, 'expected a regex after ~u'],
  ['~u )', 3, 'expected a regex after ~u; got )'],
  ['~u (a|b)', 3, 'expected a regex after ~u; got ( (quote a regex that contains spaces, ( ) ~ or quotes)'],
  ['~u ~m GET', 0, 'expected a regex after ~u; got ~'],
  ['~d & ~m GET', 0, 'expected a regex after ~d; got &'],
  ['~c', 0, 'expected an integer after ~c'],
  ['~c abc', 3, 'expected an integer after ~c; got abc'],
  ['~c 20x', 3, 'expected an integer after ~c; got 20x'],
  ['~c -1', 3, 'expected an integer after ~c; got -1'],
  ['~c 12345678901', 3, 'got 12345678901 (too large)'],
  ['~zz', 0, 'expected a known operator; ~zz is unknown, did you mean ~'],
  ['~m GET ~repos lab', 7, '~repos is unknown, did you mean ~repo'],
  ['~re x', 0, 'did you mean ~ref, ~repo, ~registry'],
  ['~method GET', 0, '~method is unknown, did you mean ~m?'],
  ['~', 0, 'expected an operator name after ~'],
  ['~ m GET', 0, 'expected an operator name after ~'],
  ['(~m GET', 0, 'expected a ) to close this ('],
  ['((~m GET) | ~q', 0, 'expected a ) to close this ('],
  ['(~m GET ~c 200', 0, 'expected a ) to close this ('],
  ['~m GET )', 7, 'expected end of filter or another term; got a ) with no matching ('],
  [')', 0, 'expected a filter expression; got a ) with no matching ('],
  ['~m GET &', 7, 'expected a filter expression after &'],
  ['~m GET |', 7, 'expected a filter expression after |'],
  ['~m GET|', 6, 'expected a filter expression after |'],
  ['~m GET & | ~c 200', 7, 'expected a filter expression after &; got |'],
  ['~m GET & & ~c 200', 7, 'expected a filter expression after &; got &'],
  ['& ~m GET', 0, 'expected a filter expression before &'],
  ['| ~m GET', 0, 'expected a filter expression before |'],
  ['()', 0, 'expected a filter expression after (; got )'],
  ['(', 0, 'expected a filter expression after ('],
  ['~q (!)', 4, 'expected a filter expression after !; got )'],
  ['!', 0, 'expected a filter expression after !'],
  ['~m GET & !', 9, 'expected a filter expression after !'],
  ["~u 'a('", 3, 'expected a valid regex after ~u; Invalid regular expression'],
  ['~h [', 3, 'expected a valid regex after ~h'],
  ['[a', 0, 'expected a valid regex (a bare regex matches the URL)'],
  ["'a)'", 0, 'expected a valid regex (a bare regex matches the URL)'],
  ["~u 'abc", 3, "expected a closing '; this quoted string is not closed"],
  ['~b "abc\\"', 3, 'expected a closing "'],
  ['~op foo', 4, 'expected a role after ~op; got foo; valid: ping, token, manifest, blob, blob-redirect, cdn-blob, upload-start'],
  ['~op', 0, 'expected a role after ~op'],
  ['~op manifests', 4, 'got manifests; valid:'],
  ['~auth token', 6, 'expected an auth class after ~auth; got token; valid: none, basic, bearer, other'],
  [`${'('.repeat(65)}~q${')'.repeat(65)}`, 64, 'expected at most 64 nested parentheses'],
];

describe('syntax errors', () => {
  it('formats the message with position, expectation and a caret line', () => {
    const e = syntaxError('~m GET ~u');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('FilterSyntaxError');
    expect(e.message).toBe('filter error at 7: expected a regex after ~u\n  ~m GET ~u\n         ^');
    expect(e.position).toBe(7);
    expect(e.expected).toBe('a regex after ~u');
    expect(e.source).toBe('~m GET ~u');
  });

  it.each(ERRORS)('%j at %i', (expr, position, text) => {
    const e = syntaxError(expr);
    expect(e.position).toBe(position);
    const [first, line, caret] = e.message.split('\n');
    expect(first).toContain(`filter error at ${position}: `);
    expect(first).toContain(text);
    expect(line).toBe(`  ${expr}`);
    expect(caret).toBe(`${' '.repeat(position + 2)}^`);
  });

  it('lists the valid roles, aliases included', () => {
    const e = syntaxError('~op nope');
    expect(e.message).toContain('upload, cdn');
    expect(e.message).toContain('referrers');
  });

  it('keeps the caret aligned when the expression has tabs and newlines', () => {
    const e = syntaxError('~m GET\t&\n');
    expect(e.position).toBe(7);
    expect(e.message.split('\n').slice(1)).toEqual(['  ~m GET & ', '         ^']);
  });

  it('accepts deep but bounded nesting and long negation chains', () => {
    expect(matching(`${'('.repeat(64)}~q${')'.repeat(64)}`)).toEqual(['pending']);
    expect(matching(`${'!'.repeat(100_000)}~q`)).toEqual(['pending']);
    expect(matching(`${'!'.repeat(100_001)}~q`)).toEqual(but('pending'));
    expect(() => parseFilter('('.repeat(100_000))).toThrow(FilterSyntaxError);
  });
});

// ------------------------------------------------------------------ help

describe('help', () => {
  it('lists every operator once, with its argument kind', () => {
    const codes = FILTER_OPERATORS.map((o) => o.code);
    expect(new Set(codes).size).toBe(codes.length);
    const help = filterHelp();
    for (const o of FILTER_OPERATORS) {
      const head = `~${o.code}${o.arg === 'none' ? '' : ` ${o.arg}`}`;
      expect(help).toContain(`  ${head.padEnd(18)}${o.help}\n`);
    }
    for (const c of ['m', 'u', 'd', 'c', 'h', 'hq', 'hs', 'b', 'bq', 'bs', 't', 'tq', 'ts', 'q', 's', 'e', 'marked', 'comment', 'all']) {
      expect(FILTER_OPERATORS.find((o) => o.code === c)?.group).toBe('flow');
    }
    for (const c of ['repo', 'ref', 'digest', 'op', 'mt', 'auth', 'cdn', 'registry']) {
      expect(FILTER_OPERATORS.find((o) => o.code === c)?.group).toBe('registry');
    }
    expect(FILTER_OPERATORS.find((o) => o.code === 'op')?.values).toContain('upload');
    expect(help).toContain('x | y');
  });
});

// ------------------------------------------------------------------ fuzz

/** mulberry32: small, seeded, good enough for test inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  ...FILTER_OPERATORS.map((o) => `~${o.code}`),
  '~',
  '~zz',
  '!',
  '&',
  '|',
  '(',
  ')',
  "'",
  '"',
  '\\',
  ' ',
  ' ',
  ' ',
  '\t',
  'GET',
  '200',
  'abc',
  'lab/alpine',
  'manifest',
  'upload',
  'bearer',
  'sha256:',
  '[',
  ']',
  '*',
  '+',
  '?',
  '.',
  '{2}',
  '^',
  '$',
];

describe('fuzz', () => {
  it('random expressions parse or throw FilterSyntaxError, and parsed ones evaluate', () => {
    const rnd = prng(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const subjects = Object.values(SUBJECTS);
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      const n = Math.floor(rnd() * 12);
      let expr = '';
      for (let j = 0; j < n; j++) expr += rnd() < 0.1 ? String.fromCharCode(32 + Math.floor(rnd() * 95)) : pick(PIECES);
      let f;
      try {
        f = parseFilter(expr);
      } catch (e) {
        if (!(e instanceof FilterSyntaxError)) throw new Error(`${JSON.stringify(expr)} threw ${String(e)}`);
        expect(e.position).toBeGreaterThanOrEqual(0);
        expect(e.position).toBeLessThanOrEqual(expr.length);
        expect(e.message).toMatch(/^filter error at \d+: expected .+\n {2}.*\n {2} *\^$/);
        rejected++;
        continue;
      }
      parsed++;
      expect(f.source).toBe(expr);
      for (const s of subjects) expect(typeof f(s)).toBe('boolean');
    }
    console.log(`filter fuzz: ${parsed} parsed, ${rejected} rejected`);
    expect(parsed).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});

// ------------------------------------------------------------------ speed

describe('performance', () => {
  it('filters 100k flows quickly', () => {
    const methods = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST'];
    const roles = ['manifest', 'blob', 'blob-redirect', 'cdn-blob', 'upload-chunk', 'token'] as const;
    const repos = ['lab/alpine', 'lab/app', 'library/busybox', 'lab/base'];
    const subjects: FilterSubject[] = [];
    for (let i = 0; i < 100_000; i++) {
      const role = roles[i % roles.length]!;
      const repo = repos[i % 7 % repos.length]!;
      subjects.push(
        subject({
          method: methods[i % methods.length]!,
          url: `https://${role === 'cdn-blob' ? 'cdn' : 'registry'}.test/v2/${repo}/${role}/${i}`,
          status: i % 11 === 0 ? null : [200, 200, 200, 404, 307][i % 5]!,
          req: [
            ['Accept', DOCKER_V2],
            ['User-Agent', 'docker/27.0'],
          ],
          res: [['Content-Type', 'application/octet-stream']],
          facts: i % 13 === 0 ? null : { role, repo, registry: 'registry.test', digest: `sha256:${String(i).padStart(64, '0')}` },
        }),
      );
    }
    const time = (expr: string): { ms: number; hits: number } => {
      const f = parseFilter(expr);
      const t0 = performance.now();
      let hits = 0;
      for (const s of subjects) if (f(s)) hits++;
      return { ms: performance.now() - t0, hits };
    };
    time('~m GET & ~c 200'); // warm up the JIT once
    const results: Record<string, { ms: number; hits: number }> = {};
    for (const expr of ['~m GET & ~c 200', '~repo lab/alpine & ~op cdn-blob', "~u manifest | ~h 'user-agent: docker'", '!~q ~registry test ~digest ^0+9']) {
      results[expr] = time(expr);
    }
    for (const [expr, r] of Object.entries(results)) console.log(`filter 100k flows: ${r.ms.toFixed(1)} ms (${r.hits} hits)  ${expr}`);
    for (const r of Object.values(results)) {
      expect(r.hits).toBeGreaterThan(0);
      expect(r.ms).toBeLessThan(1000);
    }
  });
});
