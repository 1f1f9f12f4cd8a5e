import { getHeader, type FlowRecord } from '../flow/index.js';
import { buildOperations, Classifier, isManifestType, parseManifest, type Operation, type ParsedManifest } from '../registry/index.js';
import type { Recording } from '../store/index.js';

/** Manifest bodies above this size are not parsed for the operation tree. */
const MAX_MANIFEST = 4 << 20;

export interface LoadedRecording {
  flows: FlowRecord[];
  operations: Operation[];
  /** Parsed manifests by flow id (response bodies; request bodies for pushes). */
  manifests: Map<number, ParsedManifest>;
}

/**
 * Read every flow of a recording with registry facts (classifying flows recorded
 * without them, in order), parse manifest bodies, and group flows into operations.
 */
export async function loadRecording(rec: Recording): Promise<LoadedRecording> {
  const flows = rec.list();
  if (flows.some((f) => !f.registry)) {
    const c = new Classifier();
    for (const f of flows) c.fill(f);
  }
  const manifests = new Map<number, ParsedManifest>();
  for (const f of flows) {
    if (f.registry?.role !== 'manifest') continue;
    const isPut = f.request.method === 'PUT';
    const body = isPut ? f.requestBody : f.responseBody;
    const type = isPut ? getHeader(f.request.headers, 'content-type') : f.response ? getHeader(f.response.headers, 'content-type') : undefined;
    if (!body?.sha256 || body.size > MAX_MANIFEST || (type && !isManifestType(type) && !/json/.test(type))) continue;
    try {
      manifests.set(f.id, parseManifest(await rec.readBodyBuffer(body.sha256, MAX_MANIFEST), type));
    } catch {
      // not a manifest we can read (error body, missing file): leave it out of the tree
    }
  }
  return { flows, operations: buildOperations(flows, manifests), manifests };
}
