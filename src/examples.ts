import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The recordings shipped in the package's fixtures/ (see fixtures/README.md). */
export const EXAMPLE_RECORDINGS = ['dockerd-pull-multiarch'] as const;
export type ExampleRecording = (typeof EXAMPLE_RECORDINGS)[number];

/**
 * Absolute path of a recording shipped with regtape (for examples and first tests):
 * `startReplay({ recording: exampleRecording('dockerd-pull-multiarch') })`.
 */
export function exampleRecording(name: ExampleRecording = 'dockerd-pull-multiarch'): string {
  if (!(EXAMPLE_RECORDINGS as readonly string[]).includes(name)) {
    throw new Error(`no example recording named ${JSON.stringify(name)}; shipped: ${EXAMPLE_RECORDINGS.join(', ')}`);
  }
  const file = fileURLToPath(new URL(`../fixtures/${name}.db`, import.meta.url));
  if (!fs.existsSync(file)) throw new Error(`example recording ${file} is missing; reinstall regtape`);
  return file;
}
