import { getHeader, type FlowRecord } from '../flow/index.js';
import { baseMediaType, isIndex, isImageManifest, isManifestType, isSchema1, MediaTypes } from './media-types.js';
import { RegtapeError } from '../errors/index.js';

/** Manifest bodies above this size are not read or parsed (distribution refuses manifests over 4 MiB too). */
export const MAX_MANIFEST = 4 << 20;

/**
 * The body of a manifest flow that holds the manifest (the request body of a PUT, else
 * the response body) and its Content-Type, when it can be one: stored, at most
 * MAX_MANIFEST, and typed as a manifest or JSON (or untyped). Null otherwise.
 */
export function manifestBody(f: FlowRecord): { sha256: string; size: number; type: string | undefined } | null {
  if (f.registry?.role !== 'manifest') return null;
  const isPut = f.request.method === 'PUT';
  const body = isPut ? f.requestBody : f.responseBody;
  const type = isPut ? getHeader(f.request.headers, 'content-type') : f.response ? getHeader(f.response.headers, 'content-type') : undefined;
  if (!body?.sha256 || body.size > MAX_MANIFEST || (type && !isManifestType(type) && !/json/.test(type))) return null;
  return { sha256: body.sha256, size: body.size, type };
}

/** A descriptor (OCI image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  /** Platform of an index entry, as "os/arch[/variant]". */
  platform?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  artifactType?: string;
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[]; subject?: Descriptor; artifactType?: string }
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[]; subject?: Descriptor; artifactType?: string }
  | { kind: 'schema1'; mediaType: string; name?: string; tag?: string; architecture?: string; layers: Array<{ digest: string }> };

interface RawPlatform {
  os?: string;
  architecture?: string;
  variant?: string;
}

export function platformString(p: RawPlatform | undefined): string | undefined {
  if (!p?.os && !p?.architecture) return undefined;
  return [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/');
}

function descriptor(raw: unknown, where: string): Descriptor {
  const d = raw as Record<string, unknown> | null;
  if (!d || typeof d !== 'object') throw new RegtapeError('bad-manifest', `${where}: not an object`);
  if (typeof d.digest !== 'string') throw new RegtapeError('bad-manifest', `${where}: missing digest`);
  const out: Descriptor = {
    mediaType: typeof d.mediaType === 'string' ? d.mediaType : '',
    digest: d.digest,
    size: typeof d.size === 'number' ? d.size : 0,
  };
  const platform = platformString(d.platform as RawPlatform | undefined);
  if (platform) out.platform = platform;
  if (d.annotations && typeof d.annotations === 'object') out.annotations = d.annotations as Record<string, string>;
  if (Array.isArray(d.urls)) out.urls = d.urls as string[];
  if (typeof d.artifactType === 'string') out.artifactType = d.artifactType;
  return out;
}

/**
 * Parse a manifest body. The media type comes from the response Content-Type, else
 * from the body's `mediaType`, else from its shape (OCI allows omitting it).
 */
export function parseManifest(body: string | Buffer, contentType?: string | null): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new RegtapeError('bad-manifest', `not JSON: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object') throw new RegtapeError('bad-manifest', 'not a JSON object');
  let mt = baseMediaType(contentType);
  if (!mt || mt === 'application/json' || mt === 'text/plain') mt = typeof doc.mediaType === 'string' ? doc.mediaType : null;
  if (!mt) {
    if (Array.isArray(doc.manifests)) mt = MediaTypes.OCIIndex;
    else if (doc.config && Array.isArray(doc.layers)) mt = MediaTypes.OCIManifest;
    else if (doc.schemaVersion === 1) mt = MediaTypes.DockerManifestSchema1;
  }
  const subject = doc.subject ? descriptor(doc.subject, 'subject') : undefined;
  const artifactType = typeof doc.artifactType === 'string' ? doc.artifactType : undefined;
  if (isIndex(mt)) {
    if (!Array.isArray(doc.manifests)) throw new RegtapeError('bad-manifest', 'index without manifests');
    return { kind: 'index', mediaType: mt!, manifests: doc.manifests.map((m, i) => descriptor(m, `manifests[${i}]`)), subject, artifactType };
  }
  if (isImageManifest(mt)) {
    if (!Array.isArray(doc.layers)) throw new RegtapeError('bad-manifest', 'manifest without layers');
    return { kind: 'image', mediaType: mt!, config: descriptor(doc.config, 'config'), layers: doc.layers.map((l, i) => descriptor(l, `layers[${i}]`)), subject, artifactType };
  }
  if (isSchema1(mt) || doc.schemaVersion === 1) {
    const fs = Array.isArray(doc.fsLayers) ? (doc.fsLayers as Array<{ blobSum?: string }>) : [];
    return {
      kind: 'schema1',
      mediaType: mt ?? MediaTypes.DockerManifestSchema1,
      name: typeof doc.name === 'string' ? doc.name : undefined,
      tag: typeof doc.tag === 'string' ? doc.tag : undefined,
      architecture: typeof doc.architecture === 'string' ? doc.architecture : undefined,
      layers: fs.filter((l) => typeof l.blobSum === 'string').map((l) => ({ digest: l.blobSum! })),
    };
  }
  throw new RegtapeError('bad-manifest', `not a manifest (media type ${mt ?? 'unknown'})`);
}
