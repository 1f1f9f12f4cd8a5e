/**
 * Class 3: resource exhaustion. A CONNECT closed right away must not leave a socket in
 * CLOSE-WAIT; a tunnel that never sends anything, a keep-alive connection left idle and a
 * client trickling its headers must be closed after their (idle, not total) timeouts, while
 * a slow transfer that keeps moving is never cut. The fd count of the proxy process
 * (this process: the recorder runs in-process) returns to its baseline after 1000 dropped tunnels.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, openFds, settle, startLab, type Lab } from './support.js';

let lab: Lab;
let ca: Buffer;

beforeAll(async () => {
  lab = await startLab(
    ['origin.test'],
    (req, res) => {
      if (req.url === '/slow') {
        // 40 chunks, one every 100 ms: 4 s in all, far longer than the 1 s idle timeout, never idle.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 40 * 1024 });
        let n = 0;
        const t = setInterval(() => {
          res.write(Buffer.alloc(1024, n));
          if (++n === 40) {
            clearInterval(t);
            res.end();
          }
        }, 100);
        return;
      }
      if (req.url === '/think') return void setTimeout(() => res.end('thought'), 2500); // silent for 2.5 s, then answers
      res.end('ok');
    },
    { clientTimeout: 1, headersTimeout: 1 },
  );
  ca = fs.readFileSync(lab.caPath);
});
afterAll(async () => lab?.close());

/** Sockets of the proxy's port in CLOSE-WAIT (state 08 in /proc/net/tcp). */
function closeWait(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(f)) continue;
    for (const line of fs.readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '08') n++;
    }
  }
  return n;
}

/** Open a CONNECT tunnel and wait for the 200; resolves with the socket. */
function tunnel(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(lab.session.proxy.port, '127.0.0.1', () => s.write('CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n'));
    s.once('data', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with the ms it took the proxy to close `s`, or null if it was still open after `maxMs`. */
function closedWithin(s: net.Socket, maxMs: number): Promise<number | null> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, maxMs);
    s.resume();
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
    s.on('error', () => undefined);
  });
}

describe('class 3: resource exhaustion', () => {
  it('1000 tunnels opened and dropped at once: no CLOSE-WAIT, fd count back to baseline', async () => {
    for (let i = 0; i < 20; i++) (await tunnel()).end();
    await new Promise((r) => setTimeout(r, 300));
    const fds0 = openFds();
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_x, j) => {
          const s = await tunnel();
          // Half of them close politely (FIN), half vanish (RST).
          if ((i + j) % 2) s.end();
          else s.destroy();
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    const cw = closeWait(lab.session.proxy.port);
    const fds1 = openFds();
    console.log(`1000 dropped tunnels: fds ${fds0} → ${fds1}, CLOSE-WAIT ${cw}`);
    expect(cw).toBe(0);
    expect(fds1 - fds0).toBeLessThan(10);
    expect((await curl(lab, ['https://origin.test/'])).stdout).toBe('ok');
  }, 60_000);

  it('a tunnel that never sends a byte is closed after the client idle timeout', async () => {
    const s = await tunnel();
    expect(await closedWithin(s, 5000)).not.toBeNull();
  });

  it('a TLS tunnel left idle after its handshake is closed', async () => {
    const raw = await tunnel();
    const t = tls.connect({ socket: raw, servername: 'origin.test', ca });
    await new Promise((r) => t.once('secureConnect', r));
    expect(await closedWithin(t as unknown as net.Socket, 5000)).not.toBeNull();
  });

  it('an idle keep-alive connection on the proxy port (plain HTTP, no request) is closed', async () => {
    const s = net.connect(lab.session.proxy.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    expect(await closedWithin(s, 5000)).not.toBeNull();
  });

  it('a client trickling its headers inside a tunnel is cut by the headers timeout', async () => {
    const raw = await tunnel();
    const t = tls.connect({ socket: raw, servername: 'origin.test', ca });
    await new Promise((r) => t.once('secureConnect', r));
    t.write('GET / HTTP/1.1\r\n');
    const drip = setInterval(() => t.writable && t.write('X-a: b\r\n'), 200);
    try {
      expect(await closedWithin(t as unknown as net.Socket, 6000)).not.toBeNull();
    } finally {
      clearInterval(drip);
    }
  });

  it('an exchange whose upstream is silent for longer than the client idle timeout is not cut', async () => {
    const r = await curl(lab, ['https://origin.test/think']);
    expect(r.stdout).toBe('thought');
  });

  it('a slow download that keeps moving outlives the idle timeout (idle, not total)', async () => {
    const r = await curl(lab, ['-o', '/dev/null', '-w', '%{http_code} %{size_download}', 'https://origin.test/slow']);
    expect(r.stdout).toBe(`200 ${40 * 1024}`);
    await settle(lab);
    const f = lab.session.recording.list().find((x) => x.request.target === '/slow')!;
    expect(f.state).toBe('complete');
  });
});
