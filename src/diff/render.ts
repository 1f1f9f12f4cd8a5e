import { describeMediaType } from '../registry/index.js';
import { safeText as t } from '../term/index.js';

/** Escape everything in `s` but the SGR colour sequences of our own Style (\x1b[<digits>m). */
function keepColour(s: string): string {
  return s
    .split(/(\x1b\[\d+m)/)
    .map((part, i) => (i % 2 ? part : t(part)))
    .join('');
}
import { formatBytes, formatMs, PLAIN, shortDigest, shortPath, type Style } from '../inspect/index.js';
import type { BlobInfo, DiffResult, OperationDiff } from './diff.js';

function name(d: OperationDiff): string {
  const ref = d.reference ? (d.reference.includes(':') ? `@${shortDigest(d.reference)}` : `:${d.reference}`) : '';
  const kind = d.kind.a && d.kind.b && d.kind.a !== d.kind.b ? `${d.kind.a}→${d.kind.b}` : (d.kind.a ?? d.kind.b);
  return t(`${kind} ${d.registry}/${d.repo}${ref}`);
}

function blobs(st: Style, sign: '+' | '-', xs: BlobInfo[]): string[] {
  const paint = sign === '+' ? st.green : st.red;
  return xs.map((b) => paint(`${sign === '+' ? '+' : '−'}${shortDigest(b.digest)}${b.size ? ` ${formatBytes(b.size)}` : ''}`));
}

function time(d: OperationDiff): string {
  const t = d.timing;
  if (!t.a || !t.b) return formatMs((t.a ?? t.b)?.wallMs ?? 0);
  return `${formatMs(t.a.wallMs)} → ${formatMs(t.b.wallMs)}${t.ratio !== null ? ` (×${t.ratio.toFixed(2)})` : ''}`;
}

/** One operation's differences as indented lines. */
export function renderOperationDiff(d: OperationDiff, st: Style = PLAIN): string {
  if (d.presence !== 'both') {
    const where = d.presence === 'a' ? 'only in A' : 'only in B';
    const digest = d.presence === 'a' ? d.digest.a : d.digest.b;
    return `${st.bold(name(d))}: ${(d.presence === 'a' ? st.red : st.green)(where)}${digest ? ` (${shortDigest(digest)})` : ''}`;
  }
  const lines: string[] = [`${st.bold(name(d))}: ${d.changed ? st.yellow('changed') : st.dim('same')}  ${st.dim(`time ${time(d)}`)}`];
  // Every row carries recorded text (platforms, headers, paths, problems): escaped as a whole; the
  // only escapes it may hold are our colours, which are added around already-escaped parts.
  const row = (label: string, text: string) => lines.push(`  ${t(label).padEnd(10)} ${keepColour(text)}`);
  if (d.digest.changed) row('digest', `${st.red(shortDigest(d.digest.a))} → ${st.green(shortDigest(d.digest.b))}${d.reference && !d.reference.includes(':') ? st.dim(` (tag ${d.reference} moved)`) : ''}`);
  if (d.mediaType.changed) row('type', `${describeMediaType(d.mediaType.a)} → ${describeMediaType(d.mediaType.b)}`);
  if (d.platforms.added.length || d.platforms.removed.length) row('platforms', [...d.platforms.added.map((p) => st.green(`+${p}`)), ...d.platforms.removed.map((p) => st.red(`−${p}`))].join('  '));
  for (const m of d.manifests) {
    // A single-manifest image: its change is already the digest line.
    if (!m.platform && d.digest.changed && m.a?.digest === d.digest.a && m.b?.digest === d.digest.b) continue;
    const a = m.a ? `${shortDigest(m.a.digest)}` : '(none)';
    const b = m.b ? `${shortDigest(m.b.digest)}` : '(none)';
    const mt = m.a && m.b && m.a.mediaType !== m.b.mediaType ? ` ${st.dim(`${describeMediaType(m.a.mediaType)} → ${describeMediaType(m.b.mediaType)}`)}` : '';
    row(m.platform ?? 'manifest', `${m.platform ? 'manifest ' : ''}${st.red(a)} → ${st.green(b)}${mt}`);
  }
  if (d.configs.added.length || d.configs.removed.length) row('config', [...blobs(st, '-', d.configs.removed), ...blobs(st, '+', d.configs.added)].join('  '));
  if (d.layers.added.length || d.layers.removed.length) {
    row('layers', [...blobs(st, '-', d.layers.removed), ...blobs(st, '+', d.layers.added), st.dim(`(${d.layers.unchanged} unchanged)`)].join('  '));
  }
  if (d.layerMediaTypes.changed) row('layer type', `${d.layerMediaTypes.a.join(', ')} → ${d.layerMediaTypes.b.join(', ')}`);
  for (const c of d.auth.removed) row('auth', st.red(`−${c}`));
  for (const c of d.auth.added) row('auth', st.green(`+${c}`));
  for (const s of d.statuses) row('status', `${shortPath(s.request, 120)}: ${s.a.join(',')} → ${s.b.join(',')}`);
  // The same header change on several requests is one line.
  const byChange = new Map<string, { header: string; a: string[]; b: string[]; requests: string[] }>();
  for (const h of d.headers) {
    const k = `${h.header}\0${h.a.join('\n')}\0${h.b.join('\n')}`;
    const g = byChange.get(k) ?? { header: h.header, a: h.a, b: h.b, requests: [] };
    g.requests.push(h.request);
    byChange.set(k, g);
  }
  for (const g of byChange.values()) {
    const where = g.requests.length === 1 ? shortPath(g.requests[0]!, 120) : `${g.requests.length} requests (${shortPath(g.requests[0]!, 60)}, …)`;
    row('header', `${g.header}: ${st.red(g.a.length ? g.a.join(' | ') : '(absent)')} → ${st.green(g.b.length ? g.b.join(' | ') : '(absent)')} ${st.dim(`on ${where}`)}`);
  }
  for (const p of d.problems.removed) row('problem', st.green(`fixed: ${p}`));
  for (const p of d.problems.added) row('problem', st.red(`new: ${p}`));
  if (d.transferred.onlyA.length) row('cached', `${d.transferred.onlyA.length} blob(s) downloaded in A were not downloaded in B: ${d.transferred.onlyA.map(shortDigest).join(', ')}`);
  if (d.transferred.onlyB.length) row('cached', `${d.transferred.onlyB.length} blob(s) downloaded in B were not downloaded in A: ${d.transferred.onlyB.map(shortDigest).join(', ')}`);
  for (const l of d.timing.layers) {
    const paint = l.ratio < 1 ? st.red : st.green;
    row(l.ratio < 1 ? 'slower' : 'faster', `${shortDigest(l.digest)} ${formatBytes(l.size)}: ${formatBytes(l.a.bytesPerSecond)}/s → ${paint(`${formatBytes(l.b.bytesPerSecond)}/s`)} (×${l.ratio.toFixed(2)})${l.a.via !== l.b.via ? st.dim(` via ${l.a.via} → ${l.b.via}`) : ''}`);
  }
  return lines.join('\n');
}

/** The whole diff for a terminal. */
export function renderDiff(r: DiffResult, st: Style = PLAIN): string {
  const out = [st.dim(`A: ${r.a.path} (${r.a.flows} flows, ${r.a.operations} operations)`), st.dim(`B: ${r.b.path} (${r.b.flows} flows, ${r.b.operations} operations)`), ''];
  for (const d of r.operations) out.push(renderOperationDiff(d, st));
  if (!r.operations.length) out.push('no pulls or pushes in either recording');
  const s = r.summary;
  out.push('', `${s.changed} changed, ${s.unchanged} same, ${s.onlyA} only in A, ${s.onlyB} only in B`);
  return out.join('\n');
}
