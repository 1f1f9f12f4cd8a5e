export type {
  HeaderList,
  FlowState,
  Timings,
  BodyRef,
  RequestHead,
  ResponseHead,
  RedactionFact,
  TokenFact,
  FlowFacts,
  FlowRecord,
} from './types.js';
export { defaultPort, getHeader, getHeaders, fromRawHeaders, flowUrl, hostWithPort } from './types.js';
export type { Role, AuthClass, Scope, RegistryFacts } from './registry-facts.js';
export { ROLES } from './registry-facts.js';
export { formatBytes } from './format.js';
