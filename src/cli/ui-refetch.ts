import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { defaultPort, flowUrl, getHeader, type FlowRecord, type HeaderList } from '../flow/index.js';
import { HostMap } from '../proxy/index.js';
import { parseManifest, type ParsedManifest } from '../registry/index.js';
import type { Recording } from '../store/index.js';
import { safeText } from '../term/index.js';
import { line, seg, type Line } from '../tui/lines.js';
import type { Env } from '../tui/state.js';

/**
 * `r` in the inspector: ask the live registry again for a recorded manifest or tag,
 * through the same upstream settings the recording was made with (its session's
 * `--map`, plus `ui --upstream-ca` / `--insecure-upstream`), with a fresh anonymous
 * token, and say what changed: the tag moved, the media type changed, platforms or
 * layers came and went, blobs are gone. Nothing is written to the recording.
 */
export interface RefetchSettings {
  upstreamCa: string[];
  insecureUpstream: boolean;
  map: string[];
}

const MAX_BODY = 4 << 20;
const TIMEOUT_MS = 15_000;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The `--map` the recording's last record session used. */
function sessionMap(rec: Recording | undefined): string[] {
  if (!rec) return [];
  try {
    for (const s of rec.sessions().reverse()) {
      if (s.tool === 'record' && Array.isArray(s.options.map)) return s.options.map.map(String);
    }
  } catch {
    // no sessions table or bad JSON: no map
  }
  return [];
}

function request(url: URL, method: string, headers: Record<string, string | string[]>, s: RefetchSettings, map: HostMap): Promise<Answer> {
  const port = Number(url.port) || defaultPort(url.protocol);
  const to = map.resolve(url.hostname, port);
  const ca = s.upstreamCa.length ? s.upstreamCa.map((f) => fs.readFileSync(f, 'utf8')) : undefined;
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      { host: to.host, port: to.port, method, path: `${url.pathname}${url.search}`, headers: { ...headers, host: url.host }, servername: url.hostname, ca, rejectUnauthorized: !s.insecureUpstream, timeout: TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > MAX_BODY) req.destroy(new Error(`response over ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} in ${TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Bearer challenge → anonymous token (the recording holds no credentials). */
async function fetchToken(challenge: string, s: RefetchSettings, map: HostMap): Promise<{ token: string; note: string }> {
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  if (!params.realm) throw new Error(`the registry asked for ${safeText(challenge.split(' ')[0] ?? '')} auth without a token realm`);
  const url = new URL(params.realm);
  if (params.service) url.searchParams.set('service', params.service);
  if (params.scope) url.searchParams.set('scope', params.scope);
  const a = await request(url, 'GET', { accept: 'application/json' }, s, map);
  if (a.status !== 200) throw new Error(`token endpoint ${url.host} answered ${a.status} (anonymous; private repositories need credentials, which the recording does not keep)`);
  const doc = JSON.parse(a.body.toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
  const token = doc.token ?? doc.access_token;
  if (!token) throw new Error(`token endpoint ${url.host} answered without a token`);
  return { token, note: `fresh anonymous token from ${url.host}${params.scope ? ` for ${params.scope}` : ''}${doc.expires_in ? `, expires in ${doc.expires_in} s` : ''}` };
}

/** GET (or HEAD) with the token dance; returns the answer and the auth header used. */
async function ask(url: URL, method: string, headers: Record<string, string | string[]>, s: RefetchSettings, map: HostMap, auth: { header?: string; note?: string }): Promise<Answer> {
  const withAuth = () => (auth.header ? { ...headers, authorization: auth.header } : headers);
  let a = await request(url, method, withAuth(), s, map);
  const challenge = a.headers['www-authenticate'];
  if (a.status === 401 && typeof challenge === 'string' && /^bearer /i.test(challenge)) {
    const t = await fetchToken(challenge, s, map);
    auth.header = `Bearer ${t.token}`;
    auth.note = t.note;
    a = await request(url, method, withAuth(), s, map);
  }
  return a;
}

function parse(body: Buffer | null, type: string | undefined): ParsedManifest | null {
  if (!body?.length) return null;
  try {
    return parseManifest(body, type);
  } catch {
    return null;
  }
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const say = (label: string, text: string, color?: 'red' | 'green' | 'yellow' | 'cyan') => line('  ', seg(label.padEnd(14), { dim: true }), seg(safeText(text), color ? { color, bold: color === 'red' } : {}));

/** What is listed: platforms of an index, or config and layers of an image. */
function members(m: ParsedManifest | null): string[] {
  if (!m) return [];
  if (m.kind === 'index') return m.manifests.map((d) => `${d.platform ?? d.artifactType ?? '?'} ${d.digest}`);
  if (m.kind === 'image') return [`config ${m.config.digest}`, ...m.layers.map((l) => `layer ${l.digest}`)];
  return m.layers.map((l) => `layer ${l.digest}`);
}

function diffLines(before: ParsedManifest | null, after: ParsedManifest | null): Line[] {
  const a = new Set(members(before));
  const b = new Set(members(after));
  const out: Line[] = [];
  for (const x of b) if (!a.has(x)) out.push(line('    ', seg('+ ', { color: 'green', bold: true }), safeText(x)));
  for (const x of a) if (!b.has(x)) out.push(line('    ', seg('- ', { color: 'red', bold: true }), safeText(x)));
  return out;
}

/** The comparison screen's lines for one recorded manifest flow. */
export async function refetchLines(flow: FlowRecord, env: Env, settings: RefetchSettings = { upstreamCa: [], insecureUpstream: false, map: [] }): Promise<Line[]> {
  const rec = env.model.backend.recording;
  const map = HostMap.parse(settings.map.length ? settings.map : sessionMap(rec));
  const r = flow.request;
  const url = new URL(flowUrl(r));
  const accept = r.headers.filter(([k]) => k.toLowerCase() === 'accept').map(([, v]) => v);
  const auth: { header?: string; note?: string } = {};
  const at = new Date().toISOString();
  const live = await ask(url, 'GET', { accept: accept.length ? accept : ['*/*'], 'user-agent': 'regtape-ui (re-ask)' }, settings, map, auth);
  const recType = flow.response ? getHeader(flow.response.headers as HeaderList, 'content-type') : undefined;
  const recDigest = flow.registry?.digest ?? (flow.response ? getHeader(flow.response.headers as HeaderList, 'docker-content-digest') : undefined) ?? null;
  const liveType = typeof live.headers['content-type'] === 'string' ? live.headers['content-type'] : undefined;
  const liveDigest = typeof live.headers['docker-content-digest'] === 'string' ? live.headers['docker-content-digest'] : live.status === 200 ? sha256(live.body) : null;
  const recBody = flow.responseBody?.sha256 ? env.model.backend.body(flow.responseBody.sha256, MAX_BODY) : null;
  const before = parse(recBody, recType);
  const after = live.status === 200 ? parse(live.body, liveType) : null;
  const out: Line[] = [
    line(seg(' LIVE ', { inverse: true, bold: true, color: 'red' }), seg(` asked ${safeText(url.href)} at ${at}; not recorded, never written unless saved`, { bold: true })),
    line(''),
  ];
  if (auth.note) out.push(say('auth', auth.note));
  out.push(say('status', `recorded ${flow.response?.status ?? '—'}, live ${live.status}`, live.status === flow.response?.status ? undefined : 'red'));
  if (recDigest && liveDigest && recDigest !== liveDigest) out.push(say('digest', `CHANGED: ${flow.registry?.reference && !flow.registry.reference.startsWith('sha256:') ? `tag ${flow.registry.reference} moved ` : ''}from ${recDigest} to ${liveDigest}`, 'red'));
  else out.push(say('digest', liveDigest ? `same: ${liveDigest}` : `live answer has no digest (${live.status})`, liveDigest ? 'green' : 'yellow'));
  if (recType !== liveType) out.push(say('media type', `recorded ${recType ?? '—'}, live ${liveType ?? '—'}`, 'yellow'));
  const diff = diffLines(before, after);
  if (after || before) out.push(line(''), line(seg(diff.length ? 'What the manifest lists, recorded → live' : 'The manifest lists the same platforms / blobs', { bold: true })), ...diff);
  if (before?.kind === 'image' && flow.registry?.repo) out.push(line(''), ...(await blobChecks(url, flow.registry.repo, before, settings, map, auth)));
  return out;
}

/** HEAD the blobs the recorded manifest lists (up to 20): "gone" is what a replay or pull would hit. */
async function blobChecks(base: URL, repo: string, m: ParsedManifest & { kind: 'image' }, s: RefetchSettings, map: HostMap, auth: { header?: string }): Promise<Line[]> {
  const out: Line[] = [line(seg('Blobs of the recorded manifest, live', { bold: true }))];
  for (const d of [m.config, ...m.layers].slice(0, 20)) {
    const url = new URL(`/v2/${repo}/blobs/${d.digest}`, base);
    try {
      const a = await ask(url, 'HEAD', {}, s, map, auth);
      const ok = a.status === 200 || a.status === 307 || a.status === 302;
      out.push(say(ok ? 'present' : 'GONE', `${d.digest} (${a.status})`, ok ? 'green' : 'red'));
    } catch (e) {
      out.push(say('error', `${d.digest}: ${(e as Error).message}`, 'red'));
    }
  }
  return out;
}
