import { captureConsole, createLogger } from '../log/index.js';
import { startReplay, writeReport } from '../replay/index.js';
import { tuneHeapForStreaming } from '../proxy/index.js';
import { assertCanListen, isLoopback, parseListen } from './record.js';
import { safeText } from '../term/index.js';
import { RegtapeError } from '../errors/index.js';

export interface ReplayCliOptions {
  listen: string;
  proxy: boolean;
  mirror?: string;
  mirrorTls?: boolean;
  registry?: string;
  strict?: boolean;
  report?: string;
  verbose?: boolean;
  fault?: string[];
  expose?: boolean;
  /** 'last' (default) or 'success'. */
  prefer?: string;
  /** --ratelimit-countdown [N]: true, or N as given. */
  ratelimitCountdown?: string | boolean;
  home: string;
}

function replayPolicy(o: ReplayCliOptions): { prefer: 'last' | 'success'; ratelimitCountdown?: number | boolean } {
  const prefer = o.prefer ?? 'last';
  if (prefer !== 'last' && prefer !== 'success') throw new RegtapeError('bad-argument', `--prefer ${prefer}: expected last or success`);
  const rc = o.ratelimitCountdown;
  if (typeof rc === 'string' && !/^\d+$/.test(rc)) throw new RegtapeError('bad-argument', `--ratelimit-countdown ${rc}: expected a number of pulls, e.g. 5`);
  return { prefer, ratelimitCountdown: typeof rc === 'string' ? Number(rc) : rc };
}

/** `regtape replay FILE.db`: serve until SIGINT/SIGTERM; --strict exits 1 if anything missed. */
export async function runReplay(file: string, o: ReplayCliOptions): Promise<void> {
  tuneHeapForStreaming();
  const log = createLogger(o.verbose ? 'debug' : 'info');
  // Every address is checked (syntax, loopback, free) before anything starts or opens.
  const addrs: Array<[string, string]> = [];
  if (o.proxy) addrs.push(['--listen', o.listen]);
  if (o.mirror) addrs.push(['--mirror', o.mirror]);
  for (const [flag, addr] of addrs) parseListen(addr, flag);
  for (const [flag, addr] of addrs) {
    const { host } = parseListen(addr, flag);
    if (isLoopback(host)) continue;
    if (!o.expose) throw new RegtapeError('bad-argument', `refusing ${flag} ${addr}: anyone who can reach it could read the recording; pass --expose to do it anyway`);
    log.warn(`${flag} ${addr} (--expose): anyone who can reach this address can read what the recording holds`);
  }
  for (const [flag, addr] of addrs) {
    const { host, port } = parseListen(addr, flag);
    await assertCanListen(host, port, flag);
  }
  const policy = replayPolicy(o);
  const restore = captureConsole(log);
  const replay = await startReplay({ recording: file, listen: o.proxy ? o.listen : false, mirror: o.mirror ?? false, mirrorTls: o.mirrorTls, registry: o.registry, home: o.home, log, faults: o.fault, ...policy });
  log.info(`regtape replaying ${file} (offline: nothing is forwarded)`);
  if (replay.proxyUrl) log.info(`proxy mode: listening on ${replay.proxyUrl} — HTTPS_PROXY=${replay.proxyUrl}, trust ${replay.caCertPath}`);
  if (replay.mirrorUrl) log.info(`mirror mode: registry endpoint ${replay.mirrorUrl}${o.mirrorTls ? ` (TLS; trust ${replay.caCertPath})` : ''}`);
  log.info('Ctrl-C to stop');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await replay.close();
  const report = replay.report();
  if (o.report) writeReport(o.report, report);
  for (const f of replay.faults()) log.info(`fault ${f.rule}: fired ${f.fired}×`);
  log.info(`replay done: ${report.misses.length} misses, ${report.unused.length} recorded flows never used${o.report ? ` (report: ${o.report})` : ''}`);
  for (const m of report.misses.slice(0, 20)) log.info(safeText(`  miss (${m.mode}, ${m.matcher}): ${m.method} ${m.url}: ${m.explanation}${m.closest ? ` (closest recorded: ${m.closest})` : ''}`));
  restore();
  if (o.strict && report.misses.length) {
    throw new RegtapeError('replay-misses', `--strict: ${report.misses.length} request(s) had no recorded answer${o.report ? ` (see ${o.report})` : ' (add --report FILE.json for the details)'}`);
  }
}
