/**
 * Class 1: malformed requests. Odd authorities and Host headers (a colon with a non-numeric port,
 * userinfo in an absolute URL, brackets, empty hosts, out-of-range ports) must never crash the
 * recorder: every request becomes a flow or a clear 400, and the proxy keeps serving.
 * A fast-check property drives request lines, authorities and headers through the real proxy.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, rawExchange, settle, startLab, type Lab } from './support.js';

let lab: Lab;

beforeAll(async () => {
  lab = await startLab(['origin.test'], (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
});
afterAll(async () => lab?.close());

/** Status code of the first response in `raw`, or null when there was none. */
function status(raw: string): number | null {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : null;
}

describe('class 1: malformed requests', () => {
  it('a non-numeric port in an absolute URL gets a 400 that says why, and the proxy keeps serving', async () => {
    const out = await rawExchange(lab.session.proxy.port, 'GET http://origin.test:abc/v2/ HTTP/1.1\r\nHost: origin.test:abc\r\nConnection: close\r\n\r\n');
    expect(status(out)).toBe(400);
    expect(out).toMatch(/regtape: .*origin\.test:abc/);
    expect((await curl(lab, ['https://origin.test/'])).stdout).toBe('ok');
  });

  it('userinfo in an absolute URL gets a 400 (never forwarded to the user name as a host)', async () => {
    const out = await rawExchange(lab.session.proxy.port, 'GET http://user:secret@origin.test/v2/ HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n');
    expect(status(out)).toBe(400);
    expect(out).toMatch(/regtape: .*user name and password/);
    expect(out).not.toContain('secret');
    expect((await curl(lab, ['https://origin.test/'])).stdout).toBe('ok');
  });

  it('an origin-form request with an odd Host header gets a 400', async () => {
    for (const host of ['origin.test:', 'origin.test:80:90', '[::1', 'a b', ':443', 'origin.test:0']) {
      const out = await rawExchange(lab.session.proxy.port, `GET /v2/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(status(out), host).toBe(400);
    }
  });

  it('property: any request line, authority and headers → a flow or a clear 400, never a crash', async () => {
    const hostPart = fc.oneof(
      fc.constantFrom('origin.test', 'ORIGIN.test', '[::1]', '[::1', '::1', '', '%6f', 'a..b', '-', 'x'.repeat(300), '127.0.0.1', 'origin.test.'),
      fc.stringMatching(/^[a-z0-9.:@\-[\]%_~!$&'()*+,;=]{0,20}$/),
    );
    const portPart = fc.oneof(fc.constantFrom('', ':', ':abc', ':99999', ':0', ':443', ':-1', ':1e3', ':0x50', ': 80', ':80:80'), fc.stringMatching(/^:[0-9a-z]{0,6}$/));
    const userinfo = fc.constantFrom('', 'user@', 'user:pw@', '@', ':@', 'a:b:c@');
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'BREW', 'get');
    const scheme = fc.constantFrom('http://', 'https://', 'HTTP://', 'ftp://', '', '//');
    const pathPart = fc.constantFrom('/', '/v2/', '', '?x=1', '/a b', '/%zz', '*', '/../../etc/passwd');
    const hostHeader = fc.option(fc.oneof(hostPart, fc.constant('origin.test')), { nil: undefined });
    const extra = fc.array(fc.tuple(fc.constantFrom('X-A', 'Content-Length', 'Transfer-Encoding', 'Expect', 'Upgrade', 'Connection'), fc.constantFrom('1', '0', 'chunked', '100-continue', 'h2c', 'close', '-1', 'abc')), { maxLength: 3 });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(method, scheme, userinfo, hostPart, portPart, pathPart, hostHeader, extra, async (m, s, u, h, p, path, hh, hdrs) => {
        n++;
        const target = s || u ? `${s}${u}${h}${p}${path}` : `${h}${p}${path}` || '/';
        const headers = [hh !== undefined ? `Host: ${hh}` : '', ...hdrs.map(([k, v]) => `${k}: ${v}`), 'Connection: close'].filter(Boolean);
        const out = await rawExchange(lab.session.proxy.port, `${m} ${target} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`, 3000);
        const st = status(out);
        // Either an HTTP answer (a flow, an upstream error, or a 400 from the proxy), or — only for a
        // CONNECT that was accepted, or a request whose body never came — silence.
        if (st === null) expect(m === 'CONNECT' || hdrs.length > 0, `no answer to ${m} ${target}`).toBe(true);
        if (st === 400) expect(out).toMatch(/regtape: |Bad Request/);
      }),
      { numRuns: 120, seed: 1207 },
    );
    expect(n).toBe(120);
    // Still alive, and everything it accepted was stored.
    await settle(lab);
    expect((await curl(lab, ['https://origin.test/'])).stdout).toBe('ok');
    for (const f of lab.session.recording.list()) {
      expect(typeof f.request.host).toBe('string');
      expect(Number.isInteger(f.request.port)).toBe(true);
    }
  }, 120_000);
});
