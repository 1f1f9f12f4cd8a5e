/**
 * regtape's public API for test suites and tools.
 *
 *   import { startReplay } from 'regtape';
 *   const replay = await startReplay({ recording: 'fixtures/pull.db' });
 *   // HTTPS_PROXY=replay.proxyUrl + trust replay.caCertPem, or use replay.mirrorUrl as a registry
 *   await replay.close();
 */
export { startReplay } from './replay/index.js';
export type { ReplayOptions, ReplayHandle, ReplayReport, Miss } from './replay/index.js';
export { Recording } from './store/index.js';
export { RegtapeError, ERRORS, EXIT, formatError, type ErrorCode } from './errors/index.js';
export type { FlowRecord, RequestHead, ResponseHead, HeaderList, RegistryFacts } from './flow/index.js';
export { parseFilter, FilterSyntaxError } from './filter/index.js';
export { exampleRecording, EXAMPLE_RECORDINGS } from './examples.js';
export type { ExampleRecording } from './examples.js';
