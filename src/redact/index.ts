export { Redactor, KEEP_QUERY, redactBody, redactHeaders, redactTarget, redactUrl, isRedactableType, isTextType, tokenClaims } from './redact.js';
export type { Redacted } from './redact.js';
export { codecFor, codecsFor, redactEncodedBody } from './encoding.js';
export type { Codec } from './encoding.js';
