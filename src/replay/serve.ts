import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, type Readable, type Transform } from 'node:stream';
import { forwardableHeaders } from '../proxy/index.js';
import type { FlowRecord } from '../flow/index.js';
import { RegistryError } from './errors.js';

/** A body transform injected by a fault rule (truncate, flip, drip) for one response. */
export const bodyFaults = new WeakMap<ServerResponse, (size: number) => Transform>();

function piped(body: Readable, res: ServerResponse, size: number): void {
  const fault = bodyFaults.get(res)?.(size);
  const done = () => {
    /* a client that goes away mid-body is fine */
  };
  if (fault) pipeline(body, fault, res, done);
  else pipeline(body, res, done);
}

/** Where replay reads bodies from (a Recording satisfies it). */
export interface BodySource {
  readBody(sha256: string, range?: { start?: number; end?: number }): Readable;
  readBodySync(sha256: string, max?: number): Buffer | null;
}

/** Parse a single `Range: bytes=…` against a size. null = no (usable) range; 'unsatisfiable' → 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // multi-range or junk: serve the whole body (RFC 9110 allows ignoring Range)
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (start >= size || start > end) return 'unsatisfiable';
  }
  return { start, end };
}

/**
 * Stream a stored body with registry headers; honours Range (206 / 416) and HEAD.
 * `headers` are the content headers (type, digest, etag …) without length.
 */
export function sendBody(req: IncomingMessage, res: ServerResponse, src: BodySource, sha: string, size: number, headers: Record<string, string>, status = 200): void {
  const range = status === 200 ? parseRange(req.headers.range, size) : null;
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': 0, ...headers });
    res.end();
    return;
  }
  if (range) {
    res.writeHead(206, { ...headers, 'accept-ranges': 'bytes', 'content-range': `bytes ${range.start}-${range.end}/${size}`, 'content-length': range.end - range.start + 1 });
  } else {
    res.writeHead(status, { ...headers, 'accept-ranges': 'bytes', 'content-length': size });
  }
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  piped(src.readBody(sha, range ? range : undefined), res, range ? range.end - range.start + 1 : size);
}

const REFRAMED = /^(content-length|transfer-encoding|date)$/i;

/** Serve a recorded response as it was (status, headers in order, body), with optional body rewrite. */
export function sendRecorded(req: IncomingMessage, res: ServerResponse, src: BodySource, f: FlowRecord, rewrite?: { body?: (b: Buffer) => Buffer; headers?: (h: string[]) => string[] }): void {
  const r = f.response!;
  // Framing is recomputed for the body we send; Date is of another day.
  let raw = forwardableHeaders(r.headers.filter(([k]) => !REFRAMED.test(k)).flat());
  if (rewrite?.headers) raw = rewrite.headers(raw);
  const sha = f.responseBody?.sha256;
  if (!sha) {
    res.writeHead(r.status, r.reason, [...raw, 'content-length', '0'] as unknown as Record<string, string>);
    res.end();
    return;
  }
  if (rewrite?.body) {
    const buf = src.readBodySync(sha, 16 << 20);
    if (!buf) throw new RegistryError(500, 'BLOB_UNKNOWN', `recorded body ${sha} of flow ${f.id} is missing`);
    const out = rewrite.body(buf);
    res.writeHead(r.status, r.reason, [...raw, 'content-length', String(out.length)] as unknown as Record<string, string>);
    res.end(req.method === 'HEAD' ? undefined : out);
    return;
  }
  res.writeHead(r.status, r.reason, [...raw, 'content-length', String(f.responseBody!.size)] as unknown as Record<string, string>);
  if (req.method === 'HEAD') return void res.end();
  piped(src.readBody(sha), res, f.responseBody!.size);
}

/** Token JSON with `issued_at` set to now (a stale one makes dockerd fetch a token before every request). */
export function freshToken(body: Buffer): Buffer {
  try {
    const doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    if (doc && typeof doc === 'object' && ('token' in doc || 'access_token' in doc)) {
      doc.issued_at = new Date().toISOString();
      return Buffer.from(JSON.stringify(doc));
    }
  } catch {
    // not JSON: serve as recorded
  }
  return body;
}
