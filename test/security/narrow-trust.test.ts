import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeafFactory, loadOrCreateAuthority, type Authority } from '../../src/ca/index.js';
import { CLI } from '../support/cli.js';

/**
 * Issue 12, class 10 (narrow trust). A CA made with --name-constraints is trusted only
 * for those DNS domains: a leaf for an IP literal must be refused too (before: no IP
 * constraint, so OpenSSL and Go accepted a leaf for 127.0.0.1), and `ca --setup` must
 * never point SSL_CERT_DIR at a directory holding the CA key (before: the CA directory,
 * which holds ca-key.pem, so every program reading SSL_CERT_DIR could read the key).
 */
let dir: string;
let ca: Authority;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { env: { PATH: process.env.PATH!, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** A TLS server on 127.0.0.1 presenting regtape's leaf for `host`. */
async function serveLeaf(host: string): Promise<{ port: number; close: () => Promise<void> }> {
  const leaves = new LeafFactory(ca);
  const server = tls.createServer({ SNICallback: (_n, cb) => cb(null, leaves.get(host).context) }, (s) => {
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
  });
  // Clients sending no SNI (IP literals) get the same leaf.
  server.setSecureContext({ cert: leaves.get(host).certPem + ca.certPem, key: leaves.get(host).keyPem });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => sockets.add(s.on('close', () => sockets.delete(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-trust-'));
  ca = loadOrCreateAuthority(path.join(dir, 'home'), { nameConstraints: ['test'] });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('a name-constrained CA', () => {
  it('is refused by curl (OpenSSL: excluded subtree) for a leaf naming an IP address, still valid for a name inside its domain', async () => {
    const ip = await serveLeaf('127.0.0.1');
    try {
      const r = await run('curl', ['-sS', '--cacert', ca.certPath, `https://127.0.0.1:${ip.port}/`]);
      expect(r.code, r.stdout).toBe(60); // certificate problem
      expect(r.stderr).toMatch(/excluded subtree/i); // before: refused only through the CN, as a permitted-subtree violation
    } finally {
      await ip.close();
    }
    // A leaf inside the permitted domain still verifies (OpenSSL's verifier, no network).
    const leaf = path.join(dir, 'leaf.pem');
    fs.writeFileSync(leaf, new LeafFactory(ca).get('registry.test').certPem);
    const ok = await run('openssl', ['verify', '-CAfile', ca.certPath, leaf]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
  });

  it('is refused by a Go client (skopeo) for a leaf naming an IP address', async () => {
    let skopeo = true;
    try {
      execFileSync('sh', ['-c', 'command -v skopeo'], { stdio: 'ignore' });
    } catch {
      skopeo = false;
    }
    if (!skopeo) return expect.soft(skopeo, 'skopeo (Debian package) is needed for the Go client check').toBe(true);
    const certs = path.join(dir, 'skopeo-certs');
    fs.mkdirSync(certs, { recursive: true });
    fs.copyFileSync(ca.certPath, path.join(certs, 'ca.crt'));
    const ip = await serveLeaf('127.0.0.1');
    try {
      const r = await run('skopeo', ['inspect', '--retry-times', '0', '--cert-dir', certs, `docker://127.0.0.1:${ip.port}/lab/alpine:3.9`], { HOME: dir });
      expect(r.code).not.toBe(0);
      // Before: TLS passed and skopeo failed later on the (non-registry) answer.
      expect(r.stderr).toMatch(/x509: .*(excluded|constraint|not permitted|IP address)/i);
    } finally {
      await ip.close();
    }
  });
});

describe('ca --setup', () => {
  it('never points SSL_CERT_DIR at a directory that holds a private key', async () => {
    const home = path.join(dir, 'setup-home');
    const seen: string[] = [];
    for (const target of ['dockerd', 'containerd', 'podman', 'skopeo', 'curl', 'system']) {
      const r = await run(process.execPath, [CLI, 'ca', '--setup', target], { REGTAPE_HOME: home, HOME: dir });
      expect(r.code, r.stderr).toBe(0);
      for (const m of r.stdout.matchAll(/SSL_CERT_DIR=([^\s"']+)/g)) {
        for (const d of m[1]!.split(':')) {
          seen.push(d);
          expect(path.resolve(d), `SSL_CERT_DIR entry ${d} of --setup ${target}`).not.toBe(path.resolve(home));
          if (!fs.existsSync(d)) continue;
          for (const f of fs.readdirSync(d)) {
            const p = path.join(d, f);
            if (!fs.statSync(p).isFile()) continue;
            expect(fs.readFileSync(p, 'utf8').includes('PRIVATE KEY'), `${p} in SSL_CERT_DIR holds a private key`).toBe(false);
          }
        }
      }
    }
    // The key stays where it was, readable by its owner only.
    expect(fs.statSync(path.join(home, 'ca-key.pem')).mode & 0o077).toBe(0);
    expect(seen.length).toBeGreaterThan(0);
  });
});
