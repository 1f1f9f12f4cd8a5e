import type { CommandId } from './commands.js';

/**
 * The one key map (mitmproxy's defaultkeys.py idea): key → command id per context.
 * The key handler, the help screen, the `:` prompt's completion and the footer hints
 * all come from this table. Keys follow mitmproxy (HEAD) where the command exists in
 * regtape; `MITMPROXY_ONLY` lists the keys that do not, with the reason.
 *
 * Contexts: `global` applies everywhere; a screen's own context (`list`, `detail`,
 * `ops`, `options`, `help`, `events`) is tried first, so `m` marks in the list and
 * switches the body view in the detail, as in mitmproxy. `export` and `save` are the
 * one-key menus after `e`/`x` and `w`. Text prompts take keys before the table.
 */
export type Context = 'global' | 'list' | 'detail' | 'ops' | 'options' | 'help' | 'events' | 'export' | 'save';

export interface Binding {
  /** Key name as `keyName()` gives it: `j`, `G`, `enter`, `tab`, `shift-tab`, `ctrl-f`, `space`, `up`, … */
  key: string;
  context: Context;
  command: CommandId;
  help: string;
}

/** Keys every flow screen (list, detail) shares: mitmproxy's "flowlist and flowview" group. */
const FLOW_KEYS = (context: 'list' | 'detail'): Binding[] => [
  { key: ';', context, command: 'flow.comment', help: 'comment the focused flow (kept in memory until w saves)' },
  { key: 'd', context, command: 'flow.delete', help: 'delete the focused flow from the view (from the file only when saved over it)' },
  { key: 'D', context, command: 'flow.duplicate', help: 'duplicate the focused flow (the copy is saved as a new flow)' },
  { key: 'b', context, command: 'flow.saveBody', help: 'save the response body to a file (path prompt)' },
  { key: 'e', context, command: 'export.menu', help: 'export: curl / raw of the focused flow, HAR of the shown flows (mitmproxy 8: e)' },
  { key: 'x', context, command: 'export.menu', help: 'export (mitmproxy HEAD: x)' },
  { key: 'w', context, command: 'save.menu', help: 'save flows (all / marked / shown) with marks and comments to a recording' },
  { key: 'r', context, command: 'flow.refetch', help: 're-ask the live registry for this manifest or tag (shows what changed; never written)' },
];

export const KEYMAP: readonly Binding[] = [
  // Global: leaving, views.
  { key: '?', context: 'global', command: 'app.help', help: 'help (this screen)' },
  { key: 'q', context: 'global', command: 'app.back', help: 'back; at the flow list: quit (asks first)' },
  { key: 'esc', context: 'global', command: 'app.escape', help: 'back (closes prompts and menus; never quits)' },
  { key: 'Q', context: 'global', command: 'app.quit', help: 'quit now (asks only when changes are unsaved, or while recording)' },
  { key: 'ctrl-c', context: 'global', command: 'app.quit', help: 'quit now (as Q)' },
  { key: ':', context: 'global', command: 'app.command', help: 'command prompt: a command id (tab completes), enter runs it' },
  { key: 'C', context: 'global', command: 'app.help', help: 'commands (the help lists every command id)' },
  { key: 'K', context: 'global', command: 'app.help', help: 'key bindings (this screen)' },
  { key: 'E', context: 'global', command: 'app.events', help: 'event log (proxy and recorder messages)' },
  { key: 'O', context: 'global', command: 'app.options', help: 'options (order, follow, marked only, …; enter changes one)' },
  { key: 'T', context: 'global', command: 'app.operations', help: 'operations: pulls and pushes as trees, tab: waterfall (regtape)' },
  { key: 'P', context: 'global', command: 'flow.open', help: 'open the focused flow' },
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
  { key: 'wheeldown', context: 'global', command: 'nav.wheelDown', help: 'mouse wheel: scroll down' },
  { key: 'wheelup', context: 'global', command: 'nav.wheelUp', help: 'mouse wheel: scroll up' },
  { key: 'enter', context: 'global', command: 'nav.select', help: 'open the focused flow / follow the link on this line' },
  { key: '/', context: 'global', command: 'search.prompt', help: 'search (regex over the lines of the current view)' },
  { key: 'n', context: 'global', command: 'search.next', help: 'next search match' },
  { key: 'N', context: 'global', command: 'search.prev', help: 'previous search match' },
  // Flow list.
  { key: 'f', context: 'list', command: 'filter.prompt', help: 'set the view filter (empty: all flows)' },
  { key: 'm', context: 'list', command: 'list.mark', help: 'mark / unmark the focused flow (in memory until w saves)' },
  { key: 'M', context: 'list', command: 'list.markedOnly', help: 'show only marked flows (toggle)' },
  { key: 'U', context: 'list', command: 'list.unmarkAll', help: 'unmark all flows' },
  { key: 'o', context: 'list', command: 'list.order', help: 'order: time → method → url → size → duration → status → host' },
  { key: 'v', context: 'list', command: 'list.reverse', help: 'reverse the order' },
  { key: 'z', context: 'list', command: 'view.clear', help: 'clear the view: hide the flows shown so far (file untouched; Z shows them again)' },
  { key: 'Z', context: 'list', command: 'view.unclear', help: 'show the flows hidden by z again (mitmproxy: purge hidden flows)' },
  { key: 'L', context: 'list', command: 'app.load', help: 'load another recording (path prompt)' },
  ...FLOW_KEYS('list'),
  // Flow detail.
  { key: 'tab', context: 'detail', command: 'detail.nextTab', help: 'next tab: Request → Response → Details' },
  { key: 'l', context: 'detail', command: 'detail.nextTab', help: 'next tab' },
  { key: 'right', context: 'detail', command: 'detail.nextTab', help: 'next tab' },
  { key: 'shift-tab', context: 'detail', command: 'detail.prevTab', help: 'previous tab' },
  { key: 'h', context: 'detail', command: 'detail.prevTab', help: 'previous tab' },
  { key: 'left', context: 'detail', command: 'detail.prevTab', help: 'previous tab' },
  { key: 'space', context: 'detail', command: 'detail.nextFlow', help: 'next flow (as mitmproxy’s flow view; ctrl-f pages)' },
  { key: 'p', context: 'detail', command: 'detail.prevFlow', help: 'previous flow' },
  { key: 'm', context: 'detail', command: 'detail.mode', help: 'body view: manifest / token / json / text / hex' },
  ...FLOW_KEYS('detail'),
  // Operations.
  { key: 'f', context: 'ops', command: 'filter.prompt', help: 'filter (operations with a matching flow)' },
  { key: 'tab', context: 'ops', command: 'ops.toggle', help: 'tree ↔ waterfall (per layer: connect, TLS, wait, transfer; redirect + CDN joined)' },
  { key: 'r', context: 'ops', command: 'flow.refetch', help: 're-ask the live registry for the manifest on this line' },
  // Options.
  { key: 'enter', context: 'options', command: 'options.change', help: 'change the option on this line (toggle, next value, or prompt)' },
  { key: 'space', context: 'options', command: 'options.change', help: 'change the option on this line' },
  // Export menu (after e or x).
  { key: 'c', context: 'export', command: 'export.curl', help: 'curl command for the focused flow' },
  { key: 'r', context: 'export', command: 'export.raw', help: 'raw request and response of the focused flow' },
  { key: 'h', context: 'export', command: 'export.har', help: 'HAR 1.2 of the shown flows' },
  // Save menu (after w).
  { key: 'a', context: 'save', command: 'save.all', help: 'all flows' },
  { key: 'm', context: 'save', command: 'save.marked', help: 'marked flows' },
  { key: 's', context: 'save', command: 'save.shown', help: 'the flows shown (filtered)' },
  // Event log.
  { key: 'z', context: 'events', command: 'events.clear', help: 'clear the event log' },
];

/** mitmproxy keys regtape leaves unbound, and why (shown in help and the README). */
export const MITMPROXY_ONLY: ReadonlyArray<[string, string]> = [
  ['i I a A', 'intercept and resume: a recording is not live traffic to hold (record --ui records, it never holds a flow)'],
  ['S', 'server replay: `regtape replay` is the server'],
  ['X', 'kill flow: nothing is in flight when reading a file (record --ui: the client may cancel)'],
  ['n', 'new flow: regtape records real exchanges only; n is search next, as in mitmproxy’s searchable views'],
  ['V  | ', 'revert edits, run script: recorded flows are not edited in place'],
  ['B', 'start attached browser: registry clients are CLIs'],
  ['-  shift-tab (list)', 'layout cycling and panes: one screen at a time'],
  ['W', 'save_stream_file: `regtape record` always writes the recording'],
  ['f (flow view)', 'full contents: bodies are paged in full already'],
  ['z (flow view)', 'encode/decode body: bodies are stored decoded'],
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
  const mouse = mouseKey(input);
  if (mouse !== undefined) return mouse ? [mouse] : [];
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

/**
 * xterm SGR mouse reports (run.tsx turns them on): ink hands them over as
 * `[<button;col;rowM` (press) or `…m` (release). The wheel is `wheelup`/`wheeldown`,
 * a left press `click:ROW` (1-based terminal row); other buttons and releases are
 * nothing (empty string). Undefined: not a mouse report.
 */
export function mouseKey(input: string): string | undefined {
  const m = /^\x1b?\[<(\d+);(\d+);(\d+)([Mm])$/.exec(input);
  if (!m) return undefined;
  const button = Number(m[1]);
  if (button === 64) return 'wheelup';
  if (button === 65) return 'wheeldown';
  if (button === 0 && m[4] === 'M') return `click:${m[3]}`;
  return '';
}

/** Display form of a key in help. */
export function showKey(k: string): string {
  return k === 'space' ? 'space' : k;
}
