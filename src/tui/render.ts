import path from 'node:path';
import { isSafeText, safeText } from '../term/index.js';
import { formatBytes } from '../inspect/index.js';
import { detailHeader, eventLines, screenLines } from './commands.js';
import { columnsFor, columnTitles, flowRow } from './flow-row.js';
import { hints } from './help.js';
import { fit, line, restyle, seg, type Line, type Seg } from './lines.js';
import { bodyHeight, current, TABS, type Env, type Pager, type Prompt, type UiState } from './state.js';

/**
 * The whole frame as lines: exactly `rows - 1` of them, each at most `cols` wide.
 * Only the rows on screen are formatted, whatever the number of flows.
 */
export function renderFrame(s: UiState, env: Env): Line[] {
  const { cols, rows } = s.size;
  const out: Line[] = [titleBar(s, env)];
  const sc = current(s);
  const h = bodyHeight(s);
  if (sc.kind === 'list') {
    const c = columnsFor(cols);
    out.push(columnTitles(c));
    const end = Math.min(s.view.length, s.list.top + h);
    for (let i = s.list.top; i < end; i++) {
      const f = s.view[i]!;
      const l = flowRow(f, c, env.model.inFlight.get(f.id));
      out.push(i === s.list.cursor ? restyle(fit(l, cols, true), { inverse: true }) : l);
    }
    if (!s.view.length) out.push(line(seg(emptyListText(s, env), { dim: true })));
  } else {
    if (sc.kind === 'detail') {
      out.push(detailHeader(sc, env));
      out.push(tabsLine(sc.tab, sc.mode, sc.available));
    } else if (sc.kind === 'ops') out.push(line(seg('Operations', { bold: true }), seg(`  pulls and pushes; enter opens the flow of a line${s.spec.filter ? `; filter ${s.filterText}` : ''}`, { dim: true })));
    else if (sc.kind === 'help') out.push(line(seg('Help', { bold: true }), seg('  keys come from the key map (src/tui/keymap.ts); q closes', { dim: true })));
    else if (sc.kind === 'options') out.push(line(seg('Options', { bold: true }), seg('  enter changes the option on the line; q closes', { dim: true })));
    else if (sc.kind === 'live') out.push(line(seg(`Live registry answer for #${sc.flowId}`, { bold: true, color: 'red' }), seg('  not part of the recording; q closes', { dim: true })));
    else out.push(line(seg('Event log', { bold: true }), seg(`  ${env.events.entries.length} events; z clears`, { dim: true })));
    const lines = sc.kind === 'events' ? eventLines(env) : screenLines(sc, env, s);
    const p = sc as Pager;
    const end = Math.min(lines.length, p.top + h);
    // The event log following its tail has no cursor bar.
    const cursorShown = !(sc.kind === 'events' && sc.tail);
    for (let i = p.top; i < end; i++) out.push(i === p.cursor && cursorShown ? restyle(fit(lines[i]!, cols, true), { inverse: true }) : lines[i]!);
    if (!lines.length) out.push(line(seg(sc.kind === 'events' ? 'no events' : '(empty)', { dim: true })));
  }
  // Body area padding, so the status lines stay at the bottom.
  const bodyEnd = 1 + (sc.kind === 'detail' ? 2 : 1) + h;
  while (out.length < bodyEnd) out.push(line(''));
  out.length = Math.min(out.length, bodyEnd);
  out.push(...statusLines(s));
  out.push(line(seg(hints(s.menu ?? (sc.kind === 'live' ? 'help' : sc.kind)), { dim: true })));
  const frame = Math.max(4, rows - 1);
  while (out.length < frame) out.push(line(''));
  return out.slice(0, frame).map((l) => fit(safeLine(l), cols));
}

/**
 * Every segment drawn passes through safeText here, the one place all screens go
 * through: header values, paths, bodies, manifest fields, event log lines, prompts.
 * Control and bidi characters become visible escapes before the line is cut to width.
 */
export function safeLine(l: Line): Line {
  let changed = false;
  const segs = l.segs.map((x) => {
    if (isSafeText(x.text)) return x;
    changed = true;
    return { ...x, text: safeText(x.text) };
  });
  return changed ? { segs, link: l.link } : l;
}

function emptyListText(s: UiState, env: Env): string {
  if (env.model.loading) return 'loading flows…';
  if (!env.model.rows.length) return s.live ? 'no flows yet: send a client through the proxy' : 'no flows in this recording';
  return `no flow matches${s.spec.filter ? ` the filter ${s.filterText}` : ''}${s.spec.markedOnly ? ' (marked only: M)' : ''}${s.spec.hidden.size ? ' (z hid some: Z)' : ''}`;
}

function tabsLine(tab: string, mode: string | undefined, available: readonly string[]): Line {
  const segs: Seg[] = [];
  for (const t of TABS) {
    const label = t[0]!.toUpperCase() + t.slice(1);
    segs.push(t === tab ? seg(` ${label} `, { inverse: true, bold: true }) : seg(` ${label} `, { dim: true }), seg(' '));
  }
  if (mode) segs.push(seg(`  body view: ${mode}`, { color: 'cyan' }), seg(available.length > 1 ? ` (m: ${available.join('/')})` : '', { dim: true }));
  return { segs };
}

function titleBar(s: UiState, env: Env): Line {
  const total = env.model.rows.length;
  const parts: Seg[] = [seg(' regtape ', { bold: true, inverse: true }), seg(` ${path.basename(env.model.backend.label)}`, { bold: true })];
  parts.push(seg(`  ${total} flows${s.view.length !== total ? `, ${s.view.length} shown` : ''}`));
  if (env.model.loading) parts.push(seg(`  loading${env.model.expected ? ` of ${env.model.expected}` : ''}…`, { color: 'yellow' }));
  if (s.filterText) parts.push(seg('  filter ', { dim: true }), seg(s.filterText, { color: 'cyan' }));
  if (s.spec.markedOnly) parts.push(seg('  marked only', { color: 'magenta' }));
  if (s.spec.order !== 'time' || s.spec.reverse) parts.push(seg(`  order ${s.spec.order}${s.spec.reverse ? ' ↓' : ''}`, { dim: true }));
  if (s.follow) parts.push(seg('  FOLLOW', { color: 'green', bold: true }));
  if (!env.model.backend.persist) {
    const n = env.model.unsaved();
    parts.push(n ? seg(`  ${n} unsaved (w saves)`, { color: 'yellow', bold: true }) : seg('  read-only', { dim: true }));
  }
  if (env.liveInfo) {
    const li = env.liveInfo();
    parts.push(seg(`  ● live ${li.url}`, { color: 'red', bold: true }));
    if (li.inFlight) parts.push(seg(`  ${li.inFlight} in flight ${formatBytes(li.rate)}/s`, { color: 'cyan' }));
  }
  const problems = env.events.problems();
  if (problems) parts.push(seg(`  ${problems} warning${problems === 1 ? '' : 's'} (E)`, { color: 'yellow' }));
  return { segs: parts };
}

const PROMPT_LABEL: Record<Prompt['kind'], (p: Prompt) => string> = {
  filter: () => 'filter: ',
  search: () => 'search: /',
  export: (p) => `export ${p.format} to: `,
  comment: (p) => `comment #${p.flowId}: `,
  command: () => ':',
  body: (p) => `save body of #${p.flowId} to: `,
  save: (p) => `save ${p.scope} flows to: `,
  load: () => 'load recording: ',
};

function statusLines(s: UiState): Line[] {
  const p = s.prompt;
  if (p) {
    const label = PROMPT_LABEL[p.kind](p);
    const before = p.text.slice(0, p.cursor);
    const at = p.text[p.cursor] ?? ' ';
    const after = p.text.slice(p.cursor + 1);
    const out: Line[] = [line(seg(label, { bold: true, color: 'cyan' }), before, seg(at, { inverse: true }), after)];
    if (p.error) {
      const caret = p.error.position !== undefined ? `${' '.repeat(label.length + p.error.position)}^` : '';
      out.push(line(seg(caret, { color: 'red', bold: true })));
      out.push(line(seg(`${p.kind === 'filter' ? 'filter error: ' : 'error: '}${p.error.message}`, { color: 'red' }), seg(p.kind === 'filter' ? '  (the list keeps the last good filter; ? shows the filter language)' : '', { dim: true })));
    } else if (p.hint) out.push(line(seg(p.hint, { dim: true })));
    return out;
  }
  if (s.confirm) return [line(seg(s.confirm.question, { bold: true, color: 'yellow' }))];
  if (s.message) return [line(seg(s.message.text, { color: s.message.level === 'error' ? 'red' : 'yellow' }))];
  return [line('')];
}
