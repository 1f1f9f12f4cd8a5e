import { formatWithOptions } from 'node:util';
import { safeText } from '../term/index.js';

/** Minimal leveled logger; the CLI writes to stderr, a TUI can route it elsewhere. */
export interface Logger {
  debug(msg: string, ...args: unknown[]): void;
  info(msg: string, ...args: unknown[]): void;
  warn(msg: string, ...args: unknown[]): void;
  error(msg: string, ...args: unknown[]): void;
}

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/** A logger writing `regtape: <level>: message` lines to a stream (stderr by default). */
export function createLogger(level: Level = 'info', out: NodeJS.WritableStream = process.stderr): Logger {
  const emit = (l: Level, msg: string, args: unknown[]) => {
    if (ORDER[l] < ORDER[level]) return;
    const text = args.length ? formatWithOptions({ colors: false }, msg, ...args) : msg;
    const prefix = l === 'info' ? '' : `${l}: `;
    // Log lines carry untrusted text (upstream errors, names, paths): never a raw control byte.
    out.write(`${prefix}${safeText(text, { multiline: true })}\n`);
  };
  return {
    debug: (m, ...a) => emit('debug', m, a),
    info: (m, ...a) => emit('info', m, a),
    warn: (m, ...a) => emit('warn', m, a),
    error: (m, ...a) => emit('error', m, a),
  };
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * http-mitm-proxy writes to the global console by itself (console.debug on every new
 * host, console.error on every error). Route those calls into our logger at debug
 * level so they never corrupt a terminal UI or stderr output. Returns an undo function.
 */
export function captureConsole(log: Logger): () => void {
  const saved = { debug: console.debug, info: console.info, error: console.error, log: console.log, warn: console.warn };
  const to = (...a: unknown[]) => log.debug(formatWithOptions({ colors: false }, ...(a as [unknown])));
  console.debug = to;
  console.info = to;
  console.error = to;
  console.log = to;
  console.warn = to;
  return () => Object.assign(console, saved);
}
