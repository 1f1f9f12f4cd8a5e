import { Redactor } from '../redact/index.js';
import { Classifier } from '../registry/index.js';
import { Pipeline, type Addon, type AddonFailure } from './addon.js';
import { classifyAddon, digestCheckAddon, redactAddon, tokenFactsAddon } from './addons.js';

/** Bodies that may carry secrets (JSON, forms) are held whole in memory up to this size so the body hooks (redaction) see them. */
export const REDACT_BUFFER_LIMIT = 1 << 20;

export interface ChainOptions {
  /** Store secrets as they came (token claims are still decoded). */
  keepSecrets?: boolean;
  /** The redactor (its markers: the same secret gets the same marker within a run). */
  redactor?: Redactor;
  /** Addons that run before classification (they see redacted flows and may change them). */
  before?: Addon[];
  /** Addons that run after the default ones (flow lines, live views, user addons). */
  after?: Addon[];
  /** An addon failed (not critical): report it; the flow goes on without that addon's work. */
  onFailure?: AddonFailure;
}

/**
 * The default chain, built here and nowhere else: redaction (or, with --keep-secrets,
 * token facts only), classification, digest checks. The recorder, HAR import and merge
 * all run flows through it, so a flow recorded live, imported or merged is described
 * the same way.
 */
export function defaultChain(o: ChainOptions = {}): Pipeline {
  const redactor = o.redactor ?? new Redactor();
  return new Pipeline(
    [o.keepSecrets ? tokenFactsAddon(redactor) : redactAddon(redactor), ...(o.before ?? []), classifyAddon(new Classifier()), digestCheckAddon(), ...(o.after ?? [])],
    o.onFailure,
  );
}
