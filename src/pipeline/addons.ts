import { getHeader, type RequestHead, type TokenFact } from '../flow/index.js';
import { redactEncodedBody, redactHeaders, redactTarget, type Redactor, tokenClaims } from '../redact/index.js';
import { checkDigests, type Classifier } from '../registry/index.js';
import type { Addon } from './addon.js';

/**
 * Secrets out before anything is written: Authorization and cookies, signed-URL query
 * values, token and password fields of JSON and form bodies. Token claims are decoded
 * first and kept as facts. Critical: if it fails, the flow fails rather than leak.
 */
export function redactAddon(redactor: Redactor): Addon {
  return {
    name: 'redact',
    critical: true,
    requestHead(ctx) {
      const h = redactHeaders(ctx.request.headers, redactor, 'request');
      const t = redactTarget(ctx.request.target, redactor);
      ctx.request.headers = h.value;
      ctx.request.target = t.value;
      ctx.facts.redactions.push(...h.redactions, ...t.redactions);
      ctx.facts.tokens.push(...h.tokens, ...t.tokens);
    },
    responseHead(ctx) {
      const h = redactHeaders(ctx.response.headers, redactor, 'response');
      ctx.response.headers = h.value;
      ctx.facts.redactions.push(...h.redactions);
      ctx.facts.tokens.push(...h.tokens);
    },
    body(ctx) {
      const r = redactEncodedBody(ctx.bytes, ctx.contentType, ctx.contentEncoding, redactor, ctx.side);
      ctx.facts.redactions.push(...r.redactions);
      ctx.facts.tokens.push(...r.tokens);
      return r.changed ? r.value : undefined;
    },
  };
}

/**
 * `--keep-secrets`: nothing is redacted, but token claims are still decoded (bearer
 * headers, token response bodies) so classification sees scopes. Markers are empty.
 */
export function tokenFactsAddon(redactor: Redactor): Addon {
  return {
    name: 'token-facts',
    requestHead(ctx) {
      const auth = getHeader(ctx.request.headers, 'authorization');
      const m = auth ? /^bearer\s+(\S+)/i.exec(auth) : null;
      if (m) ctx.facts.tokens.push({ where: 'request.header:authorization', marker: '', claims: tokenClaims(m[1]!) });
    },
    body(ctx) {
      const r = redactEncodedBody(ctx.bytes, ctx.contentType, ctx.contentEncoding, redactor, ctx.side);
      ctx.facts.tokens.push(...r.tokens.map((t): TokenFact => ({ ...t, marker: '' })));
    },
  };
}

/**
 * Token claims a source already knew (a HAR exported from a redacted recording carries
 * only markers, with the claims in `_regtape.tokens`): fill claims the flow lacks.
 */
export function knownClaimsAddon(known: (marker: string) => TokenFact['claims'] | undefined): Addon {
  return {
    name: 'known-claims',
    flowFinished({ flow }) {
      const tokens = flow.facts.tokens;
      if (!tokens) return;
      flow.facts.tokens = tokens.map((t) => (t.claims === null && known(t.marker) ? { ...t, claims: known(t.marker)! } : t));
    },
  };
}

/** Registry facts: role, registry, repository, reference, scopes, CDN attribution (stateful: learns realms and redirects in order). */
export function classifyAddon(classifier: Classifier): Addon {
  return {
    name: 'classify',
    flowFinished(ctx) {
      ctx.flow.registry = classifier.describe(ctx.flow, { requestBody: ctx.bodies.request });
    },
  };
}

/** Digest checks of manifests and blobs: the body's sha256 against the URL and Docker-Content-Digest. */
export function digestCheckAddon(): Addon {
  return {
    name: 'digest-check',
    flowFinished(ctx) {
      if (ctx.flow.registry) checkDigests(ctx.flow, ctx.flow.registry, ctx.flow.responseBody ?? ctx.described.response);
    },
  };
}

/** A request head for error messages: `GET host/path`. */
export function describeRequest(r: Pick<RequestHead, 'method' | 'host' | 'target'>): string {
  return `${r.method} ${r.host}${r.target.length > 100 ? `${r.target.slice(0, 97)}...` : r.target}`;
}
