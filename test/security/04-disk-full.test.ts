/**
 * Class 4: disk full. The recording lives on a 2 MiB tmpfs. When the disk fills (a body
 * bigger than the disk, then a disk with no room even for a row), the proxy keeps proxying
 * (every client gets all its bytes), says once, loudly, that recording stopped and why
 * (ENOSPC, the path), marks the flows it could not store, and resumes when space returns.
 * Needs root (mount); skipped otherwise.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBytes } from '../support/origin.js';
import { curl, memoryLogger, settle, startLab, type Lab } from './support.js';

const root = process.getuid?.() === 0;
const BIG = patternBytes(3 << 20, 4);
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');
let disk: string;
let lab: Lab;
const log = memoryLogger();

beforeAll(async () => {
  if (!root) return;
  disk = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-sec4-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk]);
  lab = await startLab(
    ['origin.test'],
    (req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG.length });
        return void res.end(BIG);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      // While the disk is full these need a body file (> 64 KiB): the store must refuse them.
      res.end(JSON.stringify({ ok: req.url, pad: 'x'.repeat(req.url?.startsWith('/while-full') ? 200_000 : 2000) }));
    },
    {},
    log,
    path.join(disk, 'r.db'),
  );
});
afterAll(async () => {
  if (!root) return;
  await lab?.close();
  execFileSync('umount', [disk]);
  fs.rmSync(disk, { recursive: true, force: true });
});

const stopped = () => log.lines.filter((l) => /recording stopped/i.test(l));

describe.skipIf(!root)('class 4: disk full', () => {
  it('a body bigger than the disk: the client gets every byte, the flow is marked not stored', async () => {
    expect((await curl(lab, ['https://origin.test/first'])).stdout).toContain('"ok":"/first"');
    const r = await curl(lab, ['-o', '-', 'https://origin.test/big']);
    expect(r.code).toBe(0);
    expect(createHash('sha256').update(Buffer.from(r.stdout, 'latin1')).digest('hex')).toBe(BIG_SHA);
    await settle(lab, 2);
    const f = lab.session.recording.list().find((x) => x.request.target === '/big')!;
    expect(f.response?.status).toBe(200);
    expect(f.responseBody).toBeNull();
    expect(f.error).toMatch(/response body \(3\.\d MB\) not stored: .*ENOSPC/);
    expect(fs.readdirSync(path.join(disk, 'r.blobs', '.tmp'))).toEqual([]); // the partial file is gone
  });

  it('a full disk (no room for a row): clients are still served; one loud line says recording stopped and why', async () => {
    try {
      execFileSync('sh', ['-c', `dd if=/dev/zero of=${disk}/filler bs=64k 2>/dev/null; true`]);
    } catch {
      // full
    }
    for (let i = 0; i < 5; i++) expect((await curl(lab, [`https://origin.test/while-full-${i}`])).stdout).toContain(`"ok":"/while-full-${i}"`);
    await settle(lab);
    expect(stopped()).toHaveLength(1);
    expect(stopped()[0]).toMatch(/^error: /);
    expect(stopped()[0]).toMatch(/ENOSPC|SQLITE_FULL/);
    expect(stopped()[0]).toContain(disk);
  });

  it('recording resumes by itself when space returns', async () => {
    fs.rmSync(path.join(disk, 'filler'));
    expect((await curl(lab, ['https://origin.test/after'])).stdout).toContain('"ok":"/after"');
    await settle(lab);
    const targets = lab.session.recording.list().map((f) => f.request.target);
    expect(targets).toContain('/after');
    expect(log.lines.some((l) => /recording resumed/i.test(l))).toBe(true);
    expect(stopped()).toHaveLength(1);
  });
});
