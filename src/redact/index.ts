export { Redactor, KEEP_QUERY, redactBody, redactHeaders, redactTarget, redactUrl, isRedactableType, tokenClaims } from './redact.js';
export type { Redacted } from './redact.js';
export { codecFor, redactEncodedBody } from './encoding.js';
export type { Codec } from './encoding.js';
