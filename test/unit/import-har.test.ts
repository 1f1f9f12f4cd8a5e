import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader, type FlowRecord } from '../../src/flow/index.js';
import { importHar, openSpill, readHarEntries, splitUrl, type ImportSummary, type SpilledString } from '../../src/import/index.js';
import { blobDirFor, Recording } from '../../src/store/index.js';
import { patternBytes } from '../support/origin.js';
import { RegtapeError } from '../../src/errors/index.js';

const b64url = (s: string) => Buffer.from(s).toString('base64url');
const CLAIMS = { iss: 'auth.example', sub: 'labuser', aud: 'registry.example', exp: 2_000_000_000, access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] };
const JWT = `${b64url('{"alg":"RS256","typ":"JWT"}')}.${b64url(JSON.stringify(CLAIMS))}.c2lnbmF0dXJlLXRoYXQtaXMtc2VjcmV0LXNpZ25hdHVyZQ`;
const PASSWORD = 'hunter2-s3cr3t-PASS';
const BASIC = Buffer.from(`labuser:${PASSWORD}`).toString('base64');
const REFRESH = 'rt-0123456789abcdef-REFRESH';
const COOKIE = 'sess-abcdef0123-COOKIE';
const SIGNATURE = 'sig9f8e7d6c5b4a39281706SIGNED';
const GZIP_TOKEN = 'tok-gzip-SECRET-777777';
const SECRETS = [JWT, JWT.split('.')[2]!, PASSWORD, BASIC, REFRESH, COOKIE, SIGNATURE, GZIP_TOKEN];

const h = (pairs: Array<[string, string]>) => pairs.map(([name, value]) => ({ name, value }));
const timings = { connect: 3.2, ssl: 2.1, send: 0.4, receive: 1.5, wait: 12.0 };

function entry(over: Record<string, unknown>): Record<string, unknown> {
  return {
    startedDateTime: '2024-05-01T10:00:00.123000+00:00',
    time: 17.1,
    cache: {},
    timings,
    serverIPAddress: '203.0.113.9',
    ...over,
  };
}

function response(status: number, headers: Array<[string, string]>, text: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    status,
    statusText: status === 200 ? 'OK' : '',
    httpVersion: 'HTTP/1.1',
    cookies: [],
    headers: h(headers),
    content: { size: text?.length ?? 0, compression: 0, mimeType: headers.find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '', ...(text !== undefined ? { text } : {}), ...extra },
    redirectURL: '',
    headersSize: 100,
    bodySize: text?.length ?? 0,
  };
}

function request(method: string, url: string, headers: Array<[string, string]>, postData?: Record<string, unknown>): Record<string, unknown> {
  return {
    method,
    url,
    httpVersion: 'HTTP/1.1',
    cookies: [],
    headers: h(headers),
    queryString: [],
    headersSize: 100,
    bodySize: typeof postData?.text === 'string' ? postData.text.length : 0,
    ...(postData ? { postData } : {}),
  };
}

/** A HAR shaped like mitmproxy's `save.har` (10.x), with secrets in every place the recorder redacts. */
function mitmproxyHar(): unknown {
  const cdn = `https://cdn.example/blobs/sha256/ab/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=${SIGNATURE}&X-Amz-Expires=1200`;
  return {
    log: {
      version: '1.2',
      creator: { name: 'mitmproxy exporthar', version: '0.1', comment: 'mitmproxy version 10.1.0' },
      pages: [],
      entries: [
        entry({
          request: request('GET', 'https://registry.example/v2/', [
            ['Host', 'registry.example'],
            ['User-Agent', 'docker/24.0'],
          ]),
          response: response(
            401,
            [
              ['Content-Type', 'application/json'],
              ['Www-Authenticate', 'Bearer realm="https://auth.example/token",service="registry.example"'],
            ],
            '{"errors":[{"code":"UNAUTHORIZED"}]}',
          ),
        }),
        // Token with Basic credentials; the answer holds the JWT and a refresh token.
        entry({
          request: request('GET', 'https://auth.example/token?scope=repository%3Ateam%2Fapp%3Apull%2Cpush&service=registry.example&offline_token=true', [
            ['Host', 'auth.example'],
            ['Authorization', `Basic ${BASIC}`],
            ['Cookie', `session=${COOKIE}; theme=dark`],
          ]),
          response: response(
            200,
            [
              ['Content-Type', 'application/json'],
              ['Set-Cookie', `session=${COOKIE}; Path=/; HttpOnly`],
            ],
            JSON.stringify({ token: JWT, access_token: JWT, refresh_token: REFRESH, expires_in: 300 }),
          ),
        }),
        // OAuth2 form POST with the refresh token and a password.
        entry({
          request: request(
            'POST',
            'https://auth.example/token',
            [
              ['Host', 'auth.example'],
              ['Content-Type', 'application/x-www-form-urlencoded'],
            ],
            {
              mimeType: 'application/x-www-form-urlencoded',
              text: `grant_type=refresh_token&refresh_token=${REFRESH}&password=${PASSWORD}&service=registry.example&client_id=docker`,
              params: [],
            },
          ),
          // Gzip-encoded answer: HAR holds it decoded, the header still says gzip.
          response: response(
            200,
            [
              ['Content-Type', 'application/json'],
              ['Content-Encoding', 'gzip'],
            ],
            JSON.stringify({ access_token: GZIP_TOKEN, expires_in: 300 }),
          ),
        }),
        // JSON login (Docker Hub style) with the password.
        entry({
          request: request('POST', 'https://hub.example/v2/users/login', [['Content-Type', 'application/json']], { mimeType: 'application/json', text: JSON.stringify({ username: 'labuser', password: PASSWORD }) }),
          response: response(200, [['Content-Type', 'application/json']], '{"ok":true}'),
        }),
        // Manifest with the bearer token (HTTP/2 pseudo-headers as browsers write them).
        entry({
          request: request('GET', 'https://registry.example/v2/team/app/manifests/1.0', [
            [':authority', 'registry.example'],
            [':method', 'GET'],
            ['Accept', 'application/vnd.oci.image.manifest.v1+json'],
            ['Authorization', `Bearer ${JWT}`],
          ]),
          response: response(
            200,
            [
              ['Content-Type', 'application/vnd.oci.image.manifest.v1+json'],
              ['Docker-Content-Digest', 'sha256:' + 'ab'.repeat(32)],
            ],
            '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:' + 'cd'.repeat(32) + '","size":2},"layers":[]}',
          ),
        }),
        // Blob redirect to a signed CDN URL, then the download (binary, base64 in the HAR).
        entry({
          request: request('GET', `https://registry.example/v2/team/app/blobs/sha256:${'ab'.repeat(32)}`, [['Authorization', `Bearer ${JWT}`]]),
          response: response(307, [['Location', cdn]], ''),
        }),
        entry({
          request: request('GET', cdn, [['User-Agent', 'docker/24.0']]),
          response: response(200, [['Content-Type', 'application/octet-stream']], Buffer.from([0, 1, 2, 3, 250, 251]).toString('base64'), { encoding: 'base64' }),
        }),
        // What cannot be imported (whole): no response, a body left out, not HTTP.
        entry({ request: request('GET', 'https://registry.example/v2/never', []), response: response(0, [], undefined) }),
        entry({ request: request('GET', 'https://cdn.example/big', []), response: { ...response(200, [['Content-Type', 'application/octet-stream']], undefined), content: { size: 123456, mimeType: 'application/octet-stream' } } }),
        entry({ request: request('GET', 'data:text/plain,hello', []), response: response(200, [], 'hello') }),
        'not an entry',
      ],
    },
  };
}

let tmp: string;
let out: string;
let summary: ImportSummary;
let reports: string[];
let flows: FlowRecord[];

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-import-'));
  const har = path.join(tmp, 'save.har');
  fs.writeFileSync(har, JSON.stringify(mitmproxyHar(), null, 4));
  out = path.join(tmp, 'mitm.db');
  reports = [];
  summary = await importHar(har, out, { report: (l) => reports.push(l) });
  const rec = Recording.open(out, { readonly: true });
  flows = rec.list();
  rec.close();
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('import of a mitmproxy-style HAR', () => {
  it('imports every HTTP entry with a response and counts what it could not', () => {
    expect(summary.entries).toBe(11);
    expect(summary.imported).toBe(8);
    expect(summary.skipped).toEqual({ 'no response': 1, 'not http(s)': 1, 'not an entry': 1 });
    expect(summary.bodiesOmitted).toBe(1);
    expect(summary.creator).toBe('mitmproxy exporthar 0.1');
    expect(reports.some((r) => /entries\[7\].*no response/.test(r))).toBe(true);
    expect(reports.some((r) => /entries\[8\].*response body \(123456 bytes\) is not in the HAR/.test(r))).toBe(true);
    expect(reports.some((r) => /entries\[9\].*not an http\(s\) URL/.test(r))).toBe(true);
    expect(reports.some((r) => /entries\[10\].*not a HAR entry/.test(r))).toBe(true);
    expect(flows).toHaveLength(8);
  });

  it('leaves no secret anywhere in the recording files', () => {
    const files = [out, `${out}-wal`, `${out}-shm`, ...listFiles(blobDirFor(out))].filter((f) => fs.existsSync(f));
    expect(files.length).toBeGreaterThan(0);
    const hits: string[] = [];
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      for (const s of SECRETS) if (bytes.includes(Buffer.from(s))) hits.push(`${path.basename(f)}: ${s.slice(0, 10)}…`);
    }
    expect(hits).toEqual([]);
    // No temp files left beside it.
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('redacts like the recorder: scheme and Basic user kept, markers everywhere a secret was', async () => {
    const token = flows[1]!;
    const auth = getHeader(token.request.headers, 'authorization')!;
    expect(auth).toMatch(/^Basic /);
    expect(Buffer.from(auth.slice(6), 'base64').toString()).toMatch(/^labuser:REDACTED-[0-9a-f]{8}$/);
    expect(getHeader(token.request.headers, 'cookie')).toMatch(/^session=REDACTED-[0-9a-f]{8}; theme=REDACTED-/);
    const manifest = flows[4]!;
    expect(getHeader(manifest.request.headers, 'authorization')).toMatch(/^Bearer REDACTED-[0-9a-f]{8}$/);
    expect(manifest.request.headers.some(([k]) => k.startsWith(':'))).toBe(false);
    const redirect = flows[5]!;
    expect(getHeader(redirect.response!.headers, 'location')).toMatch(/X-Amz-Signature=REDACTED-[0-9a-f]{8}/);
    expect(flows[6]!.request.target).toMatch(/X-Amz-Signature=REDACTED-[0-9a-f]{8}/);
    // The same secret gives the same marker within the import.
    const bearer = getHeader(manifest.request.headers, 'authorization')!.slice(7);
    const rec = Recording.open(out, { readonly: true });
    try {
      const body = (await rec.readBodyBuffer(token.responseBody!.sha256!)).toString();
      expect(JSON.parse(body)).toMatchObject({ token: bearer, access_token: bearer, refresh_token: expect.stringMatching(/^REDACTED-/), expires_in: 300 });
      expect(token.responseBody!.redacted).toBe(true);
      const form = (await rec.readBodyBuffer(flows[2]!.requestBody!.sha256!)).toString();
      expect(form).toMatch(/^grant_type=refresh_token&refresh_token=REDACTED-[0-9a-f]{8}&password=REDACTED-[0-9a-f]{8}&service=registry.example/);
      const login = JSON.parse((await rec.readBodyBuffer(flows[3]!.requestBody!.sha256!)).toString()) as { password: string };
      expect(login.password).toMatch(/^REDACTED-/);
      // The gzip answer: stored gzip-encoded (matching its header), redacted inside.
      const gz = await rec.readBodyBuffer(flows[2]!.responseBody!.sha256!);
      expect(gz[0]).toBe(0x1f);
      expect(JSON.parse(zlib.gunzipSync(gz).toString())).toMatchObject({ access_token: expect.stringMatching(/^REDACTED-/) });
      // Binary base64 body byte for byte.
      expect((await rec.readBodyBuffer(flows[6]!.responseBody!.sha256!)).equals(Buffer.from([0, 1, 2, 3, 250, 251]))).toBe(true);
    } finally {
      rec.close();
    }
  });

  it('keeps token claims as facts and classifies flows as if recorded', () => {
    const token = flows[1]!;
    expect(token.registry?.role).toBe('token');
    expect(token.registry?.scopesGranted).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    expect(token.facts.tokens?.[0]?.claims).toMatchObject({ iss: 'auth.example' });
    expect(flows[0]!.registry?.role).toBe('ping');
    expect(flows[4]!.registry).toMatchObject({ role: 'manifest', repo: 'team/app', reference: '1.0', auth: 'bearer' });
    expect(flows[5]!.registry?.role).toBe('blob-redirect');
    expect(flows[6]!.registry).toMatchObject({ role: 'cdn-blob', redirectFrom: flows[5]!.id, repo: 'team/app' });
    expect(summary.redactions).toBeGreaterThanOrEqual(6);
  });

  it('maps HAR timings back onto moments', () => {
    const f = flows[0]!;
    const start = Date.parse('2024-05-01T10:00:00.123Z');
    expect(f.timings.start).toBe(start);
    expect(f.timings.connect).toBeCloseTo(start + 1.1, 2);
    expect(f.timings.tls).toBeCloseTo(start + 3.2, 2);
    expect(f.timings.requestSent).toBeCloseTo(start + 3.6, 2);
    expect(f.timings.firstByte).toBeCloseTo(start + 15.6, 2);
    expect(f.timings.end).toBeCloseTo(start + 17.1, 2);
    expect(f.serverAddr).toBe('203.0.113.9:443');
    expect(f.state).toBe('complete');
  });
});

describe('import errors and modes', () => {
  const write = (name: string, text: string | Buffer) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const outFiles = (base: string) => fs.readdirSync(tmp).filter((n) => n.includes(base));

  it.each([
    ['not JSON', 'hello world', /not a HAR file \(not a JSON object/],
    ['a JSON array', '[{"a":1}]', /JSON array, not a HAR/],
    ['JSON without log', '{"foo": {"entries": []}}', /not a HAR file \(no "log" object\)/],
    ['truncated', JSON.stringify(mitmproxyHar()).slice(0, 1500), /not valid JSON .*truncated/],
    ['broken inside an entry', JSON.stringify(mitmproxyHar()).replace('"method":"POST"', '"method":POST'), /not valid JSON \(log\.entries\[2\]/],
    ['empty', '', /is empty/],
  ])('refuses %s with a clear error and writes nothing', async (_name, text, msg) => {
    const base = `bad-${_name.replace(/\W+/g, '-')}`;
    const input = write(`${base}.har`, text);
    const err = await importHar(input, path.join(tmp, `${base}.db`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegtapeError);
    expect((err as Error).message).toMatch(msg);
    expect(outFiles(base)).toEqual([`${base}.har`]);
  });

  it('refuses to overwrite a recording unless --append, and --append adds in one transaction', async () => {
    const input = write('again.har', JSON.stringify(mitmproxyHar()));
    await expect(importHar(input, out)).rejects.toThrow(/already exists; use --append/);
    const s = await importHar(input, out, { append: true });
    expect(s.imported).toBe(8);
    let rec = Recording.open(out, { readonly: true });
    expect(rec.count()).toBe(16);
    rec.close();
    // A bad HAR appended: nothing of it lands.
    const bad = write('bad-append.har', JSON.stringify(mitmproxyHar()).slice(0, 3000));
    await expect(importHar(bad, out, { append: true })).rejects.toThrow(RegtapeError);
    rec = Recording.open(out, { readonly: true });
    expect(rec.count()).toBe(16);
    rec.close();
  });

  it('reads zlib- (mitmproxy .zhar) and gzip-compressed HAR files', async () => {
    const text = Buffer.from(JSON.stringify(mitmproxyHar()));
    for (const [name, bytes] of [
      ['z.zhar', zlib.deflateSync(text)],
      ['g.har.gz', zlib.gzipSync(text)],
    ] as const) {
      const s = await importHar(write(name, bytes), path.join(tmp, `${name}.db`));
      expect(s.imported).toBe(8);
    }
  });

  it('splits URLs without normalising the target', () => {
    expect(splitUrl('https://user:pw@Registry.Example:5000/v2/a%2Fb/../x?q=a b#frag')).toEqual({ scheme: 'https', host: 'registry.example', port: 5000, target: '/v2/a%2Fb/../x?q=a b' });
    expect(splitUrl('http://[::1]/v2/')).toEqual({ scheme: 'http', host: '::1', port: 80, target: '/v2/' });
    expect(splitUrl('https://h?x=1')).toEqual({ scheme: 'https', host: 'h', port: 443, target: '/?x=1' });
    expect(splitUrl('ws://h/')).toBeNull();
  });
});

/** Python's json.dump default (ensure_ascii): every non-ASCII code unit as \uXXXX, surrogate pairs included. */
const asciiOnly = (text: string) => text.replace(/[\u0080-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Put spilled strings back where their placeholders are (keys too). */
async function unspill(v: unknown, spills: Map<string, SpilledString>): Promise<unknown> {
  if (typeof v === 'string') return spills.has(v) ? (await readAll(openSpill(spills.get(v)!, false))).toString('utf8') : v;
  if (Array.isArray(v)) return Promise.all(v.map((x) => unspill(x, spills)));
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[(await unspill(k, spills)) as string] = await unspill(x, spills);
    return o;
  }
  return v;
}

describe('streaming HAR reader', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ unit: 'grapheme' }), tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(fc.string({ unit: 'grapheme' }), tie('value'), { maxKeys: 4 }),
  }));

  it('yields exactly the entries JSON.parse sees, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(json.value, { maxLength: 6 }), json.object, fc.integer({ min: 1, max: 40 }), fc.boolean(), async (entries, extra, chunk, pretty) => {
        const doc = { log: { ...(extra as object), version: '1.2', entries, pages: [{ id: 'p"]}' }] }, other: [1, { entries: [2] }] };
        const text = Buffer.from(JSON.stringify(doc, null, pretty ? 2 : 0));
        const chunks: Buffer[] = [];
        for (let i = 0; i < text.length; i += chunk) chunks.push(text.subarray(i, i + chunk));
        const got: unknown[] = [];
        const it = readHarEntries(Readable.from(chunks));
        let header;
        for (;;) {
          const step = await it.next();
          if (step.done) {
            header = step.value;
            break;
          }
          got.push(step.value.entry);
        }
        expect(got).toEqual(JSON.parse(JSON.stringify(entries)));
        expect(header.version).toBe('1.2');
      }),
      { numRuns: 200 },
    );
  });

  it('moves long strings to files and streams them back exactly, escapes and all', async () => {
    const spillDir = path.join(tmp, 'spills');
    let spilled = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(json.value, { maxLength: 5 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 24 }), fc.boolean(), async (entries, chunk, spillOver, ascii) => {
        let text = JSON.stringify({ log: { version: '1.2', entries } });
        if (ascii) text = asciiOnly(text);
        const bytes = Buffer.from(text);
        const chunks: Buffer[] = [];
        for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
        const got: unknown[] = [];
        const it = readHarEntries(Readable.from(chunks), 'prop', { spillOver, spillDir });
        for (let step = await it.next(); !step.done; step = await it.next()) {
          spilled += step.value.spills.size;
          got.push(await unspill(step.value.entry, step.value.spills));
        }
        expect(got).toEqual(JSON.parse(JSON.stringify(entries)));
        // Spilled strings are removed once their entry has been read.
        expect(fs.existsSync(spillDir) ? fs.readdirSync(spillDir) : []).toEqual([]);
      }),
      { numRuns: 200 },
    );
    expect(spilled).toBeGreaterThan(50);
  });
});

describe('import of large bodies', () => {
  it('streams bodies bigger than the spill threshold into body files, byte for byte', async () => {
    const layer = patternBytes(6 * 1024 * 1024 + 5, 21);
    const doc = JSON.parse(JSON.stringify(mitmproxyHar())) as { log: { entries: Array<Record<string, unknown>> } };
    const bigText = `{"note":"${'\u00e9\u4e2d\ud83d\ude00 '.repeat(400_000)}"}`;
    doc.log.entries = [
      entry({
        request: request('PATCH', 'https://registry.example/v2/team/app/blobs/uploads/u1', [['Content-Type', 'application/octet-stream']], { mimeType: 'application/octet-stream', text: layer.toString('base64'), encoding: 'base64' }),
        response: response(202, [], ''),
      }),
      entry({
        request: request('GET', 'https://cdn.example/layer', []),
        response: response(200, [['Content-Type', 'application/octet-stream']], layer.toString('base64'), { encoding: 'base64' }),
      }),
      // A big JSON text, gzip on the wire: the HAR holds it decoded (and, written by Python, \u-escaped).
      entry({
        request: request('GET', 'https://registry.example/v2/team/app/big', []),
        response: response(
          200,
          [
            ['Content-Type', 'application/json'],
            ['Content-Encoding', 'gzip'],
          ],
          bigText,
        ),
      }),
    ];
    const har = path.join(tmp, 'big.har');
    fs.writeFileSync(har, asciiOnly(JSON.stringify(doc)));
    const db = path.join(tmp, 'big.db');
    const s = await importHar(har, db);
    expect(s.imported).toBe(3);
    const rec = Recording.open(db, { readonly: true });
    const [patch, cdn, big] = rec.list();
    const sha = createHash('sha256').update(layer).digest('hex');
    expect(patch!.requestBody).toEqual({ sha256: sha, size: layer.length, redacted: false });
    expect(cdn!.responseBody).toEqual({ sha256: sha, size: layer.length, redacted: false });
    expect(rec.bodies.has(sha)).toBe(true);
    const gz = await rec.readBodyBuffer(big!.responseBody!.sha256!, 64 << 20);
    expect(gz[0]).toBe(0x1f);
    expect(zlib.gunzipSync(gz).toString('utf8')).toBe(bigText);
    rec.close();
    const tmpDir = path.join(blobDirFor(db), '.tmp');
    expect(fs.existsSync(tmpDir) ? fs.readdirSync(tmpDir) : []).toEqual([]);
  });
});
