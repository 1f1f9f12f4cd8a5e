import type { ServerResponse } from 'node:http';

/** OCI distribution error codes (distribution-spec "error codes"). */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNKNOWN';

/** An error answer; handlers return it, `writeRegistryError` is the one place that writes it. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: RegistryErrorCode,
    message: string,
    readonly detail?: unknown,
    readonly headers: Record<string, string> = {},
    /** True when this answers a request the recording has no answer for (it went through the miss path). */
    readonly miss = false,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** Write the OCI error envelope `{"errors":[{code,message,detail}]}`. */
export function writeRegistryError(res: ServerResponse, err: RegistryError, head = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errors: [{ code: err.code, message: err.message, detail: err.detail ?? null }] });
  res.writeHead(err.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
    'x-regtape-replay': err.miss ? 'miss' : 'error',
    ...err.headers,
  });
  res.end(head ? undefined : body);
}
