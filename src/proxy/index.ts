export { startProxy, parseAuthority } from './server.js';
export type { ProxyOptions, RunningProxy } from './server.js';
export { HostMap, parseMapRule } from './host-map.js';
export type { HostMapRule } from './host-map.js';
export { forwardableHeaders, explainUpstreamError, sendProxyError } from './forward.js';
export type { Target } from './forward.js';
export type { ExchangeObserver, ExchangeStart, ExchangeHandle, ExchangeOutcome } from './observer.js';
export { tuneHeapForStreaming } from './heap.js';
export { parseListenAddress } from './listen.js';
