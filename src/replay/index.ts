export { startReplay, writeReport } from './server.js';
export type { ReplayOptions, ReplayHandle, ReplayReport } from './server.js';
export type { Miss } from './responder.js';
export { RegistryError } from './errors.js';
export { parseFault } from './faults.js';
export type { FaultRule, FaultAction } from './faults.js';
