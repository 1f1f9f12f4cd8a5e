import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnReplay } from '../support/cli.js';
import { buildPullRecording, DOCKERD_ACCEPTS, MT, type Fixture } from '../support/replay-fixture.js';

/**
 * The one miss path (issue 11 item 4, issue 13 item 4): for each mode (proxy, mirror) and
 * each matcher (tag, digest, manifest selection), a request the recording has no answer for
 * makes `regtape replay --strict` exit non-zero and shows up in `--report`; a run that asks
 * only for what was recorded passes --strict.
 */

let tmp: string;
let fx: Fixture;
let home: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-strict-'));
  home = path.join(tmp, 'home');
  fx = await buildPullRecording(path.join(tmp, 'pull.db'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Run {
  base: { proxy: string; mirror: string };
  get(url: string, headers: Record<string, string | string[]>): Promise<number>;
  stop(): Promise<{ code: number | null; stderr: string; report: { misses: Array<{ mode: string; matcher: string; url: string; explanation: string }> } }>;
}

async function run(): Promise<Run> {
  const report = path.join(tmp, `report-${Math.random().toString(36).slice(2)}.json`);
  const r = await spawnReplay([fx.path, '--listen', '127.0.0.1:0', '--mirror', '127.0.0.1:0', '--strict', '--report', report], { REGTAPE_HOME: home });
  const ca = fs.readFileSync(path.join(home, 'ca.pem'), 'utf8');
  const proxy = new ProxyAgent({ uri: r.proxyUrl!, requestTls: { ca } });
  const direct = new Agent();
  return {
    base: { proxy: 'https://registry.test', mirror: r.mirrorUrl },
    get: async (url, headers) => {
      const res = await request(url, { headers, dispatcher: (url.startsWith('https:') ? proxy : direct) as Dispatcher });
      await res.body.dump();
      return res.statusCode;
    },
    stop: async () => {
      const code = await new Promise<number | null>((resolve) => {
        r.proc.once('exit', resolve);
        r.proc.kill('SIGINT');
      });
      await proxy.close();
      await direct.close();
      return { code, stderr: r.stderr(), report: JSON.parse(fs.readFileSync(report, 'utf8')) };
    },
  };
}

const bearer = { authorization: 'Bearer x' };
const dockerd = { ...bearer, accept: DOCKERD_ACCEPTS };

describe('replay --strict and --report see every miss', () => {
  it('a run asking only for what was recorded passes --strict', async () => {
    const r = await run();
    for (const base of [r.base.proxy, r.base.mirror]) {
      expect(await r.get(`${base}/v2/lab/img/manifests/1`, dockerd)).toBe(200);
      expect(await r.get(`${base}/v2/lab/img/manifests/${fx.manifests.arm64.digest}`, dockerd)).toBe(200);
      expect(await r.get(`${base}/v2/lab/oci/manifests/1`, { ...bearer, accept: `${MT.ociManifest}, ${MT.ociIndex}, */*` })).toBe(200);
    }
    const done = await r.stop();
    expect(done.report.misses).toEqual([]);
    expect(done.code, done.stderr).toBe(0);
  });

  for (const mode of ['proxy', 'mirror'] as const) {
    const cases = [
      { matcher: 'tag', path: '/v2/lab/img/manifests/2', headers: dockerd, says: /tag 2 of lab\/img was never recorded/ },
      { matcher: 'digest', path: `/v2/lab/img/manifests/sha256:${'9'.repeat(64)}`, headers: dockerd, says: /manifest sha256:9{64} was never recorded/ },
      // An Accept that regressed (no OCI types): the registry would 404 too, but that 404 was never recorded.
      { matcher: 'selection', path: '/v2/lab/oci/manifests/1', headers: { ...bearer, accept: [MT.v2, MT.list] }, says: /is an OCI manifest, and this request's Accept lacked application\/vnd\.oci\.image\.manifest\.v1\+json/ },
    ];
    for (const c of cases) {
      it(`${mode}, ${c.matcher}: --strict fails and the miss is in the report`, async () => {
        const r = await run();
        expect(await r.get(`${r.base[mode]}${c.path}`, c.headers)).toBe(404);
        const done = await r.stop();
        expect(done.code, done.stderr).toBe(1);
        expect(done.stderr).toMatch(/replay-misses: --strict: 1 request/);
        expect(done.report.misses).toHaveLength(1);
        const m = done.report.misses[0]!;
        expect({ mode: m.mode, matcher: m.matcher, path: new URL(m.url).pathname }).toEqual({ mode, matcher: c.matcher, path: c.path });
        expect(m.explanation).toMatch(c.says);
      });
    }
  }
});
