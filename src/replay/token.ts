import { randomBytes } from 'node:crypto';
import { generateKeyPair, SignJWT, type CryptoKey, type KeyObject } from 'jose';
import type { FlowRecord, Scope } from '../flow/index.js';

/**
 * Tokens that look like tokens. The recorded token is redacted on disk (`REDACTED-n`), which
 * a client that decodes `exp` cannot parse; replay issues its own JWT instead: the recorded
 * claims (iss, aud, sub, access = the recorded scopes, Docker Hub's extra claims), with
 * iat/nbf = now and exp = now + expires_in, signed (ES256) with a key made for this replay.
 * Registries and clients never verify these (registry-protocol.md §2), and the replay
 * registry does not either.
 */
export class TokenMinter {
  private constructor(
    private readonly key: CryptoKey | KeyObject,
    private readonly kid: string,
  ) {}

  static async create(): Promise<TokenMinter> {
    const { privateKey } = await generateKeyPair('ES256');
    return new TokenMinter(privateKey, `regtape-replay-${randomBytes(6).toString('hex')}`);
  }

  /** A JWT for the recorded token flow `f` (claims decoded while recording), valid for `expiresIn` seconds from now. */
  async mint(f: FlowRecord | null, expiresIn: number, fallbackAccess: Scope[] = []): Promise<string> {
    const recorded = (f?.facts.tokens ?? []).find((t) => t.where.startsWith('response.body'))?.claims ?? null;
    const claims: Record<string, unknown> = { ...(recorded ?? {}) };
    for (const k of ['iat', 'nbf', 'exp', 'jti']) delete claims[k];
    if (!Array.isArray(claims.access)) claims.access = accessOf(f?.registry?.scopesGranted?.length ? f.registry.scopesGranted : fallbackAccess);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: this.kid })
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + expiresIn)
      .setJti(randomBytes(16).toString('hex'))
      .sign(this.key);
  }
}

function accessOf(scopes: Scope[]): Array<{ type: string; name: string; actions: string[] }> {
  return scopes.map((s) => ({ type: s.type, name: s.name, actions: [...s.actions] }));
}

/**
 * The recorded token JSON with replay's token in every field that held one (`token`,
 * `access_token`), `issued_at` = now and `expires_in` as recorded (60 s, clients' minimum,
 * when none was). Not JSON, or no token in it: null (serve as recorded).
 */
export async function tokenBody(recorded: Buffer, mint: (expiresIn: number) => Promise<string>): Promise<Buffer | null> {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(recorded.toString('utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!doc || typeof doc !== 'object' || !('token' in doc || 'access_token' in doc)) return null;
  const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? Math.min(doc.expires_in, 86_400) : 60;
  const jwt = await mint(expiresIn);
  if ('token' in doc) doc.token = jwt;
  if ('access_token' in doc) doc.access_token = jwt;
  doc.expires_in = expiresIn;
  doc.issued_at = new Date().toISOString();
  return Buffer.from(JSON.stringify(doc));
}
