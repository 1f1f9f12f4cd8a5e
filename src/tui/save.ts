import { Recording, type FlowSelection } from '../store/index.js';

/**
 * `w` in the inspector: flows (all, marked, shown) into a new recording, with the
 * marks and comments made in the UI. A flow may be listed twice (`D` duplicates it):
 * the copy gets a fresh uuid. Bodies are shared by content: inline rows copied, body
 * files hard-linked (or copied, 0600). The caller writes to a temp name and installs
 * it, so the output appears complete or not at all; the source is only read.
 */
export type SaveEntry = FlowSelection;

/** Write `entries` from `src` into a new recording at `tmp` (which must not exist). Returns the number of flows written. */
export function writeFlows(src: Recording, tmp: string, entries: readonly SaveEntry[]): number {
  const out = Recording.open(tmp, { create: true });
  try {
    return out.appendSelected(src, entries);
  } finally {
    out.close();
  }
}
