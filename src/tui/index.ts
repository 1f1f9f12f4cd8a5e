/**
 * The inspector TUI (`regtape ui FILE.db`, `regtape record --ui`): ink over a model
 * of light flow rows. Behaviour is in pure modules (state, commands, keymap, render,
 * body views); `app.tsx` and `run.tsx` are the only ink code.
 */
export { runUi } from './run.js';
export type { RunOptions } from './run.js';
export { App } from './app.js';
export { Controller } from './controller.js';
export { createEnv } from './env.js';
export { EventLog } from './events.js';
export { attachLive, liveInfo } from './live.js';
export { attachFollow, FOLLOW_MS } from './follow.js';
export { saveBodyTo } from './export.js';
export { writeFlows } from './save.js';
export type { SaveEntry } from './save.js';
export type { LiveSource } from './live.js';
export { FlowModel } from './model.js';
export { LightFlow, MemoryBackend, RecordingBackend } from './rows.js';
export type { Backend } from './rows.js';
export { KEYMAP, keyName, lookup } from './keymap.js';
export type { Binding, Context } from './keymap.js';
export { COMMANDS, handleKey } from './commands.js';
export type { CommandId } from './commands.js';
export { renderFrame } from './render.js';
export type { Env, UiState } from './state.js';
