import type { FlowRecord } from '../flow/index.js';
import { describeFlows } from '../pipeline/index.js';
import { buildOperations, manifestBody, MAX_MANIFEST, parseManifest, type Operation, type ParsedManifest, type RegistryErrorBody } from '../registry/index.js';
import type { Recording } from '../store/index.js';

/** Error bodies above this size are not read for the diagnosis. */
const MAX_ERROR_BODY = 64 << 10;

export interface LoadedRecording {
  flows: FlowRecord[];
  operations: Operation[];
  /** Parsed manifests by flow id (response bodies; request bodies for pushes). */
  manifests: Map<number, ParsedManifest>;
  /** Registry error bodies (`{"errors":[…]}`) of 4xx/5xx responses, by flow id. */
  errors: Map<number, RegistryErrorBody[]>;
}

/**
 * Read every flow of a recording with registry facts (classifying flows recorded
 * without them, in order), parse manifest bodies, and group flows into operations.
 */
export async function loadRecording(rec: Recording): Promise<LoadedRecording> {
  const flows = describeFlows(rec.list());
  const manifests = new Map<number, ParsedManifest>();
  for (const f of flows) {
    const body = manifestBody(f);
    if (!body) continue;
    try {
      manifests.set(f.id, parseManifest(await rec.readBodyBuffer(body.sha256, MAX_MANIFEST), body.type));
    } catch {
      // not a manifest we can read (error body, missing file): leave it out of the tree
    }
  }
  const errors = await readErrorBodies(rec, flows);
  return { flows, operations: buildOperations(flows, manifests, { errors }), manifests, errors };
}

/** The `errors` array of a registry's JSON error body, or null (not JSON, not that shape). */
export function parseErrorBody(text: string): RegistryErrorBody[] | null {
  try {
    const doc = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(doc?.errors)) return null;
    return doc.errors
      .filter((e): e is Record<string, unknown> => !!e && typeof e === 'object')
      .map((e) => ({ code: typeof e.code === 'string' ? e.code : '', message: typeof e.message === 'string' ? e.message : '' }));
  } catch {
    return null;
  }
}

async function readErrorBodies(rec: Recording, flows: FlowRecord[]): Promise<Map<number, RegistryErrorBody[]>> {
  const out = new Map<number, RegistryErrorBody[]>();
  for (const f of flows) {
    const body = f.responseBody;
    if (!f.response || f.response.status < 400 || !f.registry || f.registry.role === 'other' || !body?.sha256 || body.size > MAX_ERROR_BODY) continue;
    try {
      const parsed = parseErrorBody((await rec.readBodyBuffer(body.sha256, MAX_ERROR_BODY)).toString('utf8'));
      if (parsed) out.set(f.id, parsed);
    } catch {
      // body file missing: no error details
    }
  }
  return out;
}
