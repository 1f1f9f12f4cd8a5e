export { importHar, splitUrl } from './har.js';
export type { ImportOptions, ImportSummary } from './har.js';
export { readHarEntries, openHarStream, openSpill, MAX_ENTRY_JSON } from './har-reader.js';
export type { HarEntryRead, HarHeader, HarReadOptions, SpilledString } from './har-reader.js';
export { mergeRecordings } from './merge.js';
export type { MergeOptions, MergeSummary } from './merge.js';
export { installRecording, removeRecordingFiles } from './install.js';
