export { diffRecordings } from './diff.js';
export type { DiffResult, OperationDiff, BlobInfo, ManifestChange, LayerThroughput } from './diff.js';
export { renderDiff, renderOperationDiff } from './render.js';
