import type { Command } from 'commander';
import { captureConsole, type Logger } from '../log/index.js';
import { Recording } from '../store/index.js';
import { EventLog } from '../tui/events.js';
import type { RecordSession } from './record.js';

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
Keys (? in the UI shows them all, generated from the key map):
  j/k, arrows, g/G, space/ctrl-f/ctrl-b   move          enter   open flow / follow a link
  f   filter (regtape flows --help)      /  n  N   search      q / esc  back, quit
  tab next tab in a flow                  m   mark (list) / body view (detail)
  M   marked only    o  order    v  reverse    F  follow    z / Z  clear / unclear
  O   operations (pulls, pushes)          E   event log           x  export (curl, raw, HAR)

Marks are saved in the recording (it is reopened for writing on the first mark; --read-only keeps them in memory).

Example:
  regtape ui pull.db`;

/** Registers `regtape ui FILE.db` (the inspector TUI). */
export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('browse a recording in the inspector: filter, search, open flows, manifests, tokens, operations')
    .argument('<file.db>', 'recording')
    .option('--read-only', 'never write to the recording (marks stay in memory)')
    .addHelpText('after', KEYS_HELP)
    .action(async (file: string, opts: { readOnly?: boolean }) => runFileUi(file, opts));
}

/** `regtape ui FILE.db`. */
export async function runFileUi(file: string, opts: { readOnly?: boolean } = {}): Promise<void> {
  const tui = await loadTui();
  const rec = Recording.open(file, { readonly: true });
  const events = new tui.EventLog();
  const restoreConsole = captureConsole(events.logger());
  const backend = new tui.RecordingBackend(rec, opts.readOnly ? undefined : () => Recording.open(file));
  try {
    await tui.runUi({ env: tui.createEnv(backend, { events }) });
  } finally {
    restoreConsole();
    backend.close();
    rec.close();
  }
}

/** `regtape record --ui`: run the inspector live on a recording session until the user quits; resolves when it should stop. */
export async function runLiveUi(session: RecordSession): Promise<void> {
  const tui = await loadTui();
  const events = liveEvents;
  // http-mitm-proxy writes to the console by itself: into the event log (E), never over the screen.
  const restoreConsole = captureConsole(events.logger());
  const backend = new tui.RecordingBackend(session.recording);
  const source = {
    url: session.proxy.url,
    setOnFlow: (fn: Parameters<RecordSession['recorder']['setOnFlow']>[0]) => session.recorder.setOnFlow(fn),
    activeExchanges: () => session.recorder.activeExchanges(),
  };
  const env = tui.createEnv(backend, { events });
  env.liveInfo = tui.liveInfo(source, env.model);
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
