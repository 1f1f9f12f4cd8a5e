import type { IncomingMessage, ServerResponse } from 'node:http';
import { flowUrl, type FlowRecord } from '../flow/index.js';
import type { Logger } from '../log/index.js';
import { acceptSet, authClass, Classifier, isDigest, isIndex, isOci, matchRoute, parseScopes, splitTarget } from '../registry/index.js';
import { fromRawHeaders } from '../flow/index.js';
import { manifestRequestKey, resolveTag, type Catalog, type RegistryCatalog, type StoredManifest } from './catalog.js';
import { RegistryError, writeRegistryError } from './errors.js';
import { explainMiss } from './explain.js';
import { PushState } from './push.js';
import { bodyFaults, freshToken, sendBody, sendRecorded, type BodySource } from './serve.js';
import { Drip, FlipByte, pickFault, Truncate, type FaultRule } from './faults.js';

/** A request replay could not answer from the recording. */
export interface Miss {
  method: string;
  url: string;
  /** Closest recorded request and how it differs. */
  closest: string | null;
  differences: string[];
  time: number;
}

export interface ResponderOptions {
  catalog: Catalog;
  bodies: BodySource;
  log: Logger;
  /** Mirror mode: the registry served at /v2/ when the request does not say (`ns=`). */
  defaultRegistry?: string;
  /** Fault rules, tried in order on every request. */
  faults?: FaultRule[];
  /** A classifier that has seen the recording (knows its realms and redirects), for matching fault filters. */
  classifier?: Classifier;
}

/** Where a request arrived: through the proxy (the client named the origin) or at the mirror endpoint. */
export type Arrival = { mode: 'proxy'; scheme: 'http' | 'https'; host: string; port: number } | { mode: 'mirror'; base: string };

/** Only the platform dockerd and distribution choose when a list is asked for by tag without the list type. */
const DEFAULT_PLATFORM = 'linux/amd64';

/**
 * Answers registry requests from a recording, matching by protocol meaning rather than
 * bytes (registry-protocol.md §6): Accept as a set with the registry's selection rules,
 * Authorization by class, CDN by host and path, Range and HEAD synthesised from stored
 * bodies, fresh token `issued_at`, push sessions of its own. Order-free and safe under
 * concurrency: identical requests get identical answers.
 */
export class Responder {
  readonly misses: Miss[] = [];
  readonly push = new PushState();

  constructor(private readonly o: ResponderOptions) {}

  handle(req: IncomingMessage, res: ServerResponse, at: Arrival): void {
    const fault = this.o.faults?.length ? this.fault(req, at) : null;
    const run = async () => {
      if (fault) {
        const handled = await this.applyFault(fault, req, res, at);
        if (handled) return;
      }
      await this.dispatch(req, res, at);
    };
    run().catch((e: unknown) => {
      const err = e instanceof RegistryError ? e : new RegistryError(500, 'UNSUPPORTED', `regtape replay: ${(e as Error).message}`);
      if (!(e instanceof RegistryError)) this.o.log.error(`replay error on ${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
      req.resume();
      writeRegistryError(res, err, req.method === 'HEAD');
    });
  }

  /** Match the request against the fault rules, as a flow classified in the recording's context. */
  private fault(req: IncomingMessage, at: Arrival): FaultRule | null {
    const target = req.url ?? '/';
    const host = at.mode === 'proxy' ? at.host : this.registryFor(at, splitTarget(target).query).key.replace(/:\d+$/, '');
    const port = at.mode === 'proxy' ? at.port : 443;
    const flow: FlowRecord = {
      id: 0,
      uuid: '',
      state: 'open',
      request: { method: (req.method ?? 'GET').toUpperCase(), scheme: at.mode === 'proxy' ? at.scheme : 'https', host, port, target, httpVersion: req.httpVersion, headers: fromRawHeaders(req.rawHeaders) },
      requestBody: null,
      response: null,
      responseBody: null,
      timings: { start: Date.now() },
      clientAddr: null,
      serverAddr: null,
      error: null,
      requestBytes: 0,
      responseBytes: 0,
      facts: {},
    };
    const registry = (this.o.classifier ?? new Classifier()).classify(flow);
    const rule = pickFault(this.o.faults!, flow, registry);
    if (rule) this.o.log.info(`fault: ${rule.source} on ${flow.request.method} ${host}${target} (${rule.fired}×)`);
    return rule;
  }

  /** Apply a fault; true when the response is fully handled by it. */
  private async applyFault(rule: FaultRule, req: IncomingMessage, res: ServerResponse, at: Arrival): Promise<boolean> {
    const a = rule.action;
    switch (a.kind) {
      case 'status': {
        req.resume();
        const headers: Record<string, string> = {};
        let code: RegistryError['code'] = 'UNKNOWN';
        let message = `regtape fault: ${a.status}`;
        if (a.status === 429) {
          code = 'TOOMANYREQUESTS';
          message = 'You have reached your pull rate limit (regtape fault)';
          Object.assign(headers, { 'retry-after': '1', 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600', 'docker-ratelimit-source': '127.0.0.1' });
        }
        writeRegistryError(res, new RegistryError(a.status, code, message, { fault: rule.source }, headers), req.method === 'HEAD');
        return true;
      }
      case 'reset':
        req.resume();
        req.socket.destroy();
        return true;
      case 'expire': {
        req.resume();
        const { reg } = this.registryFor(at, splitTarget(req.url ?? '/').query);
        const realm = at.mode === 'mirror' ? `${at.base}/regtape/token/${encodeURIComponent(reg?.host ?? '_')}` : (reg?.challenge?.realm ?? '');
        const header = `Bearer realm="${realm}"${reg?.challenge?.service ? `,service="${reg.challenge.service}"` : ''},error="invalid_token"`;
        writeRegistryError(res, new RegistryError(401, 'UNAUTHORIZED', 'token expired (regtape fault)', { fault: rule.source }, { 'www-authenticate': header }), req.method === 'HEAD');
        return true;
      }
      case 'delay':
        await new Promise((r) => setTimeout(r, a.ms));
        return false;
      case 'truncate':
        bodyFaults.set(res, () => new Truncate(a.bytes, () => res.destroy()));
        return false;
      case 'flip':
        bodyFaults.set(res, (size) => new FlipByte(a.offset ?? Math.floor(size / 2)));
        return false;
      case 'drip':
        bodyFaults.set(res, () => new Drip(a.bytesPerSecond));
        return false;
    }
  }

  private registryFor(at: Arrival, query: URLSearchParams): { key: string; reg: RegistryCatalog | undefined } {
    const cat = this.o.catalog;
    if (at.mode === 'proxy') {
      const def = at.scheme === 'https' ? 443 : 80;
      const key = at.port === def ? at.host : `${at.host}:${at.port}`;
      return { key, reg: cat.registries.get(key) };
    }
    const ns = query.get('ns');
    const key = (ns && (ns === 'docker.io' ? [...cat.registries.keys()].find((k) => /(^|\.)docker\.io$/.test(k)) ?? ns : ns)) ?? this.o.defaultRegistry ?? [...cat.registries.keys()][0] ?? '';
    return { key, reg: cat.registries.get(key) };
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, at: Arrival): Promise<void> {
    const cat = this.o.catalog;
    const { path, query } = splitTarget(req.url ?? '/');
    query.delete('ns');
    const method = (req.method ?? 'GET').toUpperCase();
    const headers = fromRawHeaders(req.rawHeaders);
    const hostPath = at.mode === 'proxy' ? `${at.host}${path}` : null;

    // Mirror-mode endpoints regtape adds for itself: token realm and blob redirects.
    if (at.mode === 'mirror' && path.startsWith('/regtape/')) return this.mirrorInternal(req, res, at, path);

    // Token endpoints answer every request (never consumed), with a fresh issued_at.
    if (hostPath && cat.tokenEndpoints.has(hostPath)) return this.serveToken(req, res, cat.tokenEndpoints.get(hostPath)!);
    // CDN downloads: host and path, the signature query ignored.
    if (hostPath && cat.cdn.has(hostPath)) return this.serveBlob(req, res, cat.cdn.get(hostPath)!);

    const route = matchRoute(path);
    const { key, reg } = this.registryFor(at, query);
    if (route && reg) {
      const auth = authClass(headers);
      const repo = 'repo' in route ? this.resolveRepo(reg, route.repo, at) : null;
      if (route.kind === 'ping') {
        req.resume();
        const recorded = reg.pings.get(auth === 'none' ? 'none' : 'auth');
        if (recorded?.response) return sendRecorded(req, res, this.o.bodies, this.used(recorded), { headers: (h) => this.rewriteChallenge(h, at) });
        if (auth === 'none' && reg.challenge) return this.challenge(res, reg, at, null, method === 'HEAD');
        res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0', 'content-length': 2 });
        return void res.end(method === 'HEAD' ? undefined : '{}');
      }
      if (auth === 'none' && reg.challenge && route.kind !== 'catalog') {
        req.resume();
        for (const id of cat.challenged.get(`${key} ${method} ${path}`) ?? []) cat.used.add(id);
        return this.challenge(res, reg, at, repo, method === 'HEAD', ['uploads'].includes(route.kind) || method === 'PUT' ? 'push,pull' : 'pull');
      }
      switch (route.kind) {
        case 'manifest':
          if (method === 'PUT') return this.push.putManifest(req, res, repo!, route.reference);
          if (method === 'GET' || method === 'HEAD') {
            req.resume();
            return this.serveManifest(req, res, reg, repo!, route.reference, acceptSet(headers), at, key);
          }
          break;
        case 'blob':
          req.resume();
          if (method === 'GET' || method === 'HEAD') return this.blobRequest(req, res, reg, repo!, route.digest, at);
          break;
        case 'uploads': {
          const id = route.uploadId;
          if (method === 'POST') return this.push.start(req, res, repo!, query, (d) => cat.blobs.get(d)?.size ?? null);
          if (method === 'PATCH') return this.push.chunk(req, res, repo!, id);
          if (method === 'PUT') return this.push.finish(req, res, repo!, id, query);
          if (method === 'GET') return this.push.status(res, repo!, id);
          if (method === 'DELETE') return this.push.cancel(res, repo!, id);
          break;
        }
        default:
          break;
      }
    }
    // Anything else: an exact recorded request (method, host, path, query without ns).
    const exact = this.findExact(method, at, path, query, key);
    if (exact) {
      req.resume();
      return sendRecorded(req, res, this.o.bodies, this.used(exact));
    }
    req.resume();
    this.miss(req, at, path, query, headers, key, route ? (route.kind === 'manifest' ? 'MANIFEST_UNKNOWN' : route.kind === 'blob' ? 'BLOB_UNKNOWN' : 'NAME_UNKNOWN') : 'NAME_UNKNOWN', res);
  }

  /** Docker Hub's `library/` convention: `alpine` is `library/alpine` when only that was recorded. */
  private resolveRepo(reg: RegistryCatalog, repo: string, at: Arrival): string {
    if (reg.repos.has(repo) || at.mode === 'proxy') return repo;
    if (!repo.includes('/') && reg.repos.has(`library/${repo}`)) return `library/${repo}`;
    return repo;
  }

  private used(f: FlowRecord): FlowRecord {
    this.o.catalog.used.add(f.id);
    return f;
  }

  private serveToken(req: IncomingMessage, res: ServerResponse, flows: FlowRecord[]): void {
    req.resume();
    const ok = flows.find((f) => f.response?.status === 200) ?? flows[0]!;
    // Any recorded token answer will do, but mark the recorded requests this one repeats.
    const k = tokenKey(req.url ?? '/');
    for (const f of flows) if (f.response?.status === 200 && tokenKey(f.request.target) === k) this.used(f);
    sendRecorded(req, res, this.o.bodies, this.used(ok), { body: freshToken });
  }

  private challengeHeader(reg: RegistryCatalog, at: Arrival, repo: string | null, actions = 'pull'): string {
    const realm = at.mode === 'mirror' ? `${at.base}/regtape/token/${encodeURIComponent(reg.host)}` : reg.challenge?.realm;
    const parts = [`realm="${realm ?? ''}"`];
    if (reg.challenge?.service) parts.push(`service="${reg.challenge.service}"`);
    if (repo) parts.push(`scope="repository:${repo}:${actions}"`);
    return `Bearer ${parts.join(',')}`;
  }

  private challenge(res: ServerResponse, reg: RegistryCatalog, at: Arrival, repo: string | null, head: boolean, actions = 'pull'): void {
    writeRegistryError(res, new RegistryError(401, 'UNAUTHORIZED', 'authentication required', null, { 'www-authenticate': this.challengeHeader(reg, at, repo, actions) }), head);
  }

  /** In mirror mode, point the realm of recorded challenges at the mirror itself. */
  private rewriteChallenge(h: string[], at: Arrival): string[] {
    if (at.mode !== 'mirror') return h;
    return h.map((v, i) => (i % 2 === 1 && /^www-authenticate$/i.test(h[i - 1]!) ? v.replace(/realm="[^"]*"/, `realm="${at.base}/regtape/token/_"`) : v));
  }

  private mirrorInternal(req: IncomingMessage, res: ServerResponse, at: Arrival & { mode: 'mirror' }, path: string): void {
    req.resume();
    const tok = /^\/regtape\/token\/([^/]+)$/.exec(path);
    if (tok) {
      const all = [...this.o.catalog.tokenEndpoints.values()].flat();
      const host = decodeURIComponent(tok[1]!);
      const reg = this.o.catalog.registries.get(host);
      const mine = all.filter((f) => !reg || f.registry?.registry === host);
      if (mine.length || all.length) return this.serveToken(req, res, mine.length ? mine : all);
      // No token was recorded (anonymous registry): any token will do.
      const body = JSON.stringify({ token: 'regtape-replay', access_token: 'regtape-replay', expires_in: 300, issued_at: new Date().toISOString() });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    const blob = /^\/regtape\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
    if (blob) return this.serveBlob(req, res, blob[1]!);
    writeRegistryError(res, new RegistryError(404, 'NAME_UNKNOWN', `no such regtape endpoint ${path}`), req.method === 'HEAD');
  }

  private serveBlob(req: IncomingMessage, res: ServerResponse, digest: string): void {
    const b = this.o.catalog.blobs.get(digest);
    if (!b) throw new RegistryError(404, 'BLOB_UNKNOWN', `blob ${digest} is not in the recording`);
    this.o.catalog.used.add(b.flowId);
    sendBody(req, res, this.o.bodies, b.bodySha, b.size, { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, etag: `"${digest}"` });
  }

  private blobRequest(req: IncomingMessage, res: ServerResponse, reg: RegistryCatalog, repo: string, digest: string, at: Arrival): void {
    const redirect = reg.redirects.get(repo)?.get(digest);
    const have = this.o.catalog.blobs.get(digest);
    const pushed = this.push.blobs.get(digest);
    if (redirect && have) {
      this.o.catalog.used.add(redirect.flowId);
      const location = at.mode === 'mirror' ? `${at.base}/regtape/blobs/${digest}` : redirect.location;
      res.writeHead(redirect.status, { location, 'content-type': 'application/octet-stream', 'docker-distribution-api-version': 'registry/2.0', 'content-length': 0 });
      return void res.end();
    }
    if (have) return this.serveBlob(req, res, digest);
    if (pushed != null && req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, 'content-length': pushed });
      return void res.end();
    }
    throw this.missError(req, at, `/v2/${repo}/blobs/${digest}`, new URLSearchParams(), fromRawHeaders(req.rawHeaders), reg.host, 'BLOB_UNKNOWN');
  }

  /**
   * Manifest selection as distribution does it (registry-protocol.md §3): the stored
   * type when accepted; an OCI type not accepted → 404; a Docker list asked for by
   * tag without the list type → the linux/amd64 image. If-None-Match → 304.
   */
  private serveManifest(req: IncomingMessage, res: ServerResponse, reg: RegistryCatalog, repo: string, ref: string, accept: string[], at: Arrival, key: string): void {
    const pushed = this.push.manifests.get(isDigest(ref) ? `${repo}@${ref}` : `${repo}:${ref}`);
    if (pushed) {
      res.writeHead(200, { 'content-type': pushed.mediaType, 'docker-content-digest': pushed.digest, etag: `"${pushed.digest}"`, 'content-length': pushed.body.length });
      return void res.end(req.method === 'HEAD' ? undefined : pushed.body);
    }
    const cat = this.o.catalog;
    const m = isDigest(ref) ? cat.manifests.get(ref) ?? null : resolveTag(cat, reg, repo, ref);
    if (!m) throw this.missError(req, at, `/v2/${repo}/manifests/${ref}`, new URLSearchParams(), fromRawHeaders(req.rawHeaders), key, 'MANIFEST_UNKNOWN');
    const chosen = this.select(m, ref, accept);
    if (chosen instanceof RegistryError) throw chosen;
    cat.used.add(chosen.flowId);
    for (const id of cat.manifestRequests.get(manifestRequestKey(key, req.method ?? 'GET', repo, ref)) ?? []) cat.used.add(id);
    const inm = req.headers['if-none-match'];
    if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '').replace(/"/g, '') === chosen.digest)) {
      res.writeHead(304, { 'docker-content-digest': chosen.digest, etag: `"${chosen.digest}"` });
      return void res.end();
    }
    sendBody(req, res, this.o.bodies, chosen.bodySha, chosen.size, {
      'content-type': chosen.mediaType,
      'docker-content-digest': chosen.digest,
      etag: `"${chosen.digest}"`,
      'docker-distribution-api-version': 'registry/2.0',
    });
  }

  private select(m: StoredManifest, ref: string, accept: string[]): StoredManifest | RegistryError {
    const set = new Set(accept);
    if (set.size === 0 || set.has(m.mediaType) || set.has('*/*')) {
      if (set.size > 0 || !isOci(m.mediaType)) return m;
    }
    if (isOci(m.mediaType)) {
      const what = isIndex(m.mediaType) ? 'OCI index' : 'OCI manifest';
      return new RegistryError(404, 'MANIFEST_UNKNOWN', `${what} found, but accept header does not support OCI manifests`);
    }
    if (isIndex(m.mediaType) && !isDigest(ref) && m.parsed?.kind === 'index') {
      const child = m.parsed.manifests.find((d) => d.platform === DEFAULT_PLATFORM);
      const stored = child ? this.o.catalog.manifests.get(child.digest) : undefined;
      if (stored) return stored;
      return new RegistryError(404, 'MANIFEST_UNKNOWN', `manifest list found but its ${DEFAULT_PLATFORM} image was not recorded`);
    }
    return m;
  }

  private findExact(method: string, at: Arrival, path: string, query: URLSearchParams, registryKey: string): FlowRecord | null {
    const q = [...query.entries()].sort().map(([k, v]) => `${k}=${v}`).join('&');
    for (const f of this.o.catalog.flows) {
      if (!f.response || f.state !== 'complete' || f.request.method !== method) continue;
      const sp = splitTarget(f.request.target);
      sp.query.delete('ns');
      if (sp.path !== path) continue;
      const host = at.mode === 'proxy' ? at.host : registryKey;
      if (f.request.host !== host && f.registry?.registry !== host) continue;
      const fq = [...sp.query.entries()].sort().map(([k, v]) => `${k}=${v}`).join('&');
      if (fq === q || (f.registry?.role === 'cdn-blob' && at.mode === 'proxy')) return f;
    }
    return null;
  }

  private missError(req: IncomingMessage, at: Arrival, path: string, query: URLSearchParams, headers: ReturnType<typeof fromRawHeaders>, key: string, code: RegistryError['code']): RegistryError {
    const url = at.mode === 'proxy' ? `${at.scheme}://${at.host}${at.port === (at.scheme === 'https' ? 443 : 80) ? '' : `:${at.port}`}${req.url}` : `${at.base}${req.url}`;
    const ex = explainMiss(this.o.catalog.flows, { method: (req.method ?? 'GET').toUpperCase(), host: at.mode === 'proxy' ? at.host : key, path, query, headers });
    const miss: Miss = { method: req.method ?? 'GET', url, closest: ex.closest ? `${ex.closest.request.method} ${flowUrl(ex.closest.request)} (flow ${ex.closest.id})` : null, differences: ex.differences, time: Date.now() };
    this.misses.push(miss);
    this.o.log.warn(`replay miss: ${miss.method} ${url}${miss.closest ? `; closest recorded: ${miss.closest}; differs in ${miss.differences.join(', ')}` : '; nothing similar was recorded'}`);
    return new RegistryError(404, code, `regtape replay: no recorded response for ${miss.method} ${url}`, { closest: miss.closest, differences: miss.differences });
  }

  private miss(req: IncomingMessage, at: Arrival, path: string, query: URLSearchParams, headers: ReturnType<typeof fromRawHeaders>, key: string, code: RegistryError['code'], res: ServerResponse): void {
    writeRegistryError(res, this.missError(req, at, path, query, headers, key, code), req.method === 'HEAD');
  }
}

/** A token request's identity (§6): service and scopes (actions sorted, then sorted); account, client_id, offline_token ignored. */
function tokenKey(target: string): string {
  const q = splitTarget(target).query;
  const scopes = parseScopes(q.getAll('scope')).map((s) => `${s.type}:${s.name}:${[...new Set(s.actions)].sort().join(',')}`);
  return `${q.get('service') ?? ''} ${[...new Set(scopes)].sort().join(' ')}`;
}
