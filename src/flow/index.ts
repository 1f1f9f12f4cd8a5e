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
export { getHeader, getHeaders, fromRawHeaders, flowUrl } from './types.js';
