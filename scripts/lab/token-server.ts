/**
 * The lab's token server (the `auth.test` of the lab), shaped like Docker Hub's `auth.docker.io/token`.
 *
 * - `GET /token?service=&scope=…&scope=…[&account=][&offline_token=true&client_id=]`, optional Basic auth.
 * - `POST /token` (form): `grant_type=password|refresh_token`, `username`, `password`, `refresh_token`,
 *   `service`, `client_id`, `scope` (space separated), `access_type=offline`.
 *
 * Anonymous callers get `pull` on every repository; `push`, `delete` and `*` need valid credentials. Bad
 * credentials are a 401 with a JSON error. Tokens are RS256 JWTs that distribution 2.8 accepts (`x5c` and
 * libtrust `kid` in the header). Every secret issued or accepted is remembered for leak checks.
 */
import { randomBytes, createPrivateKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT } from 'jose';
import { libtrustKeyId, pemToDerBase64, type CertAndKey } from './certs.js';
import { closeServer, listen } from './server-util.js';

/** One entry of a token's `access` claim. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** One request the token server answered (for test assertions). */
export interface TokenRequestLog {
  time: string;
  method: string;
  url: string;
  status: number;
  /** The authenticated user, or '' for anonymous. */
  subject: string;
  granted: AccessEntry[];
}

/** Options for {@link startTokenServer}. */
export interface TokenServerOptions {
  host: string;
  port: number;
  /** TLS certificate for the HTTPS listener. */
  tls: CertAndKey;
  /** Certificate + key that sign the tokens (distribution's rootcertbundle holds this certificate). */
  signer: CertAndKey;
  /** JWT `iss`; must equal distribution's `auth.token.issuer`. */
  issuer: string;
  /** Expected `service` (JWT `aud`); must equal distribution's `auth.token.service`. */
  service: string;
  user: string;
  password: string;
  /** Token lifetime in seconds (Docker Hub: 300). */
  expiresIn?: number;
  /**
   * Docker Hub's way with repositories that do not exist: no `pull` in the token for them (the
   * registry then answers 401 `insufficient_scope`, which clients show as "pull access denied …
   * repository does not exist"). Default: pull is granted on every repository.
   */
  repositoryExists?: (name: string) => boolean;
}

/** A running token server. */
export interface TokenServer {
  server: Server;
  /** Every secret issued or accepted so far (tokens, refresh tokens, the password, the Basic credential). */
  secrets(): string[];
  requests(): TokenRequestLog[];
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(JSON.stringify(body));
  }
}

interface Credentials {
  user: string;
  password: string;
}

/** Splits `type:name:actions` from both ends (names may contain ':' as in `host:port/repo`). */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function parseBasic(header: string | undefined): Credentials | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (!m?.[1]) throw new HttpError(401, { details: 'malformed Authorization header' });
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) throw new HttpError(401, { details: 'malformed Basic credentials' });
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, { details: 'request body too large' }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Starts the token server; resolves once it listens. */
export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const signKey: KeyObject = createPrivateKey(opts.signer.keyPem);
  const x5c = [pemToDerBase64(opts.signer.certPem)];
  const kid = libtrustKeyId(opts.signer.certPem);
  const expiresIn = opts.expiresIn ?? 300;
  const secrets = new Set<string>([
    opts.password,
    Buffer.from(`${opts.user}:${opts.password}`).toString('base64'),
  ]);
  const refreshTokens = new Map<string, string>(); // refresh token -> user
  const log: TokenRequestLog[] = [];

  function checkCreds(c: Credentials): string {
    if (c.user === opts.user && safeEqual(c.password, opts.password)) return c.user;
    throw new HttpError(401, { details: 'incorrect username or password' }, {
      'WWW-Authenticate': `Basic realm="${opts.service} token server"`,
    });
  }

  function grant(scopes: string[], subject: string): AccessEntry[] {
    const out: AccessEntry[] = [];
    for (const s of scopes) {
      const want = parseScope(s);
      if (!want) throw new HttpError(400, { errors: [{ code: 'SCOPE_INVALID', message: `invalid scope ${s}` }] });
      const allowed =
        want.type === 'repository'
          ? want.actions.filter((a) => (a === 'pull' && (opts.repositoryExists?.(want.name) ?? true)) || (subject !== '' && ['push', 'delete', '*'].includes(a)))
          : want.type === 'registry' && want.name === 'catalog' && subject !== ''
            ? want.actions.filter((a) => a === '*')
            : [];
      if (allowed.length > 0) {
        const prev = out.find((e) => e.type === want.type && e.name === want.name);
        if (prev) prev.actions = [...new Set([...prev.actions, ...allowed])];
        else out.push({ type: want.type, name: want.name, actions: allowed });
      }
    }
    return out;
  }

  async function sign(subject: string, access: AccessEntry[]): Promise<{ token: string; issuedAt: Date }> {
    const now = new Date();
    const iat = Math.floor(now.getTime() / 1000);
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid, x5c })
      .setIssuer(opts.issuer)
      .setAudience(opts.service)
      .setSubject(subject)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + expiresIn)
      .setJti(randomBytes(16).toString('hex'))
      .sign(signKey);
    secrets.add(token);
    return { token, issuedAt: now };
  }

  function checkService(service: string | null): void {
    if (service !== null && service !== '' && service !== opts.service) {
      throw new HttpError(400, {
        errors: [{ code: 'SERVICE_INVALID', message: `unknown service ${JSON.stringify(service)}; want ${opts.service}` }],
      });
    }
  }

  function newRefreshToken(user: string): string {
    const rt = randomBytes(24).toString('base64url');
    refreshTokens.set(rt, user);
    secrets.add(rt);
    return rt;
  }

  async function handleGet(req: IncomingMessage, url: URL): Promise<[number, Record<string, unknown>, string, AccessEntry[]]> {
    checkService(url.searchParams.get('service'));
    const creds = parseBasic(req.headers.authorization);
    const subject = creds ? checkCreds(creds) : '';
    const access = grant(url.searchParams.getAll('scope'), subject);
    const { token, issuedAt } = await sign(subject, access);
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: issuedAt.toISOString(),
    };
    if (subject && url.searchParams.get('offline_token') === 'true') body.refresh_token = newRefreshToken(subject);
    return [200, body, subject, access];
  }

  async function handlePost(req: IncomingMessage): Promise<[number, Record<string, unknown>, string, AccessEntry[]]> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      throw new HttpError(400, { error: 'invalid_request', error_description: 'expected a form body' });
    }
    const form = new URLSearchParams(await readBody(req));
    checkService(form.get('service'));
    if (!form.get('client_id')) throw new HttpError(400, { error: 'invalid_request', error_description: 'missing client_id' });
    let subject: string;
    let refresh: string | undefined;
    switch (form.get('grant_type')) {
      case 'password': {
        subject = checkCreds({ user: form.get('username') ?? '', password: form.get('password') ?? '' });
        if (form.get('access_type') === 'offline') refresh = newRefreshToken(subject);
        break;
      }
      case 'refresh_token': {
        const rt = form.get('refresh_token') ?? '';
        const user = refreshTokens.get(rt);
        if (!user) throw new HttpError(401, { error: 'invalid_grant', error_description: 'unknown refresh token' });
        subject = user;
        refresh = rt;
        break;
      }
      default:
        throw new HttpError(400, { error: 'unsupported_grant_type', error_description: 'want password or refresh_token' });
    }
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    const access = grant(scopes, subject);
    const { token, issuedAt } = await sign(subject, access);
    const body: Record<string, unknown> = {
      access_token: token,
      token,
      scope: scopes.join(' '),
      expires_in: expiresIn,
      issued_at: issuedAt.toISOString(),
    };
    if (refresh) body.refresh_token = refresh;
    return [200, body, subject, access];
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://auth.invalid');
    let status = 500;
    let body: Record<string, unknown> = {};
    let subject = '';
    let granted: AccessEntry[] = [];
    let headers: Record<string, string> = {};
    try {
      if (url.pathname !== '/token') throw new HttpError(404, { details: 'not found' });
      if (req.method === 'GET') [status, body, subject, granted] = await handleGet(req, url);
      else if (req.method === 'POST') [status, body, subject, granted] = await handlePost(req);
      else throw new HttpError(405, { details: 'method not allowed' }, { Allow: 'GET, POST' });
    } catch (e) {
      if (e instanceof HttpError) {
        status = e.status;
        body = e.body;
        headers = e.headers;
      } else {
        status = 500;
        body = { details: String(e) };
      }
    }
    log.push({ time: new Date().toISOString(), method: req.method ?? '', url: req.url ?? '', status, subject, granted });
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      ...headers,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(payload),
      'Strict-Transport-Security': 'max-age=31536000',
      'X-Trace-Id': randomBytes(16).toString('hex'),
    });
    res.end(req.method === 'HEAD' ? undefined : payload);
  }

  const server = createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    });
  });
  await listen(server, opts.host, opts.port, 'token server');
  return {
    server,
    secrets: () => [...secrets],
    requests: () => [...log],
    close: () => closeServer(server),
  };
}
