/**
 * `~cdn` and `~redirect` on a real recording (dockerd-pull-multiarch: five 307s from registry.test, five
 * downloads from cdn.test), and `regtape help filters`: every registry operator documented with an example
 * that parses and finds flows in the shipped fixtures.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILTER_OPERATORS, parseFilter } from '../../src/filter/index.js';
import { filterSubject, loadRecording, type LoadedRecording } from '../../src/inspect/index.js';
import type { Recording } from '../../src/store/index.js';
import { openFixture, type FixtureName } from '../support/fixtures.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const loaded = new Map<FixtureName, { rec: Recording; l: LoadedRecording }>();
const NAMES: FixtureName[] = ['dockerd-pull-multiarch', 'dockerd-push', 'curl-script', 'failing-pulls', 'skopeo-copy-registry'];

beforeAll(async () => {
  for (const n of NAMES) {
    const rec = openFixture(n);
    loaded.set(n, { rec, l: await loadRecording(rec) });
  }
});
afterAll(() => {
  for (const { rec } of loaded.values()) rec.close();
});

function matching(name: FixtureName, expr: string): string[] {
  const { rec, l } = loaded.get(name)!;
  const f = parseFilter(expr);
  return l.flows.filter((x) => f(filterSubject(x, rec))).map((x) => `${x.request.method} ${x.request.host} ${x.response?.status ?? x.state}`);
}

describe('~cdn and ~redirect say what they mean', () => {
  it('~cdn: the five downloads from the CDN host, none of the registry’s 307s', () => {
    expect(matching('dockerd-pull-multiarch', '~cdn')).toEqual(Array(5).fill('GET cdn.test 200'));
  });
  it('~redirect: the registry’s five 307s, none of the CDN legs', () => {
    expect(matching('dockerd-pull-multiarch', '~redirect')).toEqual(Array(5).fill('GET registry.test 307'));
  });
  it('together they are the whole redirected download, and never overlap', () => {
    expect(matching('dockerd-pull-multiarch', '~cdn | ~redirect')).toHaveLength(10);
    expect(matching('dockerd-pull-multiarch', '~cdn & ~redirect')).toEqual([]);
  });
});

describe('regtape help filters', () => {
  const registryOps = FILTER_OPERATORS.filter((o) => o.group === 'registry');

  it.each(registryOps.map((o) => [o.code, o.example] as const))('~%s has an example that parses and finds flows in a fixture (%s)', (code, example) => {
    expect(example, `~${code} has no example`).toBeTruthy();
    expect(example).toContain(`~${code}`);
    parseFilter(example!);
    const hits = NAMES.flatMap((n) => matching(n, example!.replace('docker\\.io', 'registry\\.test').replace('library/', 'lab/').replace('3.19', '3.9').replace('~c 403', '~c 200')));
    expect(hits.length, `${example} (adapted to the lab's names) matches nothing`).toBeGreaterThan(0);
  });

  it('lists every registry operator with its example', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'help', 'filters'], { cwd: ROOT }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
    );
    for (const o of registryOps) {
      expect(out).toMatch(new RegExp(`^  ~${o.code}\\b`, 'm'));
      expect(out).toContain(`e.g. ${o.example}`);
    }
    expect(out).toContain('~redirect');
  }, 60_000);
});
