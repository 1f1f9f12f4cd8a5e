import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FlowRecord } from '../flow/index.js';
import type { Logger } from '../log/index.js';
import { authClass, Classifier, isDigest, matchRoute, parseScopes, splitTarget } from '../registry/index.js';
import { fromRawHeaders } from '../flow/index.js';
import { isSuccess, pickAnswer, routeKey, type Prefer } from './answers.js';
import type { Catalog, RegistryCatalog } from './catalog.js';
import type { Arrival, Ctx } from './context.js';
import { RegistryError, writeRegistryError } from './errors.js';
import { rewriteRealm } from './headers.js';
import { canonicalRegistry, hostPortOf } from './hosts.js';
import { serveManifest, type ManifestEnv } from './manifests.js';
import { MissBook, type Miss } from './misses.js';
import { PushState } from './push.js';
import { RateLimit } from './ratelimit.js';
import { bodyFaults, sendBody, sendRecorded, type BodySource, type RecordedRewrite } from './serve.js';
import { replayHeaders } from './headers.js';
import { tokenBody, type TokenMinter } from './token.js';
import { Drip, FlipByte, pickFault, Truncate, type FaultRule } from './faults.js';

export type { Arrival } from './context.js';
export type { Miss } from './misses.js';

export interface ResponderOptions {
  catalog: Catalog;
  bodies: BodySource;
  log: Logger;
  /** Replay's own token signer. */
  minter: TokenMinter;
  /** Mirror mode: the registry served at /v2/ when the request does not say (`ns=`). */
  defaultRegistry?: string;
  /** Fault rules, tried in order on every request. */
  faults?: FaultRule[];
  /** A classifier that has seen the recording (knows its realms and redirects), for matching fault filters. */
  classifier?: Classifier;
  /** Which recorded answer wins when a request was answered differently at different times (default: the last). */
  prefer?: Prefer;
  /** Count down ratelimit-remaining from this value (true: from the recorded one) and answer 429 at zero. */
  ratelimitCountdown?: number | boolean;
}

/**
 * Answers registry requests from a recording, matching by protocol meaning rather than
 * bytes (registry-protocol.md §6): Accept as a set with the registry's selection rules,
 * Authorization by class, CDN by host and path, Range and HEAD synthesised from stored
 * bodies, recorded failures (401, 403, 404, 429, 5xx) and recorded headers as recorded,
 * tokens of its own, push sessions of its own. Order-free and safe under concurrency:
 * identical requests get identical answers. What it cannot answer goes through the one
 * miss path ({@link MissBook}).
 */
export class Responder {
  readonly push = new PushState();
  private readonly book: MissBook;
  private readonly byId = new Map<number, FlowRecord>();
  private readonly env: ManifestEnv;

  constructor(private readonly o: ResponderOptions) {
    this.book = new MissBook(o.catalog, o.log);
    for (const f of o.catalog.flows) this.byId.set(f.id, f);
    const countdown = o.ratelimitCountdown;
    const rateLimit = countdown === undefined || countdown === false ? null : new RateLimit(typeof countdown === 'number' ? countdown : null);
    if (rateLimit) for (const f of o.catalog.flows) if (f.registry?.role === 'manifest' && f.response) rateLimit.learn(f.response.headers);
    this.env = {
      catalog: o.catalog,
      bodies: o.bodies,
      prefer: o.prefer ?? 'last',
      rateLimit,
      book: this.book,
      flow: (id) => this.byId.get(id),
      pushed: (repo, ref) => this.push.manifests.get(isDigest(ref) ? `${repo}@${ref}` : `${repo}:${ref}`),
      rewrite: (ctx) => this.rewrite(ctx),
    };
  }

  get misses(): Miss[] {
    return this.book.misses;
  }

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
      const key = canonicalRegistry(hostPortOf(at.scheme, at.host, at.port));
      return { key, reg: cat.registries.get(key) };
    }
    const ns = query.get('ns');
    const key = ns ? canonicalRegistry(ns) : (this.o.defaultRegistry ? canonicalRegistry(this.o.defaultRegistry) : ([...cat.registries.keys()][0] ?? ''));
    return { key, reg: cat.registries.get(key) };
  }

  private context(req: IncomingMessage, res: ServerResponse, at: Arrival): Ctx {
    const { path, query } = splitTarget(req.url ?? '/');
    const { key, reg } = this.registryFor(at, query);
    query.delete('ns');
    const headers = fromRawHeaders(req.rawHeaders);
    const url = at.mode === 'proxy' ? `${at.scheme}://${hostPortOf(at.scheme, at.host, at.port)}${req.url}` : `${at.base}${req.url}`;
    return { req, res, at, method: (req.method ?? 'GET').toUpperCase(), path, query, headers, auth: authClass(headers) === 'none' ? 'none' : 'auth', registry: key, reg, url };
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, at: Arrival): Promise<void> {
    const ctx = this.context(req, res, at);
    const cat = this.o.catalog;
    const hostPath = at.mode === 'proxy' ? `${at.host.toLowerCase()}${ctx.path}` : null;
    // Mirror-mode endpoints regtape adds for itself: token realm and blob redirects.
    if (at.mode === 'mirror' && ctx.path.startsWith('/regtape/')) return this.mirrorInternal(ctx);
    // Token endpoints answer every request (never consumed), with a token of replay's own.
    if (hostPath && cat.tokenEndpoints.has(hostPath)) return this.serveToken(ctx, cat.tokenEndpoints.get(hostPath)!);
    // CDN downloads: host and path, the signature query ignored.
    if (hostPath && cat.cdn.has(hostPath)) return this.serveBlob(ctx, cat.cdn.get(hostPath)!, 'cdn');
    const route = matchRoute(ctx.path);
    if (route && ctx.reg) {
      const reg = ctx.reg;
      const repo = 'repo' in route ? this.resolveRepo(reg, route.repo, at) : null;
      const path = repo && 'repo' in route && repo !== route.repo ? ctx.path.replace(`/v2/${route.repo}/`, `/v2/${repo}/`) : ctx.path;
      const key = routeKey(path, ctx.query);
      const answers = key ? cat.answers.lookup(ctx.registry, ctx.method, ctx.auth, key) : [];
      if (route.kind === 'ping') return this.ping(ctx, reg);
      if (route.kind === 'uploads' || (route.kind === 'manifest' && ctx.method === 'PUT')) return this.pushRoute(ctx, route, repo!);
      if (ctx.auth === 'none' && reg.challenge && route.kind !== 'catalog' && !answers.length) {
        req.resume();
        return this.challenge(ctx, reg, repo);
      }
      req.resume();
      if (route.kind === 'manifest' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return serveManifest(this.env, ctx, repo!, route.reference);
      if (route.kind === 'blob' && (ctx.method === 'GET' || ctx.method === 'HEAD')) return this.blobRequest(ctx, reg, repo!, route.digest, answers);
      const pick = pickAnswer(answers, this.env.prefer);
      if (pick) return this.sendAnswer(ctx, pick);
    }
    req.resume();
    // Anything else: an exact recorded request (method, host, path, sorted query without ns), any auth class.
    const exactKey = routeKey(ctx.path, ctx.query)!;
    const exact = pickAnswer([...cat.answers.lookup(ctx.registry, ctx.method, ctx.auth, exactKey), ...cat.answers.lookup(ctx.registry, ctx.method, ctx.auth === 'none' ? 'auth' : 'none', exactKey)], this.env.prefer);
    if (exact) return this.sendAnswer(ctx, exact);
    const code = route?.kind === 'manifest' ? 'MANIFEST_UNKNOWN' : route?.kind === 'blob' ? 'BLOB_UNKNOWN' : 'NAME_UNKNOWN';
    throw this.book.miss(ctx.url, at.mode, { method: ctx.method, host: ctx.registry, path: ctx.path, query: ctx.query, headers: ctx.headers, matcher: 'exact' }, code);
  }

  private sendAnswer(ctx: Ctx, f: FlowRecord): Promise<void> {
    this.o.catalog.used.add(f.id);
    return sendRecorded(ctx.req, ctx.res, this.o.bodies, f, this.rewrite(ctx));
  }

  private ping(ctx: Ctx, reg: RegistryCatalog): Promise<void> | void {
    ctx.req.resume();
    const recorded = reg.pings.get(ctx.auth);
    if (recorded?.response) return this.sendAnswer(ctx, recorded);
    if (ctx.auth === 'none' && reg.challenge) return this.challenge(ctx, reg, null);
    ctx.res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0', 'content-length': 2 });
    ctx.res.end(ctx.method === 'HEAD' ? undefined : '{}');
  }

  private pushRoute(ctx: Ctx, route: NonNullable<ReturnType<typeof matchRoute>>, repo: string): Promise<void> | void {
    const { req, res, method, query } = ctx;
    if (ctx.auth === 'none' && ctx.reg?.challenge) {
      req.resume();
      return this.challenge(ctx, ctx.reg, repo, 'push,pull');
    }
    if (route.kind === 'manifest') return this.push.putManifest(req, res, repo, route.reference);
    if (route.kind !== 'uploads') return;
    const id = route.uploadId;
    if (method === 'POST') return this.push.start(req, res, repo, query, (d) => this.o.catalog.blobs.get(d)?.size ?? null);
    if (method === 'PATCH') return this.push.chunk(req, res, repo, id);
    if (method === 'PUT') return this.push.finish(req, res, repo, id, query);
    if (method === 'GET') return this.push.status(res, repo, id);
    if (method === 'DELETE') return this.push.cancel(res, repo, id);
    req.resume();
    throw new RegistryError(405, 'UNSUPPORTED', `${method} is not an upload method`);
  }

  /** Docker Hub's `library/` convention: `alpine` is `library/alpine` when only that was recorded. */
  private resolveRepo(reg: RegistryCatalog, repo: string, at: Arrival): string {
    if (reg.repos.has(repo) || at.mode === 'proxy') return repo;
    if (!repo.includes('/') && reg.repos.has(`library/${repo}`)) return `library/${repo}`;
    return repo;
  }

  /** Rewrites of recorded answers: in mirror mode the challenge realm points at the mirror's token endpoint. */
  private rewrite(ctx: Ctx): RecordedRewrite {
    if (ctx.at.mode !== 'mirror') return {};
    const realm = `${ctx.at.base}/regtape/token/${encodeURIComponent(ctx.reg?.host ?? '_')}`;
    return { map: (h) => h.map((v, i) => (i % 2 === 1 && /^www-authenticate$/i.test(h[i - 1]!) ? rewriteRealm(v, realm) : v)) };
  }

  /** A token request: the recorded answer to the same scopes (failures as recorded), with replay's own JWT in it. */
  private async serveToken(ctx: Ctx, flows: FlowRecord[]): Promise<void> {
    ctx.req.resume();
    const k = tokenKey(ctx.req.url ?? '/');
    const same = flows.filter((f) => tokenKey(f.request.target) === k);
    const pick = pickAnswer(same, this.env.prefer) ?? pickAnswer(flows.filter(isSuccess), 'last') ?? flows[0]!;
    for (const f of same) if (isSuccess(f) === isSuccess(pick)) this.o.catalog.used.add(f.id);
    this.o.catalog.used.add(pick.id);
    if (!isSuccess(pick)) return sendRecorded(ctx.req, ctx.res, this.o.bodies, pick);
    const requested = parseScopes(ctx.query.getAll('scope'));
    const claimsFrom = same.includes(pick) ? pick : null;
    await sendRecorded(ctx.req, ctx.res, this.o.bodies, pick, { body: (b) => tokenBody(b, (e) => this.o.minter.mint(claimsFrom, e, requested)) });
  }

  private challengeHeader(ctx: Ctx, reg: RegistryCatalog, repo: string | null, actions = 'pull'): string {
    const realm = ctx.at.mode === 'mirror' ? `${ctx.at.base}/regtape/token/${encodeURIComponent(reg.host)}` : reg.challenge?.realm;
    const parts = [`realm="${realm ?? ''}"`];
    if (reg.challenge?.service) parts.push(`service="${reg.challenge.service}"`);
    if (repo) parts.push(`scope="repository:${repo}:${actions}"`);
    return `Bearer ${parts.join(',')}`;
  }

  /** The registry's challenge for a request that came without credentials (the protocol's handshake, not a miss). */
  private challenge(ctx: Ctx, reg: RegistryCatalog, repo: string | null, actions = 'pull'): void {
    writeRegistryError(ctx.res, new RegistryError(401, 'UNAUTHORIZED', 'authentication required', null, { 'www-authenticate': this.challengeHeader(ctx, reg, repo, actions) }), ctx.method === 'HEAD');
  }

  private async mirrorInternal(ctx: Ctx): Promise<void> {
    ctx.req.resume();
    const tok = /^\/regtape\/token\/([^/]+)$/.exec(ctx.path);
    if (tok) {
      const all = [...this.o.catalog.tokenEndpoints.values()].flat();
      const host = decodeURIComponent(tok[1]!);
      const mine = all.filter((f) => f.registry?.registry && canonicalRegistry(f.registry.registry) === host);
      if (mine.length || all.length) return this.serveToken(ctx, mine.length ? mine : all);
      // No token was recorded (anonymous registry): any token will do.
      const body = JSON.stringify({ token: await this.o.minter.mint(null, 300, parseScopes(ctx.query.getAll('scope'))), expires_in: 300, issued_at: new Date().toISOString() });
      ctx.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      return void ctx.res.end(body);
    }
    const blob = /^\/regtape\/blobs\/(sha256:[0-9a-f]{64})$/.exec(ctx.path);
    if (blob) return this.serveBlob(ctx, blob[1]!, 'cdn');
    throw this.book.miss(ctx.url, 'mirror', { method: ctx.method, host: ctx.registry, path: ctx.path, query: ctx.query, headers: ctx.headers, matcher: 'endpoint' }, 'NAME_UNKNOWN');
  }

  /** Stored blob bytes with the headers recorded when they were downloaded. */
  private serveBlob(ctx: Ctx, digest: string, matcher: 'cdn' | 'blob'): void {
    const b = this.o.catalog.blobs.get(digest);
    if (!b) throw this.book.miss(ctx.url, ctx.at.mode, { method: ctx.method, host: ctx.at.mode === 'proxy' ? ctx.at.host.toLowerCase() : ctx.registry, path: ctx.path, query: ctx.query, headers: ctx.headers, matcher }, 'BLOB_UNKNOWN');
    this.o.catalog.used.add(b.flowId);
    const recorded = this.byId.get(b.flowId)?.response?.headers ?? [['Content-Type', 'application/octet-stream'], ['Docker-Content-Digest', digest], ['Etag', `"${digest}"`]];
    sendBody(ctx.req, ctx.res, this.o.bodies, b.bodySha, b.size, replayHeaders(recorded));
  }

  private async blobRequest(ctx: Ctx, reg: RegistryCatalog, repo: string, digest: string, answers: FlowRecord[]): Promise<void> {
    const pick = pickAnswer(answers, this.env.prefer);
    if (pick && !isSuccess(pick)) return this.sendAnswer(ctx, pick);
    const redirect = reg.redirects.get(repo)?.get(digest);
    const have = this.o.catalog.blobs.get(digest);
    const pushed = this.push.blobs.get(digest);
    if (redirect && have) {
      this.o.catalog.used.add(redirect.flowId);
      const location = ctx.at.mode === 'mirror' ? `${ctx.at.base}/regtape/blobs/${digest}` : redirect.location;
      const headers = replayHeaders(redirect.headers, { location });
      ctx.res.writeHead(redirect.status, [...headers, 'Content-Length', '0'] as unknown as Record<string, string>);
      return void ctx.res.end();
    }
    if (have) return this.serveBlob(ctx, digest, 'blob');
    if (pushed != null && ctx.method === 'HEAD') {
      ctx.res.writeHead(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, 'content-length': pushed });
      return void ctx.res.end();
    }
    if (pick && ctx.method === 'HEAD' && pick.request.method === 'HEAD') return this.sendAnswer(ctx, pick);
    throw this.book.miss(ctx.url, ctx.at.mode, { method: ctx.method, host: ctx.registry, path: `/v2/${repo}/blobs/${digest}`, query: ctx.query, headers: ctx.headers, matcher: 'blob' }, 'BLOB_UNKNOWN');
  }
}

/** A token request's identity (§6): service and scopes (actions sorted, then sorted); account, client_id, offline_token ignored. */
function tokenKey(target: string): string {
  const q = splitTarget(target).query;
  const scopes = parseScopes(q.getAll('scope')).map((s) => `${s.type}:${s.name}:${[...new Set(s.actions)].sort().join(',')}`);
  return `${q.get('service') ?? ''} ${[...new Set(scopes)].sort().join(' ')}`;
}
