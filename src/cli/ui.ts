import type { Command } from 'commander';
import type { RecordSession } from './record.js';

/** Registers `regtape ui FILE.db` (the inspector TUI). */
export function registerUi(program: Command): void {
  void program;
}

/** `regtape record --ui`: run the inspector live on a recording session until the user quits; resolves when it should stop. */
export async function runLiveUi(session: RecordSession): Promise<void> {
  void session;
  throw new Error('--ui is not available yet');
}
