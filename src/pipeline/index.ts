export { Pipeline, flowFacts } from './addon.js';
export type { Addon, AddonFailure, BodyContext, FactsSoFar, FinishedContext, RequestHeadContext, ResponseHeadContext } from './addon.js';
export { classifyAddon, describeRequest, digestCheckAddon, knownClaimsAddon, redactAddon, tokenFactsAddon } from './addons.js';
export { defaultChain, REDACT_BUFFER_LIMIT } from './chain.js';
export type { ChainOptions } from './chain.js';
export { describeFlows, FlowDescriber } from './describe.js';
