import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The package as a user gets it: `npm pack` of this checkout, installed into a fresh
 * project from the tarball (dependencies from the npm registry), then `npx regtape --help`,
 * the README's vitest and jest examples verbatim (extracted from README.md here, so they
 * cannot drift) and the README's quick start, run in a clean directory.
 * Slow (better-sqlite3 compiles on install), hence e2e. Quick start mirror: 127.61.0.1:5000.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const pexec = promisify(execFile);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
const JEST = '30.5.2';

let work: string;
let tarball: string;
let packed: { files: Array<{ path: string }>; size: number; unpackedSize: number };
let project: string;
// The CA goes to a temporary REGTAPE_HOME; npm keeps the machine's HOME (its cache and
// node-gyp's headers), nothing else of the machine is touched.
let env: NodeJS.ProcessEnv;

async function sh(cmd: string, args: string[], cwd: string, extra: NodeJS.ProcessEnv = {}) {
  try {
    return await pexec(cmd, args, { cwd, env: { ...env, ...extra }, maxBuffer: 64 << 20, timeout: 1_200_000 });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`);
  }
}

/** The fenced block of README.md whose first line is `first` (without the fences). */
function readmeBlock(first: RegExp): string {
  for (const m of README.matchAll(/```(?:ts|js|sh)\n([\s\S]*?)```/g)) if (first.test(m[1]!.split('\n')[0]!)) return m[1]!;
  throw new Error(`README.md has no code block starting with ${first}`);
}

function quickStart(): string {
  const m = /<!-- quickstart[^>]*-->\n```sh\n([\s\S]*?)```/.exec(README);
  if (!m) throw new Error('README.md has no <!-- quickstart --> block');
  return m[1]!;
}

describe('the npm package in a consumer project', () => {
  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-pkg-'));
    env = { ...process.env, REGTAPE_HOME: path.join(work, 'regtape-home'), NO_COLOR: '1', CI: '1', JOBS: 'max' };
    delete env.NODE_OPTIONS;
    if (!fs.existsSync(path.join(ROOT, 'dist/cli/main.js'))) await sh('npm', ['run', 'build'], ROOT);
    const out = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
    packed = (JSON.parse(out.stdout) as Array<typeof packed & { filename: string }>)[0]!;
    tarball = path.join(work, (packed as unknown as { filename: string }).filename);
    project = path.join(work, 'consumer');
    fs.mkdirSync(project);
    await sh('npm', ['init', '-y'], project);
    await sh('npm', ['install', '--no-audit', '--no-fund', tarball, `vitest@${pkg.devDependencies.vitest}`, `jest@${JEST}`], project);
  }, 1_800_000); // better-sqlite3 compiles from source on install: ~1.5 min on an idle 2-core machine, far more on a busy one
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('ships the bin, the API with types, the docs, the example recording and the sources its maps name', () => {
    const names = new Set(packed.files.map((f) => f.path));
    for (const f of ['dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', 'README.md', 'docs/ARCHITECTURE.md', 'docs/JSON.md', 'fixtures/README.md', 'fixtures/dockerd-pull-multiarch.db']) {
      expect(names, f).toContain(f);
    }
    expect([...names].some((n) => n.startsWith('fixtures/dockerd-pull-multiarch.blobs/'))).toBe(true);
    expect([...names].filter((n) => n.startsWith('test/') || n.startsWith('scripts/') || n.endsWith('-wal'))).toEqual([]);
    // Every source map names only files that are in the package.
    const dangling: string[] = [];
    for (const n of names) {
      if (!n.endsWith('.map')) continue;
      const map = JSON.parse(fs.readFileSync(path.join(project, 'node_modules/regtape', n), 'utf8')) as { sources: string[] };
      for (const s of map.sources) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(n), s));
        if (!names.has(target)) dangling.push(`${n} -> ${target}`);
      }
    }
    expect(dangling).toEqual([]);
    console.log(`package: ${(packed.size / 1e6).toFixed(2)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${names.size} files`);
  });

  it('npx regtape --help works in the consumer project', async () => {
    const { stdout } = await sh('npx', ['regtape', '--help'], project);
    expect(stdout).toMatch(/^Usage: regtape/);
    for (const c of ['record', 'replay', 'show', 'ca']) expect(stdout).toContain(`  ${c} `);
    const v = await sh('npx', ['regtape', '--version'], project);
    expect(v.stdout.trim()).toBe(pkg.version);
  });

  it("runs the README's vitest example as written", async () => {
    fs.writeFileSync(path.join(project, 'readme-vitest.test.ts'), readmeBlock(/^\/\/ vitest/));
    const { stdout } = await sh('npx', ['vitest', 'run', 'readme-vitest.test.ts'], project);
    expect(stdout).toMatch(/1 passed/);
  });

  it("runs the README's jest example as written, with the command its first line gives", async () => {
    const block = readmeBlock(/^\/\/ jest/);
    fs.writeFileSync(path.join(project, 'readme-jest.test.js'), block);
    const cmd = /^\/\/ jest: (.*)$/m.exec(block)![1]!;
    const { stderr } = await sh('sh', ['-c', `${cmd} readme-jest.test.js`], project);
    expect(stderr).toMatch(/Tests:\s+1 passed, 1 total/);
  });

  it("runs the README's quick start in a clean directory", { timeout: 1_800_000 }, async () => {
    const dir = path.join(work, 'quickstart');
    fs.mkdirSync(dir);
    // The one substitution: the tarball under test instead of the registry's regtape.
    const script = quickStart().replace('npm install regtape', `npm install --no-audit --no-fund ${tarball}`);
    expect(script).toContain(tarball);
    const { stdout } = await sh('bash', ['-ec', script], dir);
    expect(stdout.split('\n')).toContain(pkg.version); // npx regtape --version (npm install prints its summary first)
    expect(stdout).toMatch(/pull registry\.test\/lab\/alpine:3\.9/);
    expect(stdout).toMatch(/^200 sha256:20ded9c7f836840b2b9f2d6d71dc7c12c4e08b4c3fa6c1a3b2be174b754a86f4$/m);
  });
});
