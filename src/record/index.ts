export { Recorder } from './recorder.js';
export type { ActiveExchange, RecorderOptions, RecorderStats } from './recorder.js';
