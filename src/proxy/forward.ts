import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { pipeline, type Transform } from 'node:stream';
import { fromRawHeaders, hostWithPort, type RequestHead, type ResponseHead, type Timings } from '../flow/index.js';
import type { Logger } from '../log/index.js';
import type { HostMap } from './host-map.js';
import type { ExchangeHandle, ExchangeObserver, ExchangeOutcome } from './observer.js';
import { LOOP_CODE, type SelfAddress } from './self.js';

/** Where the client wanted to go (CONNECT target or absolute URL). */
export interface Target {
  scheme: 'http' | 'https';
  host: string;
  port: number;
}

export interface UpstreamConfig {
  hostMap: HostMap;
  httpsAgent: https.Agent;
  httpAgent: http.Agent;
  /** Abort an upstream exchange after this long without any data (ms). */
  idleTimeoutMs: number;
  /** This proxy's own address: requests to it are answered 508 instead of looping. */
  self?: SelfAddress;
}

/** A handle that records nothing (the observer failed to start a flow: proxying goes on). */
const NO_RECORDING: ExchangeHandle = { end: () => undefined };

/** A path for log lines: the query (signed URLs, upload states) is never logged. */
export function pathForLog(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : `${path.slice(0, q)}?…`;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; framing headers are. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade']);

/** Flat rawHeaders minus hop-by-hop headers and those named in Connection. */
export function forwardableHeaders(raw: readonly string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') for (const t of raw[i + 1]!.split(',')) named.add(t.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(n) || named.has(n)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function requestHasBody(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  if (te) return true;
  const cl = req.headers['content-length'];
  return cl !== undefined && cl !== '0';
}

function responseHasBody(method: string, status: number): boolean {
  return method !== 'HEAD' && status !== 204 && status !== 304 && !(status >= 100 && status < 200);
}

/** Turn a network error into a sentence that says what happened and what to do. */
export function explainUpstreamError(err: NodeJS.ErrnoException, t: Target, mappedTo: string | null): string {
  const where = `${t.host}:${t.port}${mappedTo ? ` (mapped to ${mappedTo})` : ''}`;
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve ${t.host} (${err.code}); if it is a lab or test name, route it with --map ${t.host}=ADDR:PORT`;
    case 'ECONNREFUSED':
      return `connection refused by ${where}`;
    case 'ECONNRESET':
      return `connection reset by ${where}`;
    case 'ETIMEDOUT':
      return `connection to ${where} timed out`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${where} is unreachable (${err.code})`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'CERT_NOT_YET_VALID':
      return `upstream TLS certificate of ${where} rejected (${err.code}: ${err.message}); trust its CA with --upstream-ca FILE, or skip verification with --insecure-upstream`;
    default:
      return `${err.code ? `${err.code}: ` : ''}${err.message} (${where})`;
  }
}

/**
 * Forward one exchange: request head and body to the upstream, response back to the
 * client, both bodies through `stream` backpressure (a slow side slows the other; no
 * body is ever held in memory). Taps from the observer see every chunk in passing.
 *
 * Outcomes: the client gets the upstream response as is; 502 with a reason in the body
 * when the upstream fails before answering; a closed connection when it fails mid-body.
 */
export function forwardExchange(req: IncomingMessage, res: ServerResponse, target: Target, path: string, up: UpstreamConfig, observer: ExchangeObserver, log: Logger): void {
  const start = Date.now();
  const timings: Timings = { start };
  const head: RequestHead = {
    method: req.method ?? 'GET',
    scheme: target.scheme,
    host: target.host,
    port: target.port,
    target: path,
    httpVersion: req.httpVersion,
    headers: fromRawHeaders(req.rawHeaders),
  };
  const clientAddr = req.socket.remoteAddress ? `${req.socket.remoteAddress}:${req.socket.remotePort}` : null;
  let handle: ExchangeHandle;
  try {
    handle = observer.begin({ request: head, clientAddr, start });
  } catch (e) {
    // The recorder could not start a flow (it says why itself): the client is still served.
    log.error(`not recording ${head.method} ${head.host}${pathForLog(path)}: ${(e as Error).message}`);
    handle = NO_RECORDING;
  }

  let requestBytes = 0;
  let responseBytes = 0;
  let serverAddr: string | null = null;
  let response: ResponseHead | null = null;
  let upstreamError: string | null = null;
  let done = false;

  const finish = (state: ExchangeOutcome['state'], error: string | null) => {
    if (done) return;
    done = true;
    timings.end = Date.now();
    try {
      handle.end({ state, response, timings, serverAddr, error, requestBytes, responseBytes });
    } catch (e) {
      log.error(`recording flow ${head.method} ${head.host}${pathForLog(head.target)} failed: ${(e as Error).message}`);
    }
  };

  const mapped = up.hostMap.resolve(target.host, target.port);
  const mappedTo = mapped.mapped ? `${mapped.host}:${mapped.port}` : null;
  if (up.self?.isSelf(mapped.host, mapped.port)) {
    const msg = up.self.explain(mapped.host, mapped.port);
    req.resume();
    sendProxyError(res, 508, msg);
    finish('error', msg);
    return;
  }
  const headers = forwardableHeaders(req.rawHeaders);
  if (!req.headers.host) headers.push('Host', hostWithPort(target.scheme, target.host, target.port));
  const isHttps = target.scheme === 'https';
  const options: https.RequestOptions = {
    method: head.method,
    host: mapped.host,
    port: mapped.port,
    path,
    headers: headers as unknown as http.OutgoingHttpHeaders,
    setHost: false,
    agent: isHttps ? up.httpsAgent : up.httpAgent,
  };
  if (up.self) options.lookup = up.self.lookupFor(mapped.port);
  if (isHttps && !net.isIP(target.host)) options.servername = target.host;
  let upReq: http.ClientRequest;
  try {
    upReq = (isHttps ? https : http).request(options);
  } catch (e) {
    const msg = `cannot forward: ${(e as Error).message}`;
    sendProxyError(res, 502, msg);
    finish('error', msg);
    return;
  }

  upReq.on('socket', (s: net.Socket) => {
    const setAddr = () => {
      if (s.remoteAddress) serverAddr = `${s.remoteAddress}:${s.remotePort}`;
    };
    if (s.connecting) {
      s.once('connect', () => {
        timings.connect = Date.now();
        setAddr();
      });
      if (isHttps) s.once('secureConnect', () => (timings.tls = Date.now()));
    } else setAddr();
  });
  // Who failed first decides the outcome. From Node 22 on, `pipeline` destroys the client
  // response as soon as the upstream errors, so the response's 'close' (always emitted on a
  // later tick) must not be mistaken for the client leaving: an upstream failure is noted
  // synchronously, when it is first seen, before that 'close' can run.
  let firstFailure: 'client' | 'upstream' | null = null;
  const upstreamFailed = (msg: string | null) => {
    firstFailure ??= 'upstream';
    if (msg) upstreamError ??= msg;
  };
  upReq.setTimeout(up.idleTimeoutMs, () => {
    const message = `upstream sent nothing for ${Math.round(up.idleTimeoutMs / 1000)} s`;
    upstreamFailed(`${message} (${target.host}:${target.port})`);
    upReq.destroy(Object.assign(new Error(message), { code: 'ETIMEDOUT_IDLE' }));
  });
  upReq.on('finish', () => (timings.requestSent = Date.now()));

  upReq.on('error', (err: NodeJS.ErrnoException) => {
    const loop = err.code === LOOP_CODE;
    const msg = loop && up.self ? up.self.explain(mapped.host, mapped.port) : err.code === 'ETIMEDOUT_IDLE' ? `${err.message} (${target.host}:${target.port})` : explainUpstreamError(err, target, mappedTo);
    if (err.code !== 'ECLIENTABORT' && !clientGone && !loop) upstreamFailed(msg);
    upstreamError ??= msg;
    if (response) return; // mid-body: the response pipeline reports it
    if (clientGone) {
      finish('aborted', `client closed the connection before the response (${requestBytes} request bytes sent)`);
      return;
    }
    log.debug(`upstream error for ${head.method} ${target.host}${pathForLog(path)}: ${msg}`);
    sendProxyError(res, loop ? 508 : 502, msg);
    finish('error', msg);
  });

  let clientGone = false;
  res.on('close', () => {
    if (!res.writableFinished) {
      firstFailure ??= 'client';
      clientGone = firstFailure === 'client';
      if (!upReq.destroyed) upReq.destroy();
    }
  });

  // Request body: pipe (not pipeline) so an upstream failure does not destroy the
  // client socket before we can answer 502.
  if (requestHasBody(req)) {
    const tap = handle.requestTap?.() ?? null;
    const abortUpload = () => {
      if (!req.complete && !upReq.destroyed) upReq.destroy(Object.assign(new Error('client aborted the request body'), { code: 'ECLIENTABORT' }));
    };
    req.on('aborted', abortUpload);
    req.on('error', abortUpload);
    req.on('close', abortUpload);
    if (tap) {
      tap.on('error', (e) => upReq.destroy(e));
      req.pipe(tap).pipe(upReq);
    } else req.pipe(upReq);
    req.on('data', (c: Buffer) => (requestBytes += c.length));
  } else {
    req.resume();
    upReq.end();
  }

  upReq.on('response', (upRes: IncomingMessage) => {
    timings.firstByte = Date.now();
    response = {
      status: upRes.statusCode ?? 0,
      reason: upRes.statusMessage ?? '',
      httpVersion: upRes.httpVersion,
      headers: fromRawHeaders(upRes.rawHeaders),
    };
    if (clientGone || res.destroyed) {
      upRes.destroy();
      finish('aborted', 'client closed the connection before the response arrived');
      return;
    }
    try {
      res.writeHead(response.status, response.reason, forwardableHeaders(upRes.rawHeaders) as unknown as http.OutgoingHttpHeaders);
    } catch (e) {
      upRes.destroy();
      res.destroy();
      finish('error', `cannot relay response head: ${(e as Error).message}`);
      return;
    }
    const tap: Transform | null = responseHasBody(head.method, response.status) ? (handle.responseTap?.(response, head) ?? null) : null;
    const upstreamBroke = () => {
      if (!upRes.complete) upstreamFailed(upRes.errored?.message ?? null);
    };
    upRes.on('aborted', upstreamBroke);
    upRes.on('error', upstreamBroke);
    upRes.on('close', upstreamBroke);
    const onDone = (err: NodeJS.ErrnoException | null | undefined) => {
      if (!err) return finish('complete', null);
      const fromUpstream = upstreamError ?? (upRes.errored || !upRes.complete ? upRes.errored?.message ?? null : null);
      if (firstFailure === 'client' || (firstFailure === null && !fromUpstream && res.destroyed)) {
        finish('aborted', `client closed the connection after ${responseBytes} response bytes`);
      } else {
        finish('aborted', `upstream failed after ${responseBytes} response bytes: ${fromUpstream ?? err.message}`);
      }
    };
    if (tap) pipeline(upRes, tap, res, onDone);
    else pipeline(upRes, res, onDone);
    upRes.on('data', (c: Buffer) => (responseBytes += c.length));
  });
}

/** Answer the client with a proxy error (text body saying why), unless a response already started. */
export function sendProxyError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = `regtape: ${message}\n`;
  try {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-regtape-error': '1' });
    res.end(body);
  } catch {
    res.destroy();
  }
}
