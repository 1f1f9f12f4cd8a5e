import { createHmac, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { HeaderList, RedactionFact, TokenFact } from '../flow/index.js';

/**
 * Secret redaction, applied before anything reaches disk or screen.
 *
 * A secret is replaced by a short marker `REDACTED-xxxxxxxx`: the same secret gives the
 * same marker within one process (HMAC with a random key that is never stored), so a
 * reader can still see that the token fetched in flow 3 is the one sent in flow 7,
 * while nothing on disk allows checking a guessed password. The shape stays: the
 * scheme of an Authorization header, the user of Basic credentials, JSON and form
 * layout, query parameter names.
 */
export class Redactor {
  private readonly key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.key = key;
  }

  marker(secret: string): string {
    return `REDACTED-${createHmac('sha256', this.key).update(secret).digest('hex').slice(0, 8)}`;
  }
}

/** Query parameters whose values are protocol facts, not secrets (registry-protocol.md §2, §4). */
export const KEEP_QUERY = new Set([
  'scope',
  'service',
  'mount',
  'from',
  'digest',
  'n',
  'last',
  'ns',
  'account',
  'client_id',
  'offline_token',
  'artifactType',
]);

/** Headers whose whole value is a credential (the auth scheme, if any, is kept). */
const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-amz-security-token',
  'x-registry-auth',
  'x-registry-config',
  'x-docker-token',
  'x-auth-token',
  'x-api-key',
  'private-token',
]);

/**
 * Any other header whose name says it holds a credential (X-Csrf-Token, X-Upload-Token,
 * X-Goog-Signature, X-Session-Token, X-Api-Key, …): the whole value is replaced.
 */
const SECRET_HEADER_NAME = /(^|-)(token|secret|password|passwd|signature|sig|api-?key|credentials?|session|auth|cookie)(-|$)/;

/** Parameters of a WWW-Authenticate / Proxy-Authenticate challenge that are protocol facts, not secrets. */
const KEEP_CHALLENGE = new Set(['realm', 'service', 'scope', 'error', 'error_description', 'error_uri', 'charset', 'algorithm', 'qop', 'stale', 'type']);

/** JSON keys (token responses, login bodies) whose string values are secrets. */
const SECRET_JSON_KEYS = new Set(['token', 'access_token', 'refresh_token', 'id_token', 'password', 'client_secret', 'identitytoken', 'secret']);

/** Form fields whose values are secrets (OAuth2 password / refresh grants). */
const SECRET_FORM_KEYS = new Set(['password', 'refresh_token', 'access_token', 'token', 'client_secret', 'code']);

/** Keys that carry bearer tokens, whose claims are worth keeping as facts. */
const TOKEN_JSON_KEYS = new Set(['token', 'access_token', 'id_token']);

export interface Redacted<T> {
  value: T;
  redactions: RedactionFact[];
  tokens: TokenFact[];
}

/** Decode a JWT's payload without verification; null for an opaque token. */
export function tokenClaims(token: string): Record<string, unknown> | null {
  try {
    return decodeJwt(token) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * Redact a URL target (path?query): every query value not in KEEP_QUERY is replaced
 * (signed CDN URLs: verify=, sig=, X-Amz-Signature=, …; upload _state=).
 */
export function redactTarget(target: string, r: Redactor, where = 'request.query'): Redacted<string> {
  const q = target.indexOf('?');
  if (q < 0) return { value: target, redactions: [], tokens: [] };
  const redactions: RedactionFact[] = [];
  const parts = target
    .slice(q + 1)
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      if (eq < 0) return kv;
      const name = kv.slice(0, eq);
      const value = kv.slice(eq + 1);
      let decodedName = name;
      try {
        decodedName = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // keep raw
      }
      if (value === '' || KEEP_QUERY.has(decodedName)) return kv;
      const marker = r.marker(value);
      redactions.push({ where: `${where}:${decodedName}`, marker });
      return `${name}=${marker}`;
    });
  return { value: `${target.slice(0, q)}?${parts.join('&')}`, redactions, tokens: [] };
}

/** Redact userinfo of an absolute URL: `scheme://user:PASSWORD@` keeps the user, `scheme://TOKEN@` is replaced. */
function redactUserinfo(url: string, r: Redactor, where: string): Redacted<string> {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*)@/i.exec(url);
  if (!m) return { value: url, redactions: [], tokens: [] };
  const info = m[2]!;
  const colon = info.indexOf(':');
  const secret = colon >= 0 ? info.slice(colon + 1) : info;
  if (!secret) return { value: url, redactions: [], tokens: [] };
  const marker = r.marker(secret);
  const kept = colon >= 0 ? `${info.slice(0, colon)}:${marker}` : marker;
  return { value: `${m[1]}${kept}@${url.slice(m[0].length)}`, redactions: [{ where: `${where}:userinfo`, marker }], tokens: [] };
}

/** Redact an absolute URL (e.g. a 307 Location to a signed CDN URL): userinfo and query values. */
export function redactUrl(url: string, r: Redactor, where: string): Redacted<string> {
  const u = redactUserinfo(url, r, where);
  const q = redactQueryOfUrl(u.value, r, where);
  return { value: q.value, redactions: [...u.redactions, ...q.redactions], tokens: [] };
}

function redactQueryOfUrl(url: string, r: Redactor, where: string): Redacted<string> {
  const q = url.indexOf('?');
  if (q < 0) return { value: url, redactions: [], tokens: [] };
  const hashAt = url.indexOf('#', q);
  const tail = hashAt >= 0 ? url.slice(hashAt) : '';
  const base = hashAt >= 0 ? url.slice(0, hashAt) : url;
  const res = redactTarget(base, r, where);
  return { ...res, value: res.value + tail };
}

function redactCredentialValue(value: string, r: Redactor, where: string): Redacted<string> {
  const redactions: RedactionFact[] = [];
  const tokens: TokenFact[] = [];
  const m = /^(\S+)\s+(.*)$/.exec(value);
  if (!m) {
    const marker = r.marker(value);
    redactions.push({ where, marker });
    return { value: marker, redactions, tokens };
  }
  const scheme = m[1]!;
  const cred = m[2]!;
  if (scheme.toLowerCase() === 'basic') {
    // Keep the user, replace the password; stays valid base64 "user:password".
    let decoded = '';
    try {
      decoded = Buffer.from(cred, 'base64').toString('utf8');
    } catch {
      decoded = '';
    }
    const colon = decoded.indexOf(':');
    if (colon >= 0) {
      const marker = r.marker(decoded.slice(colon + 1));
      redactions.push({ where: `${where}:basic-password`, marker });
      const user = decoded.slice(0, colon);
      return { value: `${scheme} ${Buffer.from(`${user}:${marker}`).toString('base64')}`, redactions, tokens };
    }
  }
  const marker = r.marker(cred);
  redactions.push({ where, marker });
  if (scheme.toLowerCase() === 'bearer') tokens.push({ where, marker, claims: tokenClaims(cred) });
  return { value: `${scheme} ${marker}`, redactions, tokens };
}

function redactCookie(value: string, r: Redactor, where: string, setCookie: boolean): Redacted<string> {
  const redactions: RedactionFact[] = [];
  const sep = setCookie ? ';' : ';';
  const parts = value.split(sep);
  const out = parts.map((p, i) => {
    if (setCookie && i > 0) return p; // attributes (Path, Expires, …)
    const eq = p.indexOf('=');
    if (eq < 0) return p;
    const marker = r.marker(p.slice(eq + 1).trim());
    redactions.push({ where: `${where}:${p.slice(0, eq).trim()}`, marker });
    return `${p.slice(0, eq)}=${marker}`;
  });
  return { value: out.join(sep), redactions, tokens: [] };
}

/**
 * Redact a challenge (`Bearer realm="…",service="…",token="…"`): protocol parameters stay
 * (the realm URL with its query redacted), any other parameter's value is replaced.
 */
function redactChallenge(value: string, r: Redactor, where: string): Redacted<string> {
  const redactions: RedactionFact[] = [];
  const out = value.replace(/([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|[^\s,]*)/g, (whole, name: string, raw: string) => {
    const quoted = raw.startsWith('"');
    const v = quoted ? raw.slice(1, -1) : raw;
    const n = name.toLowerCase();
    if (n === 'realm') {
      const u = redactUrl(v, r, `${where}:realm`);
      redactions.push(...u.redactions);
      return `${name}=${quoted ? `"${u.value}"` : u.value}`;
    }
    if (KEEP_CHALLENGE.has(n) || v === '') return whole;
    const marker = r.marker(v);
    redactions.push({ where: `${where}:${n}`, marker });
    return `${name}=${quoted ? `"${marker}"` : marker}`;
  });
  return { value: out, redactions, tokens: [] };
}

/** Redact request or response headers (order and duplicates kept). */
export function redactHeaders(headers: HeaderList, r: Redactor, side: 'request' | 'response'): Redacted<HeaderList> {
  const redactions: RedactionFact[] = [];
  const tokens: TokenFact[] = [];
  const value: HeaderList = headers.map(([k, v]) => {
    const n = k.toLowerCase();
    const where = `${side}.header:${n}`;
    let res: Redacted<string> | null = null;
    if (SECRET_HEADERS.has(n)) res = redactCredentialValue(v, r, where);
    else if (n === 'cookie') res = redactCookie(v, r, where, false);
    else if (n === 'set-cookie') res = redactCookie(v, r, where, true);
    else if (n === 'location' || n === 'content-location') res = redactUrl(v, r, `${side}.header:${n}`);
    else if (n === 'www-authenticate' || n === 'proxy-authenticate') res = redactChallenge(v, r, where);
    else if (SECRET_HEADER_NAME.test(n)) res = redactCredentialValue(v, r, where);
    if (!res) return [k, v];
    redactions.push(...res.redactions);
    tokens.push(...res.tokens);
    return [k, res.value];
  });
  return { value, redactions, tokens };
}

/** Is this content type one whose bodies may carry secrets we know how to find? */
export function isRedactableType(contentType: string | undefined): 'json' | 'form' | null {
  if (!contentType) return null;
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  if (t === 'application/x-www-form-urlencoded') return 'form';
  if (t === 'application/json' || t.endsWith('+json') || t === 'text/json') return 'json';
  return null;
}

/**
 * Redact a small body by content type. JSON: string values under secret keys, at any
 * depth; the text is edited in place so the layout stays as sent. Form: secret fields.
 * Bodies that do not parse are returned unchanged.
 */
export function redactBody(body: Buffer, contentType: string | undefined, r: Redactor, side: 'request' | 'response'): Redacted<Buffer> & { changed: boolean } {
  const kind = isRedactableType(contentType) ?? sniff(body, contentType);
  if (kind === 'form') return redactForm(body, r, side);
  if (kind === 'json') {
    const j = redactJson(body, r, side);
    return j.changed || isRedactableType(contentType) ? j : redactText(body, r, side);
  }
  if (kind === 'text') return redactText(body, r, side);
  return { value: body, changed: false, redactions: [], tokens: [] };
}

/** Is this a type whose bodies are text worth searching for signed URLs (html, plain, xml, none)? */
export function isTextType(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  return t.startsWith('text/') || t.endsWith('+xml') || t === 'application/xml';
}

function sniff(body: Buffer, contentType: string | undefined): 'json' | 'form' | 'text' | null {
  if (!isTextType(contentType)) return null;
  // Token servers sometimes answer text/plain; clients sometimes post forms without a type.
  const first = body.subarray(0, 64).toString('utf8').trimStart();
  if (first.startsWith('{')) return 'json';
  if (/^[A-Za-z0-9_.~%+-]+=[^&\s]*(&[A-Za-z0-9_.~%+-]+=[^&\s]*)*\s*$/.test(body.subarray(0, 64 << 10).toString('latin1'))) return 'form';
  return 'text';
}

/** Text bodies (a 307's HTML, error pages): every absolute URL in them is redacted like a Location header. */
function redactText(body: Buffer, r: Redactor, side: string): Redacted<Buffer> & { changed: boolean } {
  const text = body.toString('utf8');
  if (!/https?:\/\//i.test(text) || text.includes('\ufffd')) return { value: body, changed: false, redactions: [], tokens: [] };
  const redactions: RedactionFact[] = [];
  const out = text.replace(/https?:\/\/[^\s"'<>]+/gi, (url) => {
    const escaped = url.includes('&amp;');
    const res = redactUrl(escaped ? url.replace(/&amp;/g, '&') : url, r, `${side}.body:url`);
    redactions.push(...res.redactions);
    return escaped ? res.value.replace(/&/g, '&amp;') : res.value;
  });
  if (!redactions.length) return { value: body, changed: false, redactions: [], tokens: [] };
  return { value: Buffer.from(out, 'utf8'), changed: true, redactions, tokens: [] };
}

function redactJson(body: Buffer, r: Redactor, side: string): Redacted<Buffer> & { changed: boolean } {
  let doc: unknown;
  const text = body.toString('utf8');
  try {
    doc = JSON.parse(text);
  } catch {
    return { value: body, changed: false, redactions: [], tokens: [] };
  }
  const found: Array<{ key: string; value: string }> = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
        if (typeof val === 'string' && val !== '' && SECRET_JSON_KEYS.has(k.toLowerCase())) found.push({ key: k, value: val });
        else walk(val);
      }
    }
  };
  walk(doc);
  if (!found.length) return { value: body, changed: false, redactions: [], tokens: [] };
  const redactions: RedactionFact[] = [];
  const tokens: TokenFact[] = [];
  let out = text;
  let fallback = false;
  const replaced = new Set<string>();
  for (const { key, value } of found) {
    const marker = r.marker(value);
    const where = `${side}.body:${key}`;
    redactions.push({ where, marker });
    if (TOKEN_JSON_KEYS.has(key.toLowerCase())) tokens.push({ where, marker, claims: tokenClaims(value) });
    // The same value under several keys (token and access_token) was replaced everywhere at once.
    if (replaced.has(value)) continue;
    const quoted = JSON.stringify(value);
    if (out.includes(quoted)) {
      out = out.split(quoted).join(JSON.stringify(marker));
      replaced.add(value);
    } else fallback = true;
  }
  if (fallback) {
    // The sender escaped the value differently: re-serialize (layout changes, secrets do not survive).
    const replace = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(replace);
      if (v && typeof v === 'object') {
        return Object.fromEntries(
          Object.entries(v as Record<string, unknown>).map(([k, val]) => [
            k,
            typeof val === 'string' && val !== '' && SECRET_JSON_KEYS.has(k.toLowerCase()) ? r.marker(val) : replace(val),
          ]),
        );
      }
      return v;
    };
    out = JSON.stringify(replace(doc));
  }
  // Dedupe facts for the same value (token and access_token usually hold the same JWT).
  return { value: Buffer.from(out, 'utf8'), changed: true, redactions, tokens: dedupeTokens(tokens) };
}

function dedupeTokens(tokens: TokenFact[]): TokenFact[] {
  const seen = new Set<string>();
  return tokens.filter((t) => (seen.has(t.marker) ? false : (seen.add(t.marker), true)));
}

function redactForm(body: Buffer, r: Redactor, side: string): Redacted<Buffer> & { changed: boolean } {
  const text = body.toString('utf8');
  const redactions: RedactionFact[] = [];
  const tokens: TokenFact[] = [];
  let changed = false;
  const out = text
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      if (eq < 0) return kv;
      let name = kv.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // raw
      }
      const raw = kv.slice(eq + 1);
      if (raw === '' || !SECRET_FORM_KEYS.has(name.toLowerCase())) return kv;
      let value = raw;
      try {
        value = decodeURIComponent(raw.replace(/\+/g, ' '));
      } catch {
        // raw
      }
      const marker = r.marker(value);
      redactions.push({ where: `${side}.form:${name}`, marker });
      changed = true;
      return `${kv.slice(0, eq)}=${marker}`;
    })
    .join('&');
  return { value: changed ? Buffer.from(out, 'utf8') : body, changed, redactions, tokens };
}
