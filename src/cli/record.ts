import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { LeafFactory, loadOrCreateAuthority } from '../ca/index.js';
import { captureConsole, createLogger, type Logger } from '../log/index.js';
import { HostMap, parseListenAddress, startProxy, tuneHeapForStreaming, type RunningProxy } from '../proxy/index.js';
import { formatBytes } from '../flow/index.js';
import { Recorder } from '../record/index.js';
import { defaultChain, describeRequest, type Addon } from '../pipeline/index.js';
import { flowLine } from '../inspect/index.js';
import { loadAddons } from './addons.js';
import { Recording } from '../store/index.js';
import { RegtapeError } from '../errors/index.js';

export interface RecordOptions {
  listen: string;
  out?: string;
  map: string[];
  upstreamCa: string[];
  insecureUpstream?: boolean;
  keepSecrets?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  /** Abort an upstream exchange after this many seconds without data (default 120). */
  upstreamTimeout?: number;
  /** Close a client connection idle this many seconds with no exchange running on it (default 120). */
  clientTimeout?: number;
  /** Seconds a client has to send a complete request head (default 60). */
  headersTimeout?: number;
  /** Allow listening on a non-loopback address. */
  expose?: boolean;
  /** Run the inspector TUI live instead of printing flow lines. */
  ui?: boolean;
  /** User addon files (ES modules exporting an addon), run after the default chain. */
  addon?: string[];
  /** Add to an existing recording (without it, an existing --out is refused). */
  append?: boolean;
  home: string;
}

/** A running recorder: proxy + recording. */
export interface RecordSession {
  proxy: RunningProxy;
  recording: Recording;
  recorder: Recorder;
  /** Stop: close connections, commit what finished, close the file. Returns the summary text. */
  stop(): Promise<string>;
}

/** Split `HOST:PORT` / `[v6]:PORT` / `PORT` (the one parser, src/proxy/listen.ts). */
export const parseListen = parseListenAddress;

/** Fail with port-in-use (exit 3) if HOST:PORT cannot be bound, before any file is created. */
export async function assertCanListen(host: string, port: number, flag = '--listen'): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new RegtapeError('port-in-use', `${host}:${port} is already in use; pick another address with ${flag} (or stop what holds it)`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') reject(new RegtapeError('bad-argument', `${flag} ${host}:${port}: ${host} is not an address of this machine`));
      else if (e.code === 'EACCES') reject(new RegtapeError('permission-denied', `${flag} ${host}:${port}: binding port ${port} needs privileges; use a port above 1023`));
      else reject(e);
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** The recording file for `record --out`: refuses an existing one unless --append. */
export function checkOutFile(out: string, append: boolean | undefined): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (st.isDirectory()) throw new RegtapeError('not-a-file', `--out ${out} is a directory; give a file path such as ${path.join(out, 'pull.db')}`);
  if (!append) throw new RegtapeError('recording-exists', `${out} exists; pass --append to add to it, or choose another --out`);
}

export function defaultOutName(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `regtape-${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}.db`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Start recording (used by the CLI and by tests in-process). */
export async function startRecording(o: RecordOptions, log: Logger = createLogger(o.verbose ? 'debug' : 'info')): Promise<RecordSession> {
  const { host, port } = parseListenAddress(o.listen);
  const hostMap = HostMap.parse(o.map);
  const upstreamCa = o.upstreamCa.map((f) => {
    try {
      const pem = fs.readFileSync(f, 'utf8');
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
      return pem;
    } catch (e) {
      throw new RegtapeError('bad-argument', `--upstream-ca ${f}: ${(e as Error).message}`);
    }
  });
  if (!isLoopback(host) && !o.expose) {
    throw new RegtapeError('bad-argument', `refusing to listen on ${host}: anyone who can reach it could use the proxy and read what it records; pass --expose to do it anyway, or use 127.0.0.1`);
  }
  const out = path.resolve(o.out ?? defaultOutName());
  checkOutFile(out, o.append);
  await assertCanListen(host, port);
  const ca = loadOrCreateAuthority(o.home);
  if (ca.created) log.info(`created a new CA in ${ca.dir} (trust ${ca.certPath}; see \`regtape ca --setup dockerd\`)`);
  const existed = fs.existsSync(out) || fs.existsSync(blobsDirOf(out));
  const recording = Recording.open(out, { create: true });
  if (recording.count() > 0) log.info(`appending to ${out} (${recording.count()} flows already in it)`);
  recording.beginSession('record', { listen: o.listen, map: o.map, keepSecrets: !!o.keepSecrets });
  if (o.keepSecrets) log.warn('--keep-secrets: tokens, passwords and signed URLs are stored AS IS in the recording; do not share it');
  if (o.insecureUpstream) log.warn('--insecure-upstream: upstream TLS certificates are not verified');
  if (!isLoopback(host)) {
    if (!o.expose) throw new RegtapeError('bad-argument', `refusing to listen on ${host}: anyone who can reach it could use the proxy and read what it records; pass --expose to do it anyway, or use 127.0.0.1`);
    log.warn(`listening on ${host} (--expose): anyone who can reach this address can use the proxy and see what it records`);
  }
  const flowLines: Addon = { name: 'flow-lines', flowStored: (f) => log.info(flowLine(f)) };
  const pipeline = defaultChain({
    keepSecrets: o.keepSecrets,
    after: [...(await loadAddons(o.addon ?? [])), ...(o.quiet ? [] : [flowLines])],
    onFailure: (a, hook, e, req) => log.warn(`addon ${a.name} failed in ${hook} on ${describeRequest(req)}: ${e.message}`),
  });
  const recorder = new Recorder({ recording, log, pipeline });
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({ host, port, ca, leafs: new LeafFactory(ca), hostMap, observer: recorder, log, upstreamCa, insecureUpstream: o.insecureUpstream, idleTimeoutMs: o.upstreamTimeout ? o.upstreamTimeout * 1000 : undefined,
      clientIdleTimeoutMs: o.clientTimeout ? o.clientTimeout * 1000 : undefined,
      headersTimeoutMs: o.headersTimeout ? o.headersTimeout * 1000 : undefined,
    });
  } catch (e) {
    recorder.close();
    recording.close();
    if (!existed) removeRecordingFiles(out);
    throw e;
  }
  const started = Date.now();
  let stopped: Promise<string> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      await proxy.close();
      await recorder.drain();
      recorder.close();
      recording.close();
      const s = recorder.stats;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      const hosts = [...s.hosts.entries()].sort((a, b) => b[1] - a[1]).map(([h, n]) => `${h} ${n}`).join(', ');
      return [
        `recorded ${s.flows} flows in ${secs} s to ${out}`,
        `  ${s.complete} complete, ${s.errors} errors, ${s.aborted} aborted`,
        `  bytes: ${formatBytes(s.responseBytes)} down, ${formatBytes(s.requestBytes)} up; ${s.bodiesStored} bodies stored`,
        hosts ? `  hosts: ${hosts}` : '',
        s.unrecorded ? `  ${s.unrecorded} exchanges were proxied but NOT recorded (the recording could not be written)` : '',
      ]
        .filter(Boolean)
        .join('\n');
    })());
  return { proxy, recording, recorder, stop };
}

/** A recording this run created and could not use: the file, its journal and its empty body dir. */
function removeRecordingFiles(out: string): void {
  for (const f of [out, `${out}-wal`, `${out}-shm`, `${out}-journal`]) fs.rmSync(f, { force: true });
  fs.rmSync(blobsDirOf(out), { recursive: true, force: true });
}

const blobsDirOf = (out: string) => (out.endsWith('.db') ? `${out.slice(0, -3)}.blobs` : `${out}.blobs`);

/** `regtape record`: run until SIGINT/SIGTERM. */
export async function runRecord(o: RecordOptions): Promise<void> {
  tuneHeapForStreaming();
  if (o.ui) {
    // The TUI owns the terminal: no flow lines, logging goes to the UI's event log.
    const { runLiveUi, uiLogger } = await import('./ui.js');
    const session = await startRecording({ ...o, quiet: true }, uiLogger());
    await runLiveUi(session);
    const summary = await session.stop();
    process.stderr.write(`${summary}\n`);
    return;
  }
  const log = createLogger(o.verbose ? 'debug' : 'info');
  const restore = captureConsole(log);
  const session = await startRecording(o, log);
  const { proxy, recording } = session;
  // Signal handlers go in before the "listening on" line: whoever waits for that line may send SIGINT at once,
  // and a signal that arrives before a listener exists kills the process with no summary.
  const stopped = new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = () => {
      signals++;
      if (signals > 1) {
        log.warn('second interrupt: exiting now; flows still running are left marked open');
        process.exit(130);
      }
      log.info('stopping (Ctrl-C again to force)…');
      session
        .stop()
        .then((summary) => {
          log.info(summary);
          resolve();
        })
        .catch((e: Error) => {
          log.error(`shutdown failed: ${e.message}`);
          process.exitCode = 1;
          resolve();
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  log.info(`regtape recording to ${recording.path}`);
  log.info(`listening on ${proxy.url} — point clients at it: HTTPS_PROXY=${proxy.url} (CA: ${path.join(o.home, 'ca.pem')}); Ctrl-C to stop`);
  await stopped;
  restore();
}
