import { EventLog } from './events.js';
import { writeExport } from './export.js';
import { FlowModel } from './model.js';
import type { Backend } from './rows.js';
import type { Env } from './state.js';

/** An Env over a backend; exports go to `cwd` by default. */
export function createEnv(backend: Backend, opts: { events?: EventLog; cwd?: string; liveInfo?: Env['liveInfo'] } = {}): Env {
  const model = new FlowModel(backend);
  return {
    model,
    events: opts.events ?? new EventLog(),
    now: Date.now,
    cwd: opts.cwd ?? process.cwd(),
    exportTo: (format, file, flows) => writeExport(model, format, file, flows),
    liveInfo: opts.liveInfo,
  };
}
