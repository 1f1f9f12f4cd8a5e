import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import forge from 'node-forge';
import { positiveSerialHex, subjectKeyId, type Authority } from './authority.js';
import { bits, bool, certificateSubject, explicit, implicit, nul, octets, oid, pem, seq, set, time, uint, utf8 } from './der.js';

/** What is the same in every leaf, encoded once. */
interface LeafTemplate {
  /** The CA's subject Name, byte for byte (the leaves' issuer). */
  issuer: Buffer;
  /** signature AlgorithmIdentifier for the CA's key. */
  sigAlg: Buffer;
  /** The shared leaf key's SubjectPublicKeyInfo. */
  spki: Buffer;
  /** Extensions that do not depend on the host (basicConstraints … authorityKeyIdentifier). */
  fixedExtensions: Buffer[];
}

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
 * costs 120–250 ms of blocked event loop (deps.md §1.4). The certificate is built as
 * DER from a template encoded once (src/ca/der.ts) and signed with node:crypto: a new
 * host costs ~1.5 ms of CPU, most of it OpenSSL parsing the PEM into a secure context
 * (node-forge's object model took another ~1.3 ms; BENCHMARKS.md "Cost", leaf rows).
 *
 * What Go's crypto/x509 (dockerd, containerd, skopeo) needs and gets here: SAN (DNS or
 * IP, never CN only), extKeyUsage serverAuth, a positive serial, sha256WithRSA,
 * authority key id = CA subject key id, notBefore one day back (VM clock skew),
 * validity 397 days.
 */
export class LeafFactory {
  private readonly keyPem: string;
  private readonly template: LeafTemplate;
  private readonly cache = new Map<string, Leaf>();

  constructor(private readonly ca: Authority) {
    const privateKey = leafKey(ca.dir);
    const publicKey = createPublicKey(privateKey);
    this.keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const ski = Buffer.from(subjectKeyId(publicKey.export({ type: 'spki', format: 'pem' }).toString()), 'binary');
    const caSki = caSubjectKeyId(ca.cert);
    const ext = (id: string, value: Buffer, critical = false) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
    this.template = {
      issuer: certificateSubject(Buffer.from(ca.certPem.replace(/-----[^-]+-----|\s+/g, ''), 'base64')),
      sigAlg: ca.key.asymmetricKeyType === 'ec' ? seq(oid('1.2.840.10045.4.3.2')) : seq(oid('1.2.840.113549.1.1.11'), nul()),
      spki: publicKey.export({ type: 'spki', format: 'der' }),
      fixedExtensions: [
        ext('2.5.29.19', seq()), // basicConstraints: not a CA
        // keyUsage digitalSignature + keyEncipherment (bits 0 and 2), critical
        ext('2.5.29.15', bits(Buffer.from([0xa0]), 5), true),
        ext('2.5.29.37', seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage serverAuth
        ext('2.5.29.14', octets(ski)), // subjectKeyIdentifier
        ...(caSki ? [ext('2.5.29.35', seq(implicit(0, caSki)))] : []), // authorityKeyIdentifier
      ],
    };
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
    const t = this.template;
    const now = Date.now();
    const ip = net.isIP(host);
    if (!ip && !/^[\x21-\x7e]{1,253}$/.test(host)) throw new Error(`cannot issue a certificate for host name ${JSON.stringify(host.slice(0, 80))}`);
    // subjectAltName: iPAddress [7] (4 or 16 bytes) or dNSName [2] (IA5String)
    const san = ip ? implicit(7, ipBytes(host, ip)) : implicit(2, Buffer.from(host, 'latin1'));
    const tbs = seq(
      explicit(0, uint(Buffer.from([2]))), // v3
      uint(Buffer.from(positiveSerialHex(), 'hex')),
      t.sigAlg,
      t.issuer,
      seq(time(new Date(now - 24 * 3600 * 1000)), time(new Date(now + 397 * 24 * 3600 * 1000))),
      seq(set(seq(oid('2.5.4.3'), utf8(host.slice(0, 64))))),
      t.spki,
      explicit(3, seq(t.fixedExtensions[0]!, t.fixedExtensions[1]!, t.fixedExtensions[2]!, seq(oid('2.5.29.17'), octets(seq(san))), ...t.fixedExtensions.slice(3))),
    );
    const der = seq(tbs, t.sigAlg, bits(sign('sha256', tbs, this.ca.key)));
    const certPem = pem('CERTIFICATE', der);
    const context = tls.createSecureContext({ cert: certPem + this.ca.certPem, key: this.keyPem });
    return { host, certPem, keyPem: this.keyPem, context };
  }
}

/** The 4 or 16 bytes of an IP literal. */
function ipBytes(host: string, family: number): Buffer {
  if (family === 4) return Buffer.from(host.split('.').map(Number));
  const [head, tail = ''] = host.includes('::') ? host.split('::') : [host, undefined];
  const words = (s: string | undefined) => (s ? s.split(':') : []);
  let h = words(head);
  let tl = words(tail);
  // an embedded IPv4 tail (::ffff:1.2.3.4) is two words
  const v4 = (w: string[]) => (w.length && w[w.length - 1]!.includes('.') ? [...w.slice(0, -1), ...ipv4Words(w[w.length - 1]!)] : w);
  h = v4(h);
  tl = v4(tl);
  const all = host.includes('::') ? [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl] : h;
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(parseInt(w, 16), i * 2));
  return out;
}

function ipv4Words(v4: string): string[] {
  const b = v4.split('.').map(Number);
  return [((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
}

/** The CA's subjectKeyIdentifier bytes (binary string), if it has one. */
function caSubjectKeyId(cert: forge.pki.Certificate): Buffer | undefined {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
  return ext?.subjectKeyIdentifier ? Buffer.from(ext.subjectKeyIdentifier, 'hex') : undefined;
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
