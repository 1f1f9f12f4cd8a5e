import { execFileSync } from 'node:child_process';

/** What an e2e test needs that this machine lacks (root, binaries). Empty when ready. */
export function e2eRequirements(binaries: string[]): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const b of binaries) {
    try {
      execFileSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' });
    } catch {
      missing.push(b);
    }
  }
  return missing;
}
