/**
 * The lab's blob CDN (`cdn.test`): a static HTTPS file server over distribution's filesystem storage root.
 *
 * distribution's `redirect` storage middleware answers blob GET/HEAD with
 * `307 Location: <baseurl>/docker/registry/v2/blobs/sha256/<2 hex>/<64 hex>/data` (no query string), i.e.
 * the blob's path under the storage `rootdirectory`. Only that shape is served; everything else is 404.
 * Supports HEAD and a single `Range` (206 / 416); multi-range requests get the whole body (200), which
 * RFC 9110 allows. Files are streamed, never read into memory.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { CertAndKey } from './certs.js';
import { closeServer, listen } from './server-util.js';
import { checkCdnSignature } from './hub-front.js';

/** One request the CDN answered (for test assertions). */
export interface CdnRequestLog {
  time: string;
  method: string;
  url: string;
  range?: string;
  status: number;
  /** Authorization must never reach the CDN; recorded so tests can assert that. */
  hadAuthorization: boolean;
}

/** Options for {@link startCdnServer}. */
export interface CdnServerOptions {
  host: string;
  port: number;
  tls: CertAndKey;
  /** distribution's filesystem `rootdirectory`. */
  storageRoot: string;
  /** Check Hub-style `verify=` signatures made by the hub front with this secret (403 otherwise). */
  verifySecret?: Buffer;
}

/** A running CDN server. */
export interface CdnServer {
  server: Server;
  requests(): CdnRequestLog[];
  close(): Promise<void>;
}

const BLOB_PATH = /^\/docker\/registry\/v2\/blobs\/sha256\/([0-9a-f]{2})\/([0-9a-f]{64})\/data$/;
const MAX_LOG = 10_000;

/** A parsed single byte range, inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against a resource of `size` bytes: `undefined` = serve the whole body (absent,
 * not `bytes=`, or multi-range), `'unsatisfiable'` = 416, else the inclusive range.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined; // multi-range or another unit: ignore, send 200
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b); // suffix range: last n bytes
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** Starts the CDN; resolves once it listens. */
export async function startCdnServer(opts: CdnServerOptions): Promise<CdnServer> {
  const log: CdnRequestLog[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse, entry: CdnRequestLog): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://cdn.invalid');
    const path = url.pathname;
    const common = { 'Strict-Transport-Security': 'max-age=31536000', Server: 'regtape-lab-cdn' };
    const fail = (status: number, msg: string, extra: Record<string, string> = {}): void => {
      entry.status = status;
      res.writeHead(status, { ...common, ...extra, 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(msg) });
      res.end(req.method === 'HEAD' ? undefined : msg);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    const m = BLOB_PATH.exec(path);
    if (!m || !m[2]?.startsWith(m[1] ?? '-')) return fail(404, 'not found\n');
    if (opts.verifySecret && !checkCdnSignature(opts.verifySecret, path, url.searchParams.get('verify'))) return fail(403, 'signature missing, invalid or expired\n');
    const file = join(opts.storageRoot, path); // safe: the regex admits no '..' or other characters
    let size: number;
    try {
      const st = await stat(file);
      if (!st.isFile()) return fail(404, 'not found\n');
      size = st.size;
    } catch {
      return fail(404, 'not found\n');
    }
    const headers: Record<string, string | number> = {
      ...common,
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: `"${m[2].slice(0, 32)}"`,
      'Cache-Control': 'public, max-age=14400',
    };
    const range = parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') return fail(416, 'range not satisfiable\n', { 'Content-Range': `bytes */${size}` });
    const status = range ? 206 : 200;
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    headers['Content-Length'] = size === 0 ? 0 : end - start + 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    await pipeline(createReadStream(file, { start, end, highWaterMark: 1 << 20 }), res);
  }

  const server = createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (req, res) => {
    const entry: CdnRequestLog = {
      time: new Date().toISOString(),
      method: req.method ?? '',
      url: req.url ?? '',
      status: 0,
      hadAuthorization: req.headers.authorization !== undefined,
    };
    if (req.headers.range) entry.range = req.headers.range;
    if (log.length < MAX_LOG) log.push(entry);
    handle(req, res, entry).catch(() => {
        entry.status = entry.status || 500;
        if (!res.headersSent) {
          res.writeHead(500);
          res.end();
        } else res.destroy();
      });
  });
  await listen(server, opts.host, opts.port, 'CDN');
  return { server, requests: () => [...log], close: () => closeServer(server) };
}
