import type { FlowRecord, Scope, TokenFact } from '../../flow/index.js';
import { line, seg, type Line } from '../lines.js';

/** Tokens seen on one side of a flow (request: Authorization; response: the token body). */
export function tokensOn(f: FlowRecord, side: 'request' | 'response'): TokenFact[] {
  return (f.facts.tokens ?? []).filter((t) => t.where.startsWith(`${side}.`));
}

/** Epoch seconds as an ISO date (UTC, no milliseconds). */
export function isoSeconds(v: unknown): string | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  const d = new Date(v * 1000);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace('.000Z', 'Z');
}

function scopesFrom(claims: Record<string, unknown>): Scope[] {
  const access = claims.access;
  if (!Array.isArray(access)) return [];
  return access
    .filter((a): a is { type?: unknown; name?: unknown; actions?: unknown } => !!a && typeof a === 'object')
    .map((a) => ({
      type: typeof a.type === 'string' ? a.type : '?',
      name: typeof a.name === 'string' ? a.name : '?',
      actions: Array.isArray(a.actions) ? a.actions.map(String) : [],
    }));
}

const SHOWN = new Set(['iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti', 'access']);

function row(label: string, value: string, style: Parameters<typeof seg>[1] = {}): Line {
  return line('  ', seg(label.padEnd(12), { dim: true }), seg(value, style));
}

/**
 * Decoded (not verified) claims of the bearer tokens of one side. The token itself
 * never appears: the recording keeps only its redaction marker.
 */
export function tokenView(f: FlowRecord, side: 'request' | 'response', body: Buffer | null): Line[] {
  const out: Line[] = [];
  const tokens = tokensOn(f, side);
  tokens.forEach((t, i) => {
    if (i) out.push(line(''));
    out.push(line(seg('Bearer token', { bold: true }), seg(`  ${t.where}`, { dim: true })));
    out.push(row('token', t.marker ? `${t.marker} (redacted when recorded)` : '(kept out of this view)', { color: 'yellow' }));
    const c = t.claims;
    if (!c) {
      out.push(row('claims', 'opaque token (not a JWT): no claims to show', { dim: true }));
      return;
    }
    const aud = Array.isArray(c.aud) ? c.aud.join(', ') : c.aud;
    out.push(row('issuer', String(c.iss ?? '—')));
    out.push(row('subject', c.sub === '' ? '(empty: anonymous)' : String(c.sub ?? '—')));
    out.push(row('audience', String(aud ?? '—')));
    const iat = isoSeconds(c.iat);
    const nbf = isoSeconds(c.nbf);
    const exp = isoSeconds(c.exp);
    if (iat) out.push(row('issued', iat));
    if (nbf && c.nbf !== c.iat) out.push(row('not before', nbf));
    if (exp) {
      const life = typeof c.exp === 'number' && typeof c.iat === 'number' ? `  (lifetime ${c.exp - c.iat} s)` : '';
      out.push(row('expires', `${exp}${life}`));
    }
    if (c.jti !== undefined) out.push(row('jwt id', String(c.jti)));
    const scopes = scopesFrom(c);
    out.push(line('  ', seg('scopes granted', { dim: true })));
    if (!scopes.length) out.push(line('    ', seg('none (anonymous or catalog-less token)', { color: 'yellow' })));
    for (const s of scopes) out.push(line('    ', seg(`${s.type}:${s.name}`, { color: 'cyan' }), '  ', seg(s.actions.join(',') || '(no actions)', { color: s.actions.length ? 'green' : 'red' })));
    const other = Object.keys(c).filter((k) => !SHOWN.has(k));
    for (const k of other) out.push(row(k, JSON.stringify(c[k])));
  });
  // Token responses also say how long the client may use it.
  if (side === 'response' && body) {
    try {
      const doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      const extra: Line[] = [];
      if (doc.expires_in !== undefined) extra.push(row('expires_in', `${String(doc.expires_in)} s`));
      if (doc.issued_at !== undefined) extra.push(row('issued_at', String(doc.issued_at)));
      if (typeof doc.refresh_token === 'string') extra.push(row('refresh', `${doc.refresh_token} (refresh token)`, { color: 'yellow' }));
      if (extra.length) out.push(line(''), line(seg('Token response', { bold: true })), ...extra);
    } catch {
      // not JSON: nothing more to say
    }
  }
  return out;
}
