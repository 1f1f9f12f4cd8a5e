import type { RegistryFacts } from './registry-facts.js';

/**
 * The flow model: plain data, no I/O. A flow is one HTTP exchange (request plus
 * response or error) seen by the proxy. Everything that reaches disk or screen is
 * a `FlowRecord`, which is always already redacted.
 */

/** Header lines in wire order, duplicates kept (dockerd sends six separate Accept lines). */
export type HeaderList = Array<[name: string, value: string]>;

/** Where a flow is in its life. */
export type FlowState =
  /** Request head seen, exchange still running (or the recorder died before it ended). */
  | 'open'
  /** Response fully relayed to the client. */
  | 'complete'
  /** Transport failure before a full response (DNS, TLS, reset, timeout): see `error`. */
  | 'error'
  /** One side went away mid-transfer; byte counts say how far it got. */
  | 'aborted';

/** Epoch milliseconds (fractional). Absent means the moment did not happen (e.g. a reused connection has no connect). */
export interface Timings {
  /** Request head fully received from the client. */
  start: number;
  /** Upstream TCP connection established (only for a new upstream connection). */
  connect?: number;
  /** Upstream TLS handshake finished (only for a new upstream TLS connection). */
  tls?: number;
  /** Request body fully sent upstream. */
  requestSent?: number;
  /** Response head received from upstream. */
  firstByte?: number;
  /** Exchange finished: response fully relayed, or failed. */
  end?: number;
}

/** A reference to a stored body: content-addressed by the sha256 of the stored bytes. */
export interface BodyRef {
  /** sha256 hex of the stored bytes (null for an empty body). */
  sha256: string | null;
  /** Number of stored bytes. */
  size: number;
  /** True when the stored bytes differ from the wire bytes because secrets were replaced. */
  redacted: boolean;
}

export interface RequestHead {
  method: string;
  /** 'http' or 'https' (the scheme the client used toward the origin). */
  scheme: 'http' | 'https';
  /** Origin host as the client addressed it (CONNECT target or Host header). */
  host: string;
  port: number;
  /** Path and query, as sent. */
  target: string;
  httpVersion: string;
  headers: HeaderList;
}

export interface ResponseHead {
  status: number;
  reason: string;
  httpVersion: string;
  headers: HeaderList;
}

/** What redaction found and replaced (never the secret itself). */
export interface RedactionFact {
  /** e.g. 'request.header:authorization', 'response.body:token', 'request.query:verify'. */
  where: string;
  /** The marker that replaced the value. */
  marker: string;
}

/** Claims decoded (not verified) from a bearer token while recording, before redaction. */
export interface TokenFact {
  where: string;
  marker: string;
  /** JWT payload, or null for an opaque token. */
  claims: Record<string, unknown> | null;
}

/** Facts derived while recording; kept with the flow. */
export interface FlowFacts {
  redactions?: RedactionFact[];
  tokens?: TokenFact[];
}

/** A flow as stored and shown: redacted unless the user opted out. */
export interface FlowRecord {
  /** Arrival order in the recording (1, 2, …). */
  id: number;
  /** Random id, stable across copies and merges. */
  uuid: string;
  state: FlowState;
  request: RequestHead;
  requestBody: BodyRef | null;
  response: ResponseHead | null;
  responseBody: BodyRef | null;
  timings: Timings;
  /** Client address as ip:port. */
  clientAddr: string | null;
  /** Upstream address actually connected to, as ip:port. */
  serverAddr: string | null;
  /** Transport error text (e.g. 'ECONNRESET: socket hang up'); null when none. */
  error: string | null;
  /** Bytes of request body that passed through. */
  requestBytes: number;
  /** Bytes of response body that passed through. */
  responseBytes: number;
  facts: FlowFacts;
  /** What the flow is as registry traffic; set by the classifier (null: not classified yet). */
  registry?: RegistryFacts | null;
  /** Marked by the user (TUI `m`). */
  marked?: boolean;
  /** A user's note on the flow. */
  comment?: string | null;
}

/** Case-insensitive lookup of the first header with this name. */
export function getHeader(headers: HeaderList, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const [k, v] of headers) if (k.toLowerCase() === n) return v;
  return undefined;
}

/** All values of a header, in order. */
export function getHeaders(headers: HeaderList, name: string): string[] {
  const n = name.toLowerCase();
  return headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

/** Node's rawHeaders ([k, v, k, v, …]) to a HeaderList. */
export function fromRawHeaders(raw: readonly string[]): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}

/** The URL of a flow's request, e.g. https://registry.test/v2/. Default ports are omitted. */
/** The port a scheme implies (443 for https, else 80). The one place that knows it. */
export function defaultPort(scheme: string): number {
  return scheme === 'https' || scheme === 'https:' ? 443 : 80;
}

/** `host` or `host:port` when the port is not the scheme's default (registry names, Host headers). */
export function hostWithPort(scheme: string, host: string, port: number): string {
  return port === defaultPort(scheme) ? host : `${host}:${port}`;
}

export function flowUrl(r: RequestHead): string {
  const def = defaultPort(r.scheme);
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  // CONNECT's target is the authority itself (host:port), not a path: the URL is just that.
  if (r.method.toUpperCase() === 'CONNECT') return `${r.scheme}://${host}:${r.port}`;
  return `${r.scheme}://${host}${r.port === def ? '' : `:${r.port}`}${r.target}`;
}
