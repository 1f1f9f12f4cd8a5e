import type { FlowRecord } from '../flow/index.js';
import type { BodyMode } from './body-views/index.js';
import type { EventLog } from './events.js';
import type { Line } from './lines.js';
import type { FlowModel } from './model.js';
import type { Backend } from './rows.js';
import type { SaveEntry } from './save.js';
import { computeView, type ViewSpec } from './view.js';

/** Detail tabs, in `tab` order (mitmproxy: Request, Response, Details). */
export const TABS = ['request', 'response', 'details'] as const;
export type Tab = (typeof TABS)[number];

/** A scrollable list of lines with a focused line. */
export interface Pager {
  cursor: number;
  top: number;
}

export interface ListScreen {
  kind: 'list';
}

export interface DetailScreen extends Pager {
  kind: 'detail';
  flowId: number;
  tab: Tab;
  /** Chosen body view per side (undefined: automatic). */
  modes: { request?: BodyMode; response?: BodyMode };
  /** The lines of the current tab (rebuilt on tab, mode, width or flow changes). */
  lines: Line[];
  /** Body views that apply to the current tab's body, best first. */
  available: BodyMode[];
  /** The view in use for the current tab's body. */
  mode?: BodyMode;
  /** The row object the lines were built from (live: rebuilt when the flow is committed). */
  source: FlowRecord | undefined;
  width: number;
}

export interface OpsScreen extends Pager {
  kind: 'ops';
  /** The tree of each operation, or the waterfall of its transfers (tab). */
  mode: 'tree' | 'waterfall';
  lines: Line[];
  /** Model version the lines were built from. */
  version: number;
  width: number;
}

export interface HelpScreen extends Pager {
  kind: 'help';
  lines: Line[];
}

export interface EventsScreen extends Pager {
  kind: 'events';
  /** Keep the newest event in view. */
  tail: boolean;
}

export interface OptionsScreen extends Pager {
  kind: 'options';
}

/** What `r` brought back from the live registry (never written unless saved). */
export interface LiveScreen extends Pager {
  kind: 'live';
  flowId: number;
  lines: Line[];
}

export type Screen = ListScreen | DetailScreen | OpsScreen | HelpScreen | EventsScreen | OptionsScreen | LiveScreen;

export type SaveScope = 'all' | 'marked' | 'shown';

export type ExportFormat = 'curl' | 'raw' | 'har';

/** A one-line text prompt at the bottom. */
export interface Prompt {
  kind: 'filter' | 'search' | 'export' | 'comment' | 'command' | 'body' | 'save' | 'load';
  text: string;
  /** Cursor position in `text`. */
  cursor: number;
  /** Shown under the prompt; the prompt stays open. */
  error?: { message: string; position?: number };
  format?: ExportFormat;
  /** The flow a comment or body prompt is about. */
  flowId?: number;
  scope?: SaveScope;
  /** Shown dim under the prompt (the command prompt's completions). */
  hint?: string;
}

/** A yes/no question at the bottom; `then` runs on yes. */
export interface Confirm {
  question: string;
  then: 'quit' | 'load';
  arg?: string;
}

export interface UiState {
  /** Screens, the current one last; the flow list is always first. */
  stack: Screen[];
  /** The flows the list shows (filtered, ordered). */
  view: FlowRecord[];
  spec: ViewSpec;
  /** The filter in effect, as typed (the last good one). */
  filterText: string;
  /** Focused row (index into `view`) and first row on screen. */
  list: Pager & { focusId: number | null };
  follow: boolean;
  prompt: Prompt | null;
  /** A one-key menu (export format, which flows to save). */
  menu: 'export' | 'save' | null;
  /** A question waiting for y/n (quit, load over unsaved changes). */
  confirm: Confirm | null;
  search: { source: string; re: RegExp } | null;
  /** Status line message (cleared by the next key). */
  message: { text: string; level: 'info' | 'error' } | null;
  size: { cols: number; rows: number };
  /** Live session (flows arrive while the UI runs). */
  live: boolean;
  /** Set when the UI should end. */
  quit: boolean;
}

/** What commands may touch besides the state. */
export interface Env {
  model: FlowModel;
  events: EventLog;
  /** Epoch ms. */
  now(): number;
  /** Where export files go by default. */
  cwd: string;
  /**
   * Start writing an export file (curl or raw of the first flow, HAR of all). Throws
   * at once when it cannot start (the file exists); resolves with what was written.
   */
  exportTo(format: ExportFormat, file: string, flows: readonly FlowRecord[]): Promise<string>;
  /** Where work that finishes later (exports) reports; the controller sets it. */
  report?: (text: string, level: 'info' | 'error') => void;
  /** Live session facts for the title bar. */
  liveInfo?: () => { url: string; inFlight: number; rate: number };
  /** The recording file shown (saving over it needs `writable`). */
  file?: string;
  /** `--write`: saving over the file shown is allowed. */
  writable?: boolean;
  /**
   * Write flows with their marks and comments to a new recording (`w`). Throws at
   * once when it cannot start (the file exists, it is the file shown without
   * --write); resolves with what was written.
   */
  saveFlows?(entries: readonly SaveEntry[], file: string): Promise<string>;
  /** Open another recording (`L`): its backend. Throws with a sentence when it cannot. */
  load?(file: string): Backend;
  /** Save a body to a file (`b`); resolves with what was written. */
  saveBody?(sha256: string, file: string): Promise<string>;
  /** Re-ask the live registry about a manifest flow (`r`): lines comparing it with the recording. */
  refetch?(flow: FlowRecord): Promise<Line[]>;
  /** Open a screen when work that finishes later has something to show (the controller sets it). */
  present?: (screen: Screen) => void;
}

export function initialState(env: Env, opts: { size: { cols: number; rows: number }; live?: boolean; follow?: boolean } = { size: { cols: 120, rows: 40 } }): UiState {
  const spec: ViewSpec = { filter: null, markedOnly: false, hidden: new Set(), order: 'time', reverse: false };
  const view = computeView(env.model, spec);
  return {
    stack: [{ kind: 'list' }],
    view,
    spec,
    filterText: '',
    list: { cursor: 0, top: 0, focusId: view[0]?.id ?? null },
    follow: opts.follow ?? !!opts.live,
    prompt: null,
    menu: null,
    confirm: null,
    search: null,
    message: null,
    size: opts.size,
    live: !!opts.live,
    quit: false,
  };
}

export const current = (s: UiState): Screen => s.stack[s.stack.length - 1]!;

/** Lines under the prompt for its error (caret and message). */
export function promptLines(s: UiState): number {
  if (s.prompt) return s.prompt.error ? 3 : s.prompt.hint ? 2 : 1;
  return 1;
}

/**
 * Layout: the frame is `rows - 1` lines (ink redraws a frame that fills the
 * terminal by clearing it, which flickers): title, body, status/prompt, key hints.
 */
export function bodyHeight(s: UiState): number {
  const frame = Math.max(4, s.size.rows - 1);
  const chrome = 1 /* title */ + promptLines(s) + 1; /* hints */
  const screen = current(s);
  const sub = screen.kind === 'detail' ? 2 /* flow line, tabs */ : 1; /* column titles or screen title */
  return Math.max(1, frame - chrome - sub);
}

/** Rows of the flow list (also while another screen is on top of it). */
export function listHeight(s: UiState): number {
  return bodyHeight(current(s).kind === 'list' ? s : { ...s, stack: [s.stack[0]!] });
}

/** Keep `cursor` within [0, n) and on screen. */
export function clampPager<P extends Pager>(p: P, n: number, height: number): P {
  const cursor = Math.max(0, Math.min(p.cursor, n - 1));
  let top = Math.min(p.top, cursor);
  if (cursor >= top + height) top = cursor - height + 1;
  top = Math.max(0, Math.min(top, Math.max(0, n - height)));
  return { ...p, cursor: Math.max(0, cursor), top };
}
