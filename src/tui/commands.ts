import path from 'node:path';
import type { FlowRecord } from '../flow/index.js';
import { FilterSyntaxError, parseFilter } from '../filter/index.js';
import { buildDetail, detailTitle } from './detail.js';
import { rowText } from './flow-row.js';
import { helpLines } from './help.js';
import { lookup, type Context } from './keymap.js';
import { plain, type Line } from './lines.js';
import { answer, askQuit, completeCommand, EDIT_COMMANDS, optionLines, submitBody, submitCommand, submitComment, submitLoad, submitSave } from './edit-commands.js';
import { operationsView } from './ops-view.js';
import { waterfallView } from './waterfall.js';
import {
  bodyHeight,
  clampPager,
  current,
  listHeight,
  TABS,
  type DetailScreen,
  type Env,
  type ExportFormat,
  type OpsScreen,
  type Pager,
  type Prompt,
  type Screen,
  type UiState,
} from './state.js';
import { computeView, ORDERS, updateView, type ViewSpec } from './view.js';

/**
 * Commands: ids → transitions of UiState. The key map binds keys to these ids; the
 * help screen lists them. Transitions are pure apart from the Env (reading the
 * recording, writing an export file, saving a mark), so they are tested without ink.
 */
export type Command = (s: UiState, env: Env) => UiState;

// ---------------------------------------------------------------- helpers

export const say = (s: UiState, text: string, level: 'info' | 'error' = 'info'): UiState => ({ ...s, message: { text, level } });

function replaceTop(s: UiState, screen: Screen): UiState {
  return { ...s, stack: [...s.stack.slice(0, -1), screen] };
}

export function push(s: UiState, screen: Screen): UiState {
  return { ...s, stack: [...s.stack, screen] };
}

/** The focused flow of the current screen (list row, detail flow, or the flow a line links to). */
export function focusedFlow(s: UiState, env: Env): FlowRecord | undefined {
  const sc = current(s);
  if (sc.kind === 'list') return s.view[s.list.cursor];
  if (sc.kind === 'detail') return env.model.get(sc.flowId);
  if (sc.kind === 'ops') {
    const id = sc.lines[sc.cursor]?.link?.flowId;
    return id !== undefined ? env.model.get(id) : undefined;
  }
  return undefined;
}

/** Lines of a pager screen (events are read live from the log). */
export function screenLines(sc: Screen, env: Env, s: UiState): Line[] {
  switch (sc.kind) {
    case 'detail':
    case 'ops':
    case 'help':
    case 'live':
      return sc.lines;
    case 'events':
      return eventLines(env);
    case 'options':
      return optionLines(s, env);
    case 'list':
      return [];
  }
}

export function eventLines(env: Env): Line[] {
  return env.events.entries.map((e) => {
    const t = new Date(e.time).toISOString().slice(11, 23);
    const color = e.level === 'error' ? 'red' : e.level === 'warn' ? 'yellow' : e.level === 'debug' ? 'gray' : undefined;
    return { segs: [{ text: `${t} `, dim: true }, { text: `${e.level.padEnd(5)} `, color }, { text: e.text }] };
  });
}

function setListCursor(s: UiState, cursor: number, follow = s.follow): UiState {
  const list = clampPager({ ...s.list, cursor }, s.view.length, listHeight(s));
  return { ...s, follow, list: { ...list, focusId: s.view[list.cursor]?.id ?? null } };
}

function movePager(s: UiState, env: Env, to: (p: Pager, n: number, h: number) => number): UiState {
  const sc = current(s);
  const h = bodyHeight(s);
  if (sc.kind === 'list') {
    const cursor = to(s.list, s.view.length, h);
    // Moving away from the newest flow stops following (like less +F).
    const newest = s.spec.reverse ? 0 : s.view.length - 1;
    const follow = s.follow && (s.spec.order !== 'time' || cursor === newest);
    return setListCursor(s, cursor, follow);
  }
  const n = screenLines(sc, env, s).length;
  if (sc.kind === 'events') {
    const cursor = to(sc, n, h);
    return replaceTop(s, { ...clampPager({ ...sc, cursor }, n, h), tail: cursor >= n - 1 });
  }
  return replaceTop(s, clampPager({ ...sc, cursor: to(sc, n, h) }, n, h) as Screen);
}

// ---------------------------------------------------------------- view (filter, order, marks)

/** Recompute the shown flows for a new spec, keeping the focused flow when it is still shown. */
export function withSpec(s: UiState, env: Env, spec: ViewSpec): UiState {
  const view = computeView(env.model, spec);
  return refocus({ ...s, spec, view }, s.list.focusId);
}

/** Keep the list's focus on the same flow after the view changed. */
export function refocusList(s: UiState, _env: Env): UiState {
  return refocus(s, s.list.focusId);
}

function refocus(s: UiState, focusId: number | null): UiState {
  if (s.follow) return followNewest(s);
  let cursor = focusId !== null ? s.view.findIndex((f) => f.id === focusId) : -1;
  if (cursor < 0) cursor = Math.min(s.list.cursor, s.view.length - 1);
  return setListCursor(s, Math.max(0, cursor));
}

function followNewest(s: UiState): UiState {
  if (!s.view.length) return setListCursor(s, 0);
  let cursor: number;
  if (s.spec.order === 'time') cursor = s.spec.reverse ? 0 : s.view.length - 1;
  else {
    cursor = 0;
    for (let i = 1; i < s.view.length; i++) if (s.view[i]!.id > s.view[cursor]!.id) cursor = i;
  }
  return setListCursor(s, cursor);
}

/** Apply a filter expression; a syntax error leaves the view as it is and is returned. */
export function applyFilter(s: UiState, env: Env, text: string): { state: UiState; error?: FilterSyntaxError } {
  let filter;
  try {
    filter = /^\s*$/.test(text) ? null : parseFilter(text);
  } catch (e) {
    if (e instanceof FilterSyntaxError) return { state: s, error: e };
    throw e;
  }
  const next = withSpec({ ...s, filterText: text.trim() ? text : '' }, env, { ...s.spec, filter });
  const sc = current(next);
  const rebuilt = sc.kind === 'ops' ? replaceTop(next, buildOps(next, env, sc)) : next;
  return { state: say(rebuilt, filter ? `${next.view.length} of ${env.model.rows.length} flows match ${text.trim()}` : `showing all ${next.view.length} flows`) };
}

// ---------------------------------------------------------------- screens

/** Open a flow's detail (response tab when there is a response). */
export function openDetail(s: UiState, env: Env, flowId: number): UiState {
  const row = env.model.get(flowId);
  if (!row) return say(s, `flow #${flowId} is not in this recording`, 'error');
  const tab = row.response ? 'response' : 'request';
  const screen = buildDetailScreen(s, env, { kind: 'detail', flowId, tab, modes: {}, lines: [], available: [], cursor: 0, top: 0, source: undefined, width: 0 }, true);
  // The list focus follows, so `q` comes back to this flow.
  const i = s.view.findIndex((f) => f.id === flowId);
  const s2 = i >= 0 ? setListCursor(s, i, false) : s;
  return push(s2, screen);
}

function buildDetailScreen(s: UiState, env: Env, sc: DetailScreen, fresh = false): DetailScreen {
  const row = env.model.get(sc.flowId);
  const full = env.model.full(sc.flowId);
  if (!full) return { ...sc, lines: [{ segs: [{ text: `flow #${sc.flowId} is gone`, color: 'red' }] }], source: row, available: [], mode: undefined };
  const width = s.size.cols;
  const c = buildDetail(full, sc.tab, sc.tab === 'details' ? undefined : sc.modes[sc.tab], env.model, width);
  const h = bodyHeight(push(s, sc));
  // A fresh tab or view starts on its first link (a manifest's first platform or layer), so enter follows it.
  let cursor = sc.cursor;
  if (fresh) {
    const first = c.lines.findIndex((l) => l.link);
    if (first >= 0) cursor = first;
  }
  return clampPager({ ...sc, lines: c.lines, available: c.available, mode: c.mode, source: row, width, cursor }, c.lines.length, h);
}

function buildOps(s: UiState, env: Env, sc: OpsScreen): OpsScreen {
  const shown = s.spec.filter || s.spec.markedOnly || s.spec.hidden.size ? new Set(s.view.map((f) => f.id)) : null;
  const lines = sc.mode === 'waterfall' ? waterfallView(env.model.operations(), env.model, shown, s.size.cols) : operationsView(env.model.operations(), shown, s.size.cols);
  const h = bodyHeight(push(s, sc));
  return clampPager({ ...sc, lines, version: env.model.version, width: s.size.cols }, lines.length, h);
}

/** Title line of the detail screen. */
export function detailHeader(sc: DetailScreen, env: Env): Line {
  const f = env.model.get(sc.flowId);
  return f ? detailTitle(env.model.full(sc.flowId) ?? f) : { segs: [{ text: `#${sc.flowId}` }] };
}

function pushOnce(s: UiState, kind: 'help' | 'events' | 'ops' | 'options', make: () => Screen): UiState {
  if (current(s).kind === kind) return s;
  // Jumping to a view that is already open further down goes back to it.
  const i = s.stack.findIndex((x) => x.kind === kind);
  if (i > 0) return { ...s, stack: s.stack.slice(0, i + 1) };
  return push(s, make());
}

// ---------------------------------------------------------------- search

function searchFrom(s: UiState, env: Env, dir: 1 | -1, inclusive: boolean): UiState {
  if (!s.search) return say(s, 'no search yet: / to search', 'error');
  const re = s.search.re;
  const sc = current(s);
  if (sc.kind === 'list') {
    const n = s.view.length;
    for (let k = inclusive ? 0 : 1; k <= n; k++) {
      const i = (((s.list.cursor + dir * k) % n) + n) % n;
      if (re.test(rowText(s.view[i]!))) return setListCursor(s, i, false);
    }
    return say(s, `no flow matches /${s.search.source}/`, 'error');
  }
  const lines = screenLines(sc, env, s);
  const n = lines.length;
  for (let k = inclusive ? 0 : 1; k <= n; k++) {
    const i = ((((sc as Pager).cursor + dir * k) % n) + n) % n;
    if (re.test(plain(lines[i]!))) return movePager(s, env, () => i);
  }
  return say(s, `no line matches /${s.search.source}/`, 'error');
}

// ---------------------------------------------------------------- export

function defaultExportPath(s: UiState, env: Env, format: ExportFormat): string | null {
  const f = focusedFlow(s, env);
  if (format === 'har') return path.join(env.cwd, `regtape-${s.view.length}-flows.har`);
  return f ? path.join(env.cwd, `flow-${f.id}.${format === 'curl' ? 'curl.sh' : 'txt'}`) : null;
}

function exportPrompt(format: ExportFormat): Command {
  return (s, env) => {
    const p = defaultExportPath(s, env, format);
    if (!p) return say({ ...s, menu: null }, 'no flow to export', 'error');
    const text = path.relative(env.cwd, p) || p;
    return { ...s, menu: null, prompt: { kind: 'export', format, text, cursor: text.length } };
  };
}

function runExport(s: UiState, env: Env, p: Prompt): UiState {
  const file = path.resolve(env.cwd, p.text.trim());
  const format = p.format ?? 'raw';
  const focused = focusedFlow(s, env);
  const flows = format === 'har' ? s.view : focused ? [focused] : [];
  let job: Promise<string>;
  try {
    job = env.exportTo(format, file, flows);
  } catch (e) {
    return { ...s, prompt: { ...p, error: { message: (e as Error).message } } };
  }
  job.then(
    (what) => {
      env.events.add('info', `exported ${what} to ${file}`);
      env.report?.(`wrote ${what} to ${file}`, 'info');
    },
    (e: Error) => {
      env.events.add('error', `export to ${file} failed: ${e.message}`);
      env.report?.(`export failed: ${e.message}`, 'error');
    },
  );
  return say({ ...s, prompt: null }, `writing ${format} to ${file}…`);
}

// ---------------------------------------------------------------- the command table

export const COMMANDS = {
  'app.help': (s) => pushOnce(s, 'help', () => ({ kind: 'help', lines: helpLines(), cursor: 0, top: 0 })),
  'app.events': (s, env) => pushOnce(s, 'events', () => ({ kind: 'events', cursor: Math.max(0, env.events.entries.length - 1), top: 0, tail: true })),
  'app.operations': (s, env) => pushOnce(s, 'ops', () => buildOps(s, env, { kind: 'ops', mode: 'tree', lines: [], cursor: 0, top: 0, version: -1, width: 0 })),
  'app.options': (s) => pushOnce(s, 'options', () => ({ kind: 'options', cursor: 0, top: 0 })),
  'app.back': (s, env) => (s.stack.length > 1 ? { ...s, stack: s.stack.slice(0, -1) } : askQuit(s, env)),
  'app.escape': (s) => (s.stack.length > 1 ? { ...s, stack: s.stack.slice(0, -1) } : say(s, 'this is the flow list (q quits)')),
  'app.quit': (s, env) => (!env.model.backend.persist && env.model.unsaved() ? askQuit(s, env) : { ...s, quit: true }),
  'app.command': (s) => ({ ...s, prompt: completeCommand({ kind: 'command', text: '', cursor: 0 }) }),

  'nav.down': (s, env) => movePager(s, env, (p) => p.cursor + 1),
  'nav.up': (s, env) => movePager(s, env, (p) => p.cursor - 1),
  'nav.top': (s, env) => movePager(s, env, () => 0),
  'nav.bottom': (s, env) => movePager(s, env, (_p, n) => n - 1),
  'nav.pagedown': (s, env) => movePager(s, env, (p, _n, h) => p.cursor + h),
  'nav.pageup': (s, env) => movePager(s, env, (p, _n, h) => p.cursor - h),
  'nav.wheelDown': (s, env) => movePager(s, env, (p) => p.cursor + 3),
  'nav.wheelUp': (s, env) => movePager(s, env, (p) => p.cursor - 3),
  'nav.select': (s, env) => {
    const sc = current(s);
    if (sc.kind === 'list') {
      const f = s.view[s.list.cursor];
      return f ? openDetail(s, env, f.id) : s;
    }
    if (sc.kind === 'detail' || sc.kind === 'ops') {
      const link = sc.lines[sc.cursor]?.link;
      if (!link) return say(s, 'nothing to open on this line (lines with → #id open a flow)');
      return openDetail(s, env, link.flowId);
    }
    return s;
  },

  'search.prompt': (s) => ({ ...s, prompt: { kind: 'search', text: s.search?.source ?? '', cursor: (s.search?.source ?? '').length } }),
  'search.next': (s, env) => searchFrom(s, env, 1, false),
  'search.prev': (s, env) => searchFrom(s, env, -1, false),

  'filter.prompt': (s) => ({ ...s, prompt: { kind: 'filter', text: s.filterText, cursor: s.filterText.length } }),
  'list.mark': (s, env) => {
    const f = s.view[s.list.cursor];
    if (!f) return s;
    env.model.setMarked(f.id, !f.marked);
    const next = s.spec.markedOnly ? withSpec(s, env, s.spec) : { ...s, view: [...s.view] };
    return s.spec.markedOnly ? next : setListCursor(next, s.list.cursor + 1);
  },
  'list.unmarkAll': (s, env) => {
    let n = 0;
    for (const f of env.model.rows) {
      if (!f.marked) continue;
      env.model.setMarked(f.id, false);
      n++;
    }
    return say(withSpec(s, env, s.spec), `unmarked ${n} flows`);
  },
  'list.markedOnly': (s, env) => {
    const t = withSpec(s, env, { ...s.spec, markedOnly: !s.spec.markedOnly });
    return say(t, t.spec.markedOnly ? `showing ${t.view.length} marked flows` : 'showing marked and unmarked flows');
  },
  'list.order': (s, env) => {
    const order = ORDERS[(ORDERS.indexOf(s.spec.order) + 1) % ORDERS.length]!;
    return say(withSpec(s, env, { ...s.spec, order }), `order: ${order}${s.spec.reverse ? ' (reversed)' : ''}`);
  },
  'list.reverse': (s, env) => say(withSpec(s, env, { ...s.spec, reverse: !s.spec.reverse }), `order: ${s.spec.order}${!s.spec.reverse ? ' (reversed)' : ''}`),
  'view.follow': (s) => {
    const follow = !s.follow;
    return say(follow ? followNewest({ ...s, follow }) : { ...s, follow }, follow ? 'following new flows' : 'follow off');
  },
  'view.clear': (s, env) => {
    const hidden = new Set(s.spec.hidden);
    for (const f of s.view) if (f.state !== 'open') hidden.add(f.id);
    return say(withSpec(s, env, { ...s.spec, hidden }), `cleared ${hidden.size - s.spec.hidden.size} flows from the view (Z shows them again)`);
  },
  'view.unclear': (s, env) => say(withSpec(s, env, { ...s.spec, hidden: new Set() }), `showing ${s.spec.hidden.size} cleared flows again`),

  'detail.nextFlow': (s, env) => stepFlow(s, env, 1),
  'detail.prevFlow': (s, env) => stepFlow(s, env, -1),
  'ops.toggle': (s, env) => {
    const sc = current(s);
    if (sc.kind !== 'ops') return s;
    const mode = sc.mode === 'tree' ? 'waterfall' : 'tree';
    return say(replaceTop(s, buildOps(s, env, { ...sc, mode, cursor: 0, top: 0 })), mode === 'waterfall' ? 'waterfall: each transfer on one time axis (tab: tree)' : 'tree (tab: waterfall)');
  },
  'flow.refetch': (s, env) => refetch(s, env),
  ...EDIT_COMMANDS,
  'detail.nextTab': (s, env) => switchTab(s, env, 1),
  'detail.prevTab': (s, env) => switchTab(s, env, -1),
  'detail.mode': (s, env) => {
    const sc = current(s);
    if (sc.kind !== 'detail' || sc.tab === 'details') return say(s, 'no body view on this tab');
    if (sc.available.length < 2) return say(s, sc.available.length ? `only the ${sc.available[0]} view applies` : 'no body');
    const next = sc.available[(sc.available.indexOf(sc.mode!) + 1) % sc.available.length]!;
    return replaceTop(s, buildDetailScreen(s, env, { ...sc, modes: { ...sc.modes, [sc.tab]: next }, cursor: 0, top: 0 }, true));
  },

  'export.menu': (s, env) => (focusedFlow(s, env) || s.view.length ? say({ ...s, menu: 'export' }, 'export: c curl  r raw  h HAR of the shown flows  (esc: cancel)') : say(s, 'nothing to export', 'error')),
  'export.curl': exportPrompt('curl'),
  'export.raw': exportPrompt('raw'),
  'export.har': exportPrompt('har'),

  'events.clear': (s, env) => {
    env.events.clear();
    return movePager(s, env, () => 0);
  },
} satisfies Record<string, Command>;

export type CommandId = keyof typeof COMMANDS;

/** space / p in the flow view: the next or previous flow of the list, same tab. */
function stepFlow(s: UiState, env: Env, dir: 1 | -1): UiState {
  const sc = current(s);
  if (sc.kind !== 'detail') return s;
  const i = s.view.findIndex((f) => f.id === sc.flowId);
  const next = s.view[i + dir];
  if (!next) return say(s, dir > 0 ? 'last flow of the list' : 'first flow of the list');
  const moved = setListCursor(s, i + dir, false);
  return replaceTop(moved, buildDetailScreen(moved, env, { ...sc, flowId: next.id, cursor: 0, top: 0 }, true));
}

/** r: ask the live registry again about the focused manifest flow; the answer opens as its own screen. */
function refetch(s: UiState, env: Env): UiState {
  const f = focusedFlow(s, env);
  if (!f) return say(s, 'no flow', 'error');
  if (f.registry?.role !== 'manifest') return say(s, `r re-asks the registry for a manifest or tag; #${f.id} is ${f.registry?.role ?? 'not a registry flow'}`, 'error');
  if (!env.refetch) return say(s, 'no live registry access here', 'error');
  const full = env.model.full(f.id) ?? f;
  env.refetch(full).then(
    (lines) => env.present?.({ kind: 'live', flowId: f.id, lines, cursor: 0, top: 0 }),
    (e: Error) => env.report?.(`live request failed: ${e.message}`, 'error'),
  );
  return say(s, `asking ${f.request.host} again for ${f.registry.repo ?? ''}:${f.registry.reference ?? ''} (live, not recorded)…`);
}

function switchTab(s: UiState, env: Env, dir: 1 | -1): UiState {
  const sc = current(s);
  if (sc.kind !== 'detail') return s;
  const tab = TABS[(TABS.indexOf(sc.tab) + dir + TABS.length) % TABS.length]!;
  return replaceTop(s, buildDetailScreen(s, env, { ...sc, tab, cursor: 0, top: 0 }, true));
}

// ---------------------------------------------------------------- keys

/** Keys that are names, not text (a prompt does not insert them). */
const NAMED = new Set(['enter', 'esc', 'tab', 'shift-tab', 'backspace', 'up', 'down', 'left', 'right', 'pageup', 'pagedown', 'home', 'end']);

function editPrompt(s: UiState, env: Env, p: Prompt, key: string): UiState {
  let { text, cursor } = p;
  switch (key) {
    case 'enter':
      return submitPrompt(s, env, p);
    case 'tab':
      if (p.kind === 'command') return { ...s, prompt: completeCommand(p) };
      return s;
    case 'esc':
    case 'ctrl-c':
    case 'ctrl-g':
      return { ...s, prompt: null };
    case 'backspace':
      if (cursor > 0) {
        text = text.slice(0, cursor - 1) + text.slice(cursor);
        cursor--;
      }
      break;
    case 'left':
      cursor = Math.max(0, cursor - 1);
      break;
    case 'right':
      cursor = Math.min(text.length, cursor + 1);
      break;
    case 'home':
    case 'ctrl-a':
      cursor = 0;
      break;
    case 'end':
    case 'ctrl-e':
      cursor = text.length;
      break;
    case 'ctrl-u':
      text = '';
      cursor = 0;
      break;
    default: {
      if (NAMED.has(key) || key.startsWith('ctrl-')) return s;
      const ins = key === 'space' ? ' ' : key.replace(/[\r\n]+/g, ' ');
      text = text.slice(0, cursor) + ins + text.slice(cursor);
      cursor += ins.length;
    }
  }
  let error = p.error;
  // Once an error is shown, it follows the text (and goes away when the text is fixed).
  if (error && p.kind === 'filter') error = filterError(text);
  else if (error) error = undefined;
  const next = { ...p, text, cursor, error };
  return { ...s, prompt: p.kind === 'command' ? { ...completeCommand({ ...next }), text, cursor } : next };
}

function filterError(text: string): Prompt['error'] {
  try {
    parseFilter(text);
    return undefined;
  } catch (e) {
    if (e instanceof FilterSyntaxError) return { message: `expected ${e.expected}${e.detail ? `; ${e.detail}` : ''}`, position: e.position };
    return { message: (e as Error).message };
  }
}

function submitPrompt(s: UiState, env: Env, p: Prompt): UiState {
  if (p.kind === 'filter') {
    const r = applyFilter(s, env, p.text);
    if (r.error) return { ...s, prompt: { ...p, error: filterError(p.text) } };
    return { ...r.state, prompt: null };
  }
  if (p.kind === 'search') {
    if (!p.text) return { ...s, prompt: null, search: null };
    let re: RegExp;
    try {
      re = new RegExp(p.text, 'i');
    } catch (e) {
      return { ...s, prompt: { ...p, error: { message: (e as Error).message } } };
    }
    return searchFrom({ ...s, prompt: null, search: { source: p.text, re } }, env, 1, false);
  }
  if (p.kind === 'comment') return submitComment(s, env, p);
  if (p.kind === 'command') return submitCommand(s, env, p);
  if (!p.text.trim()) return { ...s, prompt: { ...p, error: { message: 'a file name is needed' } } };
  if (p.kind === 'save') return submitSave(s, env, p);
  if (p.kind === 'body') return submitBody(s, env, p);
  if (p.kind === 'load') return submitLoad(s, env, p);
  return runExport(s, env, p);
}

/** The contexts a key is looked up in, most specific first. */
export function contextsOf(s: UiState): Context[] {
  if (s.menu) return [s.menu];
  const kind = current(s).kind;
  return kind === 'live' ? ['global'] : [kind, 'global'];
}

/** Handle one key (a name from keyName(), or typed text). */
export function handleKey(s0: UiState, env: Env, key: string): UiState {
  const s = s0.message && !s0.prompt ? { ...s0, message: null } : s0;
  if (s.confirm) return answer(s, env, key);
  if (s.prompt) return editPrompt(s, env, s.prompt, key);
  if (s.menu) {
    const id = lookup(key, [s.menu]);
    const closed = { ...s, menu: null };
    return id ? run(closed, env, id) : say(closed, `${s.menu} cancelled`);
  }
  if (key.startsWith('click:')) return click(s, env, Number(key.slice(6)));
  const id = lookup(key, contextsOf(s));
  if (!id) return key.length === 1 || NAMED.has(key) ? say(s, `${key}: not bound here (? for help)`) : s;
  return run(s, env, id);
}

/** A left click on terminal row `row` (1-based): focus that line; a click on the focused line opens it (enter). */
function click(s: UiState, env: Env, row: number): UiState {
  const sc = current(s);
  const first = 1 + (sc.kind === 'detail' ? 2 : 1); // title bar, then column titles / screen title (detail: flow line and tabs)
  const i = row - 1 - first;
  if (i < 0 || i >= bodyHeight(s)) return s;
  const top = sc.kind === 'list' ? s.list.top : (sc as Pager).top;
  const cursor = sc.kind === 'list' ? s.list.cursor : (sc as Pager).cursor;
  if (top + i === cursor) return run(s, env, 'nav.select');
  return movePager(s, env, () => top + i);
}

export function run(s: UiState, env: Env, id: CommandId): UiState {
  return COMMANDS[id](s, env);
}

// ---------------------------------------------------------------- outside events

/** Rows changed in the model (background load, live flows): update the view and open screens. */
export function refresh(s: UiState, env: Env, changed: readonly FlowRecord[]): UiState {
  let next: UiState = s;
  if (changed.length) {
    const view = updateView(s.view, changed, env.model, s.spec);
    next = view === s.view ? s : refocus({ ...s, view }, s.list.focusId);
  }
  const sc = current(next);
  if (sc.kind === 'detail' && env.model.get(sc.flowId) !== sc.source) next = replaceTop(next, buildDetailScreen(next, env, sc));
  if (sc.kind === 'ops' && sc.version !== env.model.version) next = replaceTop(next, buildOps(next, env, sc));
  if (sc.kind === 'events' && sc.tail) {
    const n = env.events.entries.length;
    next = replaceTop(next, clampPager({ ...sc, cursor: n - 1 }, n, bodyHeight(next)));
  }
  return next;
}

/** The terminal changed size: re-lay out what depends on the width, keep cursors on screen. */
export function resize(s: UiState, env: Env, size: { cols: number; rows: number }): UiState {
  let next: UiState = { ...s, size };
  next = setListCursor(next, next.list.cursor);
  const stack = next.stack.map((sc): Screen => {
    if (sc.kind === 'detail' && sc.width !== size.cols) return buildDetailScreen(next, env, sc);
    if (sc.kind === 'ops' && sc.width !== size.cols) return buildOps(next, env, sc);
    return sc;
  });
  next = { ...next, stack };
  const top = current(next);
  if (top.kind !== 'list') next = replaceTop(next, clampPager(top, screenLines(top, env, next).length, bodyHeight(next)) as Screen);
  return next;
}
