/**
 * `regtape show --json` on every shipped fixture against a golden file in test/golden/ (reviewed by hand:
 * kinds, names, flows, legs, bytes and problems checked against fixtures/README.md's flow lists). The
 * fixtures never change, so neither does the output; UPDATE_GOLDEN=1 rewrites the files (then read them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadRecording, showDocument, SHOW_SCHEMA } from '../../src/inspect/index.js';
import type { Recording } from '../../src/store/index.js';
import { openFixture, type FixtureName } from '../support/fixtures.js';

const GOLDEN = path.resolve(import.meta.dirname, '../golden');
const NAMES: FixtureName[] = ['dockerd-pull-multiarch', 'skopeo-copy', 'ctr-pull', 'dockerd-push', 'podman-pull', 'skopeo-copy-registry', 'curl-script', 'failing-pulls'];
const open: Recording[] = [];
afterAll(() => {
  for (const r of open) r.close();
});

it.each(NAMES)('show --json of fixtures/%s.db is its golden file', async (name) => {
  const rec = openFixture(name);
  open.push(rec);
  const doc = showDocument(await loadRecording(rec), `fixtures/${name}.db`);
  expect(doc.schema).toBe(SHOW_SCHEMA);
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  const file = path.join(GOLDEN, `${name}.show.json`);
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
  expect(text).toBe(fs.readFileSync(file, 'utf8'));
});

it('the CLI prints the same document', async () => {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'show', '--json', 'fixtures/failing-pulls.db'], { cwd: path.resolve(import.meta.dirname, '../..'), encoding: 'utf8' });
  expect(out).toBe(fs.readFileSync(path.join(GOLDEN, 'failing-pulls.show.json'), 'utf8'));
}, 60_000);
