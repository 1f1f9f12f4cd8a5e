/**
 * The versioned JSON documents of `show --json` and `verify --json` (docs/JSON.md). A document's
 * `schema` names its format and major version; fields are only added within a version.
 */
import { dockerSize, problemLine, type Operation } from '../registry/index.js';
import type { LoadedRecording } from './load.js';

export const SHOW_SCHEMA = 'regtape.show/1';
export const VERIFY_SCHEMA = 'regtape.verify/1';

export interface ShowDocument {
  schema: typeof SHOW_SCHEMA;
  /** The recording as given on the command line. */
  recording: string;
  summary: { flows: number; operations: number; problems: number; bytes: number; size: string };
  operations: OperationJson[];
  /** Flows that belong to no operation (not registry traffic, or unattributed). */
  otherFlowIds: number[];
}

/** An operation as JSON: the model (`Operation`) plus the problem lines as `show` prints them. */
export type OperationJson = Operation & { problemLines: string[] };

export function operationJson(op: Operation): OperationJson {
  return { ...op, problemLines: op.problems.map(problemLine) };
}

/** `regtape show FILE --json`. */
export function showDocument(loaded: Pick<LoadedRecording, 'flows' | 'operations'>, recording: string): ShowDocument {
  const inOps = new Set(loaded.operations.flatMap((op) => op.flowIds));
  const bytes = loaded.flows.reduce((n, f) => n + f.requestBytes + f.responseBytes, 0);
  return {
    schema: SHOW_SCHEMA,
    recording,
    summary: { flows: loaded.flows.length, operations: loaded.operations.length, problems: loaded.operations.reduce((n, op) => n + op.problems.length, 0), bytes, size: dockerSize(bytes) },
    operations: loaded.operations.map(operationJson),
    otherFlowIds: loaded.flows.filter((f) => !inOps.has(f.id)).map((f) => f.id),
  };
}

export interface VerifyDocument {
  schema: typeof VERIFY_SCHEMA;
  recording: string;
  ok: boolean;
  /** Distinct bodies re-hashed and their bytes. */
  bodies: number;
  bytes: number;
  /** `integrity_check` result of the database ('ok' when sound). */
  integrity: string;
  problems: Array<{ flowId: number | null; side: 'request' | 'response' | null; sha256: string | null; message: string }>;
}
