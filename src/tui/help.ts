import { filterHelp } from '../filter/index.js';
import { KEYMAP, MITMPROXY_ONLY, showKey, type Binding, type Context } from './keymap.js';
import { line, seg, type Line } from './lines.js';

const TITLES: Record<Context, string> = {
  global: 'Everywhere',
  list: 'Flow list',
  detail: 'Flow detail (tabs Request / Response / Details)',
  ops: 'Operations (T): tree, tab: waterfall',
  options: 'Options (O)',
  help: 'Help',
  events: 'Event log (E)',
  export: 'Export menu (after e or x)',
  save: 'Save menu (after w): which flows go to the new recording',
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
  out.push(line(seg('mitmproxy keys regtape does not bind, and why', { bold: true })));
  for (const [k, why] of MITMPROXY_ONLY) out.push(line('  ', seg(k.padEnd(w), { color: 'cyan' }), seg(why, { dim: true })));
  out.push(line(''));
  out.push(line(seg('Commands (: runs one by id; tab completes)', { bold: true })));
  for (const id of Object.keys(COMMAND_HELP)) out.push(line('  ', seg(id.padEnd(w), { color: 'cyan' }), COMMAND_HELP[id]!));
  out.push(line(''));
  out.push(line(seg('Filter language (f)', { bold: true })));
  for (const l of filterHelp().split('\n')) out.push(line(`  ${l}`));
  return out;
}

/** Every bound command id with its first help text (the : prompt runs these). */
const COMMAND_HELP: Record<string, string> = Object.fromEntries([...KEYMAP].reverse().map((b) => [b.command, b.help]).reverse().sort(([a], [b]) => (a! < b! ? -1 : 1)));

/** Short hints for the footer: the most useful keys of a context. */
export function hints(context: Context): string {
  const pick: Record<Context, string[]> = {
    list: ['?', 'q', 'enter', 'f', '/', 'm', ';', 'w', 'x', 'T', ':', 'd'],
    detail: ['?', 'q', 'tab', 'space', 'm', 'enter', 'r', 'x', '/'],
    ops: ['enter', 'tab', 'f', 'r', '/', '?', 'q'],
    options: ['enter', 'q'],
    help: ['j', 'space', 'q'],
    events: ['z', 'q'],
    export: ['c', 'r', 'h', 'esc'],
    save: ['a', 'm', 's', 'esc'],
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
    'flow.comment': 'comment',
    'flow.delete': 'delete',
    'save.menu': 'save',
    'app.command': 'cmd',
    'detail.nextFlow': 'next',
    'flow.refetch': 'live',
    'ops.toggle': 'waterfall',
    'options.change': 'change',
    'save.all': 'all',
    'save.marked': 'marked',
    'save.shown': 'shown',
  };
  const out: string[] = [];
  for (const k of pick[context]) {
    const b = KEYMAP.find((x) => x.key === k && x.context === context) ?? KEYMAP.find((x) => x.key === k && x.context === 'global');
    if (b) out.push(`${k}:${context === 'list' && k === 'q' ? 'quit' : (words[b.command] ?? b.command)}`);
  }
  return out.join('  ');
}
