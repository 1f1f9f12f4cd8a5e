export { loadRecording } from './load.js';
export type { LoadedRecording } from './load.js';
export { COLOR, PLAIN, styleFor, flowLine, flowJson, renderOperation, renderShow, formatBytes, formatMs, shortDigest, shortPath } from './render.js';
export type { Style } from './render.js';
export { filterSubject } from './subject.js';
export { showDocument, operationJson, SHOW_SCHEMA, VERIFY_SCHEMA } from './json.js';
export type { ShowDocument, OperationJson, VerifyDocument } from './json.js';
export { parseErrorBody } from './load.js';
