import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, spawnRecord } from '../support/cli.js';

/** Files and ports, predictable: refusals come before anything starts or is written. */
let dir: string;
let env: Record<string, string>;
const FIXTURE = path.resolve(path.dirname(CLI), '../../fixtures/skopeo-copy.db');

function regtape(args: string[], stdin?: Buffer, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`regtape ${args.join(' ')} still running after ${timeoutMs} ms (it should have refused):\n${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(stdin ?? Buffer.alloc(0));
  });
}

/** A port held by someone else. */
async function takenPort(): Promise<{ port: number; close: () => void }> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as net.AddressInfo).port, close: () => s.close() };
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-files-'));
  env = { PATH: process.env.PATH!, HOME: dir, REGTAPE_HOME: path.join(dir, 'home'), NO_COLOR: '1' };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('record --out', () => {
  it('refuses an existing recording unless --append, leaving it byte for byte as it was', async () => {
    const out = path.join(dir, 'existing.db');
    fs.copyFileSync(FIXTURE, out);
    const before = fs.readFileSync(out);
    const r = await regtape(['record', '--listen', '127.0.0.1:0', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^regtape: recording-exists: .*existing\.db exists; pass --append/m);
    expect(fs.readFileSync(out).equals(before)).toBe(true);
    expect(fs.existsSync(`${out}-wal`)).toBe(false);

    const rec = await spawnRecord(['--out', out, '--append'], env);
    const { code, stderr } = await rec.stop();
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/appending to .*existing\.db \(13 flows already in it\)/);
  });

  it('refuses a directory as --out with a sentence, not a stack trace', async () => {
    const r = await regtape(['record', '--listen', '127.0.0.1:0', '--out', dir]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toMatch(/^regtape: not-a-file: --out .* is a directory; give a file path/);
  });
});

describe('ports', () => {
  it('record fails on a port in use before any file is created', async () => {
    const held = await takenPort();
    try {
      const out = path.join(dir, 'never.db');
      const r = await regtape(['record', '--listen', `127.0.0.1:${held.port}`, '--out', out]);
      expect(r.code).toBe(3);
      expect(r.stderr.trim()).toBe(`regtape: port-in-use: 127.0.0.1:${held.port} is already in use; pick another address with --listen (or stop what holds it)`);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.existsSync(path.join(dir, 'never.blobs'))).toBe(false);
    } finally {
      held.close();
    }
  });

  it('replay fails on a port in use (proxy or mirror) instead of serving the rest', async () => {
    const held = await takenPort();
    try {
      const r = await regtape(['replay', FIXTURE, '--listen', '127.0.0.1:0', '--mirror', `127.0.0.1:${held.port}`]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`regtape: port-in-use: 127.0.0.1:${held.port} is already in use; pick another address with --mirror`);
      expect(r.stderr).not.toMatch(/listening|registry endpoint/);
    } finally {
      held.close();
    }
  });

  for (const [flag, value] of [
    ['--mirror', '127.0.0.1:abc'],
    ['--mirror', '127.0.0.1:99999'],
    ['--listen', 'localhost:'],
    ['--listen', '[::1:8080'],
  ] as const) {
    it(`replay ${flag} ${value} is rejected before anything starts`, async () => {
      const args = flag === '--mirror' ? ['--listen', '127.0.0.1:0', '--mirror', value] : ['--listen', value];
      const r = await regtape(['replay', FIXTURE, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^regtape: bad-argument: ${flag} `, 'm'));
      expect(r.stderr).not.toMatch(/listening|registry endpoint|replaying/);
    });
  }

  it('record --listen with a non-numeric port is rejected, nothing created', async () => {
    const out = path.join(dir, 'bad-listen.db');
    const r = await regtape(['record', '--listen', '127.0.0.1:http', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^regtape: bad-argument: --listen 127\.0\.0\.1:http: expected HOST:PORT/m);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('files', () => {
  it('import - reads the HAR from standard input', async () => {
    const har = path.join(dir, 'x.har');
    const e = await regtape(['export', FIXTURE, '--har', har]);
    expect(e.code, e.stderr).toBe(0);
    const r = await regtape(['import', '-', '--out', path.join(dir, 'stdin.db')], fs.readFileSync(har));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/imported 13 of 13 entries from standard input/);
    const flows = await regtape(['flows', path.join(dir, 'stdin.db'), '--json']);
    expect(flows.stdout.trim().split('\n')).toHaveLength(13);
    const empty = await regtape(['import', '-', '--out', path.join(dir, 'empty.db')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^regtape: bad-har: standard input is empty/m);
    expect(fs.existsSync(path.join(dir, 'empty.db'))).toBe(false);
  });

  it('a directory or a missing file given as a recording is a sentence with its code', async () => {
    const isDir = await regtape(['show', dir]);
    expect(isDir.code).toBe(3);
    expect(isDir.stderr.trim()).toBe(`regtape: not-a-file: ${dir} is a directory; give a file path`);
    const missing = await regtape(['flows', path.join(dir, 'nope.db')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^regtape: recording-not-found: .*nope\.db: no such recording/);
  });
});
