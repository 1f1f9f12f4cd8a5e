/**
 * Flow factories for tests (mitmproxy's `tflow` idea): a complete, valid FlowRecord with sensible defaults,
 * changed only where a test cares.
 *
 *   makeFlow()                                                   GET https://registry.test/v2/ → 200, flow 1
 *   makeFlow({ url: 'https://cdn.test/blob?x=1', response: { status: 307 } })
 *   makeFlow({ request: { method: 'HEAD' }, response: null, registry: { role: 'blob' } })
 */
import type { FlowRecord, RegistryFacts, RequestHead, ResponseHead } from '../../src/flow/index.js';
import { emptyFacts } from '../../src/registry/index.js';

/** Registry facts of an unremarkable flow ('other', nothing known), with `p` on top. */
export function makeFacts(p: Partial<RegistryFacts> = {}): RegistryFacts {
  return {
    ...emptyFacts(),
    ...p,
  };
}

export interface FlowOverrides extends Partial<Omit<FlowRecord, 'request' | 'response' | 'registry'>> {
  /**
   * Absolute URL: sets the request's scheme, host, port (the scheme's default when none is given) and
   * target (the text after the authority, as written). Fields in `request` win over it.
   */
  url?: string;
  /** Merged over the default request head (GET https://registry.test:443/v2/, HTTP/1.1, no headers). */
  request?: Partial<RequestHead>;
  /** Merged over the default response head (200 OK, HTTP/1.1, no headers); null: no response. */
  response?: Partial<ResponseHead> | null;
  /** Completed by {@link makeFacts}; null: classified as not registry traffic; absent: not classified. */
  registry?: Partial<RegistryFacts> | null;
}

function fromUrl(url: string): Partial<RequestHead> {
  const u = new URL(url);
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const target = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(url)?.[1] ?? '';
  return { scheme, host: u.hostname, port: u.port ? Number(u.port) : scheme === 'https' ? 443 : 80, target: target || '/' };
}

/** A complete flow: `o` over the defaults (flow 1, complete, GET https://registry.test/v2/ → 200 OK). */
export function makeFlow(o: FlowOverrides = {}): FlowRecord {
  const { url, request, response, registry, ...rest } = o;
  const id = o.id ?? 1;
  const flow: FlowRecord = {
    id,
    uuid: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
    state: 'complete',
    request: { method: 'GET', scheme: 'https', host: 'registry.test', port: 443, target: '/v2/', httpVersion: '1.1', headers: [], ...(url ? fromUrl(url) : {}), ...request },
    requestBody: null,
    response: response === null ? null : { status: 200, reason: 'OK', httpVersion: '1.1', headers: [], ...response },
    responseBody: null,
    timings: { start: 0, end: 1 },
    clientAddr: null,
    serverAddr: null,
    error: null,
    requestBytes: 0,
    responseBytes: 0,
    facts: {},
    ...rest,
  };
  if (registry !== undefined) flow.registry = registry === null ? null : makeFacts(registry);
  return flow;
}
