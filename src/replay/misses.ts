import { flowUrl } from '../flow/index.js';
import type { Logger } from '../log/index.js';
import { safeText } from '../term/index.js';
import type { Catalog } from './catalog.js';
import { RegistryError, type RegistryErrorCode } from './errors.js';
import { explainMiss, type MissMatcher, type MissRequest } from './explain.js';

/** A request replay could not answer from the recording. */
export interface Miss {
  method: string;
  url: string;
  /** How the request arrived. */
  mode: 'proxy' | 'mirror';
  /** What replay looked the answer up by: tag, digest, manifest selection, blob, CDN path, exact request, regtape endpoint. */
  matcher: MissMatcher;
  /** The one difference that made it a miss, and what to do about it. */
  explanation: string;
  /** Closest recorded request (`METHOD URL (flow N)`), if any. */
  closest: string | null;
  /** Every field in which the request differs from the closest recorded one. */
  differences: string[];
  time: number;
}

/**
 * The one miss path: every answer replay makes up because the recording has none — from
 * proxy or mirror mode, from any matcher, manifest selection included — is counted here,
 * explained, logged, and comes back as the error to send. misses(), --report and --strict
 * read only this.
 */
export class MissBook {
  readonly misses: Miss[] = [];

  constructor(
    private readonly cat: Catalog,
    private readonly log: Logger,
  ) {}

  /**
   * Record a miss. `answer` is what the client gets (default: 404 with `code` and a
   * regtape message); its detail carries the explanation.
   */
  miss(url: string, mode: Miss['mode'], req: MissRequest, code: RegistryErrorCode, answer?: { status: number; message: string }): RegistryError {
    const ex = explainMiss(this.cat, req);
    const miss: Miss = {
      method: req.method,
      url,
      mode,
      matcher: req.matcher,
      explanation: ex.explanation,
      closest: ex.closest ? `${ex.closest.request.method} ${flowUrl(ex.closest.request)} (flow ${ex.closest.id})` : null,
      differences: ex.differences,
      time: Date.now(),
    };
    this.misses.push(miss);
    this.log.warn(safeText(`replay miss: ${miss.method} ${url}: ${miss.explanation}`));
    const message = answer?.message ?? `regtape replay: no recorded response for ${miss.method} ${url}: ${miss.explanation}`;
    return new RegistryError(answer?.status ?? 404, code, message, { explanation: miss.explanation, closest: miss.closest, differences: miss.differences }, {}, true);
  }
}
