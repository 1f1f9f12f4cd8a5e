import { filterHelp } from '../filter/index.js';
import { KEYMAP, showKey, type Binding, type Context } from './keymap.js';
import { line, seg, type Line } from './lines.js';

const TITLES: Record<Context, string> = {
  global: 'Everywhere',
  list: 'Flow list',
  detail: 'Flow detail (tabs Request / Response / Details)',
  ops: 'Operations (O)',
  help: 'Help',
  events: 'Event log (E)',
  export: 'Export menu (after x)',
};

/** Key table rows for one context: keys bound to the same command share a row. */
export function keyRows(context: Context, map: readonly Binding[] = KEYMAP): Array<{ keys: string[]; command: string; help: string }> {
  const rows: Array<{ keys: string[]; command: string; help: string }> = [];
  for (const b of map) {
    if (b.context !== context) continue;
    const row = rows.find((r) => r.command === b.command);
    if (row) row.keys.push(showKey(b.key));
    else rows.push({ keys: [showKey(b.key)], command: b.command, help: b.help });
  }
  return rows;
}

/** The help screen: generated from the key map, then the filter language. */
export function helpLines(map: readonly Binding[] = KEYMAP): Line[] {
  const out: Line[] = [];
  const contexts = Object.keys(TITLES) as Context[];
  const w = Math.max(22, ...contexts.flatMap((c) => keyRows(c, map).map((r) => r.keys.join(', ').length + 2)));
  for (const ctx of contexts) {
    const rows = keyRows(ctx, map);
    if (!rows.length) continue;
    out.push(line(seg(TITLES[ctx], { bold: true })));
    for (const r of rows) out.push(line('  ', seg(r.keys.join(', ').padEnd(w), { color: 'cyan' }), r.help, seg(`  ${r.command}`, { dim: true })));
    out.push(line(''));
  }
  out.push(line(seg('Prompts', { bold: true })));
  out.push(line('  ', seg('enter'.padEnd(w), { color: 'cyan' }), 'apply (a filter with a syntax error is not applied: the list keeps the last good one)'));
  out.push(line('  ', seg('esc'.padEnd(w), { color: 'cyan' }), 'cancel'));
  out.push(line('  ', seg('ctrl-u, ctrl-a, ctrl-e'.padEnd(w), { color: 'cyan' }), 'clear, start, end of line; left/right move'));
  out.push(line(''));
  out.push(line(seg('Filter language (f)', { bold: true })));
  for (const l of filterHelp().split('\n')) out.push(line(`  ${l}`));
  return out;
}

/** Short hints for the footer: the most useful keys of a context. */
export function hints(context: Context): string {
  const pick: Record<Context, string[]> = {
    list: ['enter', 'f', '/', 'm', 'o', 'F', 'O', 'E', 'x', '?', 'q'],
    detail: ['tab', 'm', 'enter', 'x', '/', '?', 'q'],
    ops: ['enter', 'f', '/', '?', 'q'],
    help: ['j', 'space', 'q'],
    events: ['z', 'q'],
    export: ['c', 'r', 'h', 'esc'],
    global: [],
  };
  const words: Record<string, string> = {
    'app.back': 'back',
    'app.help': 'help',
    'nav.select': 'open',
    'filter.prompt': 'filter',
    'search.prompt': 'search',
    'list.mark': 'mark',
    'list.order': 'order',
    'view.follow': 'follow',
    'app.operations': 'ops',
    'app.events': 'events',
    'export.menu': 'export',
    'detail.nextTab': 'tab',
    'detail.mode': 'view',
    'nav.down': 'down',
    'nav.pagedown': 'page',
    'events.clear': 'clear',
    'export.curl': 'curl',
    'export.raw': 'raw',
    'export.har': 'HAR',
  };
  const out: string[] = [];
  for (const k of pick[context]) {
    const b = KEYMAP.find((x) => x.key === k && x.context === context) ?? KEYMAP.find((x) => x.key === k && x.context === 'global');
    if (b) out.push(`${k}:${context === 'list' && k === 'q' ? 'quit' : (words[b.command] ?? b.command)}`);
  }
  return out.join('  ');
}
