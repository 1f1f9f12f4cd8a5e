export { Recorder, flowLine, formatBytes } from './recorder.js';
export type { RecorderAddon, RecorderOptions, RecorderStats } from './recorder.js';
