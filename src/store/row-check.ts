/**
 * A recording is input: a crafted or damaged file can hold any SQLite value in any column
 * (SQLite columns are loosely typed). Every flow row is checked here before it becomes a
 * FlowRecord, so a wrong type ends as `regtape: recording-corrupt: …`, never as a
 * TypeError deep inside a renderer.
 */

const STATES = new Set(['open', 'complete', 'error', 'aborted']);
const SHA = /^[0-9a-f]{64}$/;

/** Why `r` is not a well-formed flow row, or null when it is. */
export function flowRowProblem(r: Record<string, unknown>): string | null {
  const str = (k: string) => (typeof r[k] === 'string' ? null : `${k} is not text`);
  const optStr = (k: string) => (r[k] === null || r[k] === undefined || typeof r[k] === 'string' ? null : `${k} is not text`);
  const int = (k: string, min: number, max: number) => (typeof r[k] === 'number' && Number.isInteger(r[k]) && (r[k] as number) >= min && (r[k] as number) <= max ? null : `${k} is not a whole number in ${min}..${max}`);
  const optInt = (k: string, min: number, max: number) => (r[k] === null || r[k] === undefined ? null : int(k, min, max));
  const num = (k: string) => (typeof r[k] === 'number' && Number.isFinite(r[k]) ? null : `${k} is not a number`);
  const optNum = (k: string) => (r[k] === null || r[k] === undefined ? null : num(k));
  const sha = (k: string) => (r[k] === null || r[k] === undefined || (typeof r[k] === 'string' && SHA.test(r[k] as string)) ? null : `${k} is not a sha256 digest`);
  const checks = [
    int('id', 1, Number.MAX_SAFE_INTEGER),
    str('uuid'),
    typeof r.state === 'string' && STATES.has(r.state) ? null : 'state is not open/complete/error/aborted',
    r.scheme === 'http' || r.scheme === 'https' ? null : 'scheme is not http/https',
    str('host'),
    int('port', 0, 65535),
    str('method'),
    str('target'),
    str('http_version'),
    str('req_headers'),
    optInt('status', 0, 999),
    optStr('reason'),
    optStr('res_http_version'),
    optStr('res_headers'),
    sha('req_body_sha256'),
    sha('res_body_sha256'),
    optInt('req_body_size', 0, Number.MAX_SAFE_INTEGER),
    optInt('res_body_size', 0, Number.MAX_SAFE_INTEGER),
    num('t_start'),
    optNum('t_connect'),
    optNum('t_tls'),
    optNum('t_request_sent'),
    optNum('t_first_byte'),
    optNum('t_end'),
    optStr('client_addr'),
    optStr('server_addr'),
    optStr('error'),
    optInt('req_bytes', 0, Number.MAX_SAFE_INTEGER),
    optInt('res_bytes', 0, Number.MAX_SAFE_INTEGER),
    optStr('facts'),
    optStr('registry'),
    optStr('comment'),
  ];
  return checks.find((c) => c !== null) ?? null;
}

/** Parsed header JSON, checked: an array of [name, value] text pairs. */
export function checkedHeaders(json: string | null, column: string): Array<[string, string]> {
  if (!json) return [];
  const v = JSON.parse(json) as unknown;
  if (!Array.isArray(v) || !v.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string')) {
    throw new Error(`${column} is not a list of [name, value] pairs`);
  }
  return v as Array<[string, string]>;
}

/** Parsed JSON object (facts, registry facts), checked. */
export function checkedObject<T>(json: string, column: string): T {
  const v = JSON.parse(json) as unknown;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${column} is not a JSON object`);
  return v as T;
}
