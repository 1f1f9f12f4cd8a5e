export { Recorder, flowLine, formatBytes } from './recorder.js';
export type { RecorderOptions, RecorderStats } from './recorder.js';
