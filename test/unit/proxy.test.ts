import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecording, type RecordSession } from '../../src/cli/record.js';
import { getHeaders } from '../../src/flow/index.js';
import { silentLogger } from '../../src/log/index.js';
import { Recording } from '../../src/store/index.js';
import { patternBytes, startOrigin, type Origin } from '../support/origin.js';

const BIG = patternBytes(3 * 1024 * 1024 + 17, 7);
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], { maxBuffer: 64 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: stdout.toString('latin1'), stderr: stderr.toString() });
    });
  });
}

let dir: string;
let origin: Origin;
let session: RecordSession;
let proxyUrl: string;
let caPath: string;

function via(...args: string[]): string[] {
  return ['-x', proxyUrl, '--cacert', caPath, ...args];
}

async function flowsAfter(n: number, wait = 5000): Promise<ReturnType<Recording['list']>> {
  const deadline = Date.now() + wait;
  for (;;) {
    await session.recorder.drain();
    const flows = session.recording.list();
    if (flows.length >= n && flows.slice(0, n).every((f) => f.state !== 'open')) return flows;
    if (Date.now() > deadline) return flows;
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-proxy-test-'));
  origin = await startOrigin(['origin.test', 'other.test'], (req, res, body) => {
    const url = req.url ?? '/';
    if (url.startsWith('/blob')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length, 'docker-content-digest': `sha256:${BIG_SHA}` });
      return void res.end(req.method === 'HEAD' ? undefined : BIG);
    }
    if (url === '/huge') {
      // 64 MB: more than loopback socket buffers can absorb, so a client that stops early really cuts it.
      const total = 64 << 20;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += BIG.length > total - sent ? total - sent : 1 << 20;
          if (!res.write(BIG.subarray(0, 1 << 20))) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (sent = total));
      return pump();
    }
    if (url === '/reset') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length });
      res.write(BIG.subarray(0, 256 * 1024));
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    if (url === '/token') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ token: 'tok-SECRET-1', access_token: 'tok-SECRET-1', expires_in: 300 }));
    }
    res.writeHead(201, { 'content-type': 'text/plain', 'x-dup': 'a', 'X-Dup': 'b' });
    res.end(`${req.method} ${url} ${origin.seen.at(-1)?.bodyBytes ?? body.length}`);
  });
  session = await startRecording(
    {
      listen: '127.0.0.1:0',
      out: path.join(dir, 'rec.db'),
      map: [`origin.test=127.0.0.1:${origin.port}`, `other.test=127.0.0.1:${origin.port}`, `refused.test=127.0.0.1:1`],
      upstreamCa: [origin.caPath],
      quiet: true,
      home: path.join(dir, 'home'),
    },
    silentLogger,
  );
  proxyUrl = session.proxy.url;
  caPath = path.join(dir, 'home', 'ca.pem');
});

afterAll(async () => {
  await session?.stop();
  await origin?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('recording proxy', () => {
  it('leaves no copy of the CA private key in temp directories', () => {
    const key = fs.readFileSync(path.join(dir, 'home', 'ca-key.pem'), 'utf8').split('\n')[1]!;
    const copies = fs
      .readdirSync(os.tmpdir())
      .filter((d) => d.startsWith('regtape-mitm-'))
      .flatMap((d) => {
        const keys = path.join(os.tmpdir(), d, 'keys', 'ca.private.key');
        return fs.existsSync(keys) && fs.readFileSync(keys, 'utf8').includes(key) ? [keys] : [];
      });
    expect(copies).toEqual([]);
  });

  it('relays an HTTPS download byte for byte and stores the body under its sha256', async () => {
    const out = path.join(dir, 'blob.out');
    const r = await curl(via('-o', out, '-w', '%{http_code}', 'https://origin.test/blob'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('200');
    expect(createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(BIG_SHA);
    const flows = await flowsAfter(1);
    const f = flows.find((x) => x.request.target === '/blob')!;
    expect(f.error).toBeNull();
    expect(f.state).toBe('complete');
    expect(f.responseBody).toEqual({ sha256: BIG_SHA, size: BIG.length, redacted: false });
    expect(f.responseBytes).toBe(BIG.length);
    expect(fs.statSync(path.join(dir, 'rec.blobs', BIG_SHA)).mode & 0o777).toBe(0o600);
    const stored = createHash('sha256').update(fs.readFileSync(path.join(dir, 'rec.blobs', BIG_SHA))).digest('hex');
    expect(stored).toBe(BIG_SHA);
    expect(f.timings.firstByte).toBeGreaterThanOrEqual(f.timings.start);
    expect(f.timings.end).toBeGreaterThanOrEqual(f.timings.firstByte!);
    expect(f.serverAddr).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(f.clientAddr).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('keeps Content-Length on HEAD responses (registry clients read sizes from it)', async () => {
    const r = await curl(via('-I', 'https://origin.test/blob'));
    expect(r.stdout).toMatch(new RegExp(`content-length: ${BIG.length}`, 'i'));
    expect(r.stdout).not.toMatch(/transfer-encoding/i);
  });

  it('keeps request headers in order with duplicates, and response duplicates', async () => {
    const accepts = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.oci.image.manifest.v1+json'];
    const r = await curl(via(...accepts.flatMap((a) => ['-H', `Accept: ${a}`]), 'https://origin.test/dups'));
    expect(r.code).toBe(0);
    const seen = origin.seen.find((s) => s.url === '/dups')!;
    const upstreamAccepts = seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i]!.toLowerCase() === 'accept').length;
    expect(upstreamAccepts).toBe(3);
    const f = (await flowsAfter(3)).find((x) => x.request.target === '/dups')!;
    expect(getHeaders(f.request.headers, 'accept')).toEqual(accepts);
    expect(getHeaders(f.response!.headers, 'x-dup')).toEqual(['a', 'b']);
  });

  it('records uploads with their body', async () => {
    const file = path.join(dir, 'upload.bin');
    const data = patternBytes(2 * 1024 * 1024, 3);
    fs.writeFileSync(file, data);
    const r = await curl(via('-X', 'PUT', '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', 'https://origin.test/upload'));
    expect(r.stdout).toBe(`PUT /upload ${data.length}`);
    const f = (await flowsAfter(4)).find((x) => x.request.target === '/upload')!;
    expect(f.requestBody?.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(f.requestBytes).toBe(data.length);
    const back = await session.recording.readBodyBuffer(f.requestBody!.sha256!, 8 << 20);
    expect(back.equals(data)).toBe(true);
  });

  it('redacts bearer tokens in headers and token responses before they reach the file', async () => {
    const r = await curl(via('-H', 'Authorization: Bearer hdr-SECRET-2', 'https://origin.test/token'));
    expect(r.stdout).toContain('tok-SECRET-1'); // the client gets the real token
    const f = (await flowsAfter(5)).find((x) => x.request.target === '/token')!;
    expect(JSON.stringify(f.request.headers)).not.toContain('hdr-SECRET-2');
    expect(getHeaders(f.request.headers, 'authorization')[0]).toMatch(/^Bearer REDACTED-[0-9a-f]{8}$/);
    const body = (await session.recording.readBodyBuffer(f.responseBody!.sha256!)).toString();
    expect(body).not.toContain('tok-SECRET-1');
    expect(JSON.parse(body).expires_in).toBe(300);
    expect(f.responseBody!.redacted).toBe(true);
  });

  it('answers 502 with a reason for an unresolvable host and keeps serving', async () => {
    const r = await curl(via('-w', '\n%{http_code}', 'https://no-such-host.invalid/v2/'));
    expect(r.stdout).toMatch(/cannot resolve no-such-host\.invalid/);
    expect(r.stdout.trim().endsWith('502')).toBe(true);
    const refused = await curl(via('-w', '\n%{http_code}', 'https://refused.test/v2/'));
    expect(refused.stdout).toMatch(/connection refused/);
    const f = (await flowsAfter(7)).find((x) => x.request.host === 'no-such-host.invalid')!;
    expect(f.state).toBe('error');
    expect(f.error).toMatch(/ENOTFOUND|EAI_AGAIN/);
    const again = await curl(via('-o', '/dev/null', '-w', '%{http_code}', 'https://origin.test/blob'));
    expect(again.stdout).toBe('200');
  });

  it('rejects an upstream certificate it cannot verify, saying how to fix it', async () => {
    // other.test is served with a leaf from the origin CA too; a fresh proxy without --upstream-ca must refuse it.
    const strict = await startRecording(
      { listen: '127.0.0.1:0', out: path.join(dir, 'strict.db'), map: [`other.test=127.0.0.1:${origin.port}`], upstreamCa: [], quiet: true, home: path.join(dir, 'home') },
      silentLogger,
    );
    try {
      const r = await curl(['-x', strict.proxy.url, '--cacert', caPath, '-w', '\n%{http_code}', 'https://other.test/x']);
      expect(r.stdout).toMatch(/--upstream-ca/);
      expect(r.stdout.trim().endsWith('502')).toBe(true);
    } finally {
      await strict.stop();
    }
    const insecure = await startRecording(
      { listen: '127.0.0.1:0', out: path.join(dir, 'insecure.db'), map: [`other.test=127.0.0.1:${origin.port}`], upstreamCa: [], insecureUpstream: true, quiet: true, home: path.join(dir, 'home') },
      silentLogger,
    );
    try {
      const r = await curl(['-x', insecure.proxy.url, '--cacert', caPath, 'https://other.test/x']);
      expect(r.stdout).toBe('GET /x 0');
    } finally {
      await insecure.stop();
    }
  });

  it('closes the client connection when the upstream resets mid-body and records the flow as aborted', async () => {
    const r = await curl(via('-o', '/dev/null', 'https://origin.test/reset'));
    expect(r.code).not.toBe(0); // curl sees a truncated transfer
    const f = (await flowsAfter(9)).find((x) => x.request.target === '/reset')!;
    expect(f.state).toBe('aborted');
    expect(f.error).toMatch(/upstream/);
    expect(f.responseBytes).toBeGreaterThan(0);
    expect(f.responseBytes).toBeLessThan(BIG.length);
    expect(f.responseBody).toBeNull(); // a partial body is not stored as if it were complete
  });

  it('records a client that disconnects mid-blob as aborted with its byte count, and keeps serving', async () => {
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(session.proxy.port, '127.0.0.1', () => s.write('CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n'));
      s.once('data', () => {
        const t = tls.connect({ socket: s, servername: 'origin.test', ca: fs.readFileSync(caPath) }, () => {
          t.write('GET /huge HTTP/1.1\r\nHost: origin.test\r\n\r\n');
        });
        let got = 0;
        t.on('data', (c: Buffer) => {
          got += c.length;
          if (got > 512 * 1024) {
            t.destroy();
            s.destroy();
            resolve();
          }
        });
        t.on('error', reject);
      });
    });
    const deadline = Date.now() + 5000;
    let f;
    while (Date.now() < deadline) {
      await session.recorder.drain();
      f = session.recording.list().find((x) => x.request.target === '/huge');
      if (f?.state === 'open') f = undefined;
      if (f) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(f?.state).toBe('aborted');
    expect(f?.error).toMatch(/client closed/);
    expect(f!.responseBytes).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(dir, 'rec.blobs', '.tmp'))).toEqual([]);
    const again = await curl(via('-o', '/dev/null', '-w', '%{http_code}', 'https://origin.test/blob'));
    expect(again.stdout).toBe('200');
  });

  it('runs a --addon file on every flow, after redaction and classification', async () => {
    const addonFile = path.join(dir, 'tag.mjs');
    const seen = path.join(dir, 'seen.jsonl');
    fs.writeFileSync(
      addonFile,
      `import fs from 'node:fs';
export default {
  name: 'tag',
  flowStored(flow) { fs.appendFileSync(${JSON.stringify(seen)}, JSON.stringify({ target: flow.request.target, role: flow.registry?.role, auth: flow.request.headers.find(([n]) => n.toLowerCase() === 'authorization')?.[1] }) + '\\n'); },
};`,
    );
    const rec = await startRecording({ listen: '127.0.0.1:0', out: path.join(dir, 'addon.db'), map: [`origin.test=127.0.0.1:${origin.port}`], upstreamCa: [origin.caPath], quiet: true, home: path.join(dir, 'home'), addon: [addonFile] }, silentLogger);
    try {
      const r = await curl(['-x', rec.proxy.url, '--cacert', caPath, '-H', 'Authorization: Bearer s3cret-token', 'https://origin.test/v2/']);
      expect(r.code).toBe(0);
      await rec.recorder.drain();
      const line = JSON.parse(fs.readFileSync(seen, 'utf8').trim()) as { target: string; role: string; auth: string };
      expect(line.target).toBe('/v2/');
      expect(line.role).toBe('ping');
      // The addon sees what is stored: the token is already a marker.
      expect(line.auth).toMatch(/^Bearer REDACTED-[0-9a-f]{8}$/);
    } finally {
      await rec.stop();
    }
  });

  it('answers a malformed CONNECT target with 400', async () => {
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect(session.proxy.port, '127.0.0.1', () => s.write('CONNECT not-a-target HTTP/1.1\r\nHost: x\r\n\r\n'));
      let buf = '';
      s.on('data', (c) => (buf += c.toString()));
      s.on('close', () => resolve(buf));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toMatch(/bad CONNECT target/);
  });

  it('proxies and records plain HTTP requests', async () => {
    const http = await import('node:http');
    const plain = http.createServer((req, res) => res.end(`plain ${req.url}`));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    const port = (plain.address() as net.AddressInfo).port;
    try {
      const r = await curl(['-x', proxyUrl, `http://127.0.0.1:${port}/hello?x=1`]);
      expect(r.stdout).toBe('plain /hello?x=1');
      const f = (await flowsAfter(1)).find((x) => x.request.scheme === 'http' && x.request.port === port);
      expect(f?.state).toBe('complete');
      expect(f?.request.target).toMatch(/^\/hello\?x=REDACTED-/);
    } finally {
      plain.close();
    }
  });
});
