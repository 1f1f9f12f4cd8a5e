import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LeafFactory, loadOrCreateAuthority, type Authority } from '../../src/ca/index.js';

/** A small HTTPS origin for proxy tests, with its own CA (the "upstream CA"). */
export interface Origin {
  port: number;
  ca: Authority;
  caPath: string;
  /** Requests seen: method, url, headers in order, body size. */
  seen: Array<{ method: string; url: string; rawHeaders: string[]; bodyBytes: number }>;
  close(): Promise<void>;
}

/** Deterministic pseudo-random bytes (not all one value, so hashing is meaningful). */
export function patternBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: Buffer) => void;

export async function startOrigin(hosts: string[], handler: Handler): Promise<Origin> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-origin-'));
  const ca = loadOrCreateAuthority(path.join(dir, 'ca'));
  const leafs = new LeafFactory(ca);
  const seen: Origin['seen'] = [];
  const sockets = new Set<net.Socket>();
  const server = https.createServer(
    {
      SNICallback: (name, cb) => cb(null, leafs.get(name || hosts[0]!).context),
      ...{ cert: leafs.get(hosts[0]!).certPem + ca.certPem, key: leafs.get(hosts[0]!).keyPem },
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n < 1 << 20) chunks.push(c);
      });
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, bodyBytes: n });
        handler(req, res, Buffer.concat(chunks));
      });
    },
  );
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    ca,
    caPath: ca.certPath,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
