import { Transform, type TransformCallback } from 'node:stream';
import { parseFilter, type Filter } from '../filter/index.js';
import type { FlowRecord, RegistryFacts } from '../flow/index.js';
import { RegtapeError } from '../errors/index.js';

/**
 * Faults as data: `FILTER => ACTION [once|xN]`. The filter is the project's filter
 * language, matched against the incoming request (classified like a recorded flow);
 * the action says how replay misbehaves for it.
 *
 *   '~op cdn-blob & ~repo lab/big => truncate:1000000 once'   short read, then normal
 *   '~op manifest => 429'                                      rate limited, with headers
 *   '~op blob | ~op cdn-blob => flip'                          one byte flipped (digest error)
 *   '~op token => delay:2000'                                  slow token server
 *   '~op cdn-blob => drip:1000000'                             1 MB/s
 *   '~op manifest & ~m GET => expire x2'                       401 invalid_token mid-pull
 *   '~op ping => 503' / '=> 500' / '=> reset'
 */
export type FaultAction =
  | { kind: 'status'; status: number }
  | { kind: 'reset' }
  | { kind: 'truncate'; bytes: number }
  | { kind: 'flip'; offset?: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'drip'; bytesPerSecond: number }
  | { kind: 'expire' };

export interface FaultRule {
  source: string;
  filter: Filter;
  action: FaultAction;
  /** How many more times it applies (Infinity = always). */
  remaining: number;
  /** How many times it fired. */
  fired: number;
}

const ACTIONS = 'status codes (429, 500, 503, …), reset, truncate:BYTES, flip[:OFFSET], delay:MS, drip:BYTES_PER_SECOND, expire';

function parseAction(s: string, rule: string): FaultAction {
  const m = /^([a-z]+|\d{3})(?::(\d+))?$/i.exec(s);
  if (!m) throw new RegtapeError('bad-fault', `--fault '${rule}': cannot read action '${s}'; actions: ${ACTIONS}`);
  const [, name, arg] = m;
  const num = arg === undefined ? undefined : Number(arg);
  if (/^\d{3}$/.test(name!)) {
    const status = Number(name);
    if (status < 400 || status > 599) throw new RegtapeError('bad-fault', `--fault '${rule}': status ${status} is not an error status (400-599)`);
    return { kind: 'status', status };
  }
  const need = (what: string) => {
    if (num === undefined) throw new RegtapeError('bad-fault', `--fault '${rule}': ${name} needs a number (${name}:${what})`);
    return num;
  };
  switch (name!.toLowerCase()) {
    case 'reset':
      return { kind: 'reset' };
    case 'truncate':
      return { kind: 'truncate', bytes: need('BYTES') };
    case 'flip':
      return { kind: 'flip', offset: num };
    case 'delay':
      return { kind: 'delay', ms: need('MS') };
    case 'drip':
      return { kind: 'drip', bytesPerSecond: Math.max(1, need('BYTES_PER_SECOND')) };
    case 'expire':
      return { kind: 'expire' };
    default:
      throw new RegtapeError('bad-fault', `--fault '${rule}': unknown action '${name}'; actions: ${ACTIONS}`);
  }
}

/** Parse one `FILTER => ACTION [once|xN]` rule; errors say what is wrong. */
export function parseFault(rule: string): FaultRule {
  const i = rule.lastIndexOf('=>');
  if (i < 0) throw new RegtapeError('bad-fault', `--fault '${rule}': expected FILTER => ACTION, e.g. '~op cdn-blob => truncate:1000000 once'`);
  const filterText = rule.slice(0, i).trim();
  const parts = rule.slice(i + 2).trim().split(/\s+/).filter(Boolean);
  if (!parts.length) throw new RegtapeError('bad-fault', `--fault '${rule}': no action after =>; actions: ${ACTIONS}`);
  let remaining = Infinity;
  if (parts.length > 1) {
    const t = parts.pop()!.toLowerCase();
    const m = /^(?:x(\d+)|(\d+)x)$/.exec(t);
    if (t === 'once') remaining = 1;
    else if (m) remaining = Number(m[1] ?? m[2]);
    else throw new RegtapeError('bad-fault', `--fault '${rule}': expected 'once' or 'xN' after the action, got '${t}'`);
  }
  if (parts.length !== 1) throw new RegtapeError('bad-fault', `--fault '${rule}': one action per rule`);
  let filter: Filter;
  try {
    filter = parseFilter(filterText);
  } catch (e) {
    throw new RegtapeError('bad-fault', `--fault '${rule}': ${(e as Error).message}`);
  }
  return { source: rule, filter, action: parseAction(parts[0]!, rule), remaining, fired: 0 };
}

/** The first rule matching this request that still applies (its count is consumed). */
export function pickFault(rules: FaultRule[], flow: FlowRecord, registry: RegistryFacts): FaultRule | null {
  for (const r of rules) {
    if (r.remaining <= 0) continue;
    if (!r.filter({ flow, registry })) continue;
    r.remaining--;
    r.fired++;
    return r;
  }
  return null;
}

/** Cut a body after `bytes` bytes, then destroy the connection (a short read). */
export class Truncate extends Transform {
  private seen = 0;
  constructor(
    private readonly bytes: number,
    private readonly onCut: () => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const left = this.bytes - this.seen;
    this.seen += chunk.length;
    if (left <= 0) return cb();
    if (chunk.length <= left) return cb(null, chunk);
    this.push(chunk.subarray(0, left));
    cb();
    setImmediate(this.onCut);
  }
}

/** Flip one byte (XOR 0xff) at `offset` (default: the middle of the body). */
export class FlipByte extends Transform {
  private seen = 0;
  constructor(private readonly offset: number) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const start = this.seen;
    this.seen += chunk.length;
    if (this.offset >= start && this.offset < this.seen) {
      const copy = Buffer.from(chunk);
      copy[this.offset - start] ^= 0xff;
      return cb(null, copy);
    }
    cb(null, chunk);
  }
}

/** Slow drip: at most `bytesPerSecond`, in ~100 ms slices. */
export class Drip extends Transform {
  constructor(private readonly bytesPerSecond: number) {
    super({ highWaterMark: 64 * 1024 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const slice = Math.max(1, Math.floor(this.bytesPerSecond / 10));
    let off = 0;
    const next = () => {
      if (off >= chunk.length) return cb();
      this.push(chunk.subarray(off, off + slice));
      off += slice;
      setTimeout(next, 100);
    };
    next();
  }
}
