import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { RegtapeError } from '../errors/index.js';

const { pki, asn1 } = forge;

/** The per-install certificate authority that signs the proxy's leaf certificates. */
export interface Authority {
  /** Directory holding the CA (mode 0700). */
  dir: string;
  /** Path of the CA certificate (PEM), the file clients must trust. */
  certPath: string;
  /** Path of the CA private key (PEM, mode 0600). */
  keyPath: string;
  certPem: string;
  /** SHA-256 fingerprint of the DER certificate, colon-separated upper-case hex (as openssl prints it). */
  fingerprint: string;
  /** Subject common name, e.g. "regtape CA 2026-11-27 (host)". */
  commonName: string;
  notAfter: Date;
  /** Parsed certificate (for issuing leaves). */
  cert: forge.pki.Certificate;
  /** Native key object: all signing goes through node's crypto (forge's JS RSA is 40× slower). */
  key: KeyObject;
  /** Whether this call created the CA. */
  created: boolean;
}

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';

/** Where regtape keeps its CA: $REGTAPE_HOME, else $XDG_CONFIG_HOME/regtape, else ~/.config/regtape. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REGTAPE_HOME) return path.resolve(env.REGTAPE_HOME);
  const xdg = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(xdg, 'regtape');
}

/**
 * A positive, 16-byte serial with no leading zero byte. Go >= 1.23 rejects negative
 * serials at parse time ("x509: negative serial number"); http-mitm-proxy's generator
 * makes one about half the time, which is why we issue certificates ourselves.
 */
export function positiveSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 1;
  return b.toString('hex');
}

/** Sign a forge certificate with a native key (sha256WithRSA). */
export function signNative(cert: forge.pki.Certificate, key: KeyObject): void {
  const md = forge.md.sha256.create();
  const signer = {
    sign: () => {
      const tbs = Buffer.from(asn1.toDer((cert as unknown as { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate).getBytes(), 'binary');
      return sign('sha256', tbs, key).toString('binary');
    },
  };
  cert.sign(signer as unknown as forge.pki.rsa.PrivateKey, md);
}

export function fingerprintOf(certPem: string): string {
  const der = Buffer.from(asn1.toDer(pki.certificateToAsn1(pki.certificateFromPem(certPem))).getBytes(), 'binary');
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/**
 * Subject key identifier: SHA-1 of the DER SubjectPublicKeyInfo (RFC 7093 §2 method 1
 * style). Leaves carry it as their authority key id; Go compares the bytes only.
 */
export function subjectKeyId(publicKeyPem: string): string {
  const b64 = publicKeyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return createHash('sha1').update(Buffer.from(b64, 'base64')).digest('binary');
}

export interface CreateAuthorityOptions {
  /** Restrict the CA to these DNS domains (X.509 name constraints, permitted subtrees). */
  nameConstraints?: string[];
  /** Clock, for tests. */
  now?: Date;
}

/** Create a new CA certificate and key (not written anywhere). */
export function createAuthorityMaterial(opts: CreateAuthorityOptions = {}): { certPem: string; keyPem: string } {
  const now = opts.now ?? new Date();
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(pubPem);
  cert.serialNumber = positiveSerialHex();
  cert.validity.notBefore = new Date(now.getTime() - 24 * 3600 * 1000);
  cert.validity.notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000);
  const cn = `regtape CA ${now.toISOString().slice(0, 10)} (${os.hostname()})`;
  const attrs = [
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: 'regtape, local debugging only' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  const ski = subjectKeyId(pubPem);
  const exts: unknown[] = [
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier', subjectKeyIdentifier: forge.util.bytesToHex(ski) },
  ];
  if (opts.nameConstraints?.length) exts.push(nameConstraintsExtension(opts.nameConstraints));
  cert.setExtensions(exts as never);
  signNative(cert, privateKey);
  return { certPem: pki.certificateToPem(cert), keyPem };
}

/**
 * X.509 nameConstraints (RFC 5280 §4.2.1.10), critical: permitted dNSName subtrees for the
 * domains, and every IPv4 and IPv6 address excluded (iPAddress 0.0.0.0/0 and ::/0). A
 * DNS-only constraint leaves IP names unconstrained, so without the exclusion OpenSSL and
 * Go accept a leaf for any IP literal from a "docker.io only" CA.
 */
function nameConstraintsExtension(domains: string[]): unknown {
  const subtree = (tag: number, value: string) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, false, value)]);
  const permitted = domains.map((d) => subtree(2, d.trim()));
  const excluded = [subtree(7, '\0'.repeat(8)), subtree(7, '\0'.repeat(32))];
  const value = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, permitted),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 1, true, excluded),
  ]);
  return { id: '2.5.29.30', critical: true, value: asn1.toDer(value).getBytes() };
}

function toAuthority(dir: string, certPem: string, keyPem: string, created: boolean): Authority {
  const cert = pki.certificateFromPem(certPem);
  const cnAttr = cert.subject.getField('CN') as { value: string } | null;
  return {
    dir,
    certPath: path.join(dir, CA_CERT_FILE),
    keyPath: path.join(dir, CA_KEY_FILE),
    certPem,
    fingerprint: fingerprintOf(certPem),
    commonName: cnAttr?.value ?? '',
    notAfter: cert.validity.notAfter,
    cert,
    key: createPrivateKey(keyPem),
    created,
  };
}

/**
 * Load the CA from `dir`, creating it on first use (dir 0700, key 0600). Creation is
 * atomic: files are written under temporary names and renamed, key first, so a
 * concurrent or interrupted run never leaves a certificate without its key.
 */
export function loadOrCreateAuthority(dir: string, opts: CreateAuthorityOptions = {}): Authority {
  const certPath = path.join(dir, CA_CERT_FILE);
  const keyPath = path.join(dir, CA_KEY_FILE);
  if (fs.existsSync(certPath) && fs.existsSync(keyPath)) return loadAuthority(dir);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  } catch (e) {
    throw new RegtapeError('ca-error', `cannot create the CA directory ${dir}: ${(e as Error).message} (set REGTAPE_HOME to a writable directory)`);
  }
  const { certPem, keyPem } = createAuthorityMaterial(opts);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const keyTmp = `${keyPath}.tmp-${tag}`;
  const certTmp = `${certPath}.tmp-${tag}`;
  fs.writeFileSync(keyTmp, keyPem, { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(certTmp, certPem, { mode: 0o644, flag: 'wx' });
  if (fs.existsSync(certPath) && fs.existsSync(keyPath)) {
    // Another process won the race: use its CA.
    fs.rmSync(keyTmp, { force: true });
    fs.rmSync(certTmp, { force: true });
    return loadAuthority(dir);
  }
  fs.renameSync(keyTmp, keyPath);
  fs.renameSync(certTmp, certPath);
  return toAuthority(dir, certPem, keyPem, true);
}

/** Load an existing CA; errors say which file is wrong and what to do. */
export function loadAuthority(dir: string): Authority {
  const certPath = path.join(dir, CA_CERT_FILE);
  const keyPath = path.join(dir, CA_KEY_FILE);
  let certPem: string;
  let keyPem: string;
  try {
    certPem = fs.readFileSync(certPath, 'utf8');
    keyPem = fs.readFileSync(keyPath, 'utf8');
  } catch (e) {
    throw new RegtapeError('ca-error', `cannot read the CA in ${dir}: ${(e as Error).message}`);
  }
  try {
    const a = toAuthority(dir, certPem, keyPem, false);
    const mode = fs.statSync(keyPath).mode & 0o777;
    if (mode & 0o077) fs.chmodSync(keyPath, 0o600);
    return a;
  } catch (e) {
    throw new RegtapeError('ca-invalid', `the CA in ${dir} is not valid (${(e as Error).message}); move it away and run \`regtape ca\` to make a new one`);
  }
}

/** Is there a CA in `dir`? */
export function authorityExists(dir: string): boolean {
  return fs.existsSync(path.join(dir, CA_CERT_FILE)) || fs.existsSync(path.join(dir, CA_KEY_FILE));
}

/** Move an existing CA aside (`*.old-<time>`), so a new one is created on next use. */
export function retireAuthority(dir: string): void {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const f of [CA_CERT_FILE, CA_KEY_FILE]) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) fs.renameSync(p, `${p}.old-${stamp}`);
  }
}

/** The DNS domains a CA is limited to (empty: unconstrained). */
export function nameConstraintsOf(cert: forge.pki.Certificate): string[] {
  const ext = cert.getExtension({ id: '2.5.29.30' } as never) as { value?: string } | null;
  if (!ext?.value) return [];
  try {
    const seq = asn1.fromDer(ext.value);
    const permitted = (seq.value as forge.asn1.Asn1[]).find((v) => v.type === 0);
    return ((permitted?.value as forge.asn1.Asn1[]) ?? []).map((sub) => String(((sub.value as forge.asn1.Asn1[])[0]!).value));
  } catch {
    return [];
  }
}
