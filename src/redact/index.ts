export { Redactor, KEEP_QUERY, redactBody, redactHeaders, redactTarget, redactUrl, isRedactableType, tokenClaims } from './redact.js';
export type { Redacted } from './redact.js';
