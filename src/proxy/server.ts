import { createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Proxy as MitmProxy, type IContext } from 'http-mitm-proxy';
import type { Authority, LeafFactory } from '../ca/index.js';
import { fromRawHeaders, type HeaderList } from '../flow/index.js';
import type { Logger } from '../log/index.js';
import { forwardExchange, sendProxyError, type Target, type UpstreamConfig } from './forward.js';
import type { HostMap } from './host-map.js';
import type { ExchangeObserver } from './observer.js';
import { SelfAddress } from './self.js';
import { parseAuthority, parseProxyTarget } from './target.js';

export { parseAuthority };

export interface ProxyOptions {
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (0 = any free port). */
  port: number;
  ca: Authority;
  leafs: LeafFactory;
  hostMap: HostMap;
  /** Gets every forwarded exchange (unused when `respond` answers requests). */
  observer: ExchangeObserver;
  log: Logger;
  /** Extra PEM CAs trusted for upstream TLS, on top of the system roots. */
  upstreamCa?: string[];
  /** Skip upstream certificate verification. */
  insecureUpstream?: boolean;
  /** Abort an upstream exchange after this long without data (default 120 s). */
  idleTimeoutMs?: number;
  /**
   * Close a client connection after this long without a byte either way while no exchange
   * is running on it (a tunnel that never speaks, a TLS connection that never sends a
   * request). Idle time, not total: a slow transfer that keeps moving is never cut.
   * Default 120 s. Between requests on a keep-alive connection, 5 s.
   */
  clientIdleTimeoutMs?: number;
  /** A client must finish sending a request head within this long (default 60 s; slowloris). */
  headersTimeoutMs?: number;
  /**
   * Answer requests locally instead of forwarding them (replay): when set, the proxy
   * never opens a connection to any upstream.
   */
  respond?: (req: http.IncomingMessage, res: http.ServerResponse, target: Target) => void;
}

export interface RunningProxy {
  host: string;
  port: number;
  /** http://host:port, for HTTPS_PROXY. */
  url: string;
  /** Stop listening and drop every open connection. */
  close(): Promise<void>;
}

/** Buffer size of the client-side TLS socket: the 16 KiB default made nearly every write report backpressure (deps.md §9: +30–40%). */
const CLIENT_TLS_HIGH_WATER_MARK = 1 << 20;

/** The CONNECT request that opened a tunnel (for reporting a handshake that failed inside it). */
interface ConnectSeen {
  headers: HeaderList;
  httpVersion: string;
  clientAddr: string | null;
  start: number;
}

function clientAddress(socket: net.Socket): string | null {
  return socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : null;
}

/**
 * A client that gives up on the TLS handshake inside a CONNECT tunnel (it does not trust regtape's CA,
 * or spoke something else) sent no request: report the CONNECT itself as a failed exchange, so the
 * recording shows why nothing else happened (`show` turns it into a "does not trust the CA" problem).
 */
function reportFailedHandshake(observer: ExchangeObserver, c: ConnectSeen, target: { host: string; port: number }, refused: boolean, message: string): void {
  const authority = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  const request = { method: 'CONNECT', scheme: 'https' as const, host: target.host, port: target.port, target: authority, httpVersion: c.httpVersion, headers: c.headers };
  const handle = observer.begin({ request, clientAddr: c.clientAddr, start: c.start });
  const why = refused ? "the client refused regtape's certificate (it does not trust regtape's CA)" : 'the client ended the TLS handshake';
  handle.end({ state: 'error', response: null, timings: { start: c.start, end: Date.now() }, serverAddr: null, error: `TLS handshake failed: ${why}: ${message.trim()}`, requestBytes: 0, responseBytes: 0 });
}

/** Prepare an sslCaDir in http-mitm-proxy's layout holding our CA, so it never makes its own (negative serials). */
function libraryCaDir(ca: Authority): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-mitm-'));
  fs.mkdirSync(path.join(dir, 'certs'), { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'keys'), { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'certs', 'ca.pem'), ca.certPem);
  fs.writeFileSync(path.join(dir, 'keys', 'ca.private.key'), ca.key.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'keys', 'ca.public.key'), createPublicKey(ca.key).export({ type: 'spki', format: 'pem' }).toString());
  return dir;
}

async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === 'EADDRINUSE'
            ? `${host}:${port} is already in use; stop what holds it or pick another address with --listen HOST:PORT`
            : `cannot listen on ${host}:${port}: ${e.message}`,
        ),
      ),
    );
    s.listen(port, host, () => s.close(() => resolve()));
  });
}

/**
 * Start the recording proxy.
 *
 * http-mitm-proxy is the front: it listens, parses CONNECT and plain proxy requests.
 * We terminate TLS in-process from its onConnect hook (a TLSSocket with a 1 MiB
 * buffer fed to our own http.Server: no per-host internal server, no loopback hop)
 * and forward every exchange ourselves (stream backpressure; Content-Length kept).
 * It never makes certificates: leaves come from our LeafFactory.
 */
export async function startProxy(o: ProxyOptions): Promise<RunningProxy> {
  const host = o.host ?? '127.0.0.1';
  await assertPortFree(host, o.port);
  const log = o.log;
  // Extra upstream CAs go into one secure context made here, never as the agent's `ca`
  // option: https.Agent concatenates `ca` (the ~140 system roots + ours, ~200 KB) into its
  // pool key on every request and socket release, and tls.connect re-parses it for every
  // new upstream connection. Measured: 51% of the recorder's CPU and 5.3 ms per small
  // request under 16 clients (BENCHMARKS.md "Load").
  const secureContext = o.upstreamCa?.length ? tls.createSecureContext({ ca: [...tls.rootCertificates, ...o.upstreamCa] }) : undefined;
  const up: UpstreamConfig = {
    hostMap: o.hostMap,
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 256, secureContext, rejectUnauthorized: !o.insecureUpstream }),
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
    idleTimeoutMs: o.idleTimeoutMs ?? 120_000,
  };

  const sockets = new Set<net.Socket>();
  const rawUrls = new WeakMap<http.IncomingMessage, string>();
  const targets = new WeakMap<net.Socket, Target>();

  // Our server for intercepted connections. requestTimeout 0: Node 20 answers 408 to any
  // request longer than 300 s otherwise, and a slow multi-GB push takes longer.
  const clientIdle = o.clientIdleTimeoutMs ?? 120_000;
  const headersTimeout = o.headersTimeoutMs ?? 60_000;
  const busy = new WeakMap<net.Socket, number>();
  const track = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const s = req.socket;
    busy.set(s, (busy.get(s) ?? 0) + 1);
    res.once('close', () => busy.set(s, (busy.get(s) ?? 1) - 1));
  };
  // A socket idle for clientIdle: closed, unless an exchange is running on it (the upstream
  // idle timeout bounds that one).
  const onIdle = (s: net.Socket) => {
    if ((busy.get(s) ?? 0) > 0) s.setTimeout(clientIdle);
    else s.destroy();
  };
  const inner = http.createServer({
    requestTimeout: 0,
    headersTimeout,
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(headersTimeout / 4))),
  });
  // Node tracks connections for headersTimeout only from 'listening' on; this server never
  // listens (connections are handed to it), so start the tracking ourselves.
  inner.emit('listening');
  inner.timeout = clientIdle;
  inner.on('timeout', onIdle);
  inner.on('request', track);
  inner.on('request', (req, res) => {
    const t = targets.get(req.socket);
    if (!t) return sendProxyError(res, 500, 'internal: unknown connection');
    if (o.respond) return o.respond(req, res, t);
    forwardExchange(req, res, t, req.url ?? '/', up, o.observer, log);
  });
  inner.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug(`client sent a bad request: ${err.code ?? ''} ${err.message}`);
    if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  const intercept = (socket: net.Socket, target: { host: string; port: number }, first: Buffer, connect: ConnectSeen) => {
    socket.removeListener('end', dropTunnel);
    socket.removeListener('timeout', dropTunnel);
    socket.pause();
    socket.unshift(first);
    if (first[0] === 0x16) {
      // The TLS socket reads from now on: the raw socket's own timer would see no activity.
      socket.setTimeout(0);
      const leaf = o.leafs.get(target.host);
      const tlsSocket = new tls.TLSSocket(socket, {
        isServer: true,
        secureContext: leaf.context,
        SNICallback: (name, cb) => {
          try {
            cb(null, o.leafs.get(name || target.host).context);
          } catch (e) {
            cb(e as Error);
          }
        },
        ALPNProtocols: ['http/1.1'],
        highWaterMark: CLIENT_TLS_HIGH_WATER_MARK,
      } as tls.TLSSocketOptions);
      let secured = false;
      tlsSocket.once('secure', () => (secured = true));
      tlsSocket.on('error', (e: NodeJS.ErrnoException) => {
        const refused = /unknown ca|bad certificate|certificate unknown/i.test(e.message);
        if (refused) {
          log.warn(`client refused regtape's certificate for ${target.host} (${e.message.trim()}); make the client trust ${o.ca.certPath} (see \`regtape ca --setup\`)`);
        } else log.debug(`TLS error with client for ${target.host}: ${e.message}`);
        if (!secured) reportFailedHandshake(o.observer, connect, target, refused, e.message);
        secured = true; // one report per connection
        tlsSocket.destroy();
      });
      targets.set(tlsSocket, { scheme: 'https', host: target.host, port: target.port });
      sockets.add(tlsSocket);
      tlsSocket.on('close', () => sockets.delete(tlsSocket));
      inner.emit('connection', tlsSocket);
    } else {
      // Plain HTTP inside a CONNECT tunnel.
      targets.set(socket, { scheme: 'http', host: target.host, port: target.port });
      inner.emit('connection', socket);
      socket.resume();
    }
  };

  function dropTunnel(this: net.Socket) {
    this.destroy();
  }

  const proxy = new MitmProxy();
  proxy.onError((_ctx, err, kind) => {
    const e = err as NodeJS.ErrnoException | undefined;
    if (e?.code === 'ECONNRESET' || e?.code === 'EPIPE') return;
    log.debug(`http-mitm-proxy ${kind ?? ''}: ${e?.message ?? String(err)}`);
  });
  proxy.onConnect((req, rawSocket, head, _callback) => {
    const socket = rawSocket as net.Socket;
    // Never call the library's callback: we own the tunnel from here.
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', (e) => log.debug(`client socket error: ${e.message}`));
    const target = parseAuthority(req.url);
    if (!target) {
      const body = `regtape: bad CONNECT target '${String(req.url).slice(0, 200)}' (expected host:port)\n`;
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    // A client that closes before its first byte: close our side too (no CLOSE-WAIT).
    socket.once('end', dropTunnel);
    socket.once('timeout', dropTunnel);
    socket.setTimeout(clientIdle);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const seen: ConnectSeen = { headers: fromRawHeaders(req.rawHeaders ?? []), httpVersion: req.httpVersion ?? '1.1', clientAddr: clientAddress(socket), start: Date.now() };
    if (head && head.length) intercept(socket, target, head, seen);
    else socket.once('data', (chunk: Buffer) => intercept(socket, target, chunk, seen));
  });
  proxy.onRequest((ctx: IContext, _callback) => {
    // Plain-HTTP proxy request (absolute-form URL). Never call the callback: we forward.
    const req = ctx.clientToProxyRequest;
    const res = ctx.proxyToClientResponse;
    // Parse what the client sent ourselves (the library's parse lets NaN ports and userinfo through).
    const parsed = parseProxyTarget(rawUrls.get(req) ?? req.url ?? '/', req.headers.host);
    if (!parsed.ok) return sendProxyError(res, 400, parsed.reason);
    const originForm = (rawUrls.get(req) ?? '').startsWith('/');
    if (originForm && isOwnName(parsed.host) && parsed.port === boundPort) {
      return sendProxyError(res, 400, `this is a proxy, not a server: set HTTPS_PROXY=http://${host}:${boundPort} (and HTTP_PROXY) in the client's environment`);
    }
    const target: Target = { scheme: 'http', host: parsed.host, port: parsed.port };
    if (o.respond) {
      req.url = parsed.path;
      return o.respond(req, res, target);
    }
    forwardExchange(req, res, target, parsed.path, up, o.observer, log);
  });

  const sslCaDir = libraryCaDir(o.ca);
  try {
    await new Promise<void>((resolve, reject) => {
      proxy.listen({ host, port: o.port, sslCaDir, keepAlive: true }, (err?: Error | null) => (err ? reject(err) : resolve()));
    });
  } finally {
    // The library reads its CA files only during listen(): do not leave a copy of the CA key behind.
    fs.rmSync(sslCaDir, { recursive: true, force: true });
  }
  const front = (proxy as unknown as { httpServer: http.Server }).httpServer;
  // Keep the request-target as the client sent it (the library rewrites req.url before our hook).
  front.prependListener('request', (req: http.IncomingMessage) => rawUrls.set(req, req.url ?? ''));
  front.requestTimeout = 0;
  front.headersTimeout = headersTimeout;
  front.timeout = clientIdle;
  front.on('timeout', onIdle);
  front.on('request', track);
  front.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const boundPort = (front.address() as net.AddressInfo).port;
  up.self = new SelfAddress(host, boundPort);
  const isOwnName = (h: string) => up.self!.isOwnName(h, boundPort);

  return {
    host,
    port: boundPort,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`,
    close: async () => {
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        for (const s of sockets) s.destroy();
        front.closeAllConnections();
      });
      inner.closeAllConnections();
      inner.close(() => undefined); // stops its connection-checking timer
      up.httpsAgent.destroy();
      up.httpAgent.destroy();
    },
  };
}
