export { BodyStore, BodyTap, INLINE_LIMIT, EMPTY_SHA256 } from './body-store.js';
export type { BodyTapOptions, CapturedBody } from './body-store.js';
export { Recording, blobDirFor, inspectFile } from './recording.js';
export type { FlowSummaryRow, OpenOptions, SessionRow, StoredBody } from './recording.js';
export type { CopyStats, FlowSelection } from './copy.js';
export { APPLICATION_ID, SCHEMA_VERSION } from './schema.js';
