/**
 * Docker Hub's behaviour in front of the lab registry (`startLab({ hubLike: true })`): an HTTPS
 * reverse proxy on the registry's public address that forwards everything to distribution and
 *
 * - adds Hub's rate-limit headers to manifest GET and HEAD answers (`ratelimit-limit: 100;w=21600`,
 *   `ratelimit-remaining: N;w=21600` counting down on GETs, `docker-ratelimit-source: <client ip>`),
 * - signs the blob redirects: a 307 `Location` to the CDN gets `?verify=<expiry>-<hmac>` (Hub's
 *   Cloudflare URLs look the same); the CDN refuses a missing, wrong or expired signature with 403.
 *
 * Bodies are streamed both ways. Insufficient-scope answers for missing repositories come from
 * distribution itself, given tokens without access (the token server's `repositoryExists`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { request as httpsRequest, createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CertAndKey } from './certs.js';
import { closeServer, listen } from './server-util.js';

export interface HubFrontOptions {
  host: string;
  port: number;
  tls: CertAndKey;
  /** Where distribution listens, and the name its certificate has. */
  upstream: { host: string; port: number; serverName: string; caPem: string };
  /** Public CDN base URL; redirects there are signed. */
  cdnUrl: string;
  /** Shared with the CDN to check signatures. */
  secret: Buffer;
  /** Pulls allowed per window (default 100). */
  limit?: number;
}

export interface HubFront {
  server: Server;
  close(): Promise<void>;
}

const WINDOW = 21_600;
const MANIFEST = /^\/v2\/.+\/manifests\/[^/]+$/;

/** `verify=<expiry>-<hmac>` for a CDN path, valid `ttl` seconds. */
export function signCdnPath(secret: Buffer, path: string, ttl = 1200, now = Date.now()): string {
  const exp = Math.floor(now / 1000) + ttl;
  return `${exp}-${createHmac('sha256', secret).update(`${exp}:${path}`).digest('base64url')}`;
}

/** Whether a CDN request carries a valid, unexpired signature for its path. */
export function checkCdnSignature(secret: Buffer, path: string, verify: string | null, now = Date.now()): boolean {
  const m = verify ? /^(\d+)-([A-Za-z0-9_-]+)$/.exec(verify) : null;
  if (!m || Number(m[1]) * 1000 < now) return false;
  const want = createHmac('sha256', secret).update(`${m[1]}:${path}`).digest();
  const got = Buffer.from(m[2]!, 'base64url');
  return got.length === want.length && timingSafeEqual(got, want);
}

export async function startHubFront(o: HubFrontOptions): Promise<HubFront> {
  let remaining = o.limit ?? 100;
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'https://front.invalid').pathname;
    const isManifest = MANIFEST.test(path) && (req.method === 'GET' || req.method === 'HEAD');
    const up = httpsRequest(
      { host: o.upstream.host, port: o.upstream.port, servername: o.upstream.serverName, ca: o.upstream.caPem, method: req.method, path: req.url, headers: req.headers, agent: false },
      (ur) => {
        const headers: Record<string, string | string[] | number> = {};
        for (const [k, v] of Object.entries(ur.headers)) if (v !== undefined && k !== 'connection' && k !== 'keep-alive') headers[k] = v;
        const loc = ur.headers.location;
        if (ur.statusCode && ur.statusCode >= 300 && ur.statusCode < 400 && loc?.startsWith(o.cdnUrl)) {
          const u = new URL(loc);
          u.searchParams.set('verify', signCdnPath(o.secret, u.pathname));
          headers.location = u.toString();
        }
        if (isManifest && ur.statusCode !== 401) {
          if (req.method === 'GET' && ur.statusCode === 200) remaining = Math.max(0, remaining - 1);
          headers['ratelimit-limit'] = `${o.limit ?? 100};w=${WINDOW}`;
          headers['ratelimit-remaining'] = `${remaining};w=${WINDOW}`;
          headers['docker-ratelimit-source'] = req.socket.remoteAddress ?? '127.0.0.1';
        }
        res.writeHead(ur.statusCode ?? 502, headers);
        ur.pipe(res);
      },
    );
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`hub front: ${e.message}\n`);
    });
    req.pipe(up);
  };
  const server = createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, forward);
  await listen(server, o.host, o.port, 'hub front');
  return { server, close: () => closeServer(server) };
}
