import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Filter } from '../filter/index.js';
import { flowUrl, getHeader, getHeaders, type BodyRef, type FlowRecord, type HeaderList, type Timings } from '../flow/index.js';
import type { Recording } from '../store/index.js';
import { selectFlows } from './flows.js';
import type { Sink } from './sink.js';
import { codecFor, isText } from './util.js';

/**
 * HAR 1.2 export (http://www.softwareishard.com/blog/har-12-spec/), written entry by
 * entry: the document is never built in memory. Bodies up to `maxBody` are included
 * (text as is, anything else base64 with `encoding: "base64"`); bigger ones are left
 * out with a `comment` giving their size and sha256, so a 500 MB layer does not make a
 * 700 MB JSON file. What HAR has no field for goes into `_regtape` (HAR allows `_`
 * fields): flow state, exact timings, body digests, registry facts, redaction facts.
 *
 * The export only reads the recording, so it is exactly as redacted as the recording.
 */

/** Bodies above this many bytes are left out unless the caller says otherwise (1 MiB). */
export const DEFAULT_MAX_BODY = 1 << 20;

/** Bodies up to this size are read whole (text detection, decoding); larger ones are streamed as base64. */
const IN_MEMORY = 1 << 20;

/** Decoded (Content-Encoding) bodies may grow to at most this many bytes in memory. */
const MAX_DECODED = 64 << 20;

export interface HarExportOptions {
  /** Only flows this filter matches. */
  filter?: Filter | null;
  /** Include bodies up to this many stored bytes (default 1 MiB). */
  maxBody?: number;
  /** `log.creator.version`. */
  version?: string;
  /** Free text for `log.comment` (e.g. where the recording came from). */
  comment?: string;
}

export interface HarExportStats {
  entries: number;
  /** Bodies left out because they were larger than maxBody. */
  bodiesOverLimit: number;
  /** Bodies the recording references but does not have (NAME.blobs/ not copied along). */
  bodiesMissing: number;
}

/** The `_regtape` body description: what the recording holds and why the HAR may not. */
export interface HarBodyInfo {
  sha256: string | null;
  size: number;
  redacted: boolean;
  /** Why the bytes are not in the HAR: over --max-body, not in the recording (aborted), or its file missing. */
  omitted?: 'max-body' | 'not-stored' | 'missing';
  /** The text is the stored (still Content-Encoding-encoded) bytes, not decoded ones. */
  contentEncoded?: boolean;
}

interface NameValue {
  name: string;
  value: string;
}

interface HarContent {
  size: number;
  compression?: number;
  mimeType: string;
  text?: string;
  encoding?: 'base64';
  comment?: string;
}

/** A body as it goes into the entry: fields, plus the bytes to stream in place of a placeholder. */
interface BodyPlan {
  fields: { text?: string; encoding?: 'base64'; comment?: string; size?: number; compression?: number };
  info: HarBodyInfo | null;
  stream?: () => Readable;
}

/** Export the flows of `rec` (those `filter` keeps) as HAR 1.2 into `sink`. */
export async function writeHar(rec: Recording, sink: Sink, opts: HarExportOptions = {}): Promise<HarExportStats> {
  const maxBody = opts.maxBody ?? DEFAULT_MAX_BODY;
  const stats: HarExportStats = { entries: 0, bodiesOverLimit: 0, bodiesMissing: 0 };
  const nonce = randomBytes(8).toString('hex');
  const placeholder = { request: `\u0000regtape-${nonce}-request\u0000`, response: `\u0000regtape-${nonce}-response\u0000` };
  const log = {
    version: '1.2',
    creator: { name: 'regtape', version: opts.version ?? '0.1.0' },
    pages: [],
    comment:
      opts.comment ??
      `Exported by regtape. Secrets were redacted when recorded (REDACTED-xxxxxxxx markers). Bodies over ${maxBody} bytes are left out (see each entry's comment and _regtape).`,
  };
  const head = JSON.stringify({ log }).slice(0, -2); // drop the closing "}}"
  await sink.write(`${head},"entries":[\n`);
  for (const flow of selectFlows(rec, opts.filter)) {
    const req = await planBody(rec, flow, 'request', maxBody, stats);
    const res = await planBody(rec, flow, 'response', maxBody, stats);
    const entry = harEntry(flow, req, res, placeholder);
    const json = JSON.stringify(entry);
    await sink.write(stats.entries ? ',\n' : '');
    await writeWithBodies(sink, json, [
      [JSON.stringify(placeholder.request), req],
      [JSON.stringify(placeholder.response), res],
    ]);
    stats.entries++;
  }
  await sink.write('\n]}}\n');
  return stats;
}

/** Write `json`, replacing each quoted placeholder with the streamed base64 of its body. */
async function writeWithBodies(sink: Sink, json: string, parts: Array<[string, BodyPlan]>): Promise<void> {
  let rest = json;
  for (const [ph, plan] of parts) {
    if (!plan.stream) continue;
    const at = rest.indexOf(ph);
    if (at < 0) continue;
    await sink.write(`${rest.slice(0, at)}"`);
    await streamBase64(sink, plan.stream());
    await sink.write('"');
    rest = rest.slice(at + ph.length);
  }
  await sink.write(rest);
}

async function streamBase64(sink: Sink, body: Readable): Promise<void> {
  let carry = Buffer.alloc(0);
  for await (const c of body) {
    const buf = carry.length ? Buffer.concat([carry, c as Buffer]) : (c as Buffer);
    const whole = buf.length - (buf.length % 3);
    if (whole) await sink.write(buf.subarray(0, whole).toString('base64'));
    carry = Buffer.from(buf.subarray(whole));
  }
  if (carry.length) await sink.write(carry.toString('base64'));
}

async function planBody(rec: Recording, flow: FlowRecord, side: 'request' | 'response', maxBody: number, stats: HarExportStats): Promise<BodyPlan> {
  const ref: BodyRef | null = side === 'request' ? flow.requestBody : flow.responseBody;
  const headers = side === 'request' ? flow.request.headers : (flow.response?.headers ?? []);
  const wire = side === 'request' ? flow.requestBytes : flow.responseBytes;
  if (!ref) {
    if (!wire) return { fields: {}, info: null };
    return {
      fields: { size: wire, comment: `${side} body not in the recording (${wire} bytes passed; the transfer did not complete)` },
      info: { sha256: null, size: wire, redacted: false, omitted: 'not-stored' },
    };
  }
  const info: HarBodyInfo = { sha256: ref.sha256, size: ref.size, redacted: ref.redacted };
  if (!ref.sha256 || ref.size === 0) return { fields: { text: '', size: 0 }, info };
  if (ref.size > maxBody) {
    stats.bodiesOverLimit++;
    info.omitted = 'max-body';
    return { fields: { size: ref.size, comment: `body omitted: ${ref.size} bytes, over --max-body ${maxBody}; in the recording as sha256:${ref.sha256}` }, info };
  }
  if (!rec.hasBody(ref.sha256)) {
    stats.bodiesMissing++;
    info.omitted = 'missing';
    return { fields: { size: ref.size, comment: `body sha256:${ref.sha256} (${ref.size} bytes) is missing from the recording's .blobs directory` }, info };
  }
  const codec = codecFor(getHeader(headers, 'content-encoding'));
  if (ref.size > IN_MEMORY) {
    // Streamed as stored; an encoded body stays encoded (the importer recognises it).
    if (codec) info.contentEncoded = true;
    const sha = ref.sha256;
    return {
      fields: { size: ref.size, encoding: 'base64', comment: codec ? `still Content-Encoding: ${codec.name} (too large to decode here)` : undefined },
      info,
      stream: () => rec.readBody(sha),
    };
  }
  const stored = await rec.readBodyBuffer(ref.sha256, IN_MEMORY);
  let bytes = stored;
  let compression: number | undefined;
  let comment: string | undefined;
  if (codec) {
    try {
      bytes = codec.decode(stored, MAX_DECODED);
      compression = bytes.length - stored.length;
    } catch (e) {
      info.contentEncoded = true;
      comment = `still Content-Encoding: ${codec.name} (could not decode: ${(e as Error).message})`;
    }
  }
  const fields: BodyPlan['fields'] = isText(bytes) ? { text: bytes.toString('utf8') } : { text: bytes.toString('base64'), encoding: 'base64' };
  return { fields: { ...fields, size: bytes.length, compression, comment }, info };
}

function nameValues(headers: HeaderList): NameValue[] {
  return headers.map(([name, value]) => ({ name, value }));
}

function decodeForm(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** `a=1&b=2` → name/value pairs, decoded (form rules: `+` is a space). */
export function formPairs(query: string): NameValue[] {
  return query
    .split('&')
    .filter(Boolean)
    .map((kv) => {
      const eq = kv.indexOf('=');
      return eq < 0 ? { name: decodeForm(kv), value: '' } : { name: decodeForm(kv.slice(0, eq)), value: decodeForm(kv.slice(eq + 1)) };
    });
}

function requestCookies(headers: HeaderList): NameValue[] {
  return getHeaders(headers, 'cookie').flatMap((v) =>
    v
      .split(';')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => {
        const eq = p.indexOf('=');
        return eq < 0 ? { name: p, value: '' } : { name: p.slice(0, eq), value: p.slice(eq + 1) };
      }),
  );
}

function responseCookies(headers: HeaderList): Array<NameValue & Record<string, unknown>> {
  return getHeaders(headers, 'set-cookie').map((v) => {
    const [pair, ...attrs] = v.split(';');
    const eq = pair!.indexOf('=');
    const c: NameValue & Record<string, unknown> = eq < 0 ? { name: pair!.trim(), value: '' } : { name: pair!.slice(0, eq).trim(), value: pair!.slice(eq + 1).trim() };
    for (const a of attrs) {
      const [k, ...val] = a.trim().split('=');
      const key = k!.toLowerCase();
      if (key === 'path') c.path = val.join('=');
      else if (key === 'domain') c.domain = val.join('=');
      else if (key === 'httponly') c.httpOnly = true;
      else if (key === 'secure') c.secure = true;
    }
    return c;
  });
}

function httpVersion(v: string): string {
  return /^http\//i.test(v) ? v.toUpperCase() : `HTTP/${v}`;
}

const r3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * Our moments (epoch ms) as HAR durations. `connect` includes `ssl` (HAR 1.2); a
 * reused connection has neither (-1); DNS and queueing are not measured (-1).
 */
export function harTimings(t: Timings): { blocked: number; dns: number; connect: number; ssl: number; send: number; wait: number; receive: number } {
  const connectEnd = t.connect !== undefined ? (t.tls ?? t.connect) : undefined;
  const connect = connectEnd !== undefined ? Math.max(0, connectEnd - t.start) : -1;
  const ssl = t.tls !== undefined && t.connect !== undefined ? Math.max(0, t.tls - t.connect) : -1;
  const sendFrom = connectEnd ?? t.start;
  const send = t.requestSent !== undefined ? Math.max(0, t.requestSent - sendFrom) : 0;
  const waitFrom = t.requestSent ?? sendFrom;
  const waitTo = t.firstByte ?? t.end;
  const wait = waitTo !== undefined ? Math.max(0, waitTo - waitFrom) : 0;
  const receive = t.end !== undefined && t.firstByte !== undefined ? Math.max(0, t.end - t.firstByte) : 0;
  return { blocked: -1, dns: -1, connect: r3(connect), ssl: r3(ssl), send: r3(send), wait: r3(wait), receive: r3(receive) };
}

/** `ip:port` / `[v6]:port` → the IP, if it is one. */
function ipOf(addr: string | null): string | undefined {
  if (!addr) return undefined;
  const m = /^\[([0-9a-f:.]+)\]:\d+$/i.exec(addr) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(addr);
  return m ? m[1] : undefined;
}

function harEntry(f: FlowRecord, req: BodyPlan, res: BodyPlan, placeholder: { request: string; response: string }): Record<string, unknown> {
  const timings = harTimings(f.timings);
  const time = r3([timings.connect, timings.send, timings.wait, timings.receive].filter((n) => n > 0).reduce((a, b) => a + b, 0));
  const q = f.request.target.indexOf('?');
  const reqType = getHeader(f.request.headers, 'content-type') ?? '';
  const request: Record<string, unknown> = {
    method: f.request.method,
    url: flowUrl(f.request),
    httpVersion: httpVersion(f.request.httpVersion),
    cookies: requestCookies(f.request.headers),
    headers: nameValues(f.request.headers),
    queryString: q < 0 ? [] : formPairs(f.request.target.slice(q + 1)),
    headersSize: -1,
    bodySize: f.requestBody?.size ?? (f.requestBytes || 0),
  };
  if (req.info && (req.info.size > 0 || req.info.omitted)) {
    const postData: Record<string, unknown> = { mimeType: reqType };
    if (req.stream) postData.text = placeholder.request;
    else if (req.fields.text !== undefined) postData.text = req.fields.text;
    if (req.fields.encoding) postData.encoding = req.fields.encoding;
    if (/^application\/x-www-form-urlencoded/i.test(reqType) && req.fields.text !== undefined && !req.fields.encoding) postData.params = formPairs(req.fields.text);
    if (req.fields.comment) postData.comment = req.fields.comment;
    request.postData = postData;
  }
  let response: Record<string, unknown>;
  if (f.response) {
    const content: HarContent = { size: res.fields.size ?? 0, mimeType: getHeader(f.response.headers, 'content-type') ?? '' };
    if (res.fields.compression !== undefined) content.compression = res.fields.compression;
    if (res.stream) content.text = placeholder.response;
    else if (res.fields.text !== undefined) content.text = res.fields.text;
    if (res.fields.encoding) content.encoding = res.fields.encoding;
    if (res.fields.comment) content.comment = res.fields.comment;
    response = {
      status: f.response.status,
      statusText: f.response.reason,
      httpVersion: httpVersion(f.response.httpVersion),
      cookies: responseCookies(f.response.headers),
      headers: nameValues(f.response.headers),
      content,
      redirectURL: getHeader(f.response.headers, 'location') ?? '',
      headersSize: -1,
      bodySize: f.responseBody?.size ?? f.responseBytes,
    };
  } else {
    // No response (transport error, or still open): HAR requires the object; status 0 as browsers and mitmproxy write it.
    response = { status: 0, statusText: '', httpVersion: '', cookies: [], headers: [], content: { size: 0, mimeType: '' }, redirectURL: '', headersSize: -1, bodySize: -1 };
    if (f.error) response._error = f.error;
  }
  const entry: Record<string, unknown> = {
    startedDateTime: new Date(f.timings.start).toISOString(),
    time,
    request,
    response,
    cache: {},
    timings,
  };
  const ip = ipOf(f.serverAddr);
  if (ip) entry.serverIPAddress = ip;
  if (f.comment) entry.comment = f.comment;
  entry._regtape = {
    id: f.id,
    uuid: f.uuid,
    state: f.state,
    error: f.error,
    timings: f.timings,
    clientAddr: f.clientAddr,
    serverAddr: f.serverAddr,
    requestBytes: f.requestBytes,
    responseBytes: f.responseBytes,
    requestBody: req.info,
    responseBody: res.info,
    registry: f.registry ?? null,
    tokens: f.facts.tokens ?? [],
    redactions: f.facts.redactions ?? [],
    marked: !!f.marked,
  };
  return entry;
}
