import { flowUrl, type FlowRecord, type HeaderList, type Timings } from '../flow/index.js';
import { formatBytes, formatMs, shortDigest } from '../inspect/index.js';
import { availableModes, bodyInput, bodyTitle, noBody, renderBody, type BodyMode } from './body-views/index.js';
import { isoSeconds, tokensOn } from './body-views/token.js';
import { repoRef, statusColor, statusText } from './flow-row.js';
import { line, seg, wrap, type Line } from './lines.js';
import { COPY_IDS, type FlowModel } from './model.js';
import type { Tab } from './state.js';

/** `#12`, or `copy` for a duplicate (D) that has no id in the recording yet. */
export const flowLabel = (id: number): string => (id >= COPY_IDS ? `copy ${id - COPY_IDS + 1} (saved as a new flow)` : `#${id}`);

export interface DetailContent {
  lines: Line[];
  available: BodyMode[];
  mode?: BodyMode;
}

/** The flow detail's title line: #id method URL status role repo:ref. */
export function detailTitle(f: FlowRecord): Line {
  const role = f.registry && f.registry.role !== 'other' ? ` [${f.registry.role}]` : '';
  return line(
    seg(`${flowLabel(f.id)} `, { dim: true }),
    seg(`${f.request.method} `, { bold: true }),
    `${flowUrl(f.request)} `,
    seg(statusText(f), { color: statusColor(f), bold: true }),
    seg(role, { color: 'magenta' }),
    seg(repoRef(f) ? ` ${repoRef(f)}` : '', { dim: true }),
  );
}

function headerLines(headers: HeaderList): Line[] {
  if (!headers.length) return [line(seg('(no headers)', { dim: true }))];
  return headers.map(([k, v]) => line(seg(k, { color: 'cyan' }), seg(': ', { dim: true }), v));
}

/** Build the lines of one tab, wrapped to `width`. */
export function buildDetail(f: FlowRecord, tab: Tab, chosen: BodyMode | undefined, model: FlowModel, width: number): DetailContent {
  let lines: Line[];
  let available: BodyMode[] = [];
  let mode: BodyMode | undefined;
  if (tab === 'details') lines = detailsTab(f, model);
  else {
    const side = tab;
    lines = [];
    if (side === 'request') {
      lines.push(line(seg(`${f.request.method} ${f.request.target} HTTP/${f.request.httpVersion}`, { bold: true })));
      lines.push(line(seg(`${f.request.scheme}://${f.request.host}:${f.request.port}`, { dim: true })));
      lines.push(...headerLines(f.request.headers));
    } else if (f.response) {
      lines.push(line(seg(`HTTP/${f.response.httpVersion} `, { bold: true }), seg(`${f.response.status} ${f.response.reason}`, { bold: true, color: statusColor(f) })));
      lines.push(...headerLines(f.response.headers));
    } else {
      lines.push(line(seg(f.state === 'open' ? 'no response yet (in flight)' : `no response: ${f.state}${f.error ? `: ${f.error}` : ''}`, { color: f.state === 'open' ? 'cyan' : 'red' })));
    }
    const input = bodyInput(f, side, model);
    available = availableModes(input);
    mode = chosen && available.includes(chosen) ? chosen : available[0];
    lines.push(line(''));
    lines.push(bodyTitle(input, mode, available));
    if (mode) lines.push(...renderBody(input, mode));
    else if (side === 'response' || input.ref) lines.push(noBody(input));
    else lines.push(line(seg('(no body)', { dim: true })));
  }
  const out: Line[] = [];
  for (const l of lines) out.push(...wrap(l, width, 4));
  return { lines: out, available, mode };
}

function clockIso(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ');
}

/** The phases of an exchange, for the waterfall: [label, from, to]. */
export function phases(t: Timings): Array<{ label: string; from: number; to: number }> {
  const out: Array<{ label: string; from: number; to: number }> = [];
  let at = t.start;
  const step = (label: string, to: number | undefined) => {
    if (to === undefined) return;
    out.push({ label, from: at, to });
    at = to;
  };
  step('connect', t.connect);
  step('TLS', t.tls);
  step('send', t.requestSent);
  step('wait', t.firstByte);
  step('receive', t.end);
  return out;
}

const BAR = 40;

function waterfall(t: Timings): Line[] {
  const ps = phases(t);
  const total = (t.end ?? ps.at(-1)?.to ?? t.start) - t.start;
  const out: Line[] = [];
  const moments: Array<[string, number | undefined]> = [
    ['start', t.start],
    ['connect', t.connect],
    ['TLS', t.tls],
    ['sent', t.requestSent],
    ['first byte', t.firstByte],
    ['end', t.end],
  ];
  for (const [label, v] of moments) {
    out.push(line('  ', seg(label.padEnd(11), { dim: true }), v === undefined ? seg(label === 'connect' || label === 'TLS' ? '— (reused connection)' : '—', { dim: true }) : `${clockIso(v)}  +${formatMs(v - t.start)}`));
  }
  out.push(line(''));
  for (const p of ps) {
    const scale = total > 0 ? BAR / total : 0;
    const a = Math.min(BAR, Math.floor((p.from - t.start) * scale));
    const w = Math.max(1, Math.min(BAR - a, Math.round((p.to - p.from) * scale)));
    out.push(line('  ', seg(p.label.padEnd(9), { dim: true }), '▕', ' '.repeat(a), seg('█'.repeat(w), { color: p.label === 'receive' ? 'green' : p.label === 'wait' ? 'yellow' : 'cyan' }), ' '.repeat(Math.max(0, BAR - a - w)), '▏ ', formatMs(p.to - p.from)));
  }
  if (t.end !== undefined) out.push(line('  ', seg('total'.padEnd(9), { dim: true }), ' ', ' '.repeat(BAR), '  ', seg(formatMs(total), { bold: true })));
  return out;
}

const kv = (k: string, v: string | Line['segs'], style: Parameters<typeof seg>[1] = {}): Line =>
  typeof v === 'string' ? line('  ', seg(k.padEnd(16), { dim: true }), seg(v, style)) : { segs: [seg('  '), seg(k.padEnd(16), { dim: true }), ...v] };

function section(title: string): Line {
  return line(seg(title, { bold: true }));
}

/** Details: timing waterfall, addresses, TLS, digest check, registry facts, redactions, tokens. */
function detailsTab(f: FlowRecord, model: FlowModel): Line[] {
  const out: Line[] = [];
  out.push(line(seg(`flow ${flowLabel(f.id)}`, { bold: true }), seg(`  ${f.state}  uuid ${f.uuid}`, { dim: true })));
  if (f.error) out.push(kv('error', f.error, { color: 'red' }));
  if (f.marked) out.push(kv('marked', 'yes', { color: 'magenta' }));
  if (f.comment) out.push(kv('comment', f.comment));
  out.push(line(''), section('Timing'), ...waterfall(f.timings));

  out.push(line(''), section('Connection'));
  out.push(kv('client', f.clientAddr ?? '—'));
  out.push(kv('server', f.serverAddr ?? '—'));
  const tls = f.request.scheme !== 'https' ? 'none (plain HTTP)' : f.timings.tls !== undefined ? `handshake ${formatMs(f.timings.tls - (f.timings.connect ?? f.timings.start))} (new upstream connection)` : 'reused upstream connection (no handshake)';
  out.push(kv('TLS', tls));
  const ms = f.timings.end !== undefined ? f.timings.end - f.timings.start : 0;
  const rate = (n: number) => (ms > 0 && n > 0 ? `  ${formatBytes((n / ms) * 1000)}/s` : '');
  out.push(kv('sent', `${formatBytes(f.requestBytes)}${rate(f.requestBytes)}`));
  out.push(kv('received', `${formatBytes(f.responseBytes)}${rate(f.responseBytes)}`));

  const r = f.registry;
  out.push(line(''), section('Digest'));
  if (!r?.digestCheck) out.push(kv('check', 'not applicable (no digest to check this body against)', { dim: true }));
  else if (r.digestCheck === 'ok') out.push(kv('check', `ok: the stored body hashes to ${shortDigest(r.digest)}`, { color: 'green' }));
  else out.push(kv('check', `MISMATCH: ${r.digestProblem ?? ''}`, { color: 'red', bold: true }));

  out.push(line(''), section('Registry'));
  if (!r) out.push(kv('role', 'not classified', { dim: true }));
  else {
    out.push(kv('role', r.role, { color: 'magenta' }));
    if (r.registry) out.push(kv('registry', r.registry));
    if (r.repo) out.push(kv('repository', r.repo));
    if (r.reference) out.push(kv('reference', r.reference));
    if (r.digest) out.push(kv('digest', r.digest));
    if (r.mediaType) out.push(kv('media type', r.mediaType));
    out.push(kv('auth', r.auth));
    for (const [i, a] of r.accept.entries()) out.push(kv(i ? '' : 'accept', a));
    const scopes = (label: string, list: typeof r.scopesRequested) => {
      if (!list.length) return;
      list.forEach((s, i) => out.push(kv(i ? '' : label, `${s.type}:${s.name}:${s.actions.join(',')}`)));
    };
    scopes('scopes asked', r.scopesRequested);
    scopes('scopes granted', r.scopesGranted);
    if (r.redirectFrom !== null) {
      const l = kv('redirected by', [seg(`→ #${r.redirectFrom}`, { color: 'cyan', bold: true }), seg(' (the registry’s redirect to here)', { dim: true })]);
      l.link = { flowId: r.redirectFrom };
      out.push(l);
    }
    if (r.redirectTo) {
      const target = model.rows.find((x) => x.registry?.redirectFrom === f.id);
      const l = kv('redirect to', [seg(r.redirectTo), ...(target ? [seg(`  → #${target.id}`, { color: 'cyan', bold: true })] : [])]);
      if (target) l.link = { flowId: target.id };
      out.push(l);
    }
  }

  const reds = f.facts.redactions ?? [];
  out.push(line(''), section('Redactions'));
  if (!reds.length) out.push(kv('', 'none', { dim: true }));
  for (const x of reds) out.push(kv(x.where, x.marker, { color: 'yellow' }));

  const toks = [...tokensOn(f, 'request'), ...tokensOn(f, 'response')];
  if (toks.length) {
    out.push(line(''), section('Tokens (claims decoded when recorded; see the body view m: token)'));
    for (const t of toks) {
      const c = t.claims;
      const exp = c ? isoSeconds(c.exp) : null;
      out.push(kv(t.where, `${t.marker || '(kept)'}${c ? `  sub=${JSON.stringify(c.sub ?? null)} iss=${String(c.iss ?? '')}${exp ? ` exp ${exp}` : ''}` : '  opaque'}`));
    }
  }
  return out;
}
