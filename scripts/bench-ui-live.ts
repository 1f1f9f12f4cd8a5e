/**
 * Does the live inspector slow the body stream? The same 500 MB download through
 * `regtape record` and through `regtape record --ui` (drawn in a real terminal: tmux,
 * 160×40), alternating, N runs each. Also checks that the UI showed the flow.
 *
 *   npx tsx scripts/bench-ui-live.ts [--runs 3] [--size 524288000] [--no-write]
 * Needs tmux and curl.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, size: { type: 'string', default: String(500 * 1024 * 1024) }, 'no-write': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
});
if (values.help) {
  console.log('usage: npx tsx scripts/bench-ui-live.ts [--runs 3] [--size BYTES] [--no-write]');
  process.exit(0);
}
const runs = Number(values.runs);
const size = Number(values.size);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-bench-ui-live-'));
const home = path.join(work, 'home');
const session = `rtbench${process.pid}`;
const children: Array<{ kill(s?: NodeJS.Signals): boolean }> = [];
const cleanup = () => {
  for (const c of children) c.kill('SIGTERM');
  try {
    execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
  } catch {
    // not running
  }
  fs.rmSync(work, { recursive: true, force: true });
};
process.on('SIGINT', () => (cleanup(), process.exit(130)));

function waitLine(p: ReturnType<typeof spawn>, re: RegExp, what: string): Promise<RegExpExecArray> {
  let buf = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: timed out\n${buf}`)), 20_000);
    const on = (c: Buffer) => {
      buf += c.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
  });
}

try {
  const origin = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/bench/big-origin.ts'), '--dir', path.join(work, 'origin'), '--size', String(size)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(origin);
  const o = JSON.parse((await waitLine(origin, /\{.*\}\n/, 'origin'))[0]) as { port: number; caPath: string; host: string };
  const common = ['--map', `${o.host}=127.0.0.1:${o.port}`, '--upstream-ca', o.caPath];

  // Plain recorder.
  const plain = spawn(process.execPath, [CLI, 'record', '-q', '--listen', '127.0.0.1:0', '--out', path.join(work, 'plain.db'), ...common], { env: { ...process.env, REGTAPE_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(plain);
  const plainUrl = (await waitLine(plain, /listening on (http:\/\/[\d.:]+)/, 'record'))[1]!;

  // Recorder with the live UI in a real terminal.
  const uiPort = 18000 + (process.pid % 1000);
  execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '40', `REGTAPE_HOME=${home} ${process.execPath} ${CLI} record --ui --listen 127.0.0.1:${uiPort} --out ${path.join(work, 'ui.db')} ${common.join(' ')}`]);
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('curl', ['-s', '-o', '/dev/null', '-x', uiUrl, '--cacert', path.join(home, 'ca.pem'), `https://${o.host}/nothing`]);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const speed = (proxy: string) =>
    Number(execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{speed_download}', '-x', proxy, '--cacert', path.join(home, 'ca.pem'), `https://${o.host}/blob`]).toString()) / 1e6;
  const results: Record<'record' | 'record --ui', number[]> = { record: [], 'record --ui': [] };
  speed(plainUrl); // warm-up
  speed(uiUrl);
  for (let r = 0; r < runs; r++) {
    results.record.push(speed(plainUrl));
    results['record --ui'].push(speed(uiUrl));
    for (const d of ['plain.blobs', 'ui.blobs']) for (const f of fs.readdirSync(path.join(work, d))) if (/^[0-9a-f]{64}$/.test(f)) fs.rmSync(path.join(work, d, f));
  }
  const screen = execFileSync('tmux', ['capture-pane', '-p', '-t', session]).toString();
  const shown = screen.includes(o.host) && screen.includes('/blob');
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const m0 = median(results.record);
  const m1 = median(results['record --ui']);
  const out = { date: new Date().toISOString(), size, runs, results, medianMBs: { record: m0, recordUi: m1 }, ratio: m1 / m0, uiShowedFlow: shown };
  console.log(JSON.stringify(out, null, 2));
  if (!values['no-write']) {
    const fmt = (a: number[]) => `${median(a).toFixed(0)} MB/s (${Math.min(...a).toFixed(0)}–${Math.max(...a).toFixed(0)})`;
    const section = `<!-- bench-ui-live:start -->
## Live UI while recording

\`npx tsx scripts/bench-ui-live.ts --runs ${runs}\` — ${out.date.slice(0, 10)}, ${os.cpus().length} vCPU, Node ${process.version}. The same
${(size / 1e6).toFixed(0)} MB download (curl through the proxy from a local HTTPS origin), alternating between \`regtape record\`
and \`regtape record --ui\` drawn in tmux (160×40); every byte stored and hashed in both.

| variant | median (min–max) |
|---|---|
| record | ${fmt(results.record)} |
| record --ui | ${fmt(results['record --ui'])} |

Ratio --ui / plain: **${out.ratio.toFixed(2)}×**. The UI showed the flow: ${shown ? 'yes' : 'NO'}.
<!-- bench-ui-live:end -->`;
    const file = path.join(ROOT, 'BENCHMARKS.md');
    let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
    text = /<!-- bench-ui-live:start -->[\s\S]*<!-- bench-ui-live:end -->/.test(text)
      ? text.replace(/<!-- bench-ui-live:start -->[\s\S]*<!-- bench-ui-live:end -->/, section)
      : `${text.trimEnd()}\n\n${section}\n`;
    fs.writeFileSync(file, text);
  }
} finally {
  cleanup();
}
