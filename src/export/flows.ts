import type { Filter } from '../filter/index.js';
import type { FlowRecord } from '../flow/index.js';
import { filterSubject } from '../inspect/index.js';
import { FlowDescriber } from '../pipeline/index.js';
import type { Recording } from '../store/index.js';

/** Flows are read this many at a time, so a 100k-flow recording is never all in memory. */
const PAGE = 256;

/**
 * The flows of a recording in order, with registry facts (classified on the fly for
 * flows recorded without them; the classifier sees every flow so CDN downloads are
 * still attributed to the redirect that sent the client there), keeping those the
 * filter matches. Paged: memory does not grow with the recording.
 */
export function* selectFlows(rec: Recording, filter?: Filter | null): Generator<FlowRecord> {
  const describer = new FlowDescriber();
  let after = 0;
  for (;;) {
    // A page at a time: better-sqlite3 cannot run other statements (body reads) while an iterator is open.
    const page = rec.list({ afterId: after, limit: PAGE });
    if (!page.length) return;
    for (const f of page) {
      describer.describe(f);
      if (!filter || filter(filterSubject(f, rec))) yield f;
    }
    after = page[page.length - 1]!.id;
  }
}
