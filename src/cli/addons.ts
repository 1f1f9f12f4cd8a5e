import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RegtapeError } from '../errors/index.js';
import type { Addon } from '../pipeline/index.js';

const HOOKS = ['requestHead', 'responseHead', 'body', 'flowFinished', 'flowStored'] as const;

/**
 * `record --addon FILE.mjs`: an ES module whose default export is an addon, an array of
 * addons, or a function returning either (called once, with no arguments). An addon is
 * `{ name, requestHead?, responseHead?, body?, flowFinished?, flowStored? }` (see
 * src/pipeline/addon.ts); user addons run after the default chain, so they see redacted
 * flows with their registry facts. The file is the user's own code and runs in-process.
 */
export async function loadAddons(files: string[]): Promise<Addon[]> {
  const out: Addon[] = [];
  for (const file of files) {
    const abs = path.resolve(file);
    if (!fs.existsSync(abs)) throw new RegtapeError('bad-addon', `--addon ${file}: no such file`);
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(abs).href)) as { default?: unknown };
    } catch (e) {
      throw new RegtapeError('bad-addon', `--addon ${file}: cannot load it (${(e as Error).message}); it must be an ES module (.mjs) with a default export`, { cause: e });
    }
    let v = mod.default;
    if (typeof v === 'function') v = await (v as () => unknown)();
    for (const a of Array.isArray(v) ? v : [v]) out.push(checkAddon(a, file));
  }
  return out;
}

function checkAddon(a: unknown, file: string): Addon {
  if (!a || typeof a !== 'object') throw new RegtapeError('bad-addon', `--addon ${file}: the default export is not an addon; export { name, flowFinished(ctx) { … } } or an array of them`);
  const x = a as Record<string, unknown>;
  if (typeof x.name !== 'string' || !x.name) throw new RegtapeError('bad-addon', `--addon ${file}: an addon needs a name (a string)`);
  const hooks = HOOKS.filter((h) => x[h] !== undefined);
  for (const h of hooks) if (typeof x[h] !== 'function') throw new RegtapeError('bad-addon', `--addon ${file}: ${x.name}.${h} is not a function`);
  if (!hooks.length) throw new RegtapeError('bad-addon', `--addon ${file}: ${x.name} has none of the hooks ${HOOKS.join(', ')}`);
  // A user addon is never critical: a failure is logged and the flow is kept.
  return { ...(x as unknown as Addon), critical: false };
}
