import path from 'node:path';
import type { FlowRecord } from '../flow/index.js';
import { COMMANDS, focusedFlow, openDetail, refocusList, say, type Command, type CommandId } from './commands.js';
import { line, seg, type Line } from './lines.js';
import { FlowModel } from './model.js';
import type { SaveEntry } from './save.js';
import { current, initialState, type Env, type Prompt, type SaveScope, type UiState } from './state.js';
import { ORDERS } from './view.js';

/**
 * Commands that change what will be saved (comment, delete, duplicate), save it
 * (`w`), load another recording (`L`), the `:` prompt, options (`O`) and the quit
 * questions. Nothing here writes a file unless the user asked for that file.
 */

const cmd = (id: CommandId): Command => (s, env) => (COMMANDS[id] as Command)(s, env);

const prompt = (s: UiState, p: Omit<Prompt, 'cursor'>): UiState => ({ ...s, menu: null, prompt: { ...p, cursor: p.text.length } });

/** `;`: a comment prompt, prefilled with the flow's comment. */
export const commentPrompt: Command = (s, env) => {
  const f = focusedFlow(s, env);
  if (!f) return say(s, 'no flow to comment', 'error');
  return prompt(s, { kind: 'comment', text: f.comment ?? '', flowId: f.id });
};

export function submitComment(s: UiState, env: Env, p: Prompt): UiState {
  env.model.setComment(p.flowId!, p.text);
  const next = refocusList({ ...s, prompt: null, view: [...s.view] }, env);
  return say(next, p.text.trim() ? `comment on #${p.flowId}${unsavedNote(env)}` : `comment removed from #${p.flowId}${unsavedNote(env)}`);
}

function unsavedNote(env: Env): string {
  const n = env.model.unsaved();
  return env.model.backend.persist || !n ? '' : ` (${n} unsaved change${n === 1 ? '' : 's'}: w saves)`;
}

/** `d`: the focused flow leaves the view (and the file, if it is saved over). */
const deleteFlow: Command = (s, env) => {
  const f = focusedFlow(s, env);
  if (!f) return say(s, 'no flow to delete', 'error');
  env.model.delete(f.id);
  let next: UiState = { ...s, view: s.view.filter((x) => x.id !== f.id) };
  if (current(next).kind === 'detail') next = { ...next, stack: next.stack.slice(0, -1) };
  return say(refocusList(next, env), `deleted #${f.id} from the view${unsavedNote(env)}`);
};

/** `D`: a copy of the focused flow, added at the end. */
const duplicateFlow: Command = (s, env) => {
  const f = focusedFlow(s, env);
  if (!f) return say(s, 'no flow to duplicate', 'error');
  const copy = env.model.duplicate(f.id)!;
  const next = refocusList({ ...s, view: [...s.view, copy] }, env);
  return say(next, `duplicated #${f.id}${unsavedNote(env)}`);
};

// ---------------------------------------------------------------- saving

function flowsFor(s: UiState, env: Env, scope: SaveScope): FlowRecord[] {
  if (scope === 'shown') return s.view;
  return env.model.rows.filter((f) => scope === 'all' || f.marked);
}

function savePrompt(scope: SaveScope): Command {
  return (s, env) => {
    const n = flowsFor(s, env, scope).length;
    if (!n) return say({ ...s, menu: null }, `no ${scope === 'all' ? '' : `${scope} `}flows to save`, 'error');
    const base = env.file ? path.basename(env.file).replace(/\.db$/, '') : 'regtape';
    const text = `${base}-${scope}.db`;
    return { ...prompt(s, { kind: 'save', text, scope }), message: null };
  };
}

export function entriesFor(flows: readonly FlowRecord[], model: FlowModel): SaveEntry[] {
  return [...flows]
    .sort((a, b) => a.id - b.id)
    .map((f) => ({ sourceId: model.sourceOf(f.id), marked: !!f.marked, comment: f.comment ?? null, copy: model.copies.has(f.id) }));
}

export function submitSave(s: UiState, env: Env, p: Prompt): UiState {
  if (!env.saveFlows) return { ...s, prompt: { ...p, error: { message: 'saving needs a recording file' } } };
  const file = path.resolve(env.cwd, p.text.trim());
  const flows = flowsFor(s, env, p.scope ?? 'shown');
  let job: Promise<string>;
  try {
    job = env.saveFlows(entriesFor(flows, env.model), file);
  } catch (e) {
    return { ...s, prompt: { ...p, error: { message: (e as Error).message } } };
  }
  job.then(
    (what) => {
      env.model.saved();
      env.events.add('info', `saved ${what} to ${file}`);
      env.report?.(`saved ${what} to ${file}`, 'info');
    },
    (e: Error) => {
      env.events.add('error', `saving to ${file} failed: ${e.message}`);
      env.report?.(`save failed: ${e.message}`, 'error');
    },
  );
  return say({ ...s, prompt: null }, `saving ${flows.length} flows to ${file}…`);
}

// ---------------------------------------------------------------- body, load

const bodyPrompt: Command = (s, env) => {
  const f = focusedFlow(s, env);
  const full = f && env.model.full(f.id);
  const ref = full?.responseBody ?? null;
  if (!f || !ref?.sha256) return say(s, f ? `#${f.id} has no stored response body` : 'no flow', 'error');
  const digest = full?.registry?.digest;
  const name = digest ? `${digest.replace(':', '-').slice(0, 19)}.bin` : `flow-${f.id}.body`;
  return prompt(s, { kind: 'body', text: name, flowId: f.id });
};

export function submitBody(s: UiState, env: Env, p: Prompt): UiState {
  const ref = env.model.full(p.flowId!)?.responseBody;
  if (!env.saveBody || !ref?.sha256) return { ...s, prompt: { ...p, error: { message: 'no stored body to save' } } };
  const file = path.resolve(env.cwd, p.text.trim());
  let job: Promise<string>;
  try {
    job = env.saveBody(ref.sha256, file);
  } catch (e) {
    return { ...s, prompt: { ...p, error: { message: (e as Error).message } } };
  }
  job.then(
    (what) => env.report?.(`wrote ${what} to ${file}`, 'info'),
    (e: Error) => env.report?.(`saving the body failed: ${e.message}`, 'error'),
  );
  return say({ ...s, prompt: null }, `writing the body of #${p.flowId} to ${file}…`);
}

const loadPrompt: Command = (s, env) => (env.load ? prompt(s, { kind: 'load', text: '' }) : say(s, 'loading needs the regtape ui command', 'error'));

export function submitLoad(s: UiState, env: Env, p: Prompt): UiState {
  const file = p.text.trim();
  const n = env.model.unsaved();
  if (n && !env.model.backend.persist) return { ...s, prompt: null, confirm: { question: `${n} unsaved change${n === 1 ? '' : 's'} will be lost: load ${file}? (y/n, w saves first)`, then: 'load', arg: file } };
  return loadNow({ ...s, prompt: null }, env, file);
}

function loadNow(s: UiState, env: Env, file: string): UiState {
  let backend;
  try {
    backend = env.load!(path.resolve(env.cwd, file));
  } catch (e) {
    return { ...s, prompt: { kind: 'load', text: file, cursor: file.length, error: { message: (e as Error).message } } };
  }
  env.model.backend.close?.();
  env.model = new FlowModel(backend);
  env.file = backend.label;
  while (env.model.loading) env.model.loadBatch(5000);
  const fresh = initialState(env, { size: s.size });
  env.events.add('info', `loaded ${env.model.rows.length} flows from ${backend.label}`);
  return say(fresh, `loaded ${env.model.rows.length} flows from ${backend.label}`);
}

// ---------------------------------------------------------------- quitting

/** Ask before quitting: always at the top (as mitmproxy), more loudly with unsaved changes. */
export function askQuit(s: UiState, env: Env): UiState {
  const n = env.model.backend.persist ? 0 : env.model.unsaved();
  const question = s.live ? 'stop recording and quit? (y/n)' : n ? `${n} unsaved change${n === 1 ? '' : 's'} (marks, comments, deletions): quit without saving? (y/n, w saves first)` : 'quit regtape? (y/n)';
  return { ...s, confirm: { question, then: 'quit' }, message: { text: question, level: n ? 'error' : 'info' } };
}

export function answer(s: UiState, env: Env, key: string): UiState {
  const c = s.confirm!;
  const closed = { ...s, confirm: null, message: null };
  if (key === 'y' || key === 'Y' || (key === 'q' && c.then === 'quit')) return c.then === 'quit' ? { ...closed, quit: true } : loadNow(closed, env, c.arg!);
  if (key === 'w') return { ...closed, menu: 'save', message: { text: 'save: a all  m marked  s shown  (esc: cancel)', level: 'info' } };
  return say(closed, s.live && c.then === 'quit' ? 'still recording' : 'cancelled');
}

// ---------------------------------------------------------------- the : prompt

/** Command ids the `:` prompt completes over: every id the key map binds, and the rest of the table. */
export function commandIds(): string[] {
  return Object.keys(COMMANDS).sort();
}

export function completeCommand(p: Prompt): Prompt {
  const all = commandIds();
  const matches = all.filter((id) => id.startsWith(p.text.trim()));
  if (!matches.length) return { ...p, hint: `no command starts with ${p.text}` };
  let prefix = matches[0]!;
  for (const m of matches) while (!m.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const text = prefix.length > p.text.length ? prefix : p.text;
  return { ...p, text, cursor: text.length, hint: matches.length === 1 ? `enter runs ${matches[0]}` : matches.join('  ') };
}

export function submitCommand(s: UiState, env: Env, p: Prompt): UiState {
  const id = p.text.trim();
  if (!(id in COMMANDS)) return { ...s, prompt: completeCommand({ ...p, error: undefined }) };
  return cmd(id as CommandId)({ ...s, prompt: null }, env);
}

// ---------------------------------------------------------------- options

interface OptionRow {
  name: string;
  value: (s: UiState) => string;
  change: Command;
  help: string;
}

export const OPTIONS: readonly OptionRow[] = [
  { name: 'view.order', value: (s) => s.spec.order, change: cmd('list.order'), help: `list order: ${ORDERS.join(', ')}` },
  { name: 'view.order.reversed', value: (s) => String(s.spec.reverse), change: cmd('list.reverse'), help: 'newest first' },
  { name: 'view.filter', value: (s) => s.filterText || '(none)', change: cmd('filter.prompt'), help: 'the view filter (f)' },
  { name: 'view.marked_only', value: (s) => String(s.spec.markedOnly), change: cmd('list.markedOnly'), help: 'show only marked flows (M)' },
  { name: 'console.focus_follow', value: (s) => String(s.follow), change: cmd('view.follow'), help: 'focus the newest flow as flows arrive (F)' },
];

export function optionLines(s: UiState, env: Env): Line[] {
  const out = OPTIONS.map((o) => line(seg(o.name.padEnd(24), { color: 'cyan' }), seg(o.value(s).padEnd(16), { bold: true }), seg(o.help, { dim: true })));
  out.push(line(''));
  out.push(line(seg('recording'.padEnd(24), { dim: true }), env.file ?? env.model.backend.label));
  out.push(line(seg('saving over it'.padEnd(24), { dim: true }), env.writable ? 'allowed (--write)' : 'not allowed: w writes a new recording (start with --write to save over this file)'));
  out.push(line(seg('unsaved changes'.padEnd(24), { dim: true }), String(env.model.backend.persist ? 0 : env.model.unsaved())));
  return out;
}

const changeOption: Command = (s, env) => {
  const sc = current(s);
  if (sc.kind !== 'options') return s;
  const o = OPTIONS[sc.cursor];
  return o ? o.change(s, env) : say(s, 'nothing to change on this line');
};

export const EDIT_COMMANDS = {
  'flow.comment': commentPrompt,
  'flow.delete': deleteFlow,
  'flow.duplicate': duplicateFlow,
  'flow.saveBody': bodyPrompt,
  'flow.open': (s, env) => {
    const f = focusedFlow(s, env);
    return f ? openDetail(s, env, f.id) : say(s, 'no flow');
  },
  'save.menu': (s) => say({ ...s, menu: 'save' }, 'save: a all  m marked  s shown  (esc: cancel)'),
  'save.all': savePrompt('all'),
  'save.marked': savePrompt('marked'),
  'save.shown': savePrompt('shown'),
  'app.load': loadPrompt,
  'options.change': changeOption,
} satisfies Record<string, Command>;
