import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlBodyFor, curlCommand, Placeholders, shellQuote, Sink, writeCurl, type CurlBody } from '../../src/export/index.js';
import { parseFilter } from '../../src/filter/index.js';
import type { FlowRecord, HeaderList } from '../../src/flow/index.js';
import { Recording } from '../../src/store/index.js';
import { makeFlow } from '../support/flows.js';
import { patternBytes } from '../support/origin.js';

function flow(method: string, url: string, headers: HeaderList, over: Partial<FlowRecord> = {}): FlowRecord {
  return makeFlow({ id: 7, uuid: randomUUID(), url, request: { method, headers }, ...over });
}

/** Run the command with `curl` swapped for a printer: the shell's own parse of the quoting. */
function argv(cmd: string, env: Record<string, string> = {}): string[] {
  const script = cmd.replace(/^curl /m, `printf '%s\\0' `);
  const out = execFileSync('sh', ['-c', script], { env: { PATH: process.env.PATH!, ...env } });
  return out.toString('utf8').split('\0').slice(0, -1);
}

const NONE: CurlBody = { kind: 'none' };

describe('curl export', () => {
  it('turns a REDACTED bearer token into a placeholder variable', () => {
    const cmd = curlCommand(flow('GET', 'https://registry.test/v2/lab/alpine/manifests/3.9', [['Host', 'registry.test'], ['Accept', 'a/b'], ['Authorization', 'Bearer REDACTED-0a1b2c3d']]), NONE);
    expect(cmd).toContain(`-H 'Authorization: Bearer '"\${REGTAPE_TOKEN}"`);
    expect(cmd).not.toContain('REDACTED-0a1b2c3d');
    expect(cmd.split('\n')[0]).toBe('# flow 7: GET https://registry.test/v2/lab/alpine/manifests/3.9 → 200');
    expect(argv(cmd, { REGTAPE_TOKEN: 'tok en$`"\'' })).toEqual(['-X', 'GET', 'https://registry.test/v2/lab/alpine/manifests/3.9', '-H', 'Accept: a/b', '-H', `Authorization: Bearer tok en$\`"'`]);
  });

  it('uses -u with a password variable for redacted Basic credentials, and names query secrets', () => {
    const basic = `Basic ${Buffer.from('labuser:REDACTED-99998888').toString('base64')}`;
    const vars = new Placeholders();
    const cmd = curlCommand(flow('GET', 'https://auth.test/token?service=registry.test&verify=REDACTED-11112222&sig=REDACTED-11112222', [['Authorization', basic]]), NONE, vars);
    expect(argv(cmd, { REGTAPE_PASSWORD: 'pw', REGTAPE_VERIFY: 'v' })).toEqual(['-X', 'GET', 'https://auth.test/token?service=registry.test&verify=v&sig=v', '-u', 'labuser:pw']);
    expect(vars.names).toEqual(['REGTAPE_VERIFY', 'REGTAPE_PASSWORD']);
  });

  it('sends HEAD with --head, keeps headers in order with duplicates, and leaves out what curl computes', () => {
    const cmd = curlCommand(
      flow('HEAD', 'https://registry.test:5000/v2/', [
        ['Host', 'registry.test:5000'],
        ['Accept', 'x'],
        ['Accept', 'y'],
        ['Content-Length', '0'],
        ['X-Empty', ''],
      ]),
      NONE,
    );
    expect(argv(cmd)).toEqual(['--head', 'https://registry.test:5000/v2/', '-H', 'Accept: x', '-H', 'Accept: y', '-H', 'X-Empty;']);
  });

  it('inlines small text bodies (secrets as variables) and points at body files or stdin otherwise', () => {
    const form: CurlBody = { kind: 'text', text: "grant_type=password&password=REDACTED-aaaabbbb&note=it's" };
    const cmd = curlCommand(flow('POST', 'https://auth.test/token', [['Content-Type', 'application/x-www-form-urlencoded']]), form);
    expect(argv(cmd, { REGTAPE_PASSWORD: 'p w' })).toEqual(['-X', 'POST', 'https://auth.test/token', '-H', 'Content-Type: application/x-www-form-urlencoded', '--data-binary', "grant_type=password&password=p w&note=it's"]);
    const file = curlCommand(flow('PUT', 'https://r/v2/x/blobs/uploads/1?digest=sha256%3Aab', []), { kind: 'file', path: "/tmp/it's/ab", size: 10, sha256: 'ab' });
    expect(argv(file)).toContain("@/tmp/it's/ab");
    expect(file).toMatch(/^# request body: 10 bytes read from the recording's body file/m);
    const stdin = curlCommand(flow('PATCH', 'https://r/v2/x/blobs/uploads/1', []), { kind: 'stdin', size: 5, sha256: 'cd', why: 'are binary' });
    expect(argv(stdin)).toEqual(['-X', 'PATCH', 'https://r/v2/x/blobs/uploads/1', '--data-binary', '@-']);
    expect(stdin).toMatch(/^# request body: 5 bytes \(sha256:cd\) are binary; feed them on stdin$/m);
  });

  it('quotes any header value so the shell gives it back unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 0, maxLength: 40 }).filter((s) => !s.includes('\0') && !/\r|\n/.test(s)), (value) => {
        const cmd = curlCommand(flow('GET', 'https://h/x', [['X-V', value]]), NONE);
        expect(argv(cmd).slice(-1)[0]).toBe(value === '' ? 'X-V;' : `X-V: ${value}`);
      }),
      { numRuns: 60 },
    );
    expect(shellQuote('plain-1.2/x')).toBe('plain-1.2/x');
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });
});

describe('curl export of a recording', () => {
  let tmp: string;
  let db: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-curl-'));
    db = path.join(tmp, 'rec.db');
    const rec = Recording.open(db, { create: true });
    rec.beginSession('test');
    const add = async (f: FlowRecord, body?: Buffer) => {
      const id = rec.insertOpenFlow(f);
      const stored = body ? await rec.storeBody({ sha256: createHash('sha256').update(body).digest('hex'), size: body.length, buffer: body }, false) : null;
      rec.finishFlow({ ...f, id, requestBody: stored?.ref ?? null, requestBytes: body?.length ?? 0 }, stored, null);
    };
    await add(flow('GET', 'https://registry.test/v2/', []));
    await add(flow('GET', 'https://registry.test/v2/lab/img/manifests/1', [['Authorization', 'Bearer REDACTED-0a1b2c3d']]));
    await add(flow('PATCH', 'https://registry.test/v2/lab/img/blobs/uploads/u1', [['Content-Type', 'application/octet-stream']]), patternBytes(100_000, 5));
    await add(flow('POST', 'https://auth.test/token', [['Content-Type', 'application/json']]), Buffer.from('{"password":"REDACTED-aaaabbbb"}'));
    rec.close();
  });

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes one command per flow, filtered, and lists the variables to set', async () => {
    const rec = Recording.open(db, { readonly: true });
    let text = '';
    const sink = new Sink(
      new Writable({
        write(c: Buffer, _e, cb) {
          text += c.toString();
          cb();
        },
      }),
    );
    const stats = await writeCurl(rec, sink, { filter: parseFilter('!~op ping') });
    const body = await curlBodyFor(rec, rec.get(3)!);
    rec.close();
    expect(stats.commands).toBe(3);
    expect(text.match(/^curl /gm)).toHaveLength(3);
    expect(stats.variables).toEqual(['REGTAPE_TOKEN', 'REGTAPE_PASSWORD']);
    expect(text).toContain('#   export REGTAPE_TOKEN=...');
    expect(text).not.toMatch(/REDACTED-/);
    // The 100 kB binary upload is read from the recording's body file.
    expect(body.kind).toBe('file');
    expect(text).toContain(`--data-binary @${path.join(tmp, 'rec.blobs')}/`);
    expect(text).toContain(`--data-binary '{"password":"'"\${REGTAPE_PASSWORD}"'"}'`);
  });
});
