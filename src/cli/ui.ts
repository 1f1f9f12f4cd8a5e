import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { tempBeside } from '../export/index.js';
import { installRecording, removeRecordingFiles } from '../import/index.js';
import { captureConsole, type Logger } from '../log/index.js';
import { Recording } from '../store/index.js';
import { EventLog } from '../tui/events.js';
import { writeFlows } from '../tui/save.js';
import type { Env } from '../tui/state.js';
import { refetchLines } from './ui-refetch.js';
import type { Recorder } from '../record/index.js';

/** The live UI's event log (E): `record --ui` gives its logger to the recorder and proxy. */
const liveEvents = new EventLog();

/** A logger into the live UI's event log (nothing reaches the terminal while the UI draws). */
export function uiLogger(): Logger {
  return liveEvents.logger();
}

/**
 * ink decides once, when it is first imported, whether it runs in CI (then it writes
 * only the last frame). An inspector on a terminal must draw every frame, so CI
 * variables are hidden while the TUI module loads. It is imported lazily: other
 * commands never load ink or react.
 */
async function loadTui(): Promise<typeof import('../tui/index.js')> {
  const saved: Record<string, string | undefined> = {};
  for (const k of ['CI', 'CONTINUOUS_INTEGRATION']) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  try {
    return await import('../tui/index.js');
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  }
}

const KEYS_HELP = `
Keys (mitmproxy's; ? in the UI shows them all, generated from the key map):
  j/k, arrows, g/G, space/ctrl-f/ctrl-b, wheel   move      enter/P  open flow / follow a link
  f   filter (regtape flows --help)      /  n  N   search      q back (quit asks)  esc back
  tab next tab in a flow; space/p next/previous flow      m   mark (list) / body view (flow)
  ;   comment    d delete    D duplicate    b save body    e/x export (curl, raw, HAR)
  w   save flows (all / marked / shown) to a recording      L   load another recording
  :   command prompt (tab completes)   O options   E event log   T operations (tab: waterfall)
  M   marked only    U unmark all    o order    v reverse    F follow    z / Z  clear / unclear
  r   on a manifest or tag: ask the live registry again and show what changed (never written)

Read-only: the recording is never written. Marks, comments, deletions and duplicates
stay in memory until w saves them to a new recording; saving over the file shown needs
--write. Quitting with unsaved changes asks first. The file's bytes never change; a
cleanly closed recording up to 16 MB is read into memory (no -wal/-shm appear), a
larger one is opened in place and SQLite's empty -wal and -shm are removed on exit.

Examples:
  regtape ui pull.db
  regtape ui --follow live.db        # beside: regtape record --out live.db
  regtape ui --write fixture.db      # w can then save marks over fixture.db`;

/** Registers `regtape ui FILE.db` (the inspector TUI). */
export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('browse a recording in the inspector (read-only): filter, search, mark, comment, open flows, manifests, tokens, operations, waterfall')
    .argument('<file.db>', 'recording')
    .option('--follow', 'show flows as another `regtape record` process writes them (polls the recording every 200 ms)')
    .option('--write', 'allow w to save over the recording shown (otherwise w writes new recordings only)')
    .option('--read-only', 'accepted for compatibility: the inspector is read-only by default')
    .option('--upstream-ca <file>', 'r (re-ask the live registry): trust this CA for upstream TLS (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--insecure-upstream', 'r: do not verify upstream TLS certificates')
    .option('--map <rule>', 'r: HOST[:PORT]=ADDR:PORT as record --map (default: the map the recording was made with)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addHelpText('after', KEYS_HELP)
    .action(async (file: string, opts: UiOptions) => runFileUi(file, opts));
}

export interface UiOptions {
  follow?: boolean;
  write?: boolean;
  readOnly?: boolean;
  upstreamCa?: string[];
  insecureUpstream?: boolean;
  map?: string[];
}

/** Open a recording for the inspector: untouched unless following a live one. */
function openForUi(file: string, follow: boolean): Recording {
  return Recording.open(file, { readonly: true, untouched: !follow });
}

/** `w`: flows with their UI marks and comments into a recording (new, or the one shown with --write). */
function saver(env: Env, opts: UiOptions): Env['saveFlows'] {
  return (entries, file) => {
    const src = env.model.backend.recording;
    if (!src) throw new Error('nothing to save from');
    const out = path.resolve(file);
    const same = out === path.resolve(src.path);
    if (same && !opts.write) throw new Error(`${file} is the recording shown; start regtape ui with --write to save over it, or choose another name`);
    if (same && fs.existsSync(`${out}-wal`)) throw new Error(`${file} is being written (a -wal file is beside it); save to another name`);
    if (!same && fs.existsSync(out)) throw new Error(`${file} exists; choose another name`);
    const tmp = tempBeside(out, 'saving', '.db');
    return Promise.resolve().then(() => {
      try {
        const n = writeFlows(src, tmp, entries);
        installRecording(tmp, out, { force: same });
        return `${n} flow${n === 1 ? '' : 's'}`;
      } catch (e) {
        removeRecordingFiles(tmp);
        throw e;
      }
    });
  };
}

type Tui = typeof import('../tui/index.js');

/** The inspector's environment for a recording file: read-only, saving and loading through the commands. */
export function fileEnv(tui: Tui, file: string, opts: UiOptions = {}, extra: { events?: EventLog; cwd?: string } = {}): Env {
  const rec = openForUi(file, !!opts.follow);
  const env = tui.createEnv(new tui.RecordingBackend(rec), extra);
  env.file = rec.path;
  env.writable = !!opts.write;
  env.saveFlows = saver(env, opts);
  env.load = (f) => new tui.RecordingBackend(openForUi(f, false));
  env.saveBody = (sha, f) => tui.saveBodyTo(env.model, sha, f);
  env.refetch = (flow) => refetchLines(flow, env, { upstreamCa: opts.upstreamCa ?? [], insecureUpstream: !!opts.insecureUpstream, map: opts.map ?? [] });
  return env;
}

/** `regtape ui FILE.db`. */
export async function runFileUi(file: string, opts: UiOptions = {}): Promise<void> {
  const tui = await loadTui();
  const events = new tui.EventLog();
  const env = fileEnv(tui, file, opts, { events });
  const rec = env.model.backend.recording!;
  const restoreConsole = captureConsole(events.logger());
  if (opts.follow) events.add('info', `following ${rec.path}: new flows appear as the recorder commits them`);
  let stop: (() => void) | null = null;
  try {
    await tui.runUi({ env, follow: !!opts.follow, onStart: (c) => (stop = opts.follow ? tui.attachFollow(c) : null) });
  } finally {
    (stop as (() => void) | null)?.();
    restoreConsole();
    env.model.backend.close?.();
  }
}

/** `regtape record --ui`: run the inspector live on a recording session until the user quits; resolves when it should stop. */
/** What the live UI needs of a running recording (record.ts's RecordSession has it; no import back). */
export interface LiveSession {
  proxy: { url: string };
  recording: Recording;
  recorder: Pick<Recorder, 'setOnFlow' | 'activeExchanges'>;
  stop(): Promise<string>;
}

export async function runLiveUi(session: LiveSession): Promise<void> {
  const tui = await loadTui();
  const events = liveEvents;
  // http-mitm-proxy writes to the console by itself: into the event log (E), never over the screen.
  const restoreConsole = captureConsole(events.logger());
  const backend = new tui.RecordingBackend(session.recording);
  const source = {
    url: session.proxy.url,
    setOnFlow: (fn: Parameters<Recorder['setOnFlow']>[0]) => session.recorder.setOnFlow(fn),
    activeExchanges: () => session.recorder.activeExchanges(),
  };
  const env = tui.createEnv(backend, { events });
  env.liveInfo = tui.liveInfo(source, env.model);
  // Marks and comments go straight into the recording being written; w copies flows to another one.
  env.file = session.recording.path;
  env.saveFlows = saver(env, {});
  env.saveBody = (sha, f) => tui.saveBodyTo(env.model, sha, f);
  events.add('info', `recording to ${session.recording.path}; proxy ${session.proxy.url} (clients: HTTPS_PROXY=${session.proxy.url})`);
  let detach: (() => void) | null = null;
  try {
    await tui.runUi({ env, live: true, onStart: (c) => (detach = tui.attachLive(c, source)) });
  } catch (e) {
    // No terminal (or the UI failed): stop recording here, the caller only stops after a normal quit.
    await session.stop();
    throw e;
  } finally {
    (detach as (() => void) | null)?.();
    restoreConsole();
  }
}
