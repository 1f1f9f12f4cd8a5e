/**
 * Loop detection: is host:port this proxy itself? A request addressed to the proxy's own
 * port (on any local address: 127.x, ::1, 0.0.0.0, ::, the machine's names and interface
 * addresses) would be forwarded to ourselves, again and again, until the disk fills.
 * Names are checked before connecting; what a name resolves to is checked in the DNS
 * lookup, so `localtest.me`-style names that point back here are caught too.
 */
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';

export const LOOP_CODE = 'ELOOPSELF';

function isWildcard(a: string): boolean {
  return a === '0.0.0.0' || a === '::' || a === '::0' || a === '0:0:0:0:0:0:0:0';
}

function isLoopback(a: string): boolean {
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return /^127\./.test(v4) || a === '::1' || a === '0:0:0:0:0:0:0:1';
}

export class SelfAddress {
  private readonly names: Set<string>;
  private readonly interfaces: Set<string>;

  private readonly listenHost: string;

  constructor(
    listenHost: string,
    readonly port: number,
  ) {
    this.listenHost = listenHost.toLowerCase() === 'localhost' ? '127.0.0.1' : listenHost;
    const hn = os.hostname().toLowerCase();
    this.names = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback', hn, hn.split('.')[0]!]);
    this.interfaces = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) this.interfaces.add(i.address.toLowerCase());
  }

  /** Does a connection to this IP address reach our listener? */
  private addressIsSelf(a: string): boolean {
    let addr = a.toLowerCase().replace(/^\[|\]$/g, '');
    if (addr.startsWith('::ffff:') && net.isIPv4(addr.slice(7))) addr = addr.slice(7);
    const listen = this.listenHost.toLowerCase();
    if (isWildcard(listen)) return isWildcard(addr) || isLoopback(addr) || this.interfaces.has(addr);
    if (addr === listen) return true;
    // A connection to the wildcard address goes to the loopback interface.
    if (addr === '0.0.0.0') return listen === '127.0.0.1';
    if (isWildcard(addr)) return listen === '::1';
    return false;
  }

  /**
   * Is host:port this proxy? IP literals are decided here; names (localhost, the machine's
   * name, anything resolving back here) are caught by `lookupFor` when they resolve.
   */
  isSelf(host: string, port: number): boolean {
    if (port !== this.port) return false;
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    return net.isIP(h) ? this.addressIsSelf(h) : false;
  }

  /** Is `host` one of this machine's own names or addresses (a client talking to the proxy as if it were a server)? */
  isOwnName(host: string, port: number): boolean {
    if (port !== this.port) return false;
    const h = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
    return this.isSelf(h, port) || this.names.has(h) || h.endsWith('.localhost') || (net.isIP(h) !== 0 && (isLoopback(h) || this.interfaces.has(h)));
  }

  /** A `lookup` for http.request that fails with LOOP_CODE when the name resolves to this proxy. */
  lookupFor(port: number): net.LookupFunction {
    return ((hostname: string, options: dns.LookupOptions, cb: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void) => {
      dns.lookup(hostname, options, (err, address, family) => {
        if (err) return cb(err, address, family);
        const all = Array.isArray(address) ? address : [{ address, family }];
        if (port === this.port && all.some((a) => this.addressIsSelf(a.address))) {
          return cb(Object.assign(new Error(`${hostname} resolves to this proxy`), { code: LOOP_CODE }), address, family);
        }
        cb(null, address, family);
      });
    }) as net.LookupFunction;
  }

  /** The sentence a 508 answer carries. */
  explain(host: string, port: number): string {
    return `loop detected: ${host}:${port} is this proxy itself (listening on ${this.listenHost}:${this.port}); forwarding it would send the request back here forever. Point the client at the registry, not at the proxy, and check --map`;
  }
}
