/**
 * A tiny HTTPS origin for the big-body benchmark, run as a child process so it does not share an event loop
 * with the benchmark: `GET /blob` streams `--size` bytes of scripts/bench/pattern.ts with Content-Length,
 * honouring backpressure; `GET /v2/bench/big/blobs/sha256:<its digest>` serves the same body as a registry
 * blob (Docker-Content-Digest), so a recording of it replays in mirror mode. Its certificate comes from a throwaway CA made in `--dir` with src/ca.
 * Prints one JSON line `{"port":N,"caPath":"…","host":"…"}` on stdout once listening; stops on SIGTERM/SIGINT.
 *
 *   node --import tsx scripts/bench/big-origin.ts --dir DIR --size BYTES [--host big.test]
 */
import https from 'node:https';
import type net from 'node:net';
import { parseArgs } from 'node:util';
import { LeafFactory, loadOrCreateAuthority } from '../../src/ca/index.js';
import { patternPieces, patternSha256 } from './pattern.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    size: { type: 'string' },
    host: { type: 'string', default: 'big.test' },
  },
});
if (!values.dir || !values.size) {
  process.stderr.write('usage: big-origin.ts --dir DIR --size BYTES [--host NAME]\n');
  process.exit(2);
}
const size = Number(values.size);
const host = values.host!;
const ca = loadOrCreateAuthority(values.dir);
const leaf = new LeafFactory(ca).get(host);
const digest = patternSha256(size);

const server = https.createServer({ cert: leaf.certPem + ca.certPem, key: leaf.keyPem }, (req, res) => {
  req.resume();
  // `/blob`, or a registry blob URL naming the body's digest (so a recording of it replays as a blob).
  const asBlob = req.url === `/v2/bench/big/blobs/sha256:${digest}`;
  if ((req.url !== '/blob' && !asBlob) || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
    return;
  }
  const extra = asBlob ? { 'docker-content-digest': `sha256:${digest}`, 'docker-distribution-api-version': 'registry/2.0' } : {};
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, ...extra });
  if (req.method === 'HEAD') return void res.end();
  const pieces = patternPieces(size);
  const pump = (): void => {
    while (!res.destroyed) {
      const next = pieces.next();
      if (next.done) return void res.end();
      if (!res.write(next.value)) return void res.once('drain', pump);
    }
  };
  pump();
});
const sockets = new Set<net.Socket>();
server.on('connection', (s: net.Socket) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
});
server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as net.AddressInfo).port;
  process.stdout.write(`${JSON.stringify({ port, caPath: ca.certPath, host })}\n`);
});
const stop = (): void => {
  for (const s of sockets) s.destroy();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
