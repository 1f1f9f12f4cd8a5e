// The registry facts types live with the flow model (a FlowRecord carries them);
// re-exported here for the registry module's users.
export type { Role, AuthClass, Scope, RegistryFacts } from '../flow/index.js';
export { ROLES } from '../flow/index.js';
