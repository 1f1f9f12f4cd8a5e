/**
 * Crash safety: kill -9 the recorder in the middle of a 100 MB blob download. The file
 * opens, `PRAGMA integrity_check` is ok, every finished flow is there with its body, and
 * the interrupted flow is visible as incomplete with its byte count. The replay server
 * writes nothing: killing it leaves the recording byte-identical.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLab, type Lab } from '../../scripts/lab/index.js';
import { Recording } from '../../src/store/index.js';
import { CLI, spawnRecord, spawnReplay } from '../support/cli.js';
import { e2eRequirements } from '../support/e2e.js';

const missing = e2eRequirements(['docker-registry', 'curl']);

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe.skipIf(missing.length > 0)('crash safety', () => {
  let lab: Lab;
  let work: string;
  let home: string;
  let db: string;
  let bigUrl: string;
  let bigDigest: string;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-crash-'));
    home = path.join(work, 'home');
    db = path.join(work, 'crash.db');
    lab = await startLab({ images: ['big100'], ipBase: '127.83.0' });
    const big = lab.image('lab/big:100').blobs.reduce((a, b) => (b.size > a.size ? b : a));
    bigDigest = big.digest;
    const hex = big.digest.slice(7);
    bigUrl = `https://cdn.test/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
  });

  afterAll(async () => {
    await lab?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('kill -9 mid-download: the file opens, integrity ok, finished flows intact, the cut one incomplete with its bytes', async () => {
    const rec = await spawnRecord(['--out', db, '-q', ...lab.map.flatMap((m) => ['--map', m]), '--upstream-ca', lab.caCertPath], { REGTAPE_HOME: home });
    const curl = (args: string[]) =>
      new Promise<number>((resolve) => execFile('curl', ['-sS', '-o', '/dev/null', '-x', rec.url, '--cacert', path.join(home, 'ca.pem'), ...args], (err) => resolve(err ? Number((err as { code?: number }).code ?? 1) : 0)));
    // Finished flows first: a ping and a token.
    expect(await curl([`${lab.urls.registry}/v2/`])).toBe(0);
    expect(await curl([`${lab.urls.auth}/token?service=registry.test&scope=repository:lab/big:pull`])).toBe(0);
    // The big download, slowed so the kill lands in the middle of it.
    const download = spawn('curl', ['-sS', '-o', '/dev/null', '--limit-rate', '20M', '-x', rec.url, '--cacert', path.join(home, 'ca.pem'), bigUrl], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 2500)); // > 1 s: the recorder has written progress at least once
    rec.proc.kill('SIGKILL');
    await new Promise((r) => rec.proc.once('exit', r));
    await new Promise((r) => download.once('exit', r));

    const raw = new Database(db, { readonly: true });
    expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
    raw.close();

    const r = Recording.open(db, { readonly: true });
    const flows = r.list();
    const done = flows.filter((f) => f.state === 'complete');
    expect(done.map((f) => f.request.host).sort()).toEqual(['auth.test', 'registry.test']);
    for (const f of done) if (f.responseBody?.sha256) expect(r.hasBody(f.responseBody.sha256)).toBe(true);
    const cut = flows.find((f) => f.request.host === 'cdn.test')!;
    expect(cut.state).toBe('open');
    expect(cut.responseBytes).toBeGreaterThan(10_000_000);
    expect(cut.responseBytes).toBeLessThan(100 * 1000 * 1000);
    // Its partial body was never placed under a digest.
    expect(fs.existsSync(path.join(work, 'crash.blobs', bigDigest.slice(7)))).toBe(false);
    r.close();

    // `show` reads it, and the next recording session on the same file marks the flow incomplete.
    const show = await new Promise<string>((resolve) => execFile(process.execPath, [CLI, 'show', db], { env: { ...process.env, NO_COLOR: '1' } }, (_e, out) => resolve(out)));
    expect(show).toMatch(/cdn\.test/);
    const again = Recording.open(db, {});
    const marked = again.get(cut.id)!;
    expect(marked.state).toBe('aborted');
    expect(marked.error).toMatch(/incomplete/);
    expect(marked.responseBytes).toBe(cut.responseBytes);
    again.close();
  });

  it('kill -9 of the replay server leaves the recording byte-identical', async () => {
    const before = [sha(db), fs.readdirSync(path.join(work, 'crash.blobs')).sort().join(',')];
    const { proc: p, mirrorUrl: mirror } = await spawnReplay([db, '--listen', '127.0.0.1:0', '--mirror', '127.0.0.1:0'], { REGTAPE_HOME: home });
    const res = await fetch(`${mirror}/v2/`, { headers: { authorization: 'Bearer x' } });
    expect(res.status).toBeLessThan(500);
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
    expect([sha(db), fs.readdirSync(path.join(work, 'crash.blobs')).sort().join(',')]).toEqual(before);
    expect(fs.existsSync(`${db}-wal`) ? fs.statSync(`${db}-wal`).size : 0).toBe(0);
  });
});
