import type { FlowRecord } from '../../flow/index.js';
import { formatBytes, formatMs, shortDigest } from '../../inspect/index.js';
import { describeMediaType, type Descriptor, type ParsedManifest } from '../../registry/index.js';
import { line, seg, type Line } from '../lines.js';
import type { FlowModel } from '../model.js';

/** "→ #11 412 ms 6.3 MB/s", or "not in this recording". */
function fetched(f: FlowRecord | undefined): Line['segs'] {
  if (!f) return [seg('not fetched in this recording', { dim: true })];
  const ms = f.timings.end !== undefined ? f.timings.end - f.timings.start : null;
  const bytes = f.responseBytes || f.requestBytes;
  const rate = ms && ms > 0 && bytes > 0 ? `  ${formatBytes((bytes / ms) * 1000)}/s` : '';
  return [seg(`→ #${f.id}`, { color: 'cyan', bold: true }), seg(` ${f.registry?.role ?? ''}${ms !== null ? ` ${formatMs(ms)}` : ''}${rate}`, { dim: true })];
}

function descriptorLine(label: string, d: Descriptor, target: FlowRecord | undefined, note = ''): Line {
  const l = line(
    seg(label, { color: 'magenta' }),
    '  ',
    seg(shortDigest(d.digest).padEnd(20), { color: 'yellow' }),
    '  ',
    formatBytes(d.size).padStart(8),
    '  ',
    seg((note || describeMediaType(d.mediaType)).padEnd(22)),
    '  ',
    ...fetched(target),
  );
  if (target) l.link = { flowId: target.id };
  return l;
}

/**
 * A manifest as a tree: media type, platforms of an index, config and layers of an
 * image with sizes; each line links to the flow that fetched that content.
 */
export function manifestView(m: ParsedManifest, model: FlowModel): Line[] {
  const out: Line[] = [line(seg(describeMediaType(m.mediaType), { bold: true }), seg(`  ${m.mediaType}`, { dim: true }))];
  if (m.kind === 'index') {
    out.push(line(`${m.manifests.length} manifest${m.manifests.length === 1 ? '' : 's'}${m.artifactType ? `, artifact type ${m.artifactType}` : ''}:`));
    const w = Math.max(8, ...m.manifests.map((d) => (d.platform ?? '?').length));
    // The platform the client chose is the one whose manifest it then fetched.
    for (const d of m.manifests) {
      const target = model.fetcherOf(d.digest, 'manifest');
      const chosen = !!target && target.request.method === 'GET';
      const l = descriptorLine(`${chosen ? '▶ ' : '  '}${(d.platform ?? d.artifactType ?? '?').padEnd(w)}`, d, target);
      out.push(chosen ? { ...l, segs: [...l.segs.map((x, i) => (i === 0 ? { ...x, bold: true, color: 'green' as const } : x)), seg('  chosen', { color: 'green', bold: true })] } : l);
    }
  } else if (m.kind === 'image') {
    if (m.artifactType) out.push(line(`artifact type ${m.artifactType}`));
    out.push(descriptorLine('config', m.config, model.fetcherOf(m.config.digest, 'blob')));
    const total = m.layers.reduce((n, l) => n + l.size, 0);
    out.push(line(seg('layers', { color: 'magenta' }), `  ${m.layers.length}, ${formatBytes(total)} compressed`));
    const w = String(m.layers.length).length;
    m.layers.forEach((l, i) => out.push(descriptorLine(`  ${String(i + 1).padStart(w)}  `, l, model.fetcherOf(l.digest, 'blob'), shortType(l.mediaType))));
  } else {
    out.push(line(`schema1${m.name ? ` ${m.name}` : ''}${m.tag ? `:${m.tag}` : ''}${m.architecture ? ` (${m.architecture})` : ''}`));
    m.layers.forEach((l, i) => {
      const target = model.fetcherOf(l.digest, 'blob');
      const ln = line(seg(`  ${String(i + 1).padStart(3)}  `, { color: 'magenta' }), seg(shortDigest(l.digest).padEnd(20), { color: 'yellow' }), '  ', ...fetched(target));
      if (target) ln.link = { flowId: target.id };
      out.push(ln);
    });
  }
  if (m.kind !== 'schema1' && m.subject) out.push(descriptorLine('subject', m.subject, model.fetcherOf(m.subject.digest, 'manifest')));
  out.push(line(''), line(seg('enter on a line opens the flow that fetched it; m switches to JSON', { dim: true })));
  return out;
}

/** "tar+gzip" from a layer media type. */
function shortType(mt: string): string {
  const m = /(tar(?:\.|\+)?[a-z]*)$/.exec(mt) ?? /\.([^.]+)$/.exec(mt);
  return m ? `layer ${m[1]!.replace('tar.', 'tar+')}` : mt || 'layer';
}
