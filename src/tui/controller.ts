import type { FlowRecord } from '../flow/index.js';
import { handleKey, refresh, resize, run, type CommandId } from './commands.js';
import { initialState, type Env, type UiState } from './state.js';

/** Rows loaded before the first frame; the rest come in the background. */
export const FIRST_BATCH = 500;
/** Rows per background batch. */
export const BATCH = 5_000;

/**
 * Holds the UI state and applies keys, commands and model changes to it. The ink
 * app subscribes and redraws; tests drive it directly.
 */
export class Controller {
  state: UiState;
  private readonly listeners = new Set<() => void>();
  private loadTimer: NodeJS.Immediate | null = null;
  private pending: FlowRecord[] = [];
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly env: Env,
    opts: { size: { cols: number; rows: number }; live?: boolean; follow?: boolean; firstBatch?: number },
  ) {
    env.model.loadBatch(opts.firstBatch ?? FIRST_BATCH);
    this.state = initialState(env, opts);
    env.report = (text, level) => this.set({ ...this.state, message: { text, level } });
    env.present = (screen) => this.set({ ...this.state, stack: [...this.state.stack, screen] });
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Redraw without a state change (in-flight byte counts moved). */
  poke(): void {
    for (const l of this.listeners) l();
  }

  private set(s: UiState): void {
    if (s === this.state) return;
    this.state = s;
    this.poke();
  }

  key(name: string): void {
    this.set(handleKey(this.state, this.env, name));
  }

  command(id: CommandId): void {
    this.set(run(this.state, this.env, id));
  }

  resize(size: { cols: number; rows: number }): void {
    if (size.cols === this.state.size.cols && size.rows === this.state.size.rows) return;
    this.set(resize(this.state, this.env, size));
  }

  /** Rows changed in the model now. */
  changed(rows: readonly FlowRecord[]): void {
    this.set(refresh(this.state, this.env, rows));
  }

  /**
   * Rows arrived (live): they go into the model and the view at most every `ms`
   * (flows can arrive by the hundred per second: one view update and one frame per
   * interval, not per flow).
   */
  arrive(rows: readonly FlowRecord[], ms = 100): void {
    for (const r of rows) this.pending.push(r);
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), ms);
    this.flushTimer.unref?.();
  }

  /** Apply rows that arrived now. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const batch = this.pending;
    this.pending = [];
    if (batch.length) this.changed(this.env.model.upsert(batch));
  }

  /** Load the rest of the recording in the background, a batch per event-loop turn. */
  loadInBackground(batch = BATCH, done?: () => void): void {
    const step = () => {
      this.loadTimer = null;
      if (!this.env.model.loading) {
        done?.();
        return;
      }
      const rows = this.env.model.loadBatch(batch);
      this.changed(rows);
      if (!this.env.model.loading) this.poke();
      this.loadTimer = setImmediate(step);
    };
    this.loadTimer = setImmediate(step);
  }

  /** Load everything now (tests, benchmarks). */
  loadAll(batch = BATCH): void {
    while (this.env.model.loading) this.changed(this.env.model.loadBatch(batch));
  }

  stop(): void {
    if (this.loadTimer) clearImmediate(this.loadTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.loadTimer = null;
    this.flushTimer = null;
  }
}
