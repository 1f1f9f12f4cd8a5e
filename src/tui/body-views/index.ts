import { getHeader, type BodyRef, type FlowRecord } from '../../flow/index.js';
import { formatBytes } from '../../inspect/index.js';
import { isManifestType, parseManifest, type ParsedManifest } from '../../registry/index.js';
import { line, seg, type Line } from '../lines.js';
import type { FlowModel } from '../model.js';
import { hexDump, isBinary, textLines } from './hex.js';
import { prettyJson } from './json.js';
import { manifestView } from './manifest.js';
import { tokensOn, tokenView } from './token.js';

/**
 * Body views, after mitmproxy's content views: each says whether it applies to a body
 * (and how well), and renders it. The best one is chosen automatically; `m` cycles
 * through the others that apply.
 */
export type BodyMode = 'manifest' | 'token' | 'json' | 'text' | 'hex';

/** Bodies up to this size are read whole for a view; larger ones get a preview. */
const MAX_VIEW = 4 << 20;
/** Preview of larger bodies (hex or text). */
const PREVIEW = 64 * 1024;

/** One side's body as a view needs it. */
export interface BodyInput {
  flow: FlowRecord;
  side: 'request' | 'response';
  ref: BodyRef | null;
  contentType: string | undefined;
  /** The bytes (whole, or the first PREVIEW bytes when `partial`); null when there is no body or it is unavailable. */
  buf: Buffer | null;
  partial: boolean;
  model: FlowModel;
  /** Parsed manifest, when the body is one. */
  manifest: ParsedManifest | null;
}

export function bodyInput(flow: FlowRecord, side: 'request' | 'response', model: FlowModel): BodyInput {
  const ref = side === 'request' ? flow.requestBody : flow.responseBody;
  const headers = side === 'request' ? flow.request.headers : (flow.response?.headers ?? []);
  const contentType = getHeader(headers, 'content-type');
  let buf: Buffer | null = null;
  let partial = false;
  if (ref?.sha256) {
    if (ref.size <= MAX_VIEW) buf = model.backend.body(ref.sha256, MAX_VIEW);
    else {
      buf = model.backend.bodyHead?.(ref.sha256, PREVIEW) ?? null;
      partial = true;
    }
  }
  let manifest: ParsedManifest | null = null;
  if (buf && !partial && (isManifestType(contentType) || (flow.registry?.role === 'manifest' && !isBinary(buf)))) {
    try {
      manifest = parseManifest(buf, contentType);
    } catch {
      manifest = null;
    }
  }
  return { flow, side, ref, contentType, buf, partial, model, manifest };
}

function isJson(i: BodyInput): boolean {
  if (!i.buf || i.partial) return false;
  const first = i.buf.subarray(0, 64).toString('utf8').trimStart()[0];
  if (first !== '{' && first !== '[') return false;
  try {
    JSON.parse(i.buf.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/** The views that apply, best first. */
export function availableModes(i: BodyInput): BodyMode[] {
  const modes: BodyMode[] = [];
  if (i.manifest) modes.push('manifest');
  if (tokensOn(i.flow, i.side).length) modes.push('token');
  if (i.buf && i.buf.length) {
    if (isJson(i)) modes.push('json');
    if (isBinary(i.buf)) modes.push('hex', 'text');
    else modes.push('text', 'hex');
  }
  return modes;
}

/** One line saying what the body is. */
export function bodyTitle(i: BodyInput, mode: BodyMode | undefined, modes: BodyMode[]): Line {
  const size = i.ref ? formatBytes(i.ref.size) : '';
  const parts = [
    seg(`${i.side} body`, { bold: true }),
    seg(`  ${size}${i.contentType ? `  ${i.contentType}` : ''}`, { dim: true }),
  ];
  if (i.ref?.redacted) parts.push(seg('  stored redacted (secrets replaced by markers)', { color: 'yellow' }));
  if (i.ref?.sha256) parts.push(seg(`  sha256:${i.ref.sha256.slice(0, 12)}…`, { dim: true }));
  if (mode && modes.length > 1) parts.push(seg(`  m: ${modes.filter((m) => m !== mode).join(', ')}`, { dim: true }));
  return line(...parts);
}

export function renderBody(i: BodyInput, mode: BodyMode): Line[] {
  const note: Line[] = i.partial ? [line(seg(`showing the first ${formatBytes(i.buf?.length ?? 0)} of ${formatBytes(i.ref?.size ?? 0)}`, { dim: true }))] : [];
  switch (mode) {
    case 'manifest':
      return i.manifest ? manifestView(i.manifest, i.model) : [];
    case 'token':
      return tokenView(i.flow, i.side, i.buf);
    case 'json':
      return (i.buf && prettyJson(i.buf.toString('utf8'))) ?? [];
    case 'text':
      return [...note, ...(i.buf ? textLines(i.buf.toString('utf8')) : [])];
    case 'hex':
      return [...note, ...(i.buf ? hexDump(i.buf) : [])];
  }
}

/** Why there is nothing to show. */
export function noBody(i: BodyInput): Line {
  if (!i.ref) return line(seg(i.side === 'response' && !i.flow.response ? '(no response)' : '(no body)', { dim: true }));
  if (!i.ref.sha256 || i.ref.size === 0) return line(seg('(empty body)', { dim: true }));
  return line(seg(`(body ${i.ref.sha256.slice(0, 12)}… is not in the recording's blobs: copy NAME.blobs/ with NAME.db)`, { color: 'yellow' }));
}
