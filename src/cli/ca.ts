import fs from 'node:fs';
import path from 'node:path';
import { nameConstraintsOf, type Authority } from '../ca/index.js';

/**
 * A directory holding only the CA's public certificate (`<home>/trust/regtape-ca.pem`),
 * for SSL_CERT_DIR-style settings: Go and OpenSSL read every file of such a directory,
 * so it must never be the CA directory itself, which holds the CA key.
 */
export function publicCertDir(ca: Authority): string {
  const dir = path.join(ca.dir, 'trust');
  const file = path.join(dir, 'regtape-ca.pem');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const f of fs.readdirSync(dir)) if (f !== 'regtape-ca.pem') fs.rmSync(path.join(dir, f), { force: true });
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== ca.certPem) {
    fs.writeFileSync(`${file}.tmp`, ca.certPem, { mode: 0o644 });
    fs.renameSync(`${file}.tmp`, file);
  }
  return dir;
}

/** Client names `regtape ca --setup` knows. */
export const SETUP_TARGETS = ['dockerd', 'containerd', 'podman', 'buildah', 'skopeo', 'crane', 'curl', 'node', 'system'] as const;
export type SetupTarget = (typeof SETUP_TARGETS)[number];

/** `regtape ca`: where the CA is, its fingerprint and PEM. */
export function describeCa(ca: Authority): string {
  return [
    `CA certificate: ${ca.certPath}`,
    `CA key:         ${ca.keyPath} (mode 0600; keep it private)`,
    `Subject:        ${ca.commonName}`,
    `SHA-256:        ${ca.fingerprint}`,
    `Valid until:    ${ca.notAfter.toISOString().slice(0, 10)}`,
    `Limited to:     ${nameConstraintsOf(ca.cert).join(', ') || 'any host (no name constraints; see --name-constraints)'}`,
    ca.created ? 'Created now.' : '',
    '',
    ca.certPem.trimEnd(),
    '',
    `Point a client at it with \`regtape ca --setup ${SETUP_TARGETS.join('|')}\`.`,
  ]
    .filter((l, i) => l !== '' || i > 4)
    .join('\n');
}

/** What to do so that a client goes through the proxy and trusts the CA. */
export function setupInstructions(target: SetupTarget, ca: Authority, proxyUrl: string): string {
  const p = ca.certPath;
  switch (target) {
    case 'dockerd':
      return `# dockerd reads proxy settings only from its environment, and trusts extra CAs through
# the system store or SSL_CERT_FILE / SSL_CERT_DIR (/etc/docker/certs.d does not cover
# docker.io's token and CDN hosts).

# 1. Proxy: a systemd drop-in
sudo mkdir -p /etc/systemd/system/docker.service.d
sudo tee /etc/systemd/system/docker.service.d/regtape-proxy.conf <<'EOF'
[Service]
Environment="HTTPS_PROXY=${proxyUrl}"
Environment="HTTP_PROXY=${proxyUrl}"
Environment="NO_PROXY=localhost,127.0.0.1,::1"
EOF

# 2. Trust the regtape CA, either system-wide (Debian/Ubuntu):
sudo cp ${p} /usr/local/share/ca-certificates/regtape.crt && sudo update-ca-certificates
#    or only for dockerd, with SSL_CERT_FILE pointing at the system roots plus regtape's CA:
#      sudo mkdir -p /etc/regtape && cat /etc/ssl/certs/ca-certificates.crt ${p} | sudo tee /etc/regtape/bundle.pem >/dev/null
#      Environment="SSL_CERT_FILE=/etc/regtape/bundle.pem"   (add to the drop-in above)
#    (SSL_CERT_DIR=/etc/ssl/certs:${publicCertDir(ca)} works too: Go reads every PEM in those directories;
#    that directory holds only the public certificate, never the CA key.)

# 3. Restart
sudo systemctl daemon-reload && sudo systemctl restart docker

# Undo: sudo rm /etc/systemd/system/docker.service.d/regtape-proxy.conf /usr/local/share/ca-certificates/regtape.crt
#       sudo update-ca-certificates --fresh && sudo systemctl daemon-reload && sudo systemctl restart docker
# Note: dockerd skips TLS verification for registries whose name resolves to 127.0.0.0/8.
`;
    case 'containerd':
      return `# containerd (and ctr) take the proxy from the environment of the daemon / command:
sudo mkdir -p /etc/systemd/system/containerd.service.d
printf '[Service]\\nEnvironment="HTTPS_PROXY=${proxyUrl}"\\n' | sudo tee /etc/systemd/system/containerd.service.d/regtape-proxy.conf
sudo cp ${p} /usr/local/share/ca-certificates/regtape.crt && sudo update-ca-certificates
sudo systemctl daemon-reload && sudo systemctl restart containerd
# ctr alone: HTTPS_PROXY=${proxyUrl} SSL_CERT_FILE=${p} ctr images pull …
`;
    case 'podman':
      return `# podman: proxy from the environment, CA per registry host through --cert-dir (a dir with ca.crt)
mkdir -p ~/.config/regtape/certs.d && cp ${p} ~/.config/regtape/certs.d/ca.crt
HTTPS_PROXY=${proxyUrl} podman pull --cert-dir ~/.config/regtape/certs.d IMAGE
# or trust it system-wide: sudo cp ${p} /usr/local/share/ca-certificates/regtape.crt && sudo update-ca-certificates
`;
    case 'skopeo':
      return `# skopeo: proxy from the environment, CA through --src-cert-dir / --dest-cert-dir (a dir with ca.crt)
mkdir -p /tmp/regtape-certs && cp ${p} /tmp/regtape-certs/ca.crt
HTTPS_PROXY=${proxyUrl} skopeo inspect --cert-dir /tmp/regtape-certs docker://IMAGE
HTTPS_PROXY=${proxyUrl} skopeo copy --src-cert-dir /tmp/regtape-certs docker://IMAGE oci:/tmp/out:tag
`;
    case 'buildah':
      return `# buildah: like podman, proxy from the environment, CA through --cert-dir (a dir with ca.crt)
mkdir -p ${path.join(ca.dir, 'certs.d')} && cp ${p} ${path.join(ca.dir, 'certs.d', 'ca.crt')}
HTTPS_PROXY=${proxyUrl} buildah pull --cert-dir ${path.join(ca.dir, 'certs.d')} IMAGE
`;
    case 'crane':
      return `# crane / go-containerregistry: proxy from the environment, CA through Go's SSL_CERT_FILE
cat /etc/ssl/certs/ca-certificates.crt ${p} > ${path.join(ca.dir, 'bundle.pem')}
HTTPS_PROXY=${proxyUrl} SSL_CERT_FILE=${path.join(ca.dir, 'bundle.pem')} crane manifest IMAGE
# or SSL_CERT_DIR=/etc/ssl/certs:${publicCertDir(ca)} (only the public certificate is in that directory)
`;
    case 'node':
      return `# Node.js: NODE_EXTRA_CA_CERTS adds the CA to Node's roots; fetch()/undici needs a proxy agent
NODE_EXTRA_CA_CERTS=${p} HTTPS_PROXY=${proxyUrl} node app.js
# Node >= 24: NODE_USE_ENV_PROXY=1 makes fetch() and http(s) honour HTTPS_PROXY
`;
    case 'curl':
      return `curl -x ${proxyUrl} --cacert ${p} https://registry-1.docker.io/v2/
`;
    case 'system':
      return `# Debian/Ubuntu
sudo cp ${p} /usr/local/share/ca-certificates/regtape.crt && sudo update-ca-certificates
# Fedora/RHEL
sudo cp ${p} /etc/pki/ca-trust/source/anchors/regtape.crt && sudo update-ca-trust
# Undo by removing the file and re-running the update command (Debian: update-ca-certificates --fresh).
`;
  }
}
