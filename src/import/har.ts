import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline, Readable, Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import zlib from 'node:zlib';
import { codecFor, tempBeside, type Codec, type HarBodyInfo } from '../export/index.js';
import { defaultPort, getHeader, type BodyRef, type FlowRecord, type FlowState, type HeaderList, type RequestHead, type ResponseHead, type Timings, type TokenFact } from '../flow/index.js';
import { defaultChain, describeRequest, flowFacts, knownClaimsAddon, REDACT_BUFFER_LIMIT, type FactsSoFar, type Pipeline } from '../pipeline/index.js';
import { Redactor } from '../redact/index.js';
import { shortPath } from '../inspect/index.js';
import { blobDirFor, Recording, type StoredBody } from '../store/index.js';
import { openHarStream, openSpill, readHarEntries, type HarEntryRead, type HarHeader, type SpilledString } from './har-reader.js';
import { installRecording, removeRecordingFiles } from './install.js';
import { RegtapeError } from '../errors/index.js';

/**
 * `regtape import IN.har --out FILE.db`: HAR files (mitmproxy `save.har`, browsers,
 * Charles, our own export) into a recording, each entry a flow stored through the same
 * store API the recorder uses and redacted the way the recorder redacts (headers,
 * query, JSON and form bodies; Content-Encoding bodies decoded, redacted, re-encoded).
 * Bodies over 1 MiB are streamed into body files and, like the recorder's large bodies,
 * not redacted. Flows are classified as if recorded. Memory stays bounded: the HAR is
 * read entry by entry and long strings (base64 layers) go through files. A new
 * recording is written to a temp file and renamed into place at the end, so a bad HAR
 * leaves nothing behind.
 */

export interface ImportOptions {
  /** Add to an existing recording (one transaction: all entries or none). */
  append?: boolean;
  /** One line per entry that could not be imported whole (stderr). */
  report?: (line: string) => void;
}

export interface ImportSummary {
  out: string;
  /** Entries in the HAR. */
  entries: number;
  /** Flows written. */
  imported: number;
  /** Entries not imported (no response, not HTTP, unreadable), by reason. */
  skipped: Record<string, number>;
  /** Imported as transport errors (no response, but an error text). */
  errors: number;
  /** Bodies the HAR left out (flows imported without them). */
  bodiesOmitted: number;
  /** Distinct secrets found in the HAR and replaced by markers. */
  redactions: number;
  /** `log.creator` of the HAR, e.g. "mitmproxy exporthar 0.1". */
  creator: string | null;
}

/** Markers already in the HAR (an export of a redacted recording) stay as they are. */
class ImportRedactor extends Redactor {
  /** Markers made for secrets found in the HAR (not markers it already had). */
  readonly fresh = new Set<string>();

  override marker(secret: string): string {
    if (/^REDACTED-[0-9a-f]{8}$/.test(secret)) return secret;
    const m = super.marker(secret);
    this.fresh.add(m);
    return m;
  }
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** HAR headers: [{name, value}] (most tools) or [[name, value]] (Slack). HTTP/2 pseudo-headers are dropped. */
function headerList(v: unknown): HeaderList {
  if (!Array.isArray(v)) return [];
  const out: HeaderList = [];
  for (const h of v) {
    const name = Array.isArray(h) ? str(h[0]) : isObj(h) ? str(h.name) : undefined;
    const value = Array.isArray(h) ? str(h[1]) : isObj(h) ? str(h.value) : undefined;
    if (name === undefined || name.startsWith(':')) continue;
    out.push([name, value ?? '']);
  }
  return out;
}

function httpVersion(v: unknown): string {
  const s = (str(v) ?? '').trim().toLowerCase();
  if (s === 'h2' || s === 'http/2' || s === 'http/2.0') return '2.0';
  if (s === 'h3' || s === 'http/3') return '3.0';
  const m = /^http\/(\d\.\d)$/.exec(s);
  return m ? m[1]! : '1.1';
}

/** The URL as the client sent it: scheme, host, port and the target verbatim (no normalisation; userinfo and fragment dropped). */
export function splitUrl(url: string): { scheme: 'http' | 'https'; host: string; port: number; target: string } | null {
  const m = /^(https?):\/\/([^/?#]*)([^#]*)/i.exec(url.trim());
  if (!m) return null;
  const scheme = m[1]!.toLowerCase() as 'http' | 'https';
  const authority = m[2]!.slice(m[2]!.lastIndexOf('@') + 1);
  const hp = /^\[([^\]]+)\](?::(\d+))?$/.exec(authority) ?? /^([^:]+)(?::(\d*))?$/.exec(authority);
  if (!hp || !hp[1]) return null;
  const port = hp[2] ? Number(hp[2]) : defaultPort(scheme);
  if (!(port > 0 && port < 65536)) return null;
  let target = m[3]!;
  if (!target.startsWith('/')) target = `/${target}`;
  return { scheme, host: hp[1].toLowerCase(), port, target };
}

/** A HAR body: its bytes, or for a long string the reader moved to a file, a way to stream them. */
type HarBody = { bytes: Buffer } | { open: () => Readable };

/** The body of a HAR `content` / `postData`: `text`, base64 when `encoding` (or `_encoding`) says so. Undefined when the HAR left it out. */
function harBody(o: Json | undefined, spills: Map<string, SpilledString>): HarBody | undefined {
  if (!o) return undefined;
  const text = o.text;
  if (typeof text !== 'string') return undefined;
  const base64 = (str(o.encoding) ?? str(o._encoding))?.toLowerCase() === 'base64';
  const spilled = spills.get(text);
  if (spilled) return { open: () => openSpill(spilled, base64) };
  return { bytes: base64 ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8') };
}

/**
 * HAR bodies are the decoded content (HAR 1.2 `content.text`), while the headers still
 * say `Content-Encoding: gzip`. Give back bytes that match the headers: as they are if
 * they already decode (a HAR that kept the wire bytes), else encoded again.
 */
function matchEncoding(body: Buffer, headers: HeaderList): Buffer {
  const codec = codecFor(getHeader(headers, 'content-encoding'));
  if (!codec || !body.length) return body;
  try {
    codec.decode(body, 1);
    return body;
  } catch (e) {
    // maxOutputLength exceeded means it decodes: it is already encoded.
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return body;
  }
  return codec.encode(body);
}

/** Whether the first bytes of a body look like this Content-Encoding already (brotli has no signature: never). */
function looksEncoded(head: Buffer, codec: Codec): boolean {
  if (codec.name === 'gzip') return head[0] === 0x1f && head[1] === 0x8b;
  if (codec.name === 'deflate') return head.length >= 2 && (head[0]! & 0x0f) === 8 && (head[0]! * 256 + head[1]!) % 31 === 0;
  return false;
}

/** `matchEncoding` for a streamed (large) body: encode it unless it already is. */
function encodeStream(src: Readable, codec: Codec): Readable {
  return Readable.from(
    (async function* () {
      const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const first = await it.next();
      if (first.done) return;
      const rest = async function* () {
        yield first.value;
        for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
      };
      if (looksEncoded(first.value, codec)) return yield* rest();
      const z = codec.name === 'gzip' ? zlib.createGzip() : codec.name === 'deflate' ? zlib.createDeflate() : zlib.createBrotliCompress();
      yield* pipeline(Readable.from(rest()), z, (err) => void (err && z.destroy(err))) as AsyncIterable<Buffer>;
    })(),
    { objectMode: false },
  );
}

/** A body through the chain's body hooks (redaction: decode its Content-Encoding, redact JSON/form secrets, encode again). */
function bodyThroughChain(body: Buffer, ctx: BodyContext): { body: Buffer; redacted: boolean } {
  const out = ctx.pipeline.body({ side: ctx.side, bytes: body, contentType: getHeader(ctx.headers, 'content-type'), contentEncoding: getHeader(ctx.headers, 'content-encoding'), facts: ctx.facts }, ctx.request);
  return { body: out, redacted: out !== body };
}

/**
 * Whether a stored body had secrets replaced: it did if redaction changed its bytes;
 * if it only met markers already there, the HAR's own `_regtape` fact says.
 */
function redactedFlag(red: { body: Buffer; redacted: boolean }, wire: Buffer, info: unknown): boolean {
  if (!red.body.equals(wire)) return true;
  return isObj(info) && typeof info.redacted === 'boolean' ? info.redacted : red.redacted;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

interface BodyContext {
  rec: Recording;
  pipeline: Pipeline;
  /** The (redacted) request head, for messages. */
  request: RequestHead;
  headers: HeaderList;
  side: 'request' | 'response';
  facts: FactsSoFar;
  /** `_regtape.requestBody` / `responseBody` from the HAR, if any. */
  info: unknown;
}

/**
 * Store a HAR body as the recorder would: bytes matching the headers' Content-Encoding,
 * redacted when small enough to hold (the recorder redacts what it buffers), then
 * through the store API. Returns the stored body and its size on the wire.
 */
async function storeHarBody(body: HarBody, ctx: BodyContext): Promise<{ stored: StoredBody | null; wire: number }> {
  const fromBytes = async (wire: Buffer) => {
    const red = bodyThroughChain(wire, ctx);
    const stored = red.body.length ? await ctx.rec.storeBody({ sha256: sha256(red.body), size: red.body.length, buffer: red.body }, redactedFlag(red, wire, ctx.info)) : null;
    return { stored, wire: wire.length };
  };
  if ('bytes' in body) return fromBytes(matchEncoding(body.bytes, ctx.headers));
  // A long string the reader spilled to disk: stream it through a body tap (to a file when large).
  const codec = codecFor(getHeader(ctx.headers, 'content-encoding'));
  const src = codec ? encodeStream(body.open(), codec) : body.open();
  const tap = ctx.rec.bodies.tap({ bufferLimit: REDACT_BUFFER_LIMIT });
  await pipelineAsync(src, tap, new Writable({ write: (_c, _e, cb) => cb() }));
  const captured = await tap.result();
  if (!captured) throw new RegtapeError('import-failed', `could not store a ${ctx.side} body`);
  if (captured.buffer) return fromBytes(captured.buffer);
  return { stored: await ctx.rec.storeBody(captured, false), wire: captured.size };
}

function timingsOf(e: Json, hasResponse: boolean): Timings | null {
  const rt = isObj(e._regtape) && isObj(e._regtape.timings) ? e._regtape.timings : null;
  if (rt && num(rt.start) !== undefined) {
    const t: Timings = { start: rt.start as number };
    for (const k of ['connect', 'tls', 'requestSent', 'firstByte', 'end'] as const) if (num(rt[k]) !== undefined) t[k] = rt[k] as number;
    return t;
  }
  const start = Date.parse(str(e.startedDateTime) ?? '');
  if (!Number.isFinite(start)) return null;
  const ht = isObj(e.timings) ? e.timings : {};
  const pos = (k: string) => {
    const v = num(ht[k]);
    return v !== undefined && v >= 0 ? v : undefined;
  };
  const t: Timings = { start };
  let cur = start + (pos('blocked') ?? 0) + (pos('dns') ?? 0);
  const connect = pos('connect');
  if (connect !== undefined) {
    const ssl = pos('ssl');
    t.connect = cur + connect - (ssl ?? 0);
    if (ssl !== undefined) t.tls = cur + connect;
    cur += connect;
  }
  t.requestSent = cur + (pos('send') ?? 0);
  if (hasResponse) {
    t.firstByte = t.requestSent + (pos('wait') ?? 0);
    t.end = t.firstByte + (pos('receive') ?? 0);
  } else {
    const total = num(e.time);
    t.end = total !== undefined && total >= 0 ? start + total : t.requestSent;
  }
  return t;
}

const STATES: FlowState[] = ['open', 'complete', 'error', 'aborted'];

/** One import: the recording, the addon chain, the tallies. */
interface ImportRun {
  rec: Recording;
  pipeline: Pipeline;
  summary: ImportSummary;
  report: (line: string) => void;
  skip: (why: string) => void;
  /** Token claims the current entry's `_regtape.tokens` knows, by marker. */
  known: Map<string, TokenFact>;
}

/** Import a HAR file into a new recording (or, with `append`, an existing one). */
export async function importHar(input: string, out: string, opts: ImportOptions = {}): Promise<ImportSummary> {
  const report = opts.report ?? (() => undefined);
  if (!fs.existsSync(input)) throw new RegtapeError('recording-not-found', `${input}: no such file`);
  const outPath = path.resolve(out);
  const exists = fs.existsSync(outPath);
  if (exists && !opts.append) throw new RegtapeError('recording-exists', `${out} already exists; use --append to add the HAR's flows to it, or give a new --out`);
  const blobs = blobDirFor(outPath);
  if (!exists && fs.existsSync(blobs) && fs.readdirSync(blobs).some((n) => n !== '.tmp')) {
    throw new RegtapeError('recording-exists', `${blobs} already exists without ${out}; remove it or give a new --out`);
  }
  const appending = exists;
  const target = appending ? outPath : tempBeside(outPath, 'importing', '.db');
  const rec = Recording.open(target, { create: !appending });
  const summary: ImportSummary = { out: outPath, entries: 0, imported: 0, skipped: {}, errors: 0, bodiesOmitted: 0, redactions: 0, creator: null };
  const skip = (why: string) => void (summary.skipped[why] = (summary.skipped[why] ?? 0) + 1);
  const entries: { it: AsyncGenerator<HarEntryRead, HarHeader> | null } = { it: null };
  try {
    await rec.transactionAsync(async () => {
      const session = rec.beginSession('import', { har: path.basename(input) });
      const redactor = new ImportRedactor();
      const known = new Map<string, TokenFact>();
      // The recorder's chain, with the claims the HAR already knew filled in before classification.
      const pipeline = defaultChain({ redactor, before: [knownClaimsAddon((m) => known.get(m)?.claims)], onFailure: (a, hook, e, req) => report(`${describeRequest(req)}: addon ${a.name} failed in ${hook}: ${e.message}`) });
      const run: ImportRun = { rec, pipeline, summary, report, skip, known };
      entries.it = readHarEntries(await openHarStream(input), input, { spillDir: rec.bodies.tmpDir });
      let header: HarHeader;
      for (let step = await entries.it.next(); ; step = await entries.it.next()) {
        if (step.done) {
          header = step.value;
          break;
        }
        summary.entries++;
        await importEntry(run, step.value);
      }
      summary.redactions = redactor.fresh.size;
      if (header.creator?.name) summary.creator = [header.creator.name, header.creator.version].filter(Boolean).join(' ');
      rec.setSessionOptions(session, { har: path.basename(input), creator: summary.creator, version: header.version ?? null });
    });
  } catch (e) {
    await entries.it?.return({}).catch(() => undefined); // removes spilled strings
    rec.close();
    if (!appending) removeRecordingFiles(target);
    throw e;
  }
  rec.close();
  if (!appending) installRecording(target, outPath, { force: false });
  return summary;
}

/** The request of an entry, checked: method, URL, scheme; null (reported, skipped) when it is not importable. */
function entryRequest(run: ImportRun, read: HarEntryRead): { req: Json; method: string; parts: NonNullable<ReturnType<typeof splitUrl>> } | null {
  const { index, entry, tooLarge, bytes } = read;
  const where = `entries[${index}]`;
  if (tooLarge) {
    run.report(`${where}: skipped: ${bytes} bytes of JSON, too large to import`);
    run.skip('too large');
    return null;
  }
  if (!isObj(entry) || !isObj(entry.request)) {
    run.report(`${where}: skipped: not a HAR entry (no request object)`);
    run.skip('not an entry');
    return null;
  }
  const req = entry.request;
  const method = str(req.method)?.toUpperCase();
  const url = str(req.url);
  const parts = url ? splitUrl(url) : null;
  if (!method || !url || !parts) {
    run.report(`${where}: skipped: ${!method ? 'no request method' : !url ? 'no request URL' : `not an http(s) URL (${url.split(/[?#]/)[0]!.slice(0, 80)})`}`);
    run.skip(!method || !url ? 'not an entry' : 'not http(s)');
    return null;
  }
  return { req, method, parts };
}

/** One HAR entry through the chain and into the recording (or skipped, with a report line). */
async function importEntry(run: ImportRun, read: HarEntryRead): Promise<void> {
  const checked = entryRequest(run, read);
  if (!checked) return;
  const { req, method, parts } = checked;
  const entry = read.entry as Json;
  const facts: FactsSoFar = { redactions: [], tokens: [] };
  const reqHeadersRaw = headerList(req.headers);
  // CONNECT has the authority as its target (flowUrl writes it as scheme://host:port).
  const target = method === 'CONNECT' ? `${parts.host.includes(':') ? `[${parts.host}]` : parts.host}:${parts.port}` : parts.target;
  const request: RequestHead = { method, scheme: parts.scheme, host: parts.host, port: parts.port, target, httpVersion: httpVersion(req.httpVersion), headers: reqHeadersRaw };
  run.pipeline.requestHead({ request, facts });
  const label = `entries[${read.index}] ${method} ${request.scheme}://${request.host}${shortPath(request.target, 100)}`;
  const rt = isObj(entry._regtape) ? entry._regtape : {};
  const outcome = entryOutcome(run, entry, rt, label);
  if (!outcome) return;
  const { res, rawResHeaders, state, timings } = outcome;
  let response: ResponseHead | null = null;
  if (outcome.response) {
    response = { ...outcome.response };
    run.pipeline.responseHead({ request, response, facts });
  }
  if (!response && state === 'error') run.summary.errors++;
  const bodies = await entryBodies(run, { req, res: response ? res : null, rt, request, reqHeadersRaw, rawResHeaders, label, facts, spills: read.spills });
  run.known.clear();
  if (Array.isArray(rt.tokens)) for (const tk of rt.tokens) if (isObj(tk) && typeof tk.marker === 'string' && isObj(tk.claims)) run.known.set(tk.marker, tk as unknown as TokenFact);
  let uuid = typeof rt.uuid === 'string' && /^[0-9a-f-]{36}$/i.test(rt.uuid) ? rt.uuid : randomUUID();
  if (run.rec.hasFlowUuid(uuid)) uuid = randomUUID();
  const serverIp = str(entry.serverIPAddress);
  const flow: FlowRecord = {
    id: 0,
    uuid,
    state,
    request,
    requestBody: bodies.request.stored?.ref ?? null,
    response,
    responseBody: bodies.response.stored?.ref ?? null,
    timings,
    clientAddr: str(rt.clientAddr) ?? null,
    serverAddr: str(rt.serverAddr) ?? (serverIp ? (serverIp.includes(':') ? `[${serverIp}]:${parts.port}` : `${serverIp}:${parts.port}`) : null),
    error: response ? (str(rt.error) ?? null) : outcome.errorText,
    requestBytes: num(rt.requestBytes) ?? bodies.request.wire,
    responseBytes: num(rt.responseBytes) ?? bodies.response.wire,
    facts: flowFacts(facts),
  };
  flow.id = run.rec.insertOpenFlow(flow);
  const described = { request: bodies.request.described, response: bodies.response.described };
  run.pipeline.flowFinished({ flow, bodies: { request: bodies.request.stored?.inline ?? null, response: bodies.response.stored?.inline ?? null }, described });
  run.rec.finishFlow(flow, bodies.request.stored, bodies.response.stored);
  const comment = str(entry.comment);
  if (comment) run.rec.setComment(flow.id, comment);
  if (rt.marked === true) run.rec.setMarked(flow.id, true);
  if (Array.isArray(entry._webSocketMessages) && entry._webSocketMessages.length) run.report(`${label}: WebSocket messages are not imported (the handshake is)`);
  run.pipeline.flowStored(flow);
  run.summary.imported++;
}

/** The response head (or a transport error), state and timings of an entry; null (reported, skipped) when it has none of them. */
function entryOutcome(run: ImportRun, entry: Json, rt: Json, label: string) {
  const res = isObj(entry.response) ? entry.response : null;
  const status = res ? num(res.status) : undefined;
  const errorText = str(rt.error) ?? (res ? str(res._error) : undefined) ?? str(entry._error) ?? null;
  let response: ResponseHead | null = null;
  let rawResHeaders: HeaderList = [];
  if (res && status !== undefined && status > 0) {
    rawResHeaders = headerList(res.headers);
    response = { status, reason: str(res.statusText) ?? '', httpVersion: httpVersion(res.httpVersion), headers: rawResHeaders };
  } else if (!errorText && rt.state !== 'open' && rt.state !== 'aborted') {
    // (regtape's own export keeps flows that never got a response: open, or aborted before one.)
    run.report(`${label}: skipped: no response in the HAR`);
    run.skip('no response');
    return null;
  }
  const timings = timingsOf(entry, !!response);
  if (!timings) {
    run.report(`${label}: skipped: no startedDateTime`);
    run.skip('no start time');
    return null;
  }
  let state: FlowState = STATES.includes(rt.state as FlowState) ? (rt.state as FlowState) : response ? 'complete' : 'error';
  if (!response && state === 'complete') state = 'error';
  return { res, response, rawResHeaders, state, timings, errorText };
}

interface EntryBody {
  stored: StoredBody | null;
  /** Bytes on the wire (the HAR's size when the body itself is not there). */
  wire: number;
  /** The body `_regtape` describes when the HAR left its bytes out (for digest checks). */
  described?: BodyRef;
}

/** The request and response bodies of an entry, through the chain's body hooks and into the store. */
async function entryBodies(
  run: ImportRun,
  e: { req: Json; res: Json | null; rt: Json; request: RequestHead; reqHeadersRaw: HeaderList; rawResHeaders: HeaderList; label: string; facts: FactsSoFar; spills: Map<string, SpilledString> },
): Promise<{ request: EntryBody; response: EntryBody }> {
  const ctx = (headers: HeaderList, side: 'request' | 'response', info: unknown): BodyContext => ({ rec: run.rec, pipeline: run.pipeline, request: e.request, headers, side, facts: e.facts, info });
  const absent = (side: 'request' | 'response', size: number, info: unknown): EntryBody => {
    const i = isObj(info) ? (info as unknown as HarBodyInfo) : null;
    const validSha = !!i?.sha256 && /^[0-9a-f]{64}$/.test(i.sha256);
    // --append to the recording the HAR came from: the left-out body may be there.
    if (validSha && run.rec.hasBody(i!.sha256!)) return { stored: { ref: { sha256: i!.sha256, size: i!.size, redacted: !!i!.redacted } }, wire: size };
    if (i?.omitted !== 'not-stored') {
      run.summary.bodiesOmitted++;
      run.report(`${e.label}: ${side} body (${size} bytes) is not in the HAR${i?.omitted === 'max-body' ? ' (left out by --max-body)' : ''}; imported without it`);
    }
    return { stored: null, wire: size, described: validSha ? { sha256: i!.sha256, size: i!.size, redacted: !!i!.redacted } : undefined };
  };
  let request: EntryBody = { stored: null, wire: 0 };
  const post = isObj(e.req.postData) ? e.req.postData : undefined;
  const reqBody = harBody(post, e.spills) ?? formBody(post);
  if (reqBody !== undefined) request = await storeHarBody(reqBody, ctx(e.reqHeadersRaw, 'request', e.rt.requestBody));
  else {
    const size = num(e.req.bodySize) ?? 0;
    if (size > 0 || post) request = absent('request', Math.max(0, size), e.rt.requestBody);
  }
  let response: EntryBody = { stored: null, wire: 0 };
  if (e.res) {
    const content = isObj(e.res.content) ? e.res.content : undefined;
    const resBody = harBody(content, e.spills);
    if (resBody !== undefined) response = await storeHarBody(resBody, ctx(e.rawResHeaders, 'response', e.rt.responseBody));
    else {
      const size = Math.max(num(content?.size) ?? 0, num(e.res.bodySize) ?? 0);
      if (size > 0) response = absent('response', size, e.rt.responseBody);
    }
  }
  return { request, response };
}

/** A urlencoded form given only as `params` (no `text`), as its bytes. */
function formBody(post: Json | undefined): HarBody | undefined {
  if (!post || !Array.isArray(post.params) || !/^application\/x-www-form-urlencoded/i.test(str(post.mimeType) ?? '')) return undefined;
  return {
    bytes: Buffer.from(
      (post.params as unknown[])
        .filter(isObj)
        .map((p) => `${encodeURIComponent(str(p.name) ?? '')}=${encodeURIComponent(str(p.value) ?? '')}`)
        .join('&'),
    ),
  };
}
