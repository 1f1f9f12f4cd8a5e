/**
 * The inspector in a real terminal: `regtape ui FILE` and `regtape record --ui` (the
 * built CLI, dist/) inside tmux at 160×40, driven with send-keys and read with
 * capture-pane. Needs tmux (and curl for the live test); skipped with a message when
 * they are missing. No root needed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { patternBytes, startOrigin, type Origin } from '../support/origin.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = path.join(ROOT, 'fixtures/dockerd-pull-multiarch');

function have(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const missing = [
  ...(have('tmux') ? [] : ['tmux (apt-get install tmux)']),
  ...(fs.existsSync(CLI) ? [] : ['dist/cli/main.js (npm run build)']),
  ...(fs.existsSync(`${FIXTURE}.db`) ? [] : ['fixtures/dockerd-pull-multiarch.db']),
];
if (missing.length) console.warn(`ui-tmux e2e skipped: missing ${missing.join(', ')}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One tmux session running a command. */
class Tmux {
  constructor(readonly name: string) {}

  static start(name: string, command: string, cwd: string): Tmux {
    execFileSync('tmux', ['new-session', '-d', '-s', name, '-x', '160', '-y', '40', '-c', cwd, command]);
    return new Tmux(name);
  }

  screen(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-t', this.name], { encoding: 'utf8' });
  }

  /** Keys as tmux names them (Enter, Escape, Tab) or literal text with `literal`. */
  send(keys: string, literal = false): void {
    execFileSync('tmux', ['send-keys', '-t', this.name, ...(literal ? ['-l'] : []), keys]);
  }

  async waitFor(test: (screen: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let screen = '';
    while (Date.now() < end) {
      screen = this.screen();
      if (test(screen)) return screen;
      await sleep(50);
    }
    throw new Error(`timed out waiting for ${what}; the screen was:\n${screen}`);
  }

  kill(): void {
    try {
      execFileSync('tmux', ['kill-session', '-t', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

describe.skipIf(missing.length > 0)('regtape ui in tmux', () => {
  let work: string;
  const sessions: Tmux[] = [];

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-ui-e2e-'));
  });
  afterAll(() => {
    for (const s of sessions) s.kill();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('filters to a repository, opens an index and follows it to the platform manifest', async () => {
    // A copy: the test must not touch the fixture (marks would be saved into it).
    const db = path.join(work, 'pull.db');
    fs.copyFileSync(`${FIXTURE}.db`, db);
    fs.cpSync(`${FIXTURE}.blobs`, path.join(work, 'pull.blobs'), { recursive: true });
    const t = Tmux.start(`regtape-ui-${process.pid}`, `env -u CI node ${CLI} ui ${db}; echo "regtape exited $?"; sleep 60`, work);
    sessions.push(t);

    let screen = await t.waitFor((s) => s.includes('pull.db  20 flows'), 'the flow list');
    expect(screen).toContain('/v2/lab/alpine/manifests/3.9');
    expect(screen).toContain('cdn-blob');

    t.send('f');
    await t.waitFor((s) => /^filter:/m.test(s), 'the filter prompt');
    t.send('~repo lab/oci', true);
    t.send('Enter');
    screen = await t.waitFor((s) => s.includes('20 flows, 7 shown'), 'the filtered list');
    expect(screen).toContain('filter ~repo lab/oci');
    expect(screen).toContain('/v2/lab/oci/manifests/1');
    expect(screen).not.toContain('lab/alpine');

    // A syntax error is shown under the prompt; the list keeps the filter it had.
    t.send('f');
    t.send('C-u');
    t.send('~m GET ~u', true);
    t.send('Enter');
    screen = await t.waitFor((s) => s.includes('filter error'), 'the inline filter error');
    expect(screen).toContain('expected a regex after ~u');
    expect(screen).toContain('20 flows, 7 shown');
    t.send('Escape');
    await t.waitFor((s) => !s.includes('filter error'), 'the prompt to close');

    // Row 2 of the filtered list is the OCI index (flow 15).
    t.send('j');
    t.send('Enter');
    screen = await t.waitFor((s) => s.includes('OCI index'), 'the index in the manifest view');
    expect(screen).toContain('#15 GET https://registry.test/v2/lab/oci/manifests/sha256:4604e912d6ed');
    expect(screen).toContain('body view: manifest');
    expect(screen).toMatch(/linux\/amd64\s+sha256:481641640497\s+479 B\s+OCI manifest\s+→ #16/);
    expect(screen).toMatch(/linux\/arm64\s+sha256:\S+\s+670 B .*not fetched in this recording/);

    // The cursor starts on the first platform: enter opens the flow that fetched it.
    t.send('Enter');
    screen = await t.waitFor((s) => s.includes('#16 GET'), 'the platform manifest');
    expect(screen).toContain('OCI manifest');
    expect(screen).toMatch(/config\s+sha256:863d482f6339/);
    expect(screen).toMatch(/layers\s+1, /);
    expect(screen).toMatch(/→ #19 cdn-blob/);

    t.send('Tab');
    screen = await t.waitFor((s) => s.includes('Timing'), 'the Details tab');
    expect(screen).toMatch(/check\s+ok: the stored body hashes to sha256:4816416404/);

    t.send('T');
    screen = await t.waitFor((s) => s.includes('Operations'), 'the operations view');
    expect(screen).toContain('pull registry.test/lab/oci:1');
    expect(screen).not.toContain('lab/alpine');

    t.send('Q');
    screen = await t.waitFor((s) => s.includes('regtape exited 0'), 'the CLI to exit');
    // The alternate screen is gone: the shell's screen is back, without the UI.
    expect(screen).not.toContain('pull.db  20 flows');
  });

  it('read-only: marks and comments stay in memory; esc keeps running, q asks, the file is byte for byte the same', async () => {
    const db = path.join(work, 'ro.db');
    fs.copyFileSync(`${FIXTURE}.db`, db);
    fs.cpSync(`${FIXTURE}.blobs`, path.join(work, 'ro.blobs'), { recursive: true });
    const digest = () => createHash('sha256').update(fs.readFileSync(db)).digest('hex');
    const before = digest();
    const t = Tmux.start(`regtape-ro-${process.pid}`, `env -u CI node ${CLI} ui ${db}; echo "regtape exited $?"; sleep 60`, work);
    sessions.push(t);
    let screen = await t.waitFor((s) => s.includes('ro.db  20 flows  read-only'), 'the flow list, read-only');

    t.send('m');
    screen = await t.waitFor((s) => s.includes('1 unsaved (w saves)'), 'the mark counted as unsaved');
    expect(screen).toContain('●');
    t.send('\\;'); // tmux takes a bare ; as its command separator, even with -l
    await t.waitFor((s) => /^comment #2:/m.test(s), 'the comment prompt');
    t.send('looked at this', true);
    t.send('Enter');
    screen = await t.waitFor((s) => s.includes('comment on #2 (2 unsaved changes: w saves)'), 'the comment');

    t.send('Escape');
    screen = await t.waitFor((s) => s.includes('this is the flow list (q quits)'), 'esc at the top to keep running');
    expect(screen).toContain('ro.db  20 flows');

    t.send('q');
    screen = await t.waitFor((s) => s.includes('2 unsaved changes (marks, comments, deletions): quit without saving? (y/n, w saves first)'), 'the quit question');
    t.send('n');
    screen = await t.waitFor((s) => s.includes('cancelled'), 'staying after n');
    expect(screen).toContain('ro.db  20 flows  2 unsaved');
    t.send('q');
    await t.waitFor((s) => s.includes('quit without saving?'), 'the question again');
    t.send('y');
    await t.waitFor((s) => s.includes('regtape exited 0'), 'the CLI to exit');

    expect(digest()).toBe(before);
    expect(fs.existsSync(`${db}-wal`)).toBe(false);
    expect(fs.existsSync(`${db}-shm`)).toBe(false);
    expect(fs.existsSync(`${db}-journal`)).toBe(false);
  });

  it('ui --follow beside a running recorder: flows appear as the recorder commits them', async () => {
    if (!have('curl')) return console.warn('ui --follow e2e skipped: curl missing');
    let origin: Origin | undefined = await startOrigin(['origin.test'], (req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(`{"path":${JSON.stringify(req.url)}}`);
    });
    const port = await freePort();
    const home = path.join(work, 'home-follow');
    const db = path.join(work, 'follow.db');
    const recorder = spawn('node', [CLI, 'record', '--quiet', '--listen', `127.0.0.1:${port}`, '--out', db, '--map', `origin.test=127.0.0.1:${origin.port}`, '--upstream-ca', origin.caPath], { env: { ...process.env, REGTAPE_HOME: home }, stdio: 'ignore' });
    const curl = (p: string) =>
      new Promise<number>((resolve) => {
        const c = spawn('curl', ['-s', '-o', '/dev/null', '--proxy', `http://127.0.0.1:${port}`, '--cacert', path.join(home, 'ca.pem'), `https://origin.test${p}`], { stdio: 'ignore' });
        c.on('exit', (code) => resolve(code ?? 1));
      });
    try {
      // The recorder is up once a request goes through it.
      const end = Date.now() + 15_000;
      while ((await curl('/first')) !== 0) {
        if (Date.now() > end) throw new Error('the recorder did not come up');
        await sleep(200);
      }
      const t = Tmux.start(`regtape-follow-${process.pid}`, `env -u CI node ${CLI} ui --follow ${db}; echo "regtape exited $?"; sleep 60`, work);
      sessions.push(t);
      let screen = await t.waitFor((s) => /GET\s+origin\.test\s+\/first\s+200/.test(s), 'the flow recorded before the UI started');
      expect(screen).toContain('FOLLOW');
      for (const p of ['/second', '/third']) expect(await curl(p)).toBe(0);
      screen = await t.waitFor((s) => /\/second\s+200/.test(s) && /\/third\s+200/.test(s), 'flows recorded while following');
      expect(screen).toMatch(/follow\.db\s+3 flows/);
      t.send('q');
      await t.waitFor((s) => s.includes('quit regtape? (y/n)'), 'the quit question');
      t.send('y');
      await t.waitFor((s) => s.includes('regtape exited 0'), 'the follower to exit');
      // The recorder kept going: one more flow after the follower left.
      expect(await curl('/fourth')).toBe(0);
    } finally {
      recorder.kill('SIGINT');
      await new Promise((r) => recorder.once('exit', r));
      await origin?.close();
      origin = undefined;
    }
    const rec = execFileSync('node', [CLI, 'flows', db], { encoding: 'utf8' });
    expect(rec).toMatch(/\/fourth/);
  });

  it('record --ui: flows appear live, an in-flight download shows its bytes and rate, q y stops recording', async () => {
    if (!have('curl')) return console.warn('record --ui e2e skipped: curl missing');
    const big = patternBytes(4_000_000);
    let origin: Origin | undefined;
    origin = await startOrigin(['origin.test'], (req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(401, { 'Content-Type': 'application/json', 'Www-Authenticate': 'Bearer realm="https://origin.test/token",service="origin.test"' });
        res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      // A slow blob: 4 MB in 40 chunks over ~4 s, so it is in flight for a while.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(big.length) });
      let i = 0;
      const step = () => {
        if (i >= 40) return res.end();
        res.write(big.subarray(i * 100_000, (i + 1) * 100_000));
        i++;
        setTimeout(step, 100);
      };
      step();
    });
    try {
      const port = await freePort();
      const home = path.join(work, 'home');
      const db = path.join(work, 'live.db');
      const cmd = `env -u CI REGTAPE_HOME=${home} node ${CLI} record --ui --listen 127.0.0.1:${port} --out ${db} --map origin.test=127.0.0.1:${origin.port} --upstream-ca ${origin.caPath}; echo "regtape exited $?"; sleep 60`;
      const t = Tmux.start(`regtape-live-${process.pid}`, cmd, work);
      sessions.push(t);
      let screen = await t.waitFor((s) => s.includes('● live http://127.0.0.1:'), 'the live UI');
      expect(screen).toContain('no flows yet');

      const curl = (p: string) =>
        new Promise<number>((resolve) => {
          const c = spawn('curl', ['-s', '-o', '/dev/null', '--proxy', `http://127.0.0.1:${port}`, '--cacert', path.join(home, 'ca.pem'), `https://origin.test${p}`], { stdio: 'ignore' });
          c.on('exit', (code) => resolve(code ?? 1));
        });
      expect(await curl('/v2/')).toBe(0);
      screen = await t.waitFor((s) => /GET\s+origin\.test\s+\/v2\/\s+401/.test(s), 'the committed flow');
      expect(screen).toMatch(/ping/);

      // The real digest: the recorder checks it (a wrong one shows BAD DIGEST in the list).
      const download = curl(`/v2/lab/big/blobs/sha256:${createHash('sha256').update(big).digest('hex')}`);
      // The row of the running download: a progress bar, bytes so far and the rate (from the second sample on).
      screen = await t.waitFor((s) => /█*░+ \d+%\s+[\d.]+ [kM]B\s+[1-9][\d.]*[kM]B\/s/.test(s), 'the in-flight download with its rate', 10_000);
      expect(screen).toMatch(/1 in flight [1-9][\d.]* [kM]B\/s/);
      expect(await download).toBe(0);
      screen = await t.waitFor((s) => /\/v2\/lab\/big\/blobs\/\S+\s+200\s+blob\s+lab\/big\S*\s+4\.0 MB/.test(s), 'the finished download');

      t.send('q');
      await t.waitFor((s) => s.includes('stop recording and quit? (y/n)'), 'the quit question');
      t.send('y');
      screen = await t.waitFor((s) => s.includes('regtape exited 0'), 'the recorder to stop');
      expect(screen).toMatch(/recorded 2 flows in [\d.]+ s to .*live\.db/);
      expect(screen).not.toContain('● live');
    } finally {
      await origin?.close();
      origin = undefined;
    }
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
