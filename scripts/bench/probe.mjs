/**
 * In-process probe for the cost benchmark, preloaded into the process under test with
 * `node --import ./scripts/bench/probe.mjs …` (plain JS: it also loads into dist/ without tsx).
 *
 * It counts garbage collections by kind (with their main-thread pause time), the event-loop delay
 * histogram and CPU time. On SIGUSR2 it writes a JSON snapshot of the counters since the previous
 * snapshot to $BENCH_PROBE_OUT (written to a temp name and renamed, with a sequence number) and starts
 * the next interval. Nothing here runs on the byte path; the observers cost a few microseconds per GC.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const out = process.env.BENCH_PROBE_OUT;
if (out) {
  const KINDS = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'markCompact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
  };
  let gc = {};
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const k = KINDS[e.detail?.kind ?? e.kind] ?? 'other';
      const g = (gc[k] ??= { count: 0, ms: 0 });
      g.count++;
      g.ms += e.duration;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let cpu = process.cpuUsage();
  let seq = 0;
  let t = performance.now();
  process.on('SIGUSR2', () => {
    const now = performance.now();
    const c = process.cpuUsage(cpu);
    const m = process.memoryUsage();
    const snap = {
      seq: ++seq,
      wallMs: now - t,
      cpu: { user: c.user / 1e6, system: c.system / 1e6 },
      gc,
      loopMs: { max: loop.max / 1e6, p99: loop.percentile(99) / 1e6, mean: loop.mean / 1e6 },
      mem: { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers },
    };
    const tmp = `${out}.tmp`;
    writeFileSync(tmp, JSON.stringify(snap));
    renameSync(tmp, out);
    gc = {};
    loop.reset();
    cpu = process.cpuUsage();
    t = now;
  });
}
