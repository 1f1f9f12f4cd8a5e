import type { Filter } from '../filter/index.js';
import { isSafeText, safeText } from '../term/index.js';
import { flowUrl, type FlowRecord } from '../flow/index.js';
import type { Recording } from '../store/index.js';
import { selectFlows } from './flows.js';
import type { Sink } from './sink.js';
import { isText } from './util.js';

/**
 * Flows as curl commands, one per flow, for re-running a request by hand. Everything
 * is shell-quoted (POSIX sh). Secrets the recording holds only as `REDACTED-xxxxxxxx`
 * markers become shell variables (`"${REGTAPE_TOKEN}"`, `"${REGTAPE_PASSWORD}"`, …)
 * named after where they were, so the command works once the user sets them.
 */

/** Request bodies up to this size that are text are written inline; others are read from a file or stdin. */
export const CURL_INLINE_MAX = 16 * 1024;

const MARKER = /REDACTED-[0-9a-f]{8}/g;

/** Whether text holds a redaction marker. */
export function hasMarker(text: string): boolean {
  return /REDACTED-[0-9a-f]{8}/.test(text);
}

/** A shell word: literal pieces and variable references. */
type Piece = { lit: string } | { var: string };
type Word = Piece[];

/** What to do with a request body. */
export type CurlBody =
  | { kind: 'none' }
  | { kind: 'text'; text: string }
  /** A file holding the exact bytes (the recording's body file). */
  | { kind: 'file'; path: string; size: number; sha256: string }
  /** Bytes the command cannot carry: read from stdin, with a note saying what they are. */
  | { kind: 'stdin'; size: number; sha256: string | null; why: string };

/**
 * A literal for POSIX sh: single-quoted ('it'\''s); a value holding control or bidi
 * characters is written as "$(printf '\033…')" so the script stays exact when run and
 * prints no control byte when read.
 */
function shLiteral(s: string): string {
  if (isSafeText(s, { multiline: true })) return `'${s.replace(/'/g, `'\\''`)}'`;
  let fmt = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (byte < 0x20 || byte >= 0x7f) fmt += `\\${byte.toString(8).padStart(3, '0')}`;
    else if (c === '%') fmt += '%%';
    else if (c === '\\') fmt += '\\\\';
    else if (c === "'") fmt += `'\\''`;
    else fmt += c;
  }
  return `"$(printf '${fmt}')"`;
}

/** Single-quote for POSIX sh when needed ('it'\''s). */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return shLiteral(s);
}

function renderWord(word: Word): string {
  // Adjacent literals become one quoted piece.
  const w: Word = [];
  for (const p of word) {
    const last = w[w.length - 1];
    if ('lit' in p && last && 'lit' in last) w[w.length - 1] = { lit: last.lit + p.lit };
    else w.push(p);
  }
  if (w.every((p) => 'lit' in p)) return shellQuote(w.map((p) => (p as { lit: string }).lit).join(''));
  return w.map((p) => ('lit' in p ? (p.lit === '' ? '' : shLiteral(p.lit)) : `"\${${p.var}}"`)).join('');
}

function envName(s: string): string {
  return s
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toUpperCase();
}

/** Names variables for markers: the same marker always gets the same variable; different markers never share one. */
export class Placeholders {
  private readonly byMarker = new Map<string, string>();
  private readonly used = new Set<string>();

  name(marker: string, hint: string): string {
    const known = this.byMarker.get(marker);
    if (known) return known;
    const base = `REGTAPE_${envName(hint) || 'SECRET'}`;
    let v = base;
    for (let i = 2; this.used.has(v); i++) v = `${base}_${i}`;
    this.used.add(v);
    this.byMarker.set(marker, v);
    return v;
  }

  /** Variables handed out so far, in order. */
  get names(): string[] {
    return [...this.used];
  }
}

/** Split text at markers into literal and variable pieces; `hint(before)` names a variable from the text before it. */
function template(text: string, vars: Placeholders, hint: (before: string) => string): Word {
  const w: Word = [];
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    w.push({ lit: text.slice(last, m.index) });
    w.push({ var: vars.name(m[0], hint(text.slice(0, m.index))) });
    last = m.index! + m[0].length;
  }
  w.push({ lit: text.slice(last) });
  return w.filter((p) => !('lit' in p) || p.lit !== '');
}

/** Name from what precedes a marker: `name=`, `"name": "`, else a fallback. */
function keyHint(fallback: string): (before: string) => string {
  return (before) => {
    const m = /([A-Za-z0-9_.-]+)=$/.exec(before) ?? /"([^"]+)"\s*:\s*"$/.exec(before);
    return m ? m[1]! : fallback;
  };
}

/** One curl command (with a comment line above it) for a flow. */
export function curlCommand(f: FlowRecord, body: CurlBody, vars: Placeholders = new Placeholders()): string {
  /** Options, each with its value: one per line. */
  const opts: Word[][] = [];
  const notes: string[] = [];
  const method = f.request.method.toUpperCase();
  // -X HEAD would make curl wait for a body that never comes.
  const methodOpt: Word[] = method === 'HEAD' ? [[{ lit: '--head' }]] : [[{ lit: '-X' }], [{ lit: method }]];
  const url = flowUrl(f.request);
  const q = url.indexOf('?');
  const urlWord: Word = q < 0 ? [{ lit: url }] : [{ lit: url.slice(0, q + 1) }, ...template(url.slice(q + 1), vars, keyHint('query'))];
  const authority = url.replace(/^[a-z]+:\/\//i, '').split(/[/?]/)[0]!;
  for (const [name, value] of f.request.headers) {
    const n = name.toLowerCase();
    if (n === 'content-length') continue; // curl computes it
    if (n === 'host' && value.toLowerCase() === authority.toLowerCase()) continue;
    if ((n === 'authorization' || n === 'proxy-authorization') && /^basic\s+/i.test(value)) {
      const decoded = Buffer.from(value.replace(/^basic\s+/i, ''), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0 && hasMarker(decoded)) {
        // curl builds the Basic header from -u; the password is the variable.
        const word = template(decoded.slice(colon + 1), vars, () => (n === 'authorization' ? 'password' : 'proxy_password'));
        opts.push([[{ lit: n === 'authorization' ? '-u' : '--proxy-user' }], [{ lit: `${decoded.slice(0, colon)}:` }, ...word]]);
        continue;
      }
    }
    const line = value === '' ? `${name};` : `${name}: ${value}`;
    let hint: (before: string) => string;
    if (n === 'authorization') hint = () => (/^bearer\s/i.test(value) ? 'token' : 'auth');
    else if (n === 'proxy-authorization') hint = () => 'proxy_auth';
    else if (n === 'cookie') hint = (before) => `cookie_${keyHint('cookie')(before)}`;
    else hint = () => n;
    opts.push([[{ lit: '-H' }], template(line, vars, hint)]);
  }
  switch (body.kind) {
    case 'none':
      break;
    case 'text':
      opts.push([[{ lit: '--data-binary' }], template(body.text, vars, keyHint('body'))]);
      break;
    case 'file':
      opts.push([[{ lit: '--data-binary' }], [{ lit: `@${body.path}` }]]);
      notes.push(`request body: ${body.size} bytes read from the recording's body file (sha256:${body.sha256})`);
      break;
    case 'stdin':
      opts.push([[{ lit: '--data-binary' }], [{ lit: '@-' }]]);
      notes.push(`request body: ${body.size} bytes${body.sha256 ? ` (sha256:${body.sha256})` : ''} ${body.why}; feed them on stdin`);
      break;
  }
  const status = f.response ? String(f.response.status) : f.state === 'error' ? `error${f.error ? `: ${f.error}` : ''}` : f.state;
  const r = f.registry;
  const what = r && r.role !== 'other' ? ` [${r.role}${r.repo ? ` ${r.repo}${r.reference ? (r.reference.includes(':') ? `@${r.reference}` : `:${r.reference}`) : ''}` : ''}]` : '';
  const comment = safeText(`# flow ${f.id}: ${method} ${url} → ${status}${what}`);
  const lines = [['curl', ...methodOpt.map(renderWord), renderWord(urlWord)].join(' '), ...opts.map((o) => `  ${o.map(renderWord).join(' ')}`)];
  return [comment, ...notes.map((n) => safeText(`# ${n}`)), lines.join(' \\\n')].join('\n');
}

/** Decide how a flow's request body goes into its command. */
export async function curlBodyFor(rec: Recording, f: FlowRecord, inlineMax = CURL_INLINE_MAX): Promise<CurlBody> {
  const ref = f.requestBody;
  if (!ref || !ref.sha256 || ref.size === 0) {
    if (f.requestBytes > 0) return { kind: 'stdin', size: f.requestBytes, sha256: null, why: 'were sent but not recorded (the transfer did not complete)' };
    return { kind: 'none' };
  }
  if (ref.size <= inlineMax) {
    const buf = rec.readBodySync(ref.sha256, inlineMax);
    if (buf && isText(buf)) return { kind: 'text', text: buf.toString('utf8') };
  }
  if (rec.bodies.has(ref.sha256)) return { kind: 'file', path: rec.bodies.pathOf(ref.sha256), size: ref.size, sha256: ref.sha256 };
  if (!rec.hasBody(ref.sha256)) return { kind: 'stdin', size: ref.size, sha256: ref.sha256, why: 'are missing from the recording' };
  return { kind: 'stdin', size: ref.size, sha256: ref.sha256, why: 'are binary (kept inside the recording database)' };
}

export interface CurlExportStats {
  commands: number;
  /** Variables the commands use for redacted secrets. */
  variables: string[];
}

/** Write one curl command per flow (those `filter` keeps) to `sink`. */
export async function writeCurl(rec: Recording, sink: Sink, opts: { filter?: Filter | null } = {}): Promise<CurlExportStats> {
  const vars = new Placeholders();
  let commands = 0;
  await sink.write(`#!/bin/sh\n# curl commands for the flows of ${rec.path}, generated by regtape export --curl\n\n`);
  for (const f of selectFlows(rec, opts.filter)) {
    await sink.write(`${curlCommand(f, await curlBodyFor(rec, f), vars)}\n\n`);
    commands++;
  }
  if (vars.names.length) {
    await sink.write(
      `# Secrets were redacted in the recording; the commands read them from these variables:\n${vars.names.map((v) => `#   export ${v}=...`).join('\n')}\n`,
    );
  }
  return { commands, variables: vars.names };
}

