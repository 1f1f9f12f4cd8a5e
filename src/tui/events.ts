import { formatWithOptions } from 'node:util';
import type { Logger } from '../log/index.js';

export type EventLevel = 'debug' | 'info' | 'warn' | 'error';

export interface UiEvent {
  time: number;
  level: EventLevel;
  text: string;
}

/**
 * mitmproxy's event log: what the proxy, the recorder and the UI have to say, kept
 * in memory (the last `max` entries) instead of being written over the screen.
 */
export class EventLog {
  readonly entries: UiEvent[] = [];
  /** Bumped on every change (the UI redraws the log when it is shown). */
  version = 0;
  private listeners = new Set<() => void>();

  constructor(
    private readonly max = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  add(level: EventLevel, text: string): void {
    for (const t of text.split('\n')) this.entries.push({ time: this.now(), level, text: t });
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
    this.version++;
    for (const l of this.listeners) l();
  }

  clear(): void {
    this.entries.length = 0;
    this.version++;
  }

  /** Count of warnings and errors (shown in the title bar). */
  problems(): number {
    let n = 0;
    for (const e of this.entries) if (e.level === 'warn' || e.level === 'error') n++;
    return n;
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** A Logger that writes here (for the recorder and proxy while the UI owns the terminal). */
  logger(): Logger {
    const emit = (level: EventLevel) => (msg: string, ...args: unknown[]) =>
      this.add(level, args.length ? formatWithOptions({ colors: false }, msg, ...args) : msg);
    return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
  }
}
