import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { defaultHome, LeafFactory, loadOrCreateAuthority } from '../ca/index.js';
import { flowUrl } from '../flow/index.js';
import { silentLogger, type Logger } from '../log/index.js';
import { HostMap, parseListenAddress, startProxy, type RunningProxy } from '../proxy/index.js';
import { FlowDescriber } from '../pipeline/index.js';
import { MAX_MANIFEST } from '../registry/index.js';
import { Recording } from '../store/index.js';
import { buildCatalog, type Catalog } from './catalog.js';
import { Responder, type Miss } from './responder.js';
import { parseFault } from './faults.js';
import { RegtapeError } from '../errors/index.js';
import type { Prefer } from './answers.js';
import { canonicalRegistry } from './hosts.js';
import { TokenMinter } from './token.js';

export interface ReplayOptions {
  /** Path of the recording (NAME.db, with NAME.blobs/ beside it), or an open Recording. */
  recording: string | Recording;
  /** Proxy mode: HTTPS proxy address; `false` turns it off. Default '127.0.0.1:0' (a free port). */
  listen?: string | false;
  /** Mirror mode: registry endpoint address; `false` turns it off. Default '127.0.0.1:0'. */
  mirror?: string | false;
  /** Mirror mode: the recorded registry served at /v2/ when the request has no `ns=`. */
  registry?: string;
  /** Mirror mode over HTTPS, with a certificate from the regtape CA (default: plain HTTP). */
  mirrorTls?: boolean;
  /** Fault rules `FILTER => ACTION [once|xN]` (see faults.ts), tried in order. */
  faults?: string[];
  /**
   * Which recorded answer wins when a request was answered differently at different times:
   * 'last' (default: in order of recording, the last one sticks) or 'success' (the last
   * success if there was one).
   */
  prefer?: Prefer;
  /** Count down `ratelimit-remaining` on manifest GETs from N (true: from the recorded value) and answer 429 at zero. */
  ratelimitCountdown?: number | boolean;
  /** Where the CA lives (default $REGTAPE_HOME / ~/.config/regtape). */
  home?: string;
  log?: Logger;
}

/** What a test suite gets from `startReplay()`. */
export interface ReplayHandle {
  /** http://127.0.0.1:PORT for HTTPS_PROXY (proxy mode), or null. */
  proxyUrl: string | null;
  /** http://127.0.0.1:PORT, a registry endpoint (mirror mode), or null. */
  mirrorUrl: string | null;
  /** The CA clients must trust in proxy mode. */
  caCertPem: string;
  caCertPath: string;
  /** Requests that had no recorded answer, with the closest recorded request. */
  misses(): Miss[];
  /** Recorded flows never used to answer a request. */
  unused(): Array<{ id: number; method: string; url: string }>;
  /** Misses and unused flows as a JSON-able report. */
  report(): ReplayReport;
  /** How often each fault rule fired. */
  faults(): Array<{ rule: string; fired: number }>;
  close(): Promise<void>;
}

export interface ReplayReport {
  recording: string;
  misses: Miss[];
  unused: Array<{ id: number; method: string; url: string }>;
}

/**
 * Serve a recording as an offline registry: an HTTPS proxy impersonating every
 * recorded host (it never connects anywhere) and/or a plain-HTTP registry endpoint
 * for mirror configurations. In-process; ports are free ones by default.
 */
export async function startReplay(o: ReplayOptions): Promise<ReplayHandle> {
  const log = o.log ?? silentLogger;
  const rec = typeof o.recording === 'string' ? Recording.open(o.recording, { readonly: true }) : o.recording;
  const ownsRecording = typeof o.recording === 'string';
  const flows = rec.list();
  const describer = new FlowDescriber();
  for (const f of flows) describer.describe(f);
  const classifier = describer.classifier;
  const catalog: Catalog = buildCatalog(flows, (sha) => rec.readBodySync(sha, MAX_MANIFEST));
  if (o.registry && !catalog.registries.has(canonicalRegistry(o.registry))) {
    throw new RegtapeError('bad-argument', `--registry ${o.registry}: not in the recording (recorded: ${[...catalog.registries.keys()].join(', ') || 'none'})`);
  }
  const faults = (o.faults ?? []).map(parseFault);
  const minter = await TokenMinter.create();
  const responder = new Responder({ catalog, bodies: rec, log, defaultRegistry: o.registry, faults, classifier, minter, prefer: o.prefer, ratelimitCountdown: o.ratelimitCountdown });
  const ca = loadOrCreateAuthority(o.home ?? defaultHome());

  const leafs = new LeafFactory(ca);
  let proxy: RunningProxy | null = null;
  const listen = o.listen === undefined ? '127.0.0.1:0' : o.listen;
  if (listen !== false) {
    const { host, port } = parseListenAddress(listen, '--listen');
    proxy = await startProxy({
      host,
      port,
      ca,
      leafs,
      hostMap: new HostMap(),
      observer: { begin: () => ({ end: () => {} }) },
      log,
      respond: (req, res, t) => responder.handle(req, res, { mode: 'proxy', scheme: t.scheme, host: t.host, port: t.port }),
    });
  }

  let mirror: http.Server | https.Server | null = null;
  let mirrorUrl: string | null = null;
  const mirrorAddr = o.mirror === undefined ? '127.0.0.1:0' : o.mirror;
  if (mirrorAddr !== false) {
    const { host, port } = parseListenAddress(mirrorAddr, '--mirror');
    // requestTimeout 0: Node 20 answers 408 after 300 s otherwise; a slow 2 GB push takes longer.
    const serverOptions = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 };
    if (o.mirrorTls) {
      const first = leafs.get(host);
      mirror = https.createServer({
        ...serverOptions,
        cert: first.certPem + ca.certPem,
        key: first.keyPem,
        ALPNProtocols: ['http/1.1'],
        SNICallback: (name, cb) => cb(null, leafs.get(name || host).context),
      });
    } else mirror = http.createServer(serverOptions);
    mirror.on('request', (req, res) => responder.handle(req, res, { mode: 'mirror', base: mirrorUrl! }));
    await new Promise<void>((resolve, reject) => {
      mirror!.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(e.code === 'EADDRINUSE' ? `${host}:${port} is already in use; pick another with --mirror HOST:PORT` : `cannot listen on ${host}:${port}: ${e.message}`)),
      );
      mirror!.listen(port, host, () => resolve());
    });
    mirrorUrl = `${o.mirrorTls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${(mirror.address() as net.AddressInfo).port}`;
  }

  const unused = () =>
    flows
      .filter((f) => !catalog.used.has(f.id) && f.registry?.role !== 'ping' && f.state === 'complete')
      .map((f) => ({ id: f.id, method: f.request.method, url: flowUrl(f.request) }));
  let closed = false;
  return {
    proxyUrl: proxy?.url ?? null,
    mirrorUrl,
    caCertPem: ca.certPem,
    caCertPath: ca.certPath,
    misses: () => [...responder.misses],
    unused,
    report: () => ({ recording: rec.path, misses: [...responder.misses], unused: unused() }),
    faults: () => faults.map((f) => ({ rule: f.source, fired: f.fired })),
    close: async () => {
      if (closed) return;
      closed = true;
      await proxy?.close();
      if (mirror) {
        mirror.closeAllConnections();
        await new Promise<void>((r) => mirror!.close(() => r()));
      }
      if (ownsRecording) rec.close();
    },
  };
}

/** Write a replay report (misses, unused flows) as JSON. */
export function writeReport(file: string, report: ReplayReport): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
  fs.renameSync(tmp, file);
}
