/**
 * The benchmark's reference: regtape's proxy path (same front, same in-process TLS,
 * same forwarding) with an observer that stores nothing and taps nothing. The record
 * benchmark compares `regtape record` against this to measure what recording costs.
 *
 *   npx tsx scripts/passthrough-proxy.ts --listen 127.0.0.1:18090 --map HOST=ADDR:PORT --upstream-ca FILE
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultHome, LeafFactory, loadOrCreateAuthority } from '../src/ca/index.js';
import { parseListenAddress } from '../src/proxy/index.js';
import { captureConsole, createLogger } from '../src/log/index.js';
import { HostMap, startProxy, tuneHeapForStreaming, type ExchangeObserver } from '../src/proxy/index.js';

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:18090' },
    map: { type: 'string', multiple: true, default: [] },
    'upstream-ca': { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: tsx scripts/passthrough-proxy.ts [--listen HOST:PORT] [--map H=A:P]... [--upstream-ca FILE]...');
  process.exit(0);
}
tuneHeapForStreaming(); // as `regtape record` does: the same process tuning on both sides of the comparison
const log = createLogger('warn');
captureConsole(log);
const ca = loadOrCreateAuthority(defaultHome());
const observer: ExchangeObserver = { begin: () => ({ end: () => {} }) };
const { host, port } = parseListenAddress(values.listen!);
const proxy = await startProxy({
  host,
  port,
  ca,
  leafs: new LeafFactory(ca),
  hostMap: HostMap.parse(values.map!),
  observer,
  log,
  upstreamCa: values['upstream-ca']!.map((f) => fs.readFileSync(f, 'utf8')),
});
process.stderr.write(`listening on ${proxy.url} (pass-through, stores nothing)\n`);
const stop = () => void proxy.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
