import fs from 'node:fs';
import { curlBodyFor, curlCommand, Placeholders, writeFileAtomically, writeHar } from '../export/index.js';
import type { Filter, FilterSubject } from '../filter/index.js';
import type { BodyRef, FlowRecord, HeaderList } from '../flow/index.js';
import { isBinary } from './body-views/hex.js';
import type { FlowModel } from './model.js';
import type { ExportFormat } from './state.js';
import { RegtapeError } from '../errors/index.js';

/**
 * Exports from the inspector: what the recording holds (already redacted). curl and
 * HAR are the project's exporters (`regtape export`: secrets become shell variables in
 * curl commands, HAR is streamed entry by entry); raw is mitmproxy's raw request and
 * response of one flow.
 */

/** Bodies up to this size go into a raw export; larger ones are named, not included. */
const MAX_RAW_BODY = 1 << 20;

function bodyOf(model: FlowModel, ref: BodyRef | null): Buffer | null {
  return ref?.sha256 ? model.backend.body(ref.sha256, MAX_RAW_BODY) : null;
}

function rawBody(model: FlowModel, ref: BodyRef | null): string {
  if (!ref || !ref.size) return '';
  const b = bodyOf(model, ref);
  if (!b) return `[body: ${ref.size} bytes, sha256:${ref.sha256 ?? '?'}; not included]\n`;
  if (isBinary(b)) return `[binary body: ${b.length} bytes, sha256:${ref.sha256}]\n`;
  return b.toString('utf8');
}

const rawHeaders = (h: HeaderList) => h.map(([k, v]) => `${k}: ${v}\r\n`).join('');

/** The request and response as they were on the wire (headers in order, bodies as text when they are text). */
export function toRaw(f: FlowRecord, model: FlowModel): string {
  let out = `${f.request.method} ${f.request.target} HTTP/${f.request.httpVersion}\r\n${rawHeaders(f.request.headers)}\r\n${rawBody(model, f.requestBody)}`;
  out += '\n';
  if (f.response) out += `HTTP/${f.response.httpVersion} ${f.response.status} ${f.response.reason}\r\n${rawHeaders(f.response.headers)}\r\n${rawBody(model, f.responseBody)}`;
  else out += `(no response: ${f.state}${f.error ? `: ${f.error}` : ''})\n`;
  return out;
}

/**
 * Write an export file: curl or raw of `flows[0]`, HAR of all `flows`. Refuses an
 * existing file before starting (synchronously); the file appears only once it is
 * complete (written beside it, then renamed), mode 0600: it holds traffic.
 */
export function writeExport(model: FlowModel, format: ExportFormat, file: string, flows: readonly FlowRecord[]): Promise<string> {
  const rec = model.backend.recording;
  if (fs.existsSync(file)) throw new RegtapeError('recording-exists', `${file} exists; choose another name`);
  if (!flows.length) throw new RegtapeError('bad-argument', 'no flow to export');
  if (format !== 'raw' && !rec) throw new RegtapeError('bad-argument', `${format} export needs a recording file`);
  const first = model.full(flows[0]!.id) ?? flows[0]!;
  switch (format) {
    case 'raw':
      return writeFileAtomically(file, async (sink) => sink.write(toRaw(first, model)), 0o600).then(() => `raw request and response of flow #${first.id}`);
    case 'curl':
      return writeFileAtomically(
        file,
        async (sink) => {
          const vars = new Placeholders();
          const cmd = curlCommand(first, await curlBodyFor(rec!, first), vars);
          const note = vars.names.length ? `# Secrets were redacted in the recording; set: ${vars.names.map((v) => `${v}=...`).join(' ')}\n` : '';
          await sink.write(`#!/bin/sh\n${note}${cmd}\n`);
        },
        0o600,
      ).then(() => `curl command for flow #${first.id}`);
    case 'har': {
      const ids = new Set(flows.map((f) => f.id));
      const filter = Object.assign((s: FilterSubject) => ids.has(s.flow.id), { source: `(the ${ids.size} flows shown)`, usesBody: false }) as Filter;
      return writeFileAtomically(file, (sink) => writeHar(rec!, sink, { filter }), 0o600).then((st) => `HAR of ${st.entries} flows${st.bodiesOverLimit ? ` (${st.bodiesOverLimit} bodies over 1 MiB left out)` : ''}`);
    }
  }
}

/**
 * `b`: a stored body into a file, streamed (layers can be large), written beside it
 * and renamed into place, 0600. Refuses an existing file before starting.
 */
export function saveBodyTo(model: FlowModel, sha256: string, file: string): Promise<string> {
  const rec = model.backend.recording;
  if (!rec) throw new Error('saving a body needs a recording file');
  if (fs.existsSync(file)) throw new Error(`${file} exists; choose another name`);
  if (!rec.hasBody(sha256)) throw new Error(`the body sha256:${sha256.slice(0, 12)}… is not in the recording`);
  return writeFileAtomically(
    file,
    async (sink) => {
      let n = 0;
      for await (const chunk of rec.readBody(sha256)) {
        n += (chunk as Buffer).length;
        await sink.write(chunk as Buffer);
      }
      return n;
    },
    0o600,
  ).then((n) => `${n} bytes (sha256:${sha256.slice(0, 12)}…)`);
}
