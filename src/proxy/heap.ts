import v8 from 'node:v8';

/**
 * Old-generation growth for a process that streams bodies (record, replay).
 *
 * A proxy's live JavaScript heap is small (~10 MB) while it allocates fast (stream
 * objects, Buffers for every 16 KiB TLS record). With V8's default growing factor the
 * old-generation limit sits barely above live size plus the young generation, so V8
 * starts incremental marking again and again: measured 65–85 mark-compacts and
 * 0.8–2 s of main-thread GC pause per GB relayed, for a heap that never grows
 * (scripts/bench-cost.ts, BENCHMARKS.md "Cost"). Letting the old generation grow to 5×
 * its live size removes them (0 mark-compacts per GB; -1.5 to -2 CPU-s per GB recorded)
 * without raising peak RSS, because what a relay allocates dies young. Read by V8 at
 * every full GC, so setting it at runtime works (unlike --initial-old-space-size).
 *
 * Process-wide: called by the CLI for `record` and `replay` only, never by library code.
 */
export function tuneHeapForStreaming(growingPercent = 400): void {
  v8.setFlagsFromString(`--heap-growing-percent=${growingPercent}`);
}
