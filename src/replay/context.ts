import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HeaderList } from '../flow/index.js';
import type { AuthKey } from './answers.js';
import type { RegistryCatalog } from './catalog.js';

/** Where a request arrived: through the proxy (the client named the origin) or at the mirror endpoint. */
export type Arrival = { mode: 'proxy'; scheme: 'http' | 'https'; host: string; port: number } | { mode: 'mirror'; base: string };

/** One request being answered, parsed once. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  at: Arrival;
  method: string;
  path: string;
  /** Query without `ns=`. */
  query: URLSearchParams;
  headers: HeaderList;
  auth: AuthKey;
  /** Registry key for matching (canonical; for non-registry hosts host[:port]). */
  registry: string;
  reg: RegistryCatalog | undefined;
  /** The full URL the client asked for (for reports). */
  url: string;
}
