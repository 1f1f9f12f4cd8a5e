/**
 * Class 2: requests addressed to the proxy itself. Forwarding them sends each request back
 * into the proxy, which forwards it again, until sockets or the disk run out. Every address
 * that reaches the listener (127.x, 0.0.0.0, ::, localhost, the machine's name, a CONNECT
 * tunnel to it, a --map rule pointing at it) gets one 508 Loop Detected with a sentence,
 * recorded once.
 */
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, settle, startLab, type Lab } from './support.js';
import tls from 'node:tls';
import net from 'node:net';
import fs from 'node:fs';

let lab: Lab;
let port: number;

beforeAll(async () => {
  lab = await startLab(['origin.test'], (_req, res) => res.end('ok'), { map: [] });
  port = lab.session.proxy.port;
});
afterAll(async () => lab?.close());

async function flowsFor(pred: (target: string, host: string) => boolean): Promise<number> {
  await new Promise((r) => setTimeout(r, 300));
  await settle(lab);
  return lab.session.recording.list().filter((f) => pred(f.request.target, f.request.host)).length;
}

describe('class 2: requests to the proxy itself', () => {
  // Listening on 127.0.0.1: these all reach the listener (the machine's name resolves to 127.0.0.1 here).
  const hosts = ['127.0.0.1', '0.0.0.0', 'localhost', os.hostname()];
  for (const h of hosts) {
    it(`GET http://${h}:PORT/ through the proxy: 508 with a sentence, one flow`, async () => {
      const tag = `/loop-${h.replace(/[^a-z0-9]/gi, '')}`;
      const out = await rawExchange(port, `GET http://${h}:${port}${tag} HTTP/1.1\r\nHost: ${h}:${port}\r\nConnection: close\r\n\r\n`, 4000);
      expect(out).toMatch(/^HTTP\/1\.1 508/);
      expect(out).toMatch(/regtape: loop detected: .* is this proxy itself/);
      expect(await flowsFor((t) => t === tag)).toBe(1);
    });
  }

  it('CONNECT to the proxy’s own port, then a request inside the tunnel: 508, one flow', async () => {
    const ca = fs.readFileSync(lab.caPath);
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      s.once('data', () => {
        const t = tls.connect({ socket: s, servername: undefined, host: '127.0.0.1', ca }, () => t.write('GET /loop-tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
        let got = '';
        t.on('data', (c: Buffer) => (got += c.toString()));
        t.on('close', () => resolve(got));
        t.on('error', () => resolve(got));
        setTimeout(() => (t.destroy(), resolve(got)), 4000);
      });
    });
    expect(out).toMatch(/^HTTP\/1\.1 508/);
    expect(await flowsFor((t) => t === '/loop-tunnel')).toBe(1);
  });
});

describe('class 2: a proxy listening on every address (::, --expose)', () => {
  it('GET to 127.0.0.2, [::1], [::], 0.0.0.0 and an interface address on its port: 508 each, one flow each', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '::', () => r()));
    const p = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const lab2 = await startLab(['origin.test'], (_req, res) => res.end('ok'), { listen: `[::]:${p}`, expose: true, map: [] });
    try {
      const iface = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
      const targets = ['127.0.0.2', '[::1]', '[::]', '0.0.0.0', ...(iface ? [iface] : [])];
      for (const [i, h] of targets.entries()) {
        const out = await rawExchange(p, `GET http://${h}:${p}/wild-${i} HTTP/1.1\r\nHost: ${h}:${p}\r\nConnection: close\r\n\r\n`, 4000);
        expect(out, h).toMatch(/^HTTP\/1\.1 508/);
      }
      await new Promise((r) => setTimeout(r, 300));
      await lab2.session.recorder.drain();
      expect(lab2.session.recording.count()).toBe(targets.length);
    } finally {
      await lab2.close();
    }
  });
});

describe('class 2: a --map rule that points at the proxy', () => {
  it('is answered 508 once, not forwarded', async () => {
    // A second recorder whose --map sends registry.test to its own port (found after listen: map to a fixed free port).
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const p = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const lab2 = await startLab(['origin.test'], (_req, res) => res.end('ok'), { listen: `127.0.0.1:${p}`, map: [`registry.test=127.0.0.1:${p}`] });
    try {
      const out = await rawExchange(p, 'GET http://registry.test/v2/ HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n', 4000);
      expect(out).toMatch(/^HTTP\/1\.1 508/);
      await settle(lab2);
      expect(lab2.session.recording.count()).toBe(1);
    } finally {
      await lab2.close();
    }
  });
});
