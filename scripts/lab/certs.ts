/**
 * Certificates for the lab: a test CA (the *upstream* CA a recorder is told to trust), one TLS leaf for all
 * lab names, and a self-signed token-signing certificate for the token server. RSA keys come from
 * node:crypto (forge's key generation is slow); certificates are built with node-forge.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

/** A certificate with its private key, both PEM. */
export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

/** Everything {@link makeLabCerts} produces. */
export interface LabCerts {
  /** The lab's test CA (trust this to talk to the lab over TLS). */
  ca: CertAndKey;
  /** TLS server certificate for every lab name (and the lab IPs), issued by {@link LabCerts.ca}. */
  leaf: CertAndKey;
  /** Self-signed certificate whose key signs registry tokens (distribution's `rootcertbundle`). */
  tokenSigner: CertAndKey;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function rsaKeyPair(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { publicPem: publicKey, privatePem: privateKey };
}

/** A positive, non-zero 128-bit serial as hex (high bit clear, low bit of the first byte set). */
function serialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 1;
  return b.toString('hex');
}

function validity(cert: forge.pki.Certificate, days: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
}

function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert);
}

/** Builds the CA, the leaf for `dnsNames` (+ `ips`) and the token-signing certificate. */
export function makeLabCerts(dnsNames: readonly string[], ips: readonly string[] = []): LabCerts {
  // CA
  const caKeys = rsaKeyPair();
  const caPriv = forge.pki.privateKeyFromPem(caKeys.privatePem);
  const ca = forge.pki.createCertificate();
  ca.publicKey = forge.pki.publicKeyFromPem(caKeys.publicPem);
  ca.serialNumber = serialHex();
  validity(ca, 3650);
  const caName = [
    { name: 'commonName', value: 'regtape lab test CA' },
    { name: 'organizationName', value: 'regtape lab' },
  ];
  ca.setSubject(caName);
  ca.setIssuer(caName);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caPriv, forge.md.sha256.create());
  const caSki = ca.generateSubjectKeyIdentifier().getBytes();

  // TLS leaf
  const leafKeys = rsaKeyPair();
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = forge.pki.publicKeyFromPem(leafKeys.publicPem);
  leaf.serialNumber = serialHex();
  validity(leaf, 365);
  leaf.setSubject([{ name: 'commonName', value: dnsNames[0] ?? 'lab' }]);
  leaf.setIssuer(caName);
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caSki },
  ]);
  leaf.sign(caPriv, forge.md.sha256.create());

  // Token signer: self-signed, no EKU (Go treats "no EKU" as any usage when distribution verifies x5c).
  const tsKeys = rsaKeyPair();
  const tsPriv = forge.pki.privateKeyFromPem(tsKeys.privatePem);
  const ts = forge.pki.createCertificate();
  ts.publicKey = forge.pki.publicKeyFromPem(tsKeys.publicPem);
  ts.serialNumber = serialHex();
  validity(ts, 365);
  const tsName = [{ name: 'commonName', value: 'regtape lab token signer' }];
  ts.setSubject(tsName);
  ts.setIssuer(tsName);
  ts.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ts.sign(tsPriv, forge.md.sha256.create());

  return {
    ca: { certPem: toPem(ca), keyPem: caKeys.privatePem },
    leaf: { certPem: toPem(leaf), keyPem: leafKeys.privatePem },
    tokenSigner: { certPem: toPem(ts), keyPem: tsKeys.privatePem },
  };
}

/** Base64 (standard, not url) DER of the first certificate in a PEM, as JWT `x5c` wants it. */
export function pemToDerBase64(certPem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(certPem);
  if (!m?.[1]) throw new Error('no certificate in PEM');
  return m[1].replace(/\s+/g, '');
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32NoPad(buf: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The libtrust key id of a public key (what distribution matches a JWT `kid` against): sha256 of the DER
 * SubjectPublicKeyInfo, first 30 bytes, base32 without padding, groups of 4 joined by ':'.
 */
export function libtrustKeyId(key: KeyObject | string): string {
  const pub = typeof key === 'string' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  const b32 = base32NoPad(createHash('sha256').update(der).digest().subarray(0, 30));
  return b32.match(/.{1,4}/g)?.join(':') ?? b32;
}
