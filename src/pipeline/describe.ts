import type { FlowRecord } from '../flow/index.js';
import { checkDigests, Classifier } from '../registry/index.js';

/**
 * A stored row → the described flow, the same way everywhere (show, flows, export,
 * diff, the TUI, the replay catalog). Flows must come in recording order. A flow keeps
 * the registry facts stored with it (the recorder's or importer's chain made them);
 * one stored without them (a recording older than classification) gets them from the
 * chain's classifier and digest checks, which have seen every earlier flow (token
 * realms, blob redirects), so CDN downloads are still attributed to their redirect.
 */
export class FlowDescriber {
  /** Has seen every flow described so far (replay matches fault filters with it). */
  readonly classifier = new Classifier();

  describe(flow: FlowRecord): FlowRecord {
    const facts = checkDigests(flow, this.classifier.describe(flow));
    flow.registry ??= facts;
    return flow;
  }
}

/** Describe a recording's flows in order (no work when every flow carries stored facts). */
export function describeFlows(flows: FlowRecord[]): FlowRecord[] {
  if (flows.every((f) => f.registry)) return flows;
  const d = new FlowDescriber();
  for (const f of flows) d.describe(f);
  return flows;
}
