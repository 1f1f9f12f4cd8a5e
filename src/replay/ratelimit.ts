import type { HeaderList } from '../flow/index.js';
import { getHeader } from '../flow/index.js';
import { RegistryError } from './errors.js';

/**
 * `--ratelimit-countdown [N]`: Docker Hub's pull rate limit, simulated so a client's handling
 * of it can be tested. Every manifest GET (a "pull" for Hub; HEAD does not count) takes one
 * from `ratelimit-remaining`, starting at N or at the first recorded value; answers carry the
 * running value in Hub's `N;w=SECONDS` form; at zero a GET gets Hub's 429 TOOMANYREQUESTS
 * with `Retry-After` (the window).
 */
export class RateLimit {
  private remaining: number | null;
  private window = 21_600;
  private limit: string | null = null;

  constructor(start: number | null) {
    this.remaining = start;
  }

  /** Learn the starting value and window from a recorded manifest answer (the first one wins). */
  learn(headers: HeaderList): void {
    const rem = getHeader(headers, 'ratelimit-remaining');
    const lim = getHeader(headers, 'ratelimit-limit');
    if (lim && this.limit === null) this.limit = lim;
    const m = rem ? /^\s*(\d+)\s*(?:;\s*w=(\d+))?/.exec(rem) : null;
    if (!m) return;
    if (this.remaining === null) this.remaining = Number(m[1]);
    if (m[2]) this.window = Number(m[2]);
  }

  /** Count a manifest request: the header values to send, or the 429 to answer with. */
  take(method: string): Record<string, string> | RegistryError {
    const left = this.remaining ?? 100;
    const headers = { 'ratelimit-limit': this.limit ?? `${left};w=${this.window}`, 'ratelimit-remaining': `${Math.max(0, left - 1)};w=${this.window}` };
    if (method !== 'GET') return { ...headers, 'ratelimit-remaining': `${left};w=${this.window}` };
    if (left <= 0) {
      return new RegistryError(429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit', null, {
        ...headers,
        'ratelimit-remaining': `0;w=${this.window}`,
        'retry-after': String(this.window),
      });
    }
    this.remaining = left - 1;
    return headers;
  }
}
