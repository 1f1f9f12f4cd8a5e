import type { FlowRecord, RequestHead } from '../flow/index.js';
import { flowUrl } from '../flow/index.js';
import type { RegistryFacts } from '../flow/index.js';

/** What a filter looks at: one flow plus what regtape and the user know about it. */
export interface FilterSubject {
  flow: FlowRecord;
  registry: RegistryFacts | null;
  marked?: boolean;
  comment?: string;
  /** Lazily decoded bodies (utf-8 text, may be null when absent/too big/binary). */
  requestBody?(): string | null;
  responseBody?(): string | null;
}

/** A parsed filter: call it on a subject. */
export interface Filter {
  (s: FilterSubject): boolean;
  /** The expression it was parsed from, verbatim. */
  readonly source: string;
  /** True when some term reads a body (`~b`, `~bq`, `~bs`): callers may skip decoding bodies otherwise. */
  readonly usesBody: boolean;
}

/** One compiled term. */
export type Predicate = (s: FilterSubject) => boolean;

/**
 * Scratch state of one parsed filter, shared by its terms during one call and reset
 * before the next: `~u` builds the URL string at most once per call, and only when a
 * `~u` term (or a bare regex) is actually reached.
 */
export class UrlMemo {
  private req: RequestHead | null = null;
  private url = '';

  reset(): void {
    this.req = null;
  }

  of(req: RequestHead): string {
    if (req !== this.req) {
      this.url = flowUrl(req);
      this.req = req;
    }
    return this.url;
  }
}
