/**
 * The cost benchmark's reference file server: plain `node:http`, one file, `fs.createReadStream` with a
 * 1 MiB buffer piped to the response (what a minimal static server does). Run as a child process so it has
 * its own event loop. Prints `{"port":N}` once listening; stops on SIGTERM/SIGINT.
 *
 *   node --import tsx scripts/bench/file-server.ts --file PATH
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { pipeline } from 'node:stream';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { file: { type: 'string' } } });
if (!values.file) {
  process.stderr.write('usage: file-server.ts --file PATH\n');
  process.exit(2);
}
const file = values.file;
const size = fs.statSync(file).size;
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  if (req.method === 'HEAD') return void res.end();
  pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), res, () => {});
});
const sockets = new Set<net.Socket>();
server.on('connection', (s: net.Socket) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`));
const stop = (): void => {
  for (const s of sockets) s.destroy();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
