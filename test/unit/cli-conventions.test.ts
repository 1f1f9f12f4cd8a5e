import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { env: { PATH: process.env.PATH!, HOME: '/nonexistent', ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** Complete `words` (the last one being typed) with the script `regtape completion bash` prints, in a real bash. */
async function bashComplete(words: string[]): Promise<string[]> {
  const script = (await run(process.execPath, [CLI, 'completion', 'bash'])).stdout;
  const line = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _regtape; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await run('bash', ['-c', line]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

describe('shell completion', () => {
  it('bash completes commands, their options and option values', async () => {
    expect(await bashComplete(['regtape', 'rec'])).toEqual(['record']);
    expect(await bashComplete(['regtape', 'replay', '--mir'])).toEqual(expect.arrayContaining(['--mirror', '--mirror-tls']));
    expect(await bashComplete(['regtape', 'ca', '--setup', 'p'])).toEqual(['podman']);
  });

  it('zsh and fish scripts are generated for every command', async () => {
    for (const shell of ['zsh', 'fish']) {
      const r = await run(process.execPath, [CLI, 'completion', shell]);
      expect(r.code, r.stderr).toBe(0);
      for (const c of ['record', 'replay', 'show', 'flows', 'ca', 'completion']) expect(r.stdout).toContain(c);
    }
    const bad = await run(process.execPath, [CLI, 'completion', 'tcsh']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^regtape: bad-argument: /m);
  });
});

describe('--help', () => {
  it('documents exit statuses and the environment (NO_COLOR, FORCE_COLOR, REGTAPE_HOME, XDG_CONFIG_HOME)', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--help']);
    expect(stdout).toMatch(/Exit status:\n\s+0\s+success\n\s+1\s+.*\n\s+2\s+bad input.*\n\s+3\s+the environment refused.*\n\s+70\s+a bug/);
    for (const v of ['NO_COLOR', 'FORCE_COLOR', 'REGTAPE_HOME', 'XDG_CONFIG_HOME']) expect(stdout).toContain(v);
    expect(stdout).toContain('regtape completion bash|zsh|fish');
  });
});

describe('the CA home', () => {
  it('follows XDG_CONFIG_HOME, and REGTAPE_HOME overrides it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-xdg-'));
    try {
      const xdg = await run(process.execPath, [CLI, 'ca', '--path'], { XDG_CONFIG_HOME: dir });
      expect(xdg.stdout.trim()).toBe(path.join(dir, 'regtape/ca.pem'));
      const own = await run(process.execPath, [CLI, 'ca', '--path'], { XDG_CONFIG_HOME: dir, REGTAPE_HOME: path.join(dir, 'own') });
      expect(own.stdout.trim()).toBe(path.join(dir, 'own/ca.pem'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
