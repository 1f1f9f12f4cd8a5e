import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline, type Readable, type Transform } from 'node:stream';
import { getHeader, type FlowRecord } from '../flow/index.js';
import { RegistryError } from './errors.js';
import { flatGet, replayHeaders, type HeaderRewrites } from './headers.js';

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
 * Stream a stored body; honours Range (206 / 416) and HEAD. `headers` (flat name/value list,
 * e.g. from {@link replayHeaders}) carry everything but the framing, which is computed here:
 * Content-Length, and for a synthesised range Content-Range (+ Accept-Ranges if absent).
 */
export function sendBody(req: IncomingMessage, res: ServerResponse, src: BodySource, sha: string, size: number, headers: string[], status = 200): void {
  const range = status === 200 ? parseRange(req.headers.range, size) : null;
  const ranges = flatGet(headers, 'accept-ranges') ? [] : ['Accept-Ranges', 'bytes'];
  if (range === 'unsatisfiable') {
    res.writeHead(416, [...headers, 'Content-Range', `bytes */${size}`, 'Content-Length', '0'] as unknown as OutgoingHttpHeaders);
    res.end();
    return;
  }
  if (range) {
    res.writeHead(206, [...headers, ...ranges, 'Content-Range', `bytes ${range.start}-${range.end}/${size}`, 'Content-Length', String(range.end - range.start + 1)] as unknown as OutgoingHttpHeaders);
  } else {
    res.writeHead(status, [...headers, 'Content-Length', String(size)] as unknown as OutgoingHttpHeaders);
  }
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  piped(src.readBody(sha, range ? range : undefined), res, range ? range.end - range.start + 1 : size);
}

export interface RecordedRewrite {
  /** Header values to set (lower-case name → value, null drops it); see {@link replayHeaders}. */
  set?: HeaderRewrites;
  /** A last pass over the flat header list (e.g. the realm rewrite of mirror mode). */
  map?: (flat: string[]) => string[];
  /** Replace the body (e.g. a token answer with replay's own token); null keeps the recorded one. */
  body?: (b: Buffer) => Promise<Buffer | null>;
}

/**
 * Serve a recorded response as it was: status, reason, the recorded headers minus hop-by-hop
 * and framing (see headers.ts), body; HEAD gets the headers of the GET and no body.
 */
export async function sendRecorded(req: IncomingMessage, res: ServerResponse, src: BodySource, f: FlowRecord, rw: RecordedRewrite = {}): Promise<void> {
  const r = f.response!;
  let raw = replayHeaders(r.headers, rw.set);
  if (rw.map) raw = rw.map(raw);
  const head = (extra: string[]) => res.writeHead(r.status, r.reason || undefined, [...raw, ...extra] as unknown as OutgoingHttpHeaders);
  const sha = f.responseBody?.sha256;
  if (!sha) {
    // A HEAD answer (or an empty body): the recorded Content-Length says what a GET would carry.
    const len = f.request.method === 'HEAD' ? getHeader(r.headers, 'content-length') : undefined;
    head(['Content-Length', len ?? '0']);
    res.end();
    return;
  }
  if (rw.body) {
    const buf = src.readBodySync(sha, 16 << 20);
    if (!buf) throw new RegistryError(500, 'UNKNOWN', `recorded body ${sha} of flow ${f.id} is missing from the recording`);
    const out = (await rw.body(buf)) ?? buf;
    head(['Content-Length', String(out.length)]);
    res.end(req.method === 'HEAD' ? undefined : out);
    return;
  }
  head(['Content-Length', String(f.responseBody!.size)]);
  if (req.method === 'HEAD') return void res.end();
  piped(src.readBody(sha), res, f.responseBody!.size);
}
