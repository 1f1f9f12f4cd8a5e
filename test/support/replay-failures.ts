import type { HeaderList } from '../../src/flow/index.js';
import { Recording } from '../../src/store/index.js';
import { addFlow, CHALLENGE, digestOf, DOCKERD_ACCEPTS, MT, type FlowSpec } from './replay-fixture.js';

/**
 * A synthetic recording of a Docker-Hub-like registry answering with failures as well as
 * successes (for replay fidelity tests): the answers a client gets for a missing repository
 * (401 insufficient_scope), a forbidden one (403), unknown names and tags (404), distribution's
 * content-negotiation 404, a rate limit (429 with Retry-After), 5xx; requests answered
 * differently at different times; Link/Warning headers; Docker Hub's three registry names.
 */
export interface FailuresFixture {
  path: string;
  ok: { bytes: Buffer; digest: string };
  index: { bytes: Buffer; digest: string };
  bodies: Record<string, Buffer>;
  flows: Record<string, number>;
}

const BEARER: [string, string] = ['Authorization', 'Bearer REDACTED-1'];
const accept = (types: string[]): HeaderList => types.map((a): [string, string] => ['Accept', a]);
export const DOCKER_ONLY = [MT.v2, MT.list];
const err = (code: string, message: string, detail: unknown = null) => Buffer.from(`${JSON.stringify({ errors: [{ code, message, detail }] })}\n`);
const json: [string, string] = ['Content-Type', 'application/json; charset=utf-8'];
const api: [string, string] = ['Docker-Distribution-Api-Version', 'registry/2.0'];
const rate: HeaderList = [['Ratelimit-Limit', '100;w=21600'], ['Ratelimit-Remaining', '76;w=21600'], ['Docker-Ratelimit-Source', '192.0.2.7']];

export async function buildFailuresRecording(dbPath: string): Promise<FailuresFixture> {
  const ok = Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: MT.v2, config: { mediaType: MT.dockerConfig, size: 2, digest: digestOf(Buffer.from('{}')) }, layers: [] }, null, 3)}\n`);
  const index = Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, size: 10, digest: `sha256:${'e'.repeat(64)}`, platform: { architecture: 'arm64', os: 'linux' } }] })}\n`);
  const bodies = {
    insufficient: err('UNAUTHORIZED', 'authentication required', [{ Type: 'repository', Class: '', Name: 'lab/missing', Action: 'pull' }]),
    denied: err('DENIED', 'requested access to the resource is denied'),
    nameUnknown: err('NAME_UNKNOWN', 'repository name not known to registry', { name: 'lab/gone' }),
    manifestUnknown: err('MANIFEST_UNKNOWN', 'manifest unknown', { Tag: 'nope' }),
    negotiation: err('MANIFEST_UNKNOWN', 'OCI index found, but accept header does not support OCI indexes'),
    tooMany: err('TOOMANYREQUESTS', 'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit'),
    unavailable: Buffer.from('<html><body>503 Service Temporarily Unavailable</body></html>\n'),
    internal: err('UNKNOWN', 'unknown error', { DriverName: 'filesystem' }),
    tags: Buffer.from('{"name":"lab/app","tags":["1","nope"]}\n'),
    badCredentials: Buffer.from('{"details":"incorrect username or password"}'),
  };
  const rec = Recording.open(dbPath, { create: true });
  const flows: Record<string, number> = {};
  const okHeaders = (d: string): HeaderList => [['Content-Type', MT.v2], ['Docker-Content-Digest', d], api, ['Etag', `"${d}"`], ['Strict-Transport-Security', 'max-age=31536000'], ...rate];
  try {
    rec.beginSession('test', { fixture: 'replay-failures' });
    let t = 1_700_000_000_000;
    const add = async (name: string, s: FlowSpec) => {
      flows[name] = await addFlow(rec, (t += 10), s);
    };
    const m = (repo: string, ref: string) => `/v2/${repo}/manifests/${ref}`;
    await add('ping', { target: '/v2/', status: 401, resHeaders: [json, api, ['Www-Authenticate', CHALLENGE]], body: err('UNAUTHORIZED', 'authentication required') });
    await add('ok', { target: m('lab/app', '1'), reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER], status: 200, resHeaders: okHeaders(digestOf(ok)), body: ok });
    await add('insufficient', {
      target: m('lab/missing', 'latest'),
      reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER],
      status: 401,
      resHeaders: [json, api, ['Www-Authenticate', `${CHALLENGE},scope="repository:lab/missing:pull",error="insufficient_scope"`]],
      body: bodies.insufficient,
    });
    await add('denied', { target: m('lab/private', '1'), reqHeaders: [BEARER], status: 403, resHeaders: [json, api], body: bodies.denied });
    await add('nameUnknown', { target: m('lab/gone', '1'), reqHeaders: [BEARER], status: 404, resHeaders: [json, api], body: bodies.nameUnknown });
    await add('manifestUnknown', { target: m('lab/app', 'nope'), reqHeaders: [BEARER], status: 404, resHeaders: [json, api], body: bodies.manifestUnknown });
    await add('negotiation', { target: m('lab/ociidx', '1'), reqHeaders: [...accept(DOCKER_ONLY), BEARER], status: 404, resHeaders: [json, api], body: bodies.negotiation });
    // Rate limited, then let through: the last answer sticks (200).
    await add('busy429', { target: m('lab/busy', '1'), reqHeaders: [BEARER], status: 429, resHeaders: [json, ['Retry-After', '60'], ['Ratelimit-Limit', '100;w=21600'], ['Ratelimit-Remaining', '0;w=21600']], body: bodies.tooMany });
    await add('busy200', { target: m('lab/busy', '1'), reqHeaders: [BEARER], status: 200, resHeaders: okHeaders(digestOf(ok)), body: ok });
    await add('limited', { target: m('lab/limited', '1'), reqHeaders: [BEARER], status: 429, resHeaders: [json, ['Retry-After', '3600'], ['Ratelimit-Limit', '100;w=21600'], ['Ratelimit-Remaining', '0;w=21600'], ['Docker-Ratelimit-Source', '192.0.2.7']], body: bodies.tooMany });
    // Served, then failing: the last answer sticks (503); --prefer success gives the 200.
    await add('flaky200', { target: m('lab/flaky', '1'), reqHeaders: [BEARER], status: 200, resHeaders: okHeaders(digestOf(ok)), body: ok });
    await add('flaky503', { target: m('lab/flaky', '1'), reqHeaders: [BEARER], status: 503, resHeaders: [['Content-Type', 'text/html'], ['Retry-After', '5']], body: bodies.unavailable });
    await add('blob500', { target: `/v2/lab/app/blobs/sha256:${'d'.repeat(64)}`, reqHeaders: [BEARER], status: 500, resHeaders: [json, api], body: bodies.internal });
    await add('tags', {
      target: '/v2/lab/app/tags/list?n=2',
      reqHeaders: [BEARER],
      status: 200,
      resHeaders: [json, api, ['Link', '</v2/lab/app/tags/list?last=nope&n=2>; rel="next"'], ['Warning', '299 - "this repository is deprecated"']],
      body: bodies.tags,
    });
    // Token server: wrong credentials (Basic) for a push scope.
    await add('tokenDenied', {
      host: 'auth.test',
      target: `/token?scope=${encodeURIComponent('repository:lab/app:push,pull')}&service=registry.test`,
      reqHeaders: [['Authorization', 'Basic REDACTED-9']],
      status: 401,
      resHeaders: [json, ['Www-Authenticate', 'Basic realm="registry.test token server"']],
      body: bodies.badCredentials,
    });
    // A HEAD whose manifest body was never fetched.
    await add('headOnly', { method: 'HEAD', target: m('lab/headonly', '1'), reqHeaders: [BEARER], status: 200, resHeaders: okHeaders(`sha256:${'4'.repeat(64)}`), headLength: 1234 });
    // Docker Hub, recorded as registry-1.docker.io.
    await add('hub', { host: 'registry-1.docker.io', target: m('library/alpine', 'latest'), reqHeaders: [...accept(DOCKERD_ACCEPTS), BEARER], status: 200, resHeaders: okHeaders(digestOf(ok)), body: ok });
    // An OCI index fetched with Docker-only Accept is the negotiation 404 on the registry too; fetched properly here.
    await add('ociidx2', { target: m('lab/oci2', '1'), reqHeaders: [...accept([MT.ociIndex, MT.ociManifest]), BEARER], status: 200, resHeaders: [['Content-Type', MT.ociIndex], ['Docker-Content-Digest', digestOf(index)], api], body: index });
  } finally {
    rec.close();
  }
  return { path: dbPath, ok: { bytes: ok, digest: digestOf(ok) }, index: { bytes: index, digest: digestOf(index) }, bodies, flows };
}
