import type { CommandId } from './commands.js';

/**
 * The one key map (mitmproxy's defaultkeys.py idea): key → command id per context.
 * The key handler, the help screen and the footer hints all come from this table.
 *
 * Contexts: `global` applies everywhere; a screen's own context (`list`, `detail`,
 * `ops`, `help`, `events`) is tried first, so `m` marks in the list and switches
 * the body view in the detail, as in mitmproxy. `export` is the format menu.
 * Text prompts (filter, search, export path) take keys before the table.
 */
export type Context = 'global' | 'list' | 'detail' | 'ops' | 'help' | 'events' | 'export';

export interface Binding {
  /** Key name as `keyName()` gives it: `j`, `G`, `enter`, `tab`, `shift-tab`, `ctrl-f`, `space`, `up`, … */
  key: string;
  context: Context;
  command: CommandId;
  help: string;
}

export const KEYMAP: readonly Binding[] = [
  // Global: leaving, views.
  { key: '?', context: 'global', command: 'app.help', help: 'help (this screen)' },
  { key: 'q', context: 'global', command: 'app.back', help: 'back; quit from the flow list' },
  { key: 'esc', context: 'global', command: 'app.back', help: 'back (closes prompts and menus)' },
  { key: 'Q', context: 'global', command: 'app.quit', help: 'quit now' },
  { key: 'ctrl-c', context: 'global', command: 'app.quit', help: 'quit now' },
  { key: 'E', context: 'global', command: 'app.events', help: 'event log (proxy and recorder messages)' },
  { key: 'O', context: 'global', command: 'app.operations', help: 'operations: pulls and pushes as trees' },
  { key: 'F', context: 'global', command: 'view.follow', help: 'follow new flows (focus the newest)' },
  // Navigation (every screen).
  { key: 'j', context: 'global', command: 'nav.down', help: 'down' },
  { key: 'down', context: 'global', command: 'nav.down', help: 'down' },
  { key: 'k', context: 'global', command: 'nav.up', help: 'up' },
  { key: 'up', context: 'global', command: 'nav.up', help: 'up' },
  { key: 'g', context: 'global', command: 'nav.top', help: 'first' },
  { key: 'home', context: 'global', command: 'nav.top', help: 'first' },
  { key: 'G', context: 'global', command: 'nav.bottom', help: 'last' },
  { key: 'end', context: 'global', command: 'nav.bottom', help: 'last' },
  { key: 'space', context: 'global', command: 'nav.pagedown', help: 'page down' },
  { key: 'ctrl-f', context: 'global', command: 'nav.pagedown', help: 'page down' },
  { key: 'pagedown', context: 'global', command: 'nav.pagedown', help: 'page down' },
  { key: 'ctrl-b', context: 'global', command: 'nav.pageup', help: 'page up' },
  { key: 'pageup', context: 'global', command: 'nav.pageup', help: 'page up' },
  { key: 'enter', context: 'global', command: 'nav.select', help: 'open the focused flow / follow the link on this line' },
  { key: '/', context: 'global', command: 'search.prompt', help: 'search (regex over the lines shown)' },
  { key: 'n', context: 'global', command: 'search.next', help: 'next search match' },
  { key: 'N', context: 'global', command: 'search.prev', help: 'previous search match' },
  // Flow list.
  { key: 'f', context: 'list', command: 'filter.prompt', help: 'set the view filter (empty: all flows)' },
  { key: 'm', context: 'list', command: 'list.mark', help: 'mark / unmark the focused flow' },
  { key: 'M', context: 'list', command: 'list.markedOnly', help: 'show only marked flows (toggle)' },
  { key: 'o', context: 'list', command: 'list.order', help: 'order: time → size → duration → status → host' },
  { key: 'v', context: 'list', command: 'list.reverse', help: 'reverse the order' },
  { key: 'x', context: 'list', command: 'export.menu', help: 'export: curl / raw of the focused flow, HAR of the shown flows' },
  { key: 'z', context: 'list', command: 'view.clear', help: 'clear: hide the flows shown so far (new ones still appear)' },
  { key: 'Z', context: 'list', command: 'view.unclear', help: 'show the flows hidden by z again' },
  // Flow detail.
  { key: 'tab', context: 'detail', command: 'detail.nextTab', help: 'next tab: Request → Response → Details' },
  { key: 'l', context: 'detail', command: 'detail.nextTab', help: 'next tab' },
  { key: 'right', context: 'detail', command: 'detail.nextTab', help: 'next tab' },
  { key: 'shift-tab', context: 'detail', command: 'detail.prevTab', help: 'previous tab' },
  { key: 'h', context: 'detail', command: 'detail.prevTab', help: 'previous tab' },
  { key: 'left', context: 'detail', command: 'detail.prevTab', help: 'previous tab' },
  { key: 'm', context: 'detail', command: 'detail.mode', help: 'body view: manifest / token / json / text / hex' },
  { key: 'x', context: 'detail', command: 'export.menu', help: 'export this flow (curl / raw) or the shown flows (HAR)' },
  // Operations.
  { key: 'f', context: 'ops', command: 'filter.prompt', help: 'filter (operations with a matching flow)' },
  // Export menu (after x).
  { key: 'c', context: 'export', command: 'export.curl', help: 'curl command for the focused flow' },
  { key: 'r', context: 'export', command: 'export.raw', help: 'raw request and response of the focused flow' },
  { key: 'h', context: 'export', command: 'export.har', help: 'HAR 1.2 of the shown flows' },
  // Event log.
  { key: 'z', context: 'events', command: 'events.clear', help: 'clear the event log' },
];

/** The command bound to a key, trying contexts in order. */
export function lookup(key: string, contexts: readonly Context[], map: readonly Binding[] = KEYMAP): CommandId | undefined {
  for (const c of contexts) {
    const b = map.find((x) => x.context === c && x.key === key);
    if (b) return b.command;
  }
  return undefined;
}

/** What ink's useInput reports about a key. */
export interface InkKey {
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  ctrl?: boolean;
  shift?: boolean;
  tab?: boolean;
  backspace?: boolean;
  delete?: boolean;
  meta?: boolean;
}

/**
 * A key name from ink's (input, key), or the typed text itself for printable input
 * (a paste arrives as one string). Terminals send DEL (0x7f) for Backspace, which ink
 * calls `delete`: both are `backspace` here.
 */
export function keyName(input: string, key: InkKey): string {
  if (key.return) return 'enter';
  if (key.escape) return 'esc';
  if (key.tab) return key.shift ? 'shift-tab' : 'tab';
  if (key.backspace || key.delete) return 'backspace';
  if (key.upArrow) return 'up';
  if (key.downArrow) return 'down';
  if (key.leftArrow) return 'left';
  if (key.rightArrow) return 'right';
  if (key.pageUp) return 'pageup';
  if (key.pageDown) return 'pagedown';
  if (key.home) return 'home';
  if (key.end) return 'end';
  if (key.ctrl && input.length === 1) return `ctrl-${input.toLowerCase()}`;
  if (input === ' ') return 'space';
  return input;
}

/**
 * Key names for one input event. Terminals (and tmux, ssh) may deliver several
 * keystrokes in one read ("jj", "f~m GET\r"), and ink splits only at escape
 * sequences: text with more than one character is taken apart here, control
 * characters becoming their key names (\r enter, \t tab, DEL backspace, ^U ctrl-u).
 * A paste into a prompt is the same keys typed fast.
 */
export function keyNames(input: string, key: InkKey): string[] {
  const special = key.return || key.escape || key.tab || key.backspace || key.delete || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow || key.pageUp || key.pageDown || key.home || key.end || key.ctrl;
  if (special || [...input].length <= 1) return [keyName(input, key)];
  const out: string[] = [];
  for (const ch of input) {
    const c = ch.codePointAt(0)!;
    if (ch === '\r' || ch === '\n') out.push('enter');
    else if (ch === '\t') out.push('tab');
    else if (c === 0x7f || c === 0x08) out.push('backspace');
    else if (c === 0x1b) out.push('esc');
    else if (c < 0x20) out.push(`ctrl-${String.fromCharCode(c + 96)}`);
    else if (ch === ' ') out.push('space');
    else out.push(ch);
  }
  return out;
}

/** Display form of a key in help. */
export function showKey(k: string): string {
  return k === 'space' ? 'space' : k;
}
