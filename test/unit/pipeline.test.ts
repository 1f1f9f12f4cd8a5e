import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { FlowRecord, RequestHead } from '../../src/flow/index.js';
import { loadAddons } from '../../src/cli/addons.js';
import { RegtapeError } from '../../src/errors/index.js';
import { classifyAddon, defaultChain, digestCheckAddon, knownClaimsAddon, Pipeline, redactAddon, tokenFactsAddon, type Addon, type FactsSoFar } from '../../src/pipeline/index.js';
import { Redactor } from '../../src/redact/index.js';
import { Classifier } from '../../src/registry/index.js';
import { makeFlow } from '../support/flows.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-pipeline-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
const facts = (): FactsSoFar => ({ redactions: [], tokens: [] });
const head = (headers: Array<[string, string]> = [], target = '/v2/'): RequestHead => ({ method: 'GET', scheme: 'https', host: 'registry.test', port: 443, target, httpVersion: '1.1', headers });
const finished = (flow: FlowRecord, request: Buffer | null = null) => ({ flow, bodies: { request, response: null }, described: {} });

describe('Pipeline', () => {
  it('runs hooks in chain order and reports (then skips) an addon that fails', () => {
    const seen: string[] = [];
    const failures: string[] = [];
    const a: Addon = { name: 'a', flowStored: () => void seen.push('a') };
    const bad: Addon = { name: 'bad', flowStored: () => { throw new Error('boom'); } };
    const b: Addon = { name: 'b', flowStored: () => void seen.push('b') };
    new Pipeline([a, bad, b], (x, hook, e) => failures.push(`${x.name}.${hook}: ${e.message}`)).flowStored(makeFlow());
    expect(seen).toEqual(['a', 'b']);
    expect(failures).toEqual(['bad.flowStored: boom']);
  });

  it('lets a critical addon fail the flow instead of skipping it', () => {
    const p = new Pipeline([{ name: 'must', critical: true, requestHead: () => { throw new Error('no'); } }]);
    expect(() => p.requestHead({ request: head(), facts: facts() })).toThrow('no');
  });

  it('feeds each body hook the bytes the previous one returned', () => {
    const p = new Pipeline([{ name: 'up', body: (c) => Buffer.from(c.bytes.toString().toUpperCase()) }, { name: 'bang', body: (c) => Buffer.concat([c.bytes, Buffer.from('!')]) }]);
    expect(p.body({ side: 'response', bytes: Buffer.from('hi'), contentType: 'text/plain', contentEncoding: undefined, facts: facts() }, head()).toString()).toBe('HI!');
  });
});

describe('addons, each alone', () => {
  it('redact: replaces the bearer token by a marker and keeps its claims as a fact', () => {
    const f = facts();
    const request = head([['Authorization', `Bearer ${jwt({ access: [{ type: 'repository', name: 'lab/a', actions: ['pull'] }] })}`]]);
    redactAddon(new Redactor()).requestHead!({ request, facts: f });
    expect(request.headers[0]![1]).toMatch(/^Bearer REDACTED-[0-9a-f]{8}$/);
    expect(f.tokens[0]!.claims).toMatchObject({ access: [{ name: 'lab/a' }] });
    expect(f.redactions).toHaveLength(1);
  });

  it('redact: token fields of a JSON body are replaced (body hook returns new bytes)', () => {
    const f = facts();
    const out = redactAddon(new Redactor()).body!({ side: 'response', bytes: Buffer.from(JSON.stringify({ token: jwt({ sub: 'x' }) })), contentType: 'application/json', contentEncoding: undefined, facts: f });
    expect(out?.toString()).toMatch(/"token":"REDACTED-[0-9a-f]{8}"/);
    expect(f.tokens[0]!.claims).toMatchObject({ sub: 'x' });
  });

  it('token-facts (--keep-secrets): keeps the header, decodes the claims, no marker', () => {
    const f = facts();
    const token = jwt({ sub: 'me' });
    const request = head([['Authorization', `Bearer ${token}`]]);
    tokenFactsAddon(new Redactor()).requestHead!({ request, facts: f });
    expect(request.headers[0]![1]).toBe(`Bearer ${token}`);
    expect(f.tokens).toEqual([{ where: 'request.header:authorization', marker: '', claims: { sub: 'me' } }]);
  });

  it('classify: an OAuth POST token request gets the scopes of its (redacted) form body', () => {
    const c = new Classifier();
    const addon = classifyAddon(c);
    addon.flowFinished!(finished(makeFlow({ request: { method: 'GET', host: 'registry.test', target: '/v2/' }, response: { status: 401, headers: [['WWW-Authenticate', 'Bearer realm="https://auth.test/token",service="registry.test"']] } })));
    const post = makeFlow({ request: { method: 'POST', host: 'auth.test', target: '/token', headers: [['Content-Type', 'application/x-www-form-urlencoded']] } });
    addon.flowFinished!(finished(post, Buffer.from('grant_type=password&password=REDACTED-00000000&scope=repository%3Alab%2Fx%3Apull')));
    expect(post.registry).toMatchObject({ role: 'token', registry: 'registry.test', scopesRequested: [{ type: 'repository', name: 'lab/x', actions: ['pull'] }] });
  });

  it('digest-check: checks a body the source only described (a layer the HAR left out)', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const flow = makeFlow({ request: { method: 'GET', host: 'registry.test', target: `/v2/lab/x/blobs/${digest}` }, response: { status: 200, headers: [] }, responseBody: null });
    classifyAddon(new Classifier()).flowFinished!(finished(flow));
    digestCheckAddon().flowFinished!({ flow, bodies: { request: null, response: null }, described: { response: { sha256: 'a'.repeat(64), size: 10, redacted: false } } });
    expect(flow.registry!.digestCheck).toBe('ok');
    digestCheckAddon().flowFinished!({ flow, bodies: { request: null, response: null }, described: { response: { sha256: 'b'.repeat(64), size: 10, redacted: false } } });
    expect(flow.registry!.digestCheck).toBe('mismatch');
  });

  it('known-claims: fills claims a marker-only token lacks', () => {
    const flow = makeFlow({ facts: { tokens: [{ where: 'request.header:authorization', marker: 'REDACTED-11111111', claims: null }] } });
    knownClaimsAddon((m) => (m === 'REDACTED-11111111' ? { sub: 'known' } : undefined)).flowFinished!(finished(flow));
    expect(flow.facts.tokens![0]!.claims).toEqual({ sub: 'known' });
  });

  it('the default chain redacts, then classifies, then checks digests, in that order', () => {
    expect(defaultChain().addons.map((a) => a.name)).toEqual(['redact', 'classify', 'digest-check']);
    expect(defaultChain({ keepSecrets: true }).addons.map((a) => a.name)).toEqual(['token-facts', 'classify', 'digest-check']);
  });
});

describe('record --addon FILE.mjs', () => {
  it('loads a user addon (object, array or factory) and runs it after the default chain', async () => {
    const file = path.join(tmp, 'count.mjs');
    fs.writeFileSync(file, `const seen = []; export default () => [{ name: 'count', flowFinished: (ctx) => seen.push(ctx.flow.registry?.role), flowStored: () => {} , seen }];`);
    const [addon] = await loadAddons([file]);
    expect(addon!.name).toBe('count');
    const chain = defaultChain({ after: [addon!] });
    const flow = makeFlow({ request: { method: 'GET', host: 'registry.test', target: '/v2/' }, response: { status: 200, headers: [] } });
    chain.flowFinished(finished(flow));
    expect((addon as unknown as { seen: string[] }).seen).toEqual(['ping']);
  });

  it('refuses a file that is not an addon with a bad-addon error', async () => {
    const file = path.join(tmp, 'bad.mjs');
    fs.writeFileSync(file, 'export default { nothing: true };');
    await expect(loadAddons([file])).rejects.toThrow(RegtapeError);
    await expect(loadAddons([file])).rejects.toMatchObject({ code: 'bad-addon' });
    await expect(loadAddons([path.join(tmp, 'missing.mjs')])).rejects.toMatchObject({ code: 'bad-addon' });
  });
});
