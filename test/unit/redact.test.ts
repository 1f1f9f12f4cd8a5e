import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HeaderList } from '../../src/flow/index.js';
import { redactBody, redactHeaders, redactTarget, redactUrl, Redactor, type Redacted } from '../../src/redact/index.js';

const MARKER = /^REDACTED-[0-9a-f]{8}$/;
const MARKER_G = /REDACTED-[0-9a-f]{8}/g;

/** A registry-style bearer token (HS256 is enough: redaction never verifies). */
let jwt: string;
const claims = {
  access: [{ type: 'repository', name: 'library/alpine', actions: ['pull'] }],
};

beforeAll(async () => {
  jwt = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('auth.registry.test')
    .setSubject('alice')
    .setAudience('registry.test')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode('a-signing-key-of-at-least-32-bytes!!'));
});

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}

function header(res: Redacted<HeaderList>, name: string): string[] {
  return res.value.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

/** Everything a redaction result would put on disk or screen. */
function everything(res: Redacted<unknown>): string {
  const v = res.value;
  const text = Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : JSON.stringify(v);
  return `${text}\n${JSON.stringify(res.redactions)}\n${JSON.stringify(res.tokens)}`;
}

describe('headers', () => {
  it('Authorization Bearer: scheme kept, token replaced, JWT claims kept as facts', () => {
    const r = new Redactor();
    const res = redactHeaders([['Authorization', `Bearer ${jwt}`]], r, 'request');
    const [value] = header(res, 'authorization');
    const [scheme, marker] = value!.split(' ');
    expect(scheme).toBe('Bearer');
    expect(marker).toMatch(MARKER);
    expect(res.redactions).toEqual([{ where: 'request.header:authorization', marker }]);
    expect(res.tokens).toHaveLength(1);
    expect(res.tokens[0]!.marker).toBe(marker);
    expect(res.tokens[0]!.where).toBe('request.header:authorization');
    expect(res.tokens[0]!.claims).toMatchObject({ sub: 'alice', iss: 'auth.registry.test', aud: 'registry.test', access: claims.access });
    expect(everything(res)).not.toContain(jwt);
    expect(everything(res)).not.toContain(jwt.split('.')[2]!); // the signature
  });

  it('Bearer with an opaque token: replaced, claims null', () => {
    const res = redactHeaders([['authorization', 'Bearer opaque-token-0123456789']], new Redactor(), 'request');
    expect(header(res, 'authorization')[0]).toMatch(/^Bearer REDACTED-[0-9a-f]{8}$/);
    expect(res.tokens).toEqual([{ where: 'request.header:authorization', marker: expect.stringMatching(MARKER), claims: null }]);
    expect(everything(res)).not.toContain('opaque-token-0123456789');
  });

  it.each(['Authorization', 'Proxy-Authorization'])('%s Basic: user kept, password replaced, still base64 user:marker', (name) => {
    const password = 'hunter2-p@ss:with:colons';
    const res = redactHeaders([[name, `Basic ${b64(`alice:${password}`)}`]], new Redactor(), 'request');
    const [value] = header(res, name);
    const m = /^Basic ([A-Za-z0-9+/]+=*)$/.exec(value!);
    expect(m).not.toBeNull();
    const decoded = Buffer.from(m![1]!, 'base64').toString('utf8');
    const [user, marker, ...rest] = decoded.split(':');
    expect(user).toBe('alice');
    expect(marker).toMatch(MARKER);
    expect(rest).toEqual([]);
    expect(res.redactions).toEqual([{ where: `request.header:${name.toLowerCase()}:basic-password`, marker }]);
    expect(everything(res)).not.toContain(password);
    expect(everything(res)).not.toContain(b64(`alice:${password}`));
  });

  it('Proxy-Authorization Bearer is redacted like Authorization', () => {
    const res = redactHeaders([['Proxy-Authorization', 'Bearer proxy-secret-xyz']], new Redactor(), 'request');
    expect(header(res, 'proxy-authorization')[0]).toMatch(/^Bearer REDACTED-[0-9a-f]{8}$/);
    expect(everything(res)).not.toContain('proxy-secret-xyz');
  });

  it('an Authorization value without a scheme is replaced whole', () => {
    const res = redactHeaders([['Authorization', 'justatokenvalue']], new Redactor(), 'request');
    expect(header(res, 'authorization')[0]).toMatch(MARKER);
  });

  it('Cookie: every cookie value replaced, names kept', () => {
    const res = redactHeaders([['Cookie', 'session=s3ss10n-value; theme=dark-mode']], new Redactor(), 'request');
    const [value] = header(res, 'cookie');
    const m = /^session=(REDACTED-[0-9a-f]{8}); theme=(REDACTED-[0-9a-f]{8})$/.exec(value!);
    expect(m).not.toBeNull();
    expect(res.redactions.map((x) => x.where)).toEqual(['request.header:cookie:session', 'request.header:cookie:theme']);
    expect(everything(res)).not.toContain('s3ss10n-value');
  });

  it('Set-Cookie: value replaced, attributes kept', () => {
    const attrs = '; Path=/v2/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly; Secure; SameSite=Lax';
    const res = redactHeaders(
      [
        ['Set-Cookie', `session=s3ss10n-value${attrs}`],
        ['Set-Cookie', 'other=0th3r-value; Path=/'],
      ],
      new Redactor(),
      'response',
    );
    const values = header(res, 'set-cookie');
    expect(values).toHaveLength(2);
    expect(values[0]).toMatch(/^session=REDACTED-[0-9a-f]{8}; Path=\/v2\/; Expires=/);
    expect(values[0]!.slice(values[0]!.indexOf(';'))).toBe(attrs);
    expect(values[1]).toMatch(/^other=REDACTED-[0-9a-f]{8}; Path=\/$/);
    expect(everything(res)).not.toContain('s3ss10n-value');
    expect(everything(res)).not.toContain('0th3r-value');
  });

  it('Location with a signed CDN URL: signatures replaced, protocol parameters kept', () => {
    const secrets = { verify: '1730000000-Zm9vYmFyYmF6cXV4', sig: 'c2lnbmF0dXJlLXNlY3JldA', amz: 'f2c1b7a9e8d3' };
    const kept =
      'scope=repository%3Alibrary%2Falpine%3Apull&service=registry.test&digest=sha256%3Aabc123&n=100&last=alpine&mount=sha256%3Adef&from=library%2Fbusybox&ns=docker.io';
    const url = `https://cdn.registry.test/blobs/sha256/ab/data?verify=${secrets.verify}&X-Amz-Signature=${secrets.amz}&sig=${secrets.sig}&${kept}#frag`;
    const res = redactHeaders([['Location', url]], new Redactor(), 'response');
    const [value] = header(res, 'location');
    const u = new URL(value!);
    expect(`${u.origin}${u.pathname}`).toBe('https://cdn.registry.test/blobs/sha256/ab/data');
    expect(u.hash).toBe('#frag');
    for (const name of ['verify', 'X-Amz-Signature', 'sig']) expect(u.searchParams.get(name)).toMatch(MARKER);
    // Kept parameters are byte-for-byte as sent, in order.
    expect(value).toContain(`&${kept}#frag`);
    expect(res.redactions.map((x) => x.where)).toEqual([
      'response.header:location:verify',
      'response.header:location:X-Amz-Signature',
      'response.header:location:sig',
    ]);
    for (const s of Object.values(secrets)) expect(everything(res)).not.toContain(s);
  });

  it('other headers, their order and duplicates are kept', () => {
    const accepts = [
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      'application/json',
    ];
    const headers: HeaderList = [
      ['Host', 'registry.test'],
      ['User-Agent', 'docker/27.0'],
      ...accepts.map((a): [string, string] => ['Accept', a]),
      ['Authorization', 'Bearer abc.def'],
      ['Docker-Distribution-Api-Version', 'registry/2.0'],
    ];
    const res = redactHeaders(headers, new Redactor(), 'request');
    expect(res.value.map(([k]) => k)).toEqual(headers.map(([k]) => k));
    expect(res.value.filter(([k]) => k !== 'Authorization')).toEqual(headers.filter(([k]) => k !== 'Authorization'));
    expect(header(res, 'accept')).toEqual(accepts);
  });
});

describe('request targets', () => {
  it.each([
    ['/v2/lib/alpine/blobs/uploads/5f1c?_state=c2VjcmV0LXN0YXRl&digest=sha256%3Aabc', ['_state'], 'digest=sha256%3Aabc'],
    ['/v2/_catalog?n=100&last=alpine', [], 'n=100&last=alpine'],
    ['/v2/lib/app/blobs/uploads/?mount=sha256%3Adef&from=library%2Fbase', [], 'mount=sha256%3Adef&from=library%2Fbase'],
    ['/v2/lib/alpine/manifests/latest?ns=docker.io', [], 'ns=docker.io'],
    ['/token?scope=repository%3Alib%3Apull&service=registry.test&account=alice', [], 'scope=repository%3Alib%3Apull&service=registry.test&account=alice'],
    ['/blob?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeef&n=1', ['X-Amz-Credential', 'X-Amz-Signature'], 'n=1'],
  ])('%s', (target, redacted, keptPart) => {
    const res = redactTarget(target, new Redactor());
    const u = new URL(res.value, 'https://registry.test');
    expect(u.pathname).toBe(new URL(target, 'https://registry.test').pathname);
    for (const name of redacted) expect(u.searchParams.get(name)).toMatch(MARKER);
    expect(res.value).toContain(keptPart);
    expect(res.redactions.map((x) => x.where)).toEqual(redacted.map((n) => `request.query:${n}`));
    const orig = new URL(target, 'https://registry.test');
    for (const name of redacted) expect(res.value).not.toContain(orig.searchParams.get(name)!);
  });

  it('a target without a query is unchanged', () => {
    expect(redactTarget('/v2/', new Redactor())).toEqual({ value: '/v2/', redactions: [], tokens: [] });
  });

  it('redactUrl leaves a URL without a query unchanged', () => {
    expect(redactUrl('https://registry.test/v2/', new Redactor(), 'x').value).toBe('https://registry.test/v2/');
  });
});

describe('bodies', () => {
  it('JSON token response: token, access_token, refresh_token replaced; layout and other fields kept', () => {
    const body = `{
  "token": "${jwt}",
  "access_token": "${jwt}",
  "refresh_token": "opaque-refresh-0123456789",
  "expires_in": 300,
  "issued_at": "2026-11-27T02:00:00Z",
  "scope": "repository:library/alpine:pull"
}
`;
    const r = new Redactor();
    const res = redactBody(Buffer.from(body), 'application/json', r, 'response');
    expect(res.changed).toBe(true);
    const out = res.value.toString('utf8');
    // Same bytes once markers are put back to a placeholder: layout and other values untouched.
    expect(out.replace(MARKER_G, 'X')).toBe(body.replaceAll(jwt, 'X').replace('opaque-refresh-0123456789', 'X'));
    const doc = JSON.parse(out) as Record<string, unknown>;
    expect(doc.token).toMatch(MARKER);
    expect(doc.access_token).toBe(doc.token);
    expect(doc.refresh_token).toMatch(MARKER);
    expect(doc.refresh_token).not.toBe(doc.token);
    expect(res.redactions.map((x) => x.where).sort()).toEqual(['response.body:access_token', 'response.body:refresh_token', 'response.body:token']);
    // token and access_token hold the same JWT: one token fact, with its claims.
    expect(res.tokens).toHaveLength(1);
    expect(res.tokens[0]!.marker).toBe(doc.token);
    expect(res.tokens[0]!.claims).toMatchObject({ sub: 'alice', access: claims.access });
    expect(everything(res)).not.toContain(jwt);
    expect(everything(res)).not.toContain('opaque-refresh-0123456789');
  });

  it('JSON sniffed without a content type (token server answering text/plain)', () => {
    const body = '{"token":"sniffed-secret-value","expires_in":60}';
    const res = redactBody(Buffer.from(body), 'text/plain', new Redactor(), 'response');
    expect(res.changed).toBe(true);
    expect(res.value.toString()).toMatch(/^\{"token":"REDACTED-[0-9a-f]{8}","expires_in":60\}$/);
  });

  it('nested JSON: secrets at any depth, in arrays too, other fields untouched', () => {
    const doc = {
      auths: { 'registry.test': { username: 'alice', password: 'nested-pa55word', identitytoken: 'nested-identity-tok' } },
      list: [{ name: 'a', secret: 'array-secret-1' }, { name: 'b', client_secret: 'array-secret-2' }],
      meta: { count: 2, token: '' },
    };
    const body = JSON.stringify(doc, null, 4);
    const res = redactBody(Buffer.from(body), 'application/vnd.example+json', new Redactor(), 'request');
    const out = JSON.parse(res.value.toString()) as typeof doc;
    expect(out.auths['registry.test'].username).toBe('alice');
    expect(out.auths['registry.test'].password).toMatch(MARKER);
    expect(out.auths['registry.test'].identitytoken).toMatch(MARKER);
    expect(out.list.map((x) => x.name)).toEqual(['a', 'b']);
    expect(out.list[0]!.secret).toMatch(MARKER);
    expect(out.list[1]!.client_secret).toMatch(MARKER);
    expect(out.meta).toEqual({ count: 2, token: '' });
    expect(res.value.toString().replace(MARKER_G, 'X')).toBe(
      body.replace('nested-pa55word', 'X').replace('nested-identity-tok', 'X').replace('array-secret-1', 'X').replace('array-secret-2', 'X'),
    );
    for (const s of ['nested-pa55word', 'nested-identity-tok', 'array-secret-1', 'array-secret-2']) expect(everything(res)).not.toContain(s);
  });

  it('JSON with escaped slashes in the token: re-serialized, the secret does not survive', () => {
    const secret = 'ab/cd+ef/gh==';
    const escaped = secret.replaceAll('/', '\\/');
    const body = `{"token": "${escaped}", "access_token": "${escaped}", "expires_in": 300, "note": "a\\/b"}`;
    const res = redactBody(Buffer.from(body), 'application/json', new Redactor(), 'response');
    expect(res.changed).toBe(true);
    const out = res.value.toString();
    expect(out).not.toContain(escaped);
    expect(everything(res)).not.toContain(secret);
    expect(everything(res)).not.toContain('ab\\/cd');
    const doc = JSON.parse(out) as Record<string, unknown>;
    expect(doc.token).toMatch(MARKER);
    expect(doc.access_token).toBe(doc.token);
    expect(doc.expires_in).toBe(300);
    expect(doc.note).toBe('a/b');
  });

  it('form body (password grant): password replaced, username, grant_type, scope kept', () => {
    const body = 'grant_type=password&username=alice&password=s3cr%26t+pass&scope=repository%3Alib%3Apull&service=registry.test&client_id=docker';
    const res = redactBody(Buffer.from(body), 'application/x-www-form-urlencoded; charset=utf-8', new Redactor(), 'request');
    expect(res.changed).toBe(true);
    const p = new URLSearchParams(res.value.toString());
    expect(p.get('password')).toMatch(MARKER);
    expect(p.get('grant_type')).toBe('password');
    expect(p.get('username')).toBe('alice');
    expect(p.get('scope')).toBe('repository:lib:pull');
    expect(res.value.toString().replace(MARKER_G, 'X')).toBe(body.replace('s3cr%26t+pass', 'X'));
    expect(res.redactions.map((x) => x.where)).toEqual(['request.form:password']);
    expect(everything(res)).not.toContain('s3cr%26t');
    expect(everything(res)).not.toContain('s3cr&t');
  });

  it('form body (refresh grant): refresh_token replaced', () => {
    const body = 'grant_type=refresh_token&refresh_token=form-refresh-secret&scope=repository%3Alib%3Apush&client_id=docker';
    const res = redactBody(Buffer.from(body), 'application/x-www-form-urlencoded', new Redactor(), 'request');
    const p = new URLSearchParams(res.value.toString());
    expect(p.get('refresh_token')).toMatch(MARKER);
    expect(p.get('grant_type')).toBe('refresh_token');
    expect(p.get('scope')).toBe('repository:lib:push');
    expect(p.get('client_id')).toBe('docker');
    expect(everything(res)).not.toContain('form-refresh-secret');
  });

  it.each([
    ['binary layer', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x7b, 0x22, 0x74, 0x6f, 0x6b, 0x65, 0x6e]), 'application/octet-stream'],
    ['plain text', Buffer.from('token=abc but not a form'), 'text/plain'],
    ['invalid JSON', Buffer.from('{"token": "unterminated'), 'application/json'],
    ['JSON without secrets', Buffer.from('{"schemaVersion":2,"layers":[]}'), 'application/vnd.oci.image.manifest.v1+json'],
    ['form without secrets', Buffer.from('grant_type=client_credentials&scope=x'), 'application/x-www-form-urlencoded'],
    ['empty', Buffer.alloc(0), 'application/json'],
  ])('%s is returned unchanged', (_name, body, type) => {
    const copy = Buffer.from(body);
    const res = redactBody(body, type, new Redactor(), 'response');
    expect(res.changed).toBe(false);
    expect(res.value.equals(copy)).toBe(true);
    expect(res.redactions).toEqual([]);
    expect(res.tokens).toEqual([]);
  });
});

describe('markers', () => {
  it('the same secret gets the same marker everywhere within one Redactor', () => {
    const r = new Redactor();
    const secret = 'shared-secret-value-42';
    const h = redactHeaders([['Authorization', `Bearer ${secret}`]], r, 'request');
    const b = redactBody(Buffer.from(JSON.stringify({ token: secret })), 'application/json', r, 'response');
    const q = redactTarget(`/x?sig=${secret}`, r);
    const markers = [h.redactions[0]!.marker, b.redactions[0]!.marker, q.redactions[0]!.marker];
    expect(markers[0]).toMatch(MARKER);
    expect(new Set(markers).size).toBe(1);
    // ... and a different secret gets a different one.
    const other = redactHeaders([['Authorization', 'Bearer another-secret']], r, 'request');
    expect(other.redactions[0]!.marker).not.toBe(markers[0]);
  });

  it('different Redactors give different markers for the same secret', () => {
    const secret = 'shared-secret-value-42';
    const markers = Array.from({ length: 5 }, () => redactHeaders([['Authorization', `Bearer ${secret}`]], new Redactor(), 'request').redactions[0]!.marker);
    expect(new Set(markers).size).toBe(5);
  });

  it('the secret never appears in any output, across every redaction kind', () => {
    const secret = 'Zx9-never-leak-Q7';
    const r = new Redactor();
    const outputs = [
      redactHeaders(
        [
          ['Authorization', `Bearer ${secret}`],
          ['Proxy-Authorization', `Basic ${b64(`bob:${secret}`)}`],
          ['Cookie', `s=${secret}`],
          ['Set-Cookie', `s=${secret}; Path=/`],
          ['Location', `https://cdn.test/x?verify=${secret}&X-Amz-Signature=${secret}&sig=${secret}`],
          ['Content-Location', `/y?token=${secret}`],
          ['X-Registry-Auth', secret],
        ],
        r,
        'response',
      ),
      redactTarget(`/v2/x?_state=${secret}&token=${secret}`, r),
      redactBody(Buffer.from(JSON.stringify({ token: secret, a: { access_token: secret, refresh_token: secret } })), 'application/json', r, 'response'),
      redactBody(Buffer.from(`{"token":"${secret.replace('-', '\\u002d')}"}`), 'application/json', r, 'response'),
      redactBody(Buffer.from(`password=${secret}&refresh_token=${secret}&access_token=${secret}`), 'application/x-www-form-urlencoded', r, 'request'),
    ];
    for (const res of outputs) {
      expect(res.redactions.length).toBeGreaterThan(0);
      expect(everything(res)).not.toContain(secret);
    }
  });
});
