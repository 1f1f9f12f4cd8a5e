import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The interop commands as a user runs them (from source, through tsx). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = path.join(ROOT, 'fixtures', 'dockerd-push.db');

function regtape(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-interop-cli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('interop CLI', () => {
  it.each([
    ['export', /regtape export pull\.db --har pull\.har/],
    ['import', /regtape import save\.har --out mitm\.db/],
    ['diff', /regtape diff before\.db after\.db --json/],
    ['merge', /regtape merge run1\.db run2\.db run3\.db --out fixture\.db/],
  ])('%s --help explains itself with examples', async (cmd, example) => {
    const r = await regtape([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toMatch(example);
  });

  it('says what is wrong as regtape: <code>: <sentence>, with exit status 2', async () => {
    const none = await regtape(['export', FIXTURE]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^regtape: bad-argument: say what to export: --har OUT\.har, --curl or --oci-layout DIR/);
    const both = await regtape(['export', FIXTURE, '--curl', '--har', 'x.har']);
    expect(both.stderr).toMatch(/give one of --har, --curl, not several/);
    const filter = await regtape(['export', FIXTURE, '--curl', '--filter', '~op (']);
    expect(filter.code).toBe(2);
    expect(filter.stderr).toMatch(/^regtape: bad-filter: --filter: [\s\S]*\n\(see `regtape flows --help`/);
    const size = await regtape(['export', FIXTURE, '--har', '-', '--max-body', 'lots']);
    expect(size.code).toBe(2);
    expect(size.stderr).toMatch(/^regtape: bad-argument: .*not a size: "lots"/);
    const notHar = await regtape(['import', path.join(ROOT, 'README.md'), '--out', path.join(tmp, 'x.db')]);
    expect(notHar.code).toBe(2);
    expect(notHar.stderr).toMatch(/^regtape: bad-har: .*README\.md is not a HAR file/);
    expect(fs.existsSync(path.join(tmp, 'x.db'))).toBe(false);
    const missing = await regtape(['diff', FIXTURE, path.join(tmp, 'nope.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^regtape: recording-not-found: .*nope\.db: no such recording/);
  });

  it('exports HAR to stdout, imports it, and merges and diffs the result', async () => {
    const har = await regtape(['export', FIXTURE, '--har', '-']);
    expect(har.code, har.stderr).toBe(0);
    const doc = JSON.parse(har.stdout) as { log: { entries: unknown[] } };
    expect(doc.log.entries).toHaveLength(17);
    fs.writeFileSync(path.join(tmp, 'push.har'), har.stdout);
    const imp = await regtape(['import', path.join(tmp, 'push.har'), '--out', path.join(tmp, 'push.db')]);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stderr).toMatch(/^imported 17 of 17 entries from .*push\.har \(regtape 0\.1\.0\) into .*push\.db\n$/);
    const merged = await regtape(['merge', FIXTURE, path.join(tmp, 'push.db'), '--out', path.join(tmp, 'merged.db')]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stderr).toMatch(/merged 17 flows from 2 recordings/); // the import kept the uuids: the same flows
    const diff = await regtape(['diff', FIXTURE, path.join(tmp, 'push.db'), '--exit-code']);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    expect(diff.stdout).toMatch(/push registry\.test\/lab\/pushed:1: same/);
    const curl = await regtape(['export', path.join(tmp, 'push.db'), '--curl', '--filter', '~op upload-chunk']);
    expect(curl.stdout.match(/^curl /gm)).toHaveLength(1);
    expect(curl.stdout).toMatch(/-X PATCH 'https:\/\/registry\.test\/v2\/lab\/pushed\/blobs\/uploads\/[0-9a-f-]+\?_state='"\$\{REGTAPE_STATE\}"/);
  });
});
