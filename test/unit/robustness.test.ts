/**
 * Reliability of the recorder under abuse: a thousand clients vanishing mid-blob, an
 * upstream that stalls, garbage on the wire, huge headers, a slowloris client, corrupt
 * recordings. Each gets a clear answer, the proxy keeps serving, and nothing leaks
 * (file descriptors, memory, half-written files).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecording, type RecordSession } from '../../src/cli/record.js';
import { silentLogger } from '../../src/log/index.js';
import { Recording } from '../../src/store/index.js';
import { patternBytes, startOrigin, type Origin } from '../support/origin.js';
import { RegtapeError } from '../../src/errors/index.js';

const BODY = patternBytes(8 << 20, 11);

let dir: string;
let origin: Origin;
let session: RecordSession;
let ca: Buffer;

function curl(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) =>
    execFile('curl', ['-sS', '-x', session.proxy.url, '--cacert', path.join(dir, 'home', 'ca.pem'), ...args], { encoding: 'latin1', maxBuffer: 64 << 20 }, (err, stdout) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }),
    ),
  );
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** CONNECT + TLS to origin.test, GET /big, read `bytes`, then vanish. */
function abortingClient(bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(session.proxy.port, '127.0.0.1', () => s.write('CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n'));
    s.once('error', reject);
    s.once('data', () => {
      const t = tls.connect({ socket: s, servername: 'origin.test', ca }, () => t.write('GET /big HTTP/1.1\r\nHost: origin.test\r\n\r\n'));
      let got = 0;
      t.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= bytes) {
          t.destroy();
          s.destroy();
          resolve();
        }
      });
      t.on('error', reject);
    });
  });
}

async function settled(n: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await session.recorder.drain();
    if (session.recorder.inFlight === 0 && session.recording.count() >= n) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-robust-'));
  origin = await startOrigin(['origin.test'], (req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY.length });
      return void res.end(BODY);
    }
    if (req.url === '/stall') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1000 });
      res.write(Buffer.alloc(10));
      return; // never finishes
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  session = await startRecording(
    { listen: '127.0.0.1:0', out: path.join(dir, 'r.db'), map: [`origin.test=127.0.0.1:${origin.port}`], upstreamCa: [origin.caPath], quiet: true, home: path.join(dir, 'home'), upstreamTimeout: 1 },
    silentLogger,
  );
  ca = fs.readFileSync(path.join(dir, 'home', 'ca.pem'));
});

afterAll(async () => {
  await session?.stop();
  await origin?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('recorder robustness', () => {
  it('1000 clients disconnecting mid-blob: each recorded as aborted, no fd or memory growth, still serving', async () => {
    // Warm up (TLS contexts, agent sockets), then measure.
    for (let i = 0; i < 20; i++) await abortingClient(64 * 1024);
    await settled(20);
    global.gc?.();
    const fds0 = openFds();
    const rss0 = process.memoryUsage().rss;
    const N = 1000;
    for (let i = 0; i < N; i += 10) await Promise.all(Array.from({ length: 10 }, () => abortingClient(64 * 1024)));
    await settled(N + 20);
    await new Promise((r) => setTimeout(r, 300));
    const fds1 = openFds();
    const rss1 = process.memoryUsage().rss;
    const flows = session.recording.list().filter((f) => f.request.target === '/big');
    expect(flows.length).toBe(N + 20);
    const aborted = flows.filter((f) => f.state === 'aborted');
    // A client that read 64 KiB of 8 MiB can only be aborted (or, rarely, complete if kernel buffers took it all).
    expect(aborted.length).toBeGreaterThan(N * 0.95);
    for (const f of aborted) expect(f.error).toMatch(/client closed the connection after \d+ response bytes/);
    console.log(`1000 aborts: fds ${fds0} → ${fds1}, rss ${(rss0 / 1e6).toFixed(0)} → ${(rss1 / 1e6).toFixed(0)} MB`);
    expect(fds1 - fds0).toBeLessThan(30); // keep-alive upstream sockets may vary a little
    expect(rss1 - rss0).toBeLessThan(150e6);
    expect(fs.readdirSync(path.join(dir, 'r.blobs', '.tmp'))).toEqual([]);
    const ok = await curl(['-o', '/dev/null', '-w', '%{http_code}', 'https://origin.test/big']);
    expect(ok.stdout).toBe('200');
  }, 180_000);

  it('an upstream that stalls is cut after --upstream-timeout, recorded with the reason', async () => {
    const r = await curl(['-o', '/dev/null', 'https://origin.test/stall']);
    expect(r.code).not.toBe(0);
    await settled(0);
    const f = session.recording.list().find((x) => x.request.target === '/stall')!;
    expect(f.state).toBe('aborted');
    expect(f.error).toMatch(/upstream sent nothing for 1 s/);
  });

  it('answers garbage, huge headers and garbage-instead-of-TLS with an error and keeps serving', async () => {
    const raw = (bytes: Buffer | string, waitMs = 2000) =>
      new Promise<string>((resolve) => {
        const s = net.connect(session.proxy.port, '127.0.0.1', () => s.write(bytes));
        let out = '';
        s.on('data', (c) => (out += c.toString('latin1')));
        s.on('error', () => resolve(out));
        s.on('close', () => resolve(out));
        setTimeout(() => {
          s.destroy();
          resolve(out);
        }, waitMs);
      });
    expect(await raw('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(`GET http://origin.test/ HTTP/1.1\r\nX-Big: ${'a'.repeat(1 << 20)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431/);
    // After CONNECT, bytes that are neither TLS nor HTTP: a 400 inside the tunnel.
    const tunnel = await raw('CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n\x00\x01\x02garbage\r\n\r\n');
    expect(tunnel).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 400/);
    const ok = await curl(['https://origin.test/']);
    expect(ok.stdout).toBe('ok');
  });

  it('serves others while a slowloris client trickles its headers', async () => {
    const s = net.connect(session.proxy.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write('GET http://origin.test/ HTTP/1.1\r\n');
    const timer = setInterval(() => s.write('X-a: b\r\n'), 50);
    try {
      const results = await Promise.all(Array.from({ length: 5 }, () => curl(['https://origin.test/'])));
      expect(results.map((r) => r.stdout)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    } finally {
      clearInterval(timer);
      s.destroy();
    }
  });
});

describe('recording loader robustness', () => {
  it('a truncated recording gives a clear error and is left untouched', () => {
    const src = path.join(dir, 'good.db');
    const r = Recording.open(src, { create: true });
    r.beginSession('t');
    for (let i = 0; i < 200; i++) r.insertOpenFlow({ uuid: `u${i}`, request: { method: 'GET', scheme: 'https', host: 'h', port: 443, target: `/${'x'.repeat(200)}${i}`, httpVersion: '1.1', headers: [] }, timings: { start: i }, clientAddr: null });
    r.close();
    const cut = path.join(dir, 'cut.db');
    const bytes = fs.readFileSync(src);
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const before = createHash('sha256').update(fs.readFileSync(cut)).digest('hex');
    let err: unknown;
    try {
      const x = Recording.open(cut, { readonly: true });
      x.list();
      x.close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegtapeError);
    expect((err as Error).message).toMatch(/cut\.db/);
    expect(createHash('sha256').update(fs.readFileSync(cut)).digest('hex')).toBe(before);
  });

  it('fuzz: damaged recordings either open or fail with a RegtapeError, never crash, never get modified', () => {
    const src = path.join(dir, 'fuzz-src.db');
    const r = Recording.open(src, { create: true });
    r.beginSession('t');
    for (let i = 0; i < 20; i++) r.insertOpenFlow({ uuid: `u${i}`, request: { method: 'GET', scheme: 'https', host: 'h', port: 443, target: `/p${i}`, httpVersion: '1.1', headers: [['a', 'b']] }, timings: { start: i }, clientAddr: null });
    r.close();
    const good = fs.readFileSync(src);
    let n = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.option(fc.nat(good.length), { nil: undefined }), (edits, truncateAt) => {
        const bad = Buffer.from(good);
        for (const [pos, val] of edits) bad[pos] = val;
        const data = truncateAt === undefined ? bad : bad.subarray(0, truncateAt);
        const p = path.join(dir, `fuzz-${n++}.db`);
        fs.writeFileSync(p, data);
        const before = createHash('sha256').update(data).digest('hex');
        try {
          const x = Recording.open(p, { readonly: true });
          try {
            x.list();
          } finally {
            x.close();
          }
        } catch (e) {
          if (!(e instanceof RegtapeError)) throw e;
        }
        expect(createHash('sha256').update(fs.readFileSync(p)).digest('hex')).toBe(before);
        fs.rmSync(p, { force: true });
        fs.rmSync(`${p}-wal`, { force: true });
        fs.rmSync(`${p}-shm`, { force: true });
      }),
      { numRuns: 200, seed: 42 },
    );
  });
});
