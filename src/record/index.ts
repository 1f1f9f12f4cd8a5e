export { Recorder, flowLine, formatBytes } from './recorder.js';
export type { ActiveExchange, RecorderAddon, RecorderOptions, RecorderStats } from './recorder.js';
