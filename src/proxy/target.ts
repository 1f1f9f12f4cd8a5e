/**
 * Strict parsing of where a client wants to go: CONNECT authorities, absolute-form URLs of
 * plain-HTTP proxy requests and Host headers. Anything odd (a non-numeric or out-of-range
 * port, userinfo, an empty or bracket-broken host, a scheme other than http) is refused
 * with a sentence for a 400 answer, before it can reach the recorder.
 */

export interface HostPort {
  host: string;
  port: number;
}

const REG_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})$/;
const IPV6 = /^[0-9a-fA-F:.]+(?:%[A-Za-z0-9._~-]+)?$/;

/** `host`, `host:port`, `[v6]` or `[v6]:port` (port required unless `defaultPort` is given); null if malformed. */
export function parseHostPort(s: string | undefined, defaultPort?: number): HostPort | null {
  if (!s || s.length > 270) return null;
  let host: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
    if (!m || !IPV6.test(m[1]!) || !m[1]!.includes(':')) return null;
    host = m[1]!;
    portText = m[2];
  } else {
    const m = /^([^:]*)(?::(.*))?$/.exec(s);
    if (!m || !REG_NAME.test(m[1]!) || m[1]!.includes('..')) return null;
    host = m[1]!.replace(/\.$/, '');
    portText = m[2];
  }
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) return null;
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
  }
  if (port < 1 || port > 65535) return null;
  return { host: host.toLowerCase(), port };
}

/** Parse a CONNECT authority `host:port` / `[v6]:port`; null if malformed. */
export function parseAuthority(s: string | undefined): HostPort | null {
  return parseHostPort(s, undefined);
}

export type ProxyTarget = { ok: true; host: string; port: number; path: string } | { ok: false; reason: string };

/** Printable (and shortened) form of what the client sent, for error answers; userinfo never echoed. */
function shown(s: string): string {
  return JSON.stringify(s.replace(/\/\/[^/?#]*@/, '//…@').slice(0, 200));
}

/**
 * The target of a plain-HTTP proxy request: `rawUrl` is the request-target as received
 * (absolute-form `http://host[:port]/path`, or origin-form `/path` with a Host header).
 */
export function parseProxyTarget(rawUrl: string, hostHeader: string | undefined): ProxyTarget {
  const abs = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s.exec(rawUrl);
  if (abs) {
    const scheme = abs[1]!.toLowerCase();
    if (scheme !== 'http') {
      return { ok: false, reason: `cannot proxy ${shown(rawUrl)}: only http:// URLs are forwarded this way; https goes through CONNECT (set HTTPS_PROXY)` };
    }
    if (abs[2]!.includes('@')) {
      return { ok: false, reason: `refusing ${shown(rawUrl)}: a user name and password in the URL are not forwarded; send an Authorization header instead` };
    }
    const hp = parseHostPort(abs[2]!, 80);
    if (!hp) return { ok: false, reason: `bad host or port in ${shown(rawUrl)} (expected http://HOST[:PORT]/PATH with PORT 1-65535)` };
    const rest = abs[3]!;
    const path = rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
    if (!path.startsWith('/')) return { ok: false, reason: `bad path in ${shown(rawUrl)}` };
    return { ok: true, ...hp, path };
  }
  if (!rawUrl.startsWith('/')) return { ok: false, reason: `bad request target ${shown(rawUrl)} (expected http://HOST[:PORT]/PATH)` };
  if (hostHeader === undefined) return { ok: false, reason: 'no Host header and no absolute URL: set HTTP_PROXY/HTTPS_PROXY in the client, not the proxy as a server' };
  const hp = parseHostPort(hostHeader, 80);
  if (!hp) return { ok: false, reason: `bad Host header ${shown(hostHeader)} (expected HOST[:PORT] with PORT 1-65535)` };
  return { ok: true, ...hp, path: rawUrl };
}
