import net from 'node:net';
import { RegtapeError } from '../errors/index.js';

/**
 * `HOST:PORT`, `[v6]:PORT` or `PORT` (host 127.0.0.1) of a --listen / --mirror option, rejecting
 * anything else before anything starts; `flag` names the option in the error.
 */
export function parseListenAddress(s: string, flag = '--listen'): { host: string; port: number } {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(s) ?? /^()(\d{1,5})$/.exec(s);
  if (!m) throw new RegtapeError('bad-argument', `${flag} ${s}: expected HOST:PORT with a numeric port, e.g. 127.0.0.1:8080`);
  const port = Number(m[2]);
  if (port > 65535) throw new RegtapeError('bad-argument', `${flag} ${s}: port ${port} is out of range (0-65535)`);
  if (m[1] && m[1].includes(':') && !net.isIPv6(m[1])) throw new RegtapeError('bad-argument', `${flag} ${s}: ${m[1]} is not an IPv6 address`);
  return { host: m[1] || '127.0.0.1', port };
}
