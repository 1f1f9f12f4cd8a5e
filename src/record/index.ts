export { Recorder, flowLine } from './recorder.js';
export type { ActiveExchange, RecorderAddon, RecorderOptions, RecorderStats } from './recorder.js';
