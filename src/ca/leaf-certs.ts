import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';
import { positiveSerialHex, signNative, subjectKeyId, type Authority } from './authority.js';

const { pki } = forge;

/** A leaf certificate for one host, ready for a TLS server context. */
export interface Leaf {
  host: string;
  certPem: string;
  keyPem: string;
  /** Reusable secure context (cert + key + CA chain, ALPN is set per socket). */
  context: tls.SecureContext;
}

/**
 * Issues leaf certificates per SNI host, signed by the regtape CA, cached in memory.
 *
 * One RSA key is made at startup and shared by every leaf: per-host key generation
 * costs 120–250 ms of blocked event loop (deps.md §1.4); with the shared key and the
 * native signer a new host costs 1–6.5 ms.
 *
 * What Go's crypto/x509 (dockerd, containerd, skopeo) needs and gets here: SAN (DNS or
 * IP, never CN only), extKeyUsage serverAuth, a positive serial, sha256WithRSA,
 * authority key id = CA subject key id, notBefore one day back (VM clock skew),
 * validity 397 days.
 */
export class LeafFactory {
  private readonly keyPem: string;
  private readonly publicKey: forge.pki.PublicKey;
  private readonly ski: string;
  private readonly cache = new Map<string, Leaf>();

  constructor(private readonly ca: Authority) {
    const privateKey = leafKey(ca.dir);
    const publicKey = createPublicKey(privateKey);
    this.keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.publicKey = pki.publicKeyFromPem(pubPem);
    this.ski = forge.util.bytesToHex(subjectKeyId(pubPem));
  }

  /** Leaf for `host` (DNS name or IP literal), issued on first use and cached. */
  get(host: string): Leaf {
    const h = normalizeHost(host);
    let leaf = this.cache.get(h);
    if (!leaf) {
      leaf = this.issue(h);
      this.cache.set(h, leaf);
    }
    return leaf;
  }

  /** Number of hosts issued so far. */
  get size(): number {
    return this.cache.size;
  }

  private issue(host: string): Leaf {
    const now = Date.now();
    const cert = pki.createCertificate();
    cert.publicKey = this.publicKey;
    cert.serialNumber = positiveSerialHex();
    cert.validity.notBefore = new Date(now - 24 * 3600 * 1000);
    cert.validity.notAfter = new Date(now + 397 * 24 * 3600 * 1000);
    cert.setSubject([{ name: 'commonName', value: host.slice(0, 64) }]);
    cert.setIssuer(this.ca.cert.subject.attributes);
    const caSki = caSubjectKeyId(this.ca.cert);
    const san = net.isIP(host) ? { type: 7, ip: host } : { type: 2, value: host };
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [san] },
      { name: 'subjectKeyIdentifier', subjectKeyIdentifier: this.ski },
      ...(caSki ? [{ name: 'authorityKeyIdentifier', keyIdentifier: caSki }] : []),
    ] as never);
    signNative(cert, this.ca.key);
    const certPem = pki.certificateToPem(cert);
    const context = tls.createSecureContext({ cert: certPem + this.ca.certPem, key: this.keyPem });
    return { host, certPem, keyPem: this.keyPem, context };
  }
}

/** The CA's subjectKeyIdentifier bytes (binary string), if it has one. */
function caSubjectKeyId(cert: forge.pki.Certificate): string | undefined {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
  return ext?.subjectKeyIdentifier ? forge.util.hexToBytes(ext.subjectKeyIdentifier) : undefined;
}

/** Lower-case, strip IPv6 brackets and a trailing dot. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** File beside the CA holding the shared leaf key (0600). */
export const LEAF_KEY_FILE = 'leaf-key.pem';

/**
 * The shared leaf key: loaded from the CA directory, or made once and kept there, so a
 * start costs no RSA key generation (120–250 ms of blocked event loop). Falls back to
 * an in-memory key when the directory cannot be written.
 */
function leafKey(dir: string): KeyObject {
  const file = path.join(dir, LEAF_KEY_FILE);
  try {
    return createPrivateKey(fs.readFileSync(file, 'utf8'));
  } catch {
    // missing or unreadable: make one
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  try {
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch {
    // read-only CA directory: keep the key in memory for this process
  }
  return privateKey;
}
