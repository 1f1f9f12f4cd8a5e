import { render } from 'ink';
import { App, sizeOf } from './app.js';
import { Controller } from './controller.js';
import type { Env } from './state.js';
import { RegtapeError } from '../errors/index.js';

/** Alternate screen, then xterm mouse reports (press/release + wheel) in SGR form. */
const ALT_ON = '\x1b[?1049h\x1b[H\x1b[?1000h\x1b[?1006h';
/** Mouse reports off, leave the alternate screen and show the cursor again. */
const ALT_OFF = '\x1b[?1006l\x1b[?1000l\x1b[?25h\x1b[?1049l';

export interface RunOptions {
  env: Env;
  live?: boolean;
  /** Following a file another process writes (focus the newest flow). */
  follow?: boolean;
  /** Called with the controller before the first frame (live feeds attach here). */
  onStart?(c: Controller): void;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
}

/**
 * Run the inspector on the terminal until the user quits: alternate screen (restored
 * on exit, on SIGINT/SIGTERM/SIGHUP and on a crash), frames one line shorter than
 * the terminal (ink 6 clears the whole screen before every frame that fills it),
 * at most 30 frames per second.
 */
export async function runUi(o: RunOptions): Promise<void> {
  const stdout = o.stdout ?? process.stdout;
  const stdin = o.stdin ?? process.stdin;
  if (!stdin.isTTY || !stdout.isTTY) throw new RegtapeError('no-terminal', 'the inspector needs a terminal (stdin and stdout must be a TTY); without one use `regtape record` without --ui, or `regtape flows` / `regtape show` to read a recording');
  const c = new Controller(o.env, { size: sizeOf(stdout, { cols: 80, rows: 24 }), live: o.live, follow: o.follow || o.live });
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.write(ALT_OFF);
  };
  stdout.write(ALT_ON);
  // Nothing else may write to the terminal while ink draws: stray stderr output
  // (Node warnings, a library's log line) goes to the event log (E) instead.
  const stderrWrite = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array, enc?: unknown, cb?: unknown) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.trim()) o.env.events.add('warn', text.trimEnd());
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  }) as typeof process.stderr.write;
  const onSignal = () => c.command('app.quit');
  const onCrash = (e: unknown) => {
    restore();
    process.stderr.write = stderrWrite;
    process.stderr.write(`regtape ui crashed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  };
  process.on('exit', restore);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  try {
    o.onStart?.(c);
    const ink = render(<App controller={c} />, { stdout, stdin, exitOnCtrlC: false, patchConsole: false, maxFps: 30 });
    c.loadInBackground();
    await ink.waitUntilExit();
    ink.cleanup();
  } finally {
    c.stop();
    process.stderr.write = stderrWrite;
    restore();
    process.off('exit', restore);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  }
}
