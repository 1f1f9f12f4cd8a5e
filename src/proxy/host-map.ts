import net from 'node:net';
import { RegtapeError } from '../errors/index.js';

/** One `--map HOST[:PORT]=ADDR:PORT` rule. */
export interface HostMapRule {
  host: string;
  /** Only requests to this port match; undefined matches every port. */
  port?: number;
  toHost: string;
  toPort: number;
}

function splitHostPort(s: string, what: string, spec: string): { host: string; port?: number } {
  let host = s;
  let port: string | undefined;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) throw new RegtapeError('bad-map', `--map ${spec}: unclosed '[' in ${what}`);
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest) {
      if (!rest.startsWith(':')) throw new RegtapeError('bad-map', `--map ${spec}: expected ':PORT' after ']' in ${what}`);
      port = rest.slice(1);
    }
  } else {
    const i = s.lastIndexOf(':');
    if (i >= 0 && s.indexOf(':') === i) {
      host = s.slice(0, i);
      port = s.slice(i + 1);
    }
  }
  if (!host) throw new RegtapeError('bad-map', `--map ${spec}: empty host in ${what}`);
  if (port === undefined) return { host: host.toLowerCase() };
  const n = Number(port);
  if (!/^\d+$/.test(port) || n < 1 || n > 65535) throw new RegtapeError('bad-map', `--map ${spec}: bad port '${port}' in ${what} (1-65535)`);
  return { host: host.toLowerCase(), port: n };
}

/**
 * Parse `HOST[:PORT]=ADDR:PORT`, e.g. `registry.test=127.0.0.1:5000` or
 * `registry.test:443=127.0.0.1:5443`. Errors say what was expected.
 */
export function parseMapRule(spec: string): HostMapRule {
  const eq = spec.indexOf('=');
  if (eq < 0) throw new RegtapeError('bad-map', `--map ${spec}: expected HOST[:PORT]=ADDR:PORT, e.g. registry.test=127.0.0.1:5000`);
  const from = splitHostPort(spec.slice(0, eq).trim(), 'HOST', spec);
  const to = splitHostPort(spec.slice(eq + 1).trim(), 'ADDR:PORT', spec);
  if (to.port === undefined) throw new RegtapeError('bad-map', `--map ${spec}: the target needs a port, e.g. ${to.host}:443`);
  if (!net.isIP(to.host) && !/^[a-z0-9.-]+$/i.test(to.host)) throw new RegtapeError('bad-map', `--map ${spec}: '${to.host}' is not an address or host name`);
  return { host: from.host, port: from.port, toHost: to.host, toPort: to.port };
}

/** Routes hostnames to other addresses; SNI, Host and certificate checks keep the original name. */
export class HostMap {
  constructor(readonly rules: readonly HostMapRule[] = []) {}

  static parse(specs: readonly string[]): HostMap {
    return new HostMap(specs.map(parseMapRule));
  }

  /** Where to connect for host:port (the rule with a port wins over a host-only rule). */
  resolve(host: string, port: number): { host: string; port: number; mapped: boolean } {
    const h = host.toLowerCase();
    const exact = this.rules.find((r) => r.host === h && r.port === port);
    const any = exact ?? this.rules.find((r) => r.host === h && r.port === undefined);
    return any ? { host: any.toHost, port: any.toPort, mapped: true } : { host, port, mapped: false };
  }
}
