import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FlowFacts, FlowRecord, FlowState, HeaderList } from '../../src/flow/index.js';
import { Classifier } from '../../src/registry/index.js';
import { Recording } from '../../src/store/index.js';
import { fileEnv } from '../../src/cli/ui.js';
import * as tui from '../../src/tui/index.js';
import { Controller, renderFrame, type Env } from '../../src/tui/index.js';
import { plain } from '../../src/tui/lines.js';

/**
 * A tiny recording written with the store API, shaped like a real pull of two
 * repositories through a registry with token auth and CDN redirects:
 *
 *   lab/alpine:3.9  ping 401 → token → manifest (index) → manifest (image) → config, layer via CDN
 *   lab/oci:1       ping 401 → token → manifest (image) → config, layer via CDN
 *   one aborted CDN download at the end
 *
 * Registry facts come from the real classifier, in order, as the recorder does.
 */

export const CLAIMS = {
  iss: 'lab-auth',
  sub: 'alice',
  aud: 'registry.test',
  iat: 1767225600, // 2026-01-01T00:00:00Z
  exp: 1767225900,
  jti: 'jwt-1',
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const INDEX = 'application/vnd.oci.image.index.v1+json';
const IMAGE = 'application/vnd.oci.image.manifest.v1+json';

export interface Tiny {
  dir: string;
  file: string;
  /** Flow ids by name: `alpine.index`, `alpine.layer.cdn`, `oci.token`, … */
  ids: Record<string, number>;
  digests: Record<string, string>;
}

export async function writeTinyRecording(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-tui-'))): Promise<Tiny> {
  const file = path.join(dir, 'tiny.db');
  const rec = Recording.open(file, { create: true });
  rec.beginSession('test');
  const classifier = new Classifier();
  const ids: Record<string, number> = {};
  const digests: Record<string, string> = {};
  let t = Date.UTC(2026, 0, 1, 12, 0, 0);

  async function add(
    name: string,
    o: {
      method?: string;
      host?: string;
      target: string;
      reqHeaders?: HeaderList;
      status?: number;
      reason?: string;
      resHeaders?: HeaderList;
      body?: Buffer;
      state?: FlowState;
      error?: string;
      facts?: FlowFacts;
      bytes?: number;
    },
  ): Promise<void> {
    const start = (t += 10);
    const host = o.host ?? 'registry.test';
    const flow: FlowRecord = {
      id: 0,
      uuid: randomUUID(),
      state: o.state ?? 'complete',
      request: { method: o.method ?? 'GET', scheme: 'https', host, port: 443, target: o.target, httpVersion: '1.1', headers: [['Host', host], ['User-Agent', 'test-client/1.0'], ...(o.reqHeaders ?? [])] },
      requestBody: null,
      response: o.status ? { status: o.status, reason: o.reason ?? 'OK', httpVersion: '1.1', headers: [...(o.resHeaders ?? []), ['Content-Length', String(o.body?.length ?? 0)]] } : null,
      responseBody: null,
      timings: { start, connect: start + 1, tls: start + 3, requestSent: start + 3.5, firstByte: start + 6, end: o.state === 'aborted' ? undefined : start + 8 },
      clientAddr: '127.0.0.1:50000',
      serverAddr: '127.0.0.9:443',
      error: o.error ?? null,
      requestBytes: 0,
      responseBytes: o.bytes ?? o.body?.length ?? 0,
      facts: o.facts ?? {},
    };
    flow.id = rec.insertOpenFlow(flow);
    const stored = o.body ? await rec.storeBody({ sha256: sha(o.body), size: o.body.length, buffer: o.body }, false) : null;
    flow.responseBody = stored?.ref ?? null;
    flow.registry = classifier.classify(flow);
    rec.finishFlow(flow, null, stored);
    ids[name] = flow.id;
  }

  const auth = (repo: string, marker: string): { headers: HeaderList; facts: FlowFacts } => ({
    headers: [['Authorization', `Bearer ${marker}`]],
    facts: {
      redactions: [{ where: 'request.header:authorization', marker }],
      tokens: [{ where: 'request.header:authorization', marker, claims: { ...CLAIMS, access: [{ type: 'repository', name: repo, actions: ['pull'] }] } }],
    },
  });

  async function pull(key: string, repo: string, tag: string, marker: string, withIndex: boolean): Promise<void> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, repo }));
    const layer = randomBytes(3000);
    layer[0] = 0x1f;
    layer[1] = 0x8b;
    layer[2] = 0; // binary for sure
    const cfgD = `sha256:${sha(config)}`;
    const layerD = `sha256:${sha(layer)}`;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: IMAGE,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgD, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerD, size: layer.length }],
      }),
    );
    const manD = `sha256:${sha(manifest)}`;
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX,
        manifests: [
          { mediaType: IMAGE, digest: manD, size: manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: IMAGE, digest: `sha256:${'ab'.repeat(32)}`, size: 500, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        ],
      }),
    );
    const idxD = `sha256:${sha(index)}`;
    Object.assign(digests, { [`${key}.config`]: cfgD, [`${key}.layer`]: layerD, [`${key}.manifest`]: manD, [`${key}.index`]: idxD });
    const a = auth(repo, marker);
    const accept: HeaderList = [
      ['Accept', INDEX],
      ['Accept', IMAGE],
    ];

    await add(`${key}.ping`, {
      target: '/v2/',
      status: 401,
      reason: 'Unauthorized',
      resHeaders: [
        ['Content-Type', 'application/json'],
        ['Www-Authenticate', 'Bearer realm="https://auth.test/token",service="registry.test"'],
      ],
      body: Buffer.from('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}'),
    });
    await add(`${key}.token`, {
      host: 'auth.test',
      target: `/token?scope=repository%3A${encodeURIComponent(repo)}%3Apull&service=registry.test`,
      status: 200,
      resHeaders: [['Content-Type', 'application/json']],
      body: Buffer.from(JSON.stringify({ token: marker, access_token: marker, expires_in: 300, issued_at: '2026-01-01T00:00:00Z' })),
      facts: {
        redactions: [
          { where: 'response.body:token', marker },
          { where: 'response.body:access_token', marker },
        ],
        tokens: [{ where: 'response.body:token', marker, claims: { ...CLAIMS, access: [{ type: 'repository', name: repo, actions: ['pull'] }] } }],
      },
    });
    if (withIndex) {
      await add(`${key}.index`, {
        target: `/v2/${repo}/manifests/${tag}`,
        reqHeaders: [...a.headers, ...accept],
        status: 200,
        resHeaders: [
          ['Content-Type', INDEX],
          ['Docker-Content-Digest', idxD],
        ],
        body: index,
        facts: a.facts,
      });
    }
    await add(`${key}.manifest`, {
      target: `/v2/${repo}/manifests/${withIndex ? manD : tag}`,
      reqHeaders: [...a.headers, ...accept],
      status: 200,
      resHeaders: [
        ['Content-Type', IMAGE],
        ['Docker-Content-Digest', manD],
      ],
      body: manifest,
      facts: a.facts,
    });
    for (const [part, d, body] of [
      ['config', cfgD, config],
      ['layer', layerD, layer],
    ] as const) {
      const cdn = `https://cdn.test/blobs/${d.slice(7)}/data?verify=REDACTED-00000001`;
      await add(`${key}.${part}.redirect`, {
        target: `/v2/${repo}/blobs/${d}`,
        reqHeaders: a.headers,
        status: 307,
        reason: 'Temporary Redirect',
        resHeaders: [['Location', cdn]],
        facts: a.facts,
      });
      await add(`${key}.${part}.cdn`, {
        host: 'cdn.test',
        target: `/blobs/${d.slice(7)}/data?verify=REDACTED-00000001`,
        status: 200,
        resHeaders: [['Content-Type', 'application/octet-stream']],
        body,
      });
    }
  }

  await pull('alpine', 'lab/alpine', '3.9', 'REDACTED-aaaaaaaa', true);
  await pull('oci', 'lab/oci', '1', 'REDACTED-bbbbbbbb', false);
  await add('aborted', { host: 'cdn.test', target: '/blobs/big/data', status: 200, state: 'aborted', error: 'ECONNRESET: socket hang up', bytes: 12345 });
  rec.close();
  return { dir, file, ids, digests };
}

/** A controller over a recording file, wired as `regtape ui FILE` wires it (read-only; w saves). */
export function controllerFor(file: string, size = { cols: 140, rows: 40 }, opts: { live?: boolean; cwd?: string; write?: boolean; follow?: boolean } = {}): { c: Controller; env: Env; rec: Recording; close(): void } {
  const env = fileEnv(tui, file, { write: opts.write, follow: opts.follow }, { cwd: opts.cwd });
  const rec = env.model.backend.recording!;
  const backend = env.model.backend;
  const c = new Controller(env, { size, live: opts.live, follow: opts.follow });
  c.loadAll();
  return {
    c,
    env,
    rec,
    close: () => {
      c.stop();
      backend.close?.();
      env.model.backend.close?.();
    },
  };
}

/** The current frame as plain text. */
export function frameText(c: Controller): string {
  return renderFrame(c.state, c.env).map(plain).join('\n');
}

/** Press keys (names as keyName gives them; a string of several characters is typed text). */
export function keys(c: Controller, ...names: string[]): void {
  for (const k of names) c.key(k);
}
