import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegtapeError } from '../../src/errors/index.js';
import {
  CA_CERT_FILE,
  CA_KEY_FILE,
  createAuthorityMaterial,
  LeafFactory,
  loadOrCreateAuthority,
  type Authority,
} from '../../src/ca/index.js';

let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ca-'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function freshDir(): string {
  return path.join(tmp, `case-${++n}`);
}

function writePem(name: string, pem: string): string {
  const p = path.join(tmp, `${++n}-${name}.pem`);
  fs.writeFileSync(p, pem);
  return p;
}

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8' });
}

/** openssl verify: exit status and combined output. */
function verify(caFile: string, certPem: string, ...extra: string[]): { ok: boolean; out: string } {
  const r = spawnSync('openssl', ['verify', ...extra, '-CAfile', caFile, writePem('leaf', certPem)], { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** The hex lines that follow an extension heading in `openssl x509 -text` output. */
function extensionBlock(text: string, heading: string): { critical: boolean; body: string } | null {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trim().startsWith(`${heading}:`));
  if (i < 0) return null;
  const body: string[] = [];
  const indent = lines[i]!.search(/\S/);
  for (let j = i + 1; j < lines.length && lines[j]!.search(/\S/) > indent; j++) body.push(lines[j]!.trim());
  return { critical: /critical/.test(lines[i]!), body: body.join('\n') };
}

function keyId(text: string, heading: string): string {
  const b = extensionBlock(text, heading);
  if (!b) throw new Error(`no ${heading}`);
  return b.body.replace(/^keyid:/m, '').replace(/\s/g, '').toUpperCase();
}

describe('loadOrCreateAuthority', () => {
  let dir: string;
  let first: Authority;

  beforeAll(() => {
    dir = freshDir();
    first = loadOrCreateAuthority(dir);
  });

  it('creates the CA directory 0700 and the key 0600', () => {
    expect(first.created).toBe(true);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(first.keyPath).toBe(path.join(dir, CA_KEY_FILE));
    expect(first.certPath).toBe(path.join(dir, CA_CERT_FILE));
    expect(fs.statSync(first.keyPath).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(first.certPath, 'utf8')).toBe(first.certPem);
    // No temporary files left behind.
    expect(fs.readdirSync(dir).sort()).toEqual([CA_KEY_FILE, CA_CERT_FILE].sort());
  });

  it('loads the same CA on the second call', () => {
    const again = loadOrCreateAuthority(dir);
    expect(again.created).toBe(false);
    expect(again.fingerprint).toBe(first.fingerprint);
    expect(again.certPem).toBe(first.certPem);
    expect(again.commonName).toBe(first.commonName);
  });

  it('tightens a key file that became group/world readable', () => {
    const d = freshDir();
    const a = loadOrCreateAuthority(d);
    fs.chmodSync(a.keyPath, 0o644);
    loadOrCreateAuthority(d);
    expect(fs.statSync(a.keyPath).mode & 0o777).toBe(0o600);
  });

  it('reports the fingerprint openssl and node print for ca.pem', () => {
    const out = openssl('x509', '-noout', '-fingerprint', '-sha256', '-in', first.certPath).trim();
    const fromOpenssl = out.slice(out.indexOf('=') + 1);
    expect(fromOpenssl).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(first.fingerprint).toBe(fromOpenssl);
    expect(first.fingerprint).toBe(new X509Certificate(first.certPem).fingerprint256);
  });

  it('is a CA: basicConstraints CA:TRUE and keyUsage keyCertSign, both critical', () => {
    const text = openssl('x509', '-noout', '-text', '-in', first.certPath);
    const bc = extensionBlock(text, 'X509v3 Basic Constraints');
    expect(bc).not.toBeNull();
    expect(bc!.critical).toBe(true);
    expect(bc!.body).toMatch(/CA:TRUE/);
    const ku = extensionBlock(text, 'X509v3 Key Usage');
    expect(ku).not.toBeNull();
    expect(ku!.critical).toBe(true);
    expect(ku!.body).toMatch(/Certificate Sign/);
    expect(new X509Certificate(first.certPem).ca).toBe(true);
    // Self-signed and valid now.
    expect(verify(first.certPath, first.certPem).ok).toBe(true);
    expect(first.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(first.commonName).toMatch(/regtape CA/);
  });

  it('refuses a corrupt ca.pem with CA_INVALID and says what to do, leaving it in place', () => {
    const d = freshDir();
    loadOrCreateAuthority(d);
    const certPath = path.join(d, CA_CERT_FILE);
    fs.writeFileSync(certPath, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    let err: unknown;
    try {
      loadOrCreateAuthority(d);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegtapeError);
    expect((err as RegtapeError).code).toBe('ca-invalid');
    const msg = (err as Error).message;
    expect(msg).toContain(d);
    expect(msg).toMatch(/move it away/);
    expect(msg).toMatch(/regtape ca/);
    // Not silently replaced by a new CA.
    expect(fs.readFileSync(certPath, 'utf8')).toMatch(/not a certificate/);
  });
});

describe('LeafFactory', () => {
  let ca: Authority;
  let leaves: LeafFactory;
  let caText: string;

  beforeAll(() => {
    ca = loadOrCreateAuthority(freshDir());
    leaves = new LeafFactory(ca);
    caText = openssl('x509', '-noout', '-text', '-in', ca.certPath);
  });

  it.each(['registry.test', '127.0.0.1', '::1'])('leaf for %s verifies against the CA as a TLS server cert', (host) => {
    const leaf = leaves.get(host);
    const r = verify(ca.certPath, leaf.certPem, '-purpose', 'sslserver');
    expect(r.out).toMatch(/OK/);
    expect(r.ok).toBe(true);
  });

  it('puts DNS names in a DNS SAN', () => {
    const x = new X509Certificate(leaves.get('registry.test').certPem);
    expect(x.subjectAltName).toBe('DNS:registry.test');
    expect(x.checkHost('registry.test')).toBe('registry.test');
    expect(x.checkHost('other.test')).toBeUndefined();
  });

  it('puts IP literals in an IP SAN (IPv4 and IPv6, brackets stripped)', () => {
    const v4 = new X509Certificate(leaves.get('127.0.0.1').certPem);
    expect(v4.subjectAltName).toMatch(/^IP Address:127\.0\.0\.1$/);
    expect(v4.checkIP('127.0.0.1')).toBe('127.0.0.1');
    const v6 = new X509Certificate(leaves.get('[::1]').certPem);
    expect(v6.subjectAltName).toMatch(/^IP Address:/);
    expect(v6.subjectAltName).not.toMatch(/DNS:/);
    expect(v6.checkIP('::1')).toBe('::1');
    expect(v6.checkIP('::2')).toBeUndefined();
  });

  it('has extKeyUsage serverAuth and is not a CA', () => {
    const text = openssl('x509', '-noout', '-text', '-in', writePem('eku', leaves.get('registry.test').certPem));
    expect(extensionBlock(text, 'X509v3 Extended Key Usage')?.body).toMatch(/TLS Web Server Authentication/);
    expect(new X509Certificate(leaves.get('registry.test').certPem).ca).toBe(false);
  });

  it('authority key id equals the CA subject key id', () => {
    const text = openssl('x509', '-noout', '-text', '-in', writePem('aki', leaves.get('registry.test').certPem));
    const caSki = keyId(caText, 'X509v3 Subject Key Identifier');
    expect(caSki).toMatch(/^([0-9A-F]{2}:)+[0-9A-F]{2}$/);
    expect(keyId(text, 'X509v3 Authority Key Identifier')).toBe(caSki);
  });

  it('notBefore is in the past and the leaf is valid now', () => {
    const x = new X509Certificate(leaves.get('registry.test').certPem);
    expect(new Date(x.validFrom).getTime()).toBeLessThan(Date.now() - 3600_000);
    expect(new Date(x.validTo).getTime()).toBeGreaterThan(Date.now());
  });

  it('issues positive, distinct serials (first byte < 0x80) over 200 hosts', () => {
    const f = new LeafFactory(ca);
    const serials = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const serial = new X509Certificate(f.get(`host-${i}.registry.test`).certPem).serialNumber;
      // Node prints the DER integer content bytes; a leading 0x00 would mean padding of a high bit.
      expect(serial.length % 2).toBe(0);
      const firstByte = parseInt(serial.slice(0, 2), 16);
      expect(firstByte).toBeLessThan(0x80);
      expect(firstByte).toBeGreaterThan(0);
      serials.add(serial);
    }
    expect(serials.size).toBe(200);
    expect(f.size).toBe(200);
  });

  it('caches per host, case-insensitively and ignoring a trailing dot', () => {
    const f = new LeafFactory(ca);
    const a = f.get('Cache.Registry.Test');
    expect(f.get('cache.registry.test')).toBe(a);
    expect(f.get('CACHE.REGISTRY.TEST.')).toBe(a);
    expect(f.size).toBe(1);
    expect(f.get('other.registry.test')).not.toBe(a);
    expect(f.size).toBe(2);
  });

  describe('TLS handshake', () => {
    let server: tls.Server;
    let port: number;
    const sniSeen: string[] = [];

    beforeAll(async () => {
      server = tls.createServer(
        {
          SNICallback: (name, cb) => {
            sniSeen.push(name);
            cb(null, leaves.get(name).context);
          },
          // Clients without SNI (IP literals) get the 127.0.0.1 leaf.
          key: leaves.get('127.0.0.1').keyPem,
          cert: leaves.get('127.0.0.1').certPem,
        },
        (sock) => sock.end('hello'),
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });

    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    function connect(opts: tls.ConnectionOptions): Promise<{ authorized: boolean; error?: string; peerSan?: string; data: string }> {
      return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, ...opts });
        let data = '';
        s.on('secureConnect', () => {
          const peer = s.getPeerCertificate();
          const res = { authorized: s.authorized, error: s.authorizationError?.toString(), peerSan: peer.subjectaltname };
          s.setEncoding('utf8');
          s.on('data', (d) => (data += d));
          s.on('end', () => resolve({ ...res, data }));
        });
        s.on('error', reject);
      });
    }

    it('a client trusting only the CA accepts the leaf served via SNI', async () => {
      const r = await connect({ servername: 'registry.test' });
      expect(r.error).toBeUndefined();
      expect(r.authorized).toBe(true);
      expect(r.peerSan).toBe('DNS:registry.test');
      expect(r.data).toBe('hello');
      expect(sniSeen).toContain('registry.test');
    });

    it('a client connecting to an IP verifies the IP SAN', async () => {
      const r = await connect({});
      expect(r.error).toBeUndefined();
      expect(r.authorized).toBe(true);
      expect(r.peerSan).toBe('IP Address:127.0.0.1');
    });

    it('a client that does not trust the CA rejects the leaf', async () => {
      const other = loadOrCreateAuthority(freshDir());
      await expect(connect({ servername: 'registry.test', ca: other.certPem })).rejects.toThrow(/certificate/i);
    });
  });
});

describe('name constraints', () => {
  let material: { certPem: string; keyPem: string };
  let ca: Authority;

  beforeAll(() => {
    material = createAuthorityMaterial({ nameConstraints: ['example.test'] });
    const d = freshDir();
    fs.mkdirSync(d, { mode: 0o700 });
    fs.writeFileSync(path.join(d, CA_CERT_FILE), material.certPem);
    fs.writeFileSync(path.join(d, CA_KEY_FILE), material.keyPem, { mode: 0o600 });
    ca = loadOrCreateAuthority(d);
  });

  it('loads the written material instead of making a new CA', () => {
    expect(ca.created).toBe(false);
    expect(ca.certPem).toBe(material.certPem);
  });

  it('the CA carries a critical nameConstraints extension permitting the domain', () => {
    const text = openssl('x509', '-noout', '-text', '-in', ca.certPath);
    const nc = extensionBlock(text, 'X509v3 Name Constraints');
    expect(nc).not.toBeNull();
    expect(nc!.critical).toBe(true);
    expect(nc!.body).toMatch(/Permitted:\s*DNS:example\.test/);
  });

  it('a CA made without constraints has none', () => {
    const plain = createAuthorityMaterial();
    const text = openssl('x509', '-noout', '-text', '-in', writePem('plain-ca', plain.certPem));
    expect(extensionBlock(text, 'X509v3 Name Constraints')).toBeNull();
  });

  it('openssl accepts leaves inside the domain and rejects leaves outside it', () => {
    const f = new LeafFactory(ca);
    expect(verify(ca.certPath, f.get('registry.example.test').certPem).ok).toBe(true);
    const outside = verify(ca.certPath, f.get('registry.other.test').certPem);
    expect(outside.ok).toBe(false);
    expect(outside.out).toMatch(/permitted subtree violation/);
  });
});

describe('shared leaf key', () => {
  it('is made once, kept beside the CA (0600), and reused by the next start', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-leafkey-'));
    try {
      const ca = loadOrCreateAuthority(dir);
      const a = new LeafFactory(ca).get('one.test');
      const keyFile = path.join(dir, 'leaf-key.pem');
      expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
      const b = new LeafFactory(loadOrCreateAuthority(dir)).get('two.test');
      expect(new X509Certificate(b.certPem).publicKey.export({ type: 'spki', format: 'pem' })).toEqual(new X509Certificate(a.certPem).publicKey.export({ type: 'spki', format: 'pem' }));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
