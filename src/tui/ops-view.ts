import { formatBytes, formatMs, shortDigest } from '../inspect/index.js';
import { describeMediaType, type Operation, type OperationBlob } from '../registry/index.js';
import { problemRow } from './waterfall.js';
import { line, seg, wrap, type Line } from './lines.js';

function blobLine(b: OperationBlob, indent: string): Line {
  const size = formatBytes(b.size || b.bytes).padStart(8);
  const head = [seg(indent), seg(b.kind.padEnd(7), { color: 'magenta' }), seg(shortDigest(b.digest).padEnd(20), { color: 'yellow' }), seg(`  ${size}  `)];
  let l: Line;
  if (b.skipped) l = { segs: [...head, seg('already there (mounted / exists)', { dim: true })] };
  else if (!b.flowIds.length) l = { segs: [...head, seg('not transferred (cached by the client)', { dim: true })] };
  else {
    const rate = b.ms > 0 ? `${formatBytes(b.throughput)}/s` : '';
    l = {
      segs: [
        ...head,
        seg(formatMs(b.ms).padStart(8)),
        seg(`  ${rate.padStart(10)}`, { color: 'green' }),
        seg(`  ${b.cdn ? `CDN ${b.via ?? ''}` : (b.via ?? '')}`, { dim: true }),
        seg(b.flowIds.length > 1 ? `  ×${b.flowIds.length}` : '', { color: 'yellow' }),
        seg(`  → #${b.flowIds[b.flowIds.length - 1]}`, { color: 'cyan', bold: true }),
      ],
    };
    l.link = { flowId: b.flowIds[b.flowIds.length - 1]! };
  }
  return l;
}

/** One operation as tree lines: image → index → platform manifest → config and layers; lines link to flows. */
export function operationLines(op: Operation): Line[] {
  const out: Line[] = [];
  const layers = op.blobs.filter((b) => b.kind !== 'config');
  const moved = op.blobs.reduce((n, b) => n + b.bytes, 0);
  const head = line(
    seg(`${op.kind} `, { bold: true, color: op.kind === 'push' ? 'yellow' : 'green' }),
    seg(op.name, { bold: true }),
    seg(
      `  ${op.totals.flows} flows, ${layers.length} layer${layers.length === 1 ? '' : 's'}, ${formatBytes(moved)} ${op.kind === 'push' ? 'uploaded' : 'fetched'} in ${formatMs(op.totals.wallMs)}${op.totals.wallMs > 0 && moved ? ` (${formatBytes((moved / op.totals.wallMs) * 1000)}/s)` : ''}`,
      { dim: true },
    ),
  );
  if (op.flowIds[0] !== undefined) head.link = { flowId: op.flowIds[0] };
  out.push(head);
  if (op.index) {
    const l = line('  ', seg('index   ', { color: 'magenta' }), seg(shortDigest(op.index.digest).padEnd(20), { color: 'yellow' }), `  ${describeMediaType(op.index.mediaType)}, ${op.index.platforms.length} platforms: ${op.index.platforms.join(', ')}`, seg(`  → #${op.index.flowId}`, { color: 'cyan', bold: true }));
    l.link = { flowId: op.index.flowId };
    out.push(l);
  }
  const indent = op.index ? '    ' : '  ';
  for (const m of op.manifests) {
    const l = line(indent, seg('manifest', { color: 'magenta' }), ' ', seg(shortDigest(m.digest).padEnd(20), { color: 'yellow' }), `  ${describeMediaType(m.mediaType)}${m.platform ? ` (${m.platform})` : ''}`, seg(`  → #${m.flowId}`, { color: 'cyan', bold: true }));
    l.link = { flowId: m.flowId };
    out.push(l);
    for (const b of op.blobs) if (b.manifest === m.digest) out.push(blobLine(b, `${indent}  `));
  }
  for (const b of op.blobs) if (!b.manifest || !op.manifests.some((m) => m.digest === b.manifest)) out.push(blobLine(b, indent));
  for (const p of op.problems) out.push(problemRow(p, indent));
  return out;
}

/** The operations screen: every operation with a flow in `shown` (all when null). */
export function operationsView(ops: readonly Operation[], shown: ReadonlySet<number> | null, width: number): Line[] {
  const out: Line[] = [];
  const list = shown ? ops.filter((op) => op.flowIds.some((id) => shown.has(id))) : ops;
  if (!list.length) {
    out.push(line(seg(ops.length ? 'no operation has a flow that matches the filter' : 'no pulls or pushes in these flows (registry traffic is grouped by repository)', { dim: true })));
    return out;
  }
  for (const op of list) {
    for (const l of operationLines(op)) out.push(...wrap(l, width, 6));
    out.push(line(''));
  }
  return out;
}
