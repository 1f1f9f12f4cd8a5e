import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RegistryError } from './errors.js';
import { MAX_MANIFEST } from '../registry/index.js';

interface Upload {
  repo: string;
  hash: Hash;
  bytes: number;
}


/**
 * Push replay: upload sessions regtape issues and tracks itself (a recorded push's
 * upload URLs carry one-time ids and `_state` tokens, so they cannot be replayed as
 * is). Bytes are hashed as they arrive and never kept; the digest is verified on PUT.
 * Manifests pushed are kept (small) so a later pull in the same replay sees them.
 */
export class PushState {
  private readonly uploads = new Map<string, Upload>();
  /** Blobs completed in this replay: digest → size. */
  readonly blobs = new Map<string, number>();
  /** Manifests pushed in this replay: `repo@digest` and `repo:tag` → body. */
  readonly manifests = new Map<string, { mediaType: string; body: Buffer; digest: string }>();

  private location(repo: string, id: string): string {
    return `/v2/${repo}/blobs/uploads/${id}`;
  }

  /** POST /v2/<repo>/blobs/uploads/[?mount=&from=][?digest=] */
  async start(req: IncomingMessage, res: ServerResponse, repo: string, query: URLSearchParams, knownBlob: (d: string) => number | null): Promise<void> {
    const mount = query.get('mount');
    if (mount) {
      const size = knownBlob(mount) ?? this.blobs.get(mount);
      if (size != null) {
        req.resume();
        res.writeHead(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount, 'content-length': 0 });
        return void res.end();
      }
    }
    const digest = query.get('digest');
    if (digest) {
      const { hash, bytes } = await hashBody(req);
      this.commit(res, repo, digest, hash, bytes);
      return;
    }
    req.resume();
    const id = randomUUID();
    this.uploads.set(id, { repo, hash: createHash('sha256'), bytes: 0 });
    res.writeHead(202, { location: this.location(repo, id), 'docker-upload-uuid': id, range: '0-0', 'content-length': 0 });
    res.end();
  }

  private session(id: string | null, repo: string): Upload {
    const u = id ? this.uploads.get(id) : undefined;
    if (!u || u.repo !== repo) throw new RegistryError(404, 'BLOB_UPLOAD_UNKNOWN', `upload ${id ?? ''} is not known to this replay`);
    return u;
  }

  /** PATCH <location>: a chunk (streamed, any framing). */
  async chunk(req: IncomingMessage, res: ServerResponse, repo: string, id: string | null): Promise<void> {
    const u = this.session(id, repo);
    await feed(req, u);
    res.writeHead(202, { location: this.location(repo, id!), 'docker-upload-uuid': id!, range: `0-${Math.max(0, u.bytes - 1)}`, 'content-length': 0 });
    res.end();
  }

  /** PUT <location>?digest=: last chunk (optional body) and commit. */
  async finish(req: IncomingMessage, res: ServerResponse, repo: string, id: string | null, query: URLSearchParams): Promise<void> {
    const u = this.session(id, repo);
    await feed(req, u);
    const digest = query.get('digest');
    if (!digest) throw new RegistryError(400, 'DIGEST_INVALID', 'PUT of an upload needs ?digest=');
    this.uploads.delete(id!);
    this.commit(res, repo, digest, u.hash, u.bytes);
  }

  /** GET <location>: upload status. */
  status(res: ServerResponse, repo: string, id: string | null): void {
    const u = this.session(id, repo);
    res.writeHead(204, { location: this.location(repo, id!), 'docker-upload-uuid': id!, range: `0-${Math.max(0, u.bytes - 1)}`, 'content-length': 0 });
    res.end();
  }

  /** DELETE <location>: cancel. */
  cancel(res: ServerResponse, repo: string, id: string | null): void {
    this.session(id, repo);
    this.uploads.delete(id!);
    res.writeHead(204, { 'content-length': 0 });
    res.end();
  }

  private commit(res: ServerResponse, repo: string, digest: string, hash: Hash, bytes: number): void {
    const actual = `sha256:${hash.digest('hex')}`;
    if (!digest.startsWith('sha256:') || actual !== digest) {
      throw new RegistryError(400, 'DIGEST_INVALID', `uploaded content is ${actual} (${bytes} bytes), not ${digest}`);
    }
    this.blobs.set(digest, bytes);
    res.writeHead(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': 0 });
    res.end();
  }

  /** PUT /v2/<repo>/manifests/<ref>: keep the exact bytes, answer with their digest. */
  async putManifest(req: IncomingMessage, res: ServerResponse, repo: string, ref: string): Promise<void> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > MAX_MANIFEST) throw new RegistryError(413, 'SIZE_INVALID', `manifest larger than ${MAX_MANIFEST} bytes`);
      chunks.push(c as Buffer);
    }
    const body = Buffer.concat(chunks);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    if (ref.includes(':') && ref !== digest) throw new RegistryError(400, 'DIGEST_INVALID', `manifest is ${digest}, pushed as ${ref}`);
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const entry = { mediaType, body, digest };
    this.manifests.set(`${repo}@${digest}`, entry);
    if (!ref.includes(':')) this.manifests.set(`${repo}:${ref}`, entry);
    res.writeHead(201, { location: `/v2/${repo}/manifests/${digest}`, 'docker-content-digest': digest, 'content-length': 0 });
    res.end();
  }
}

async function feed(req: IncomingMessage, u: { hash: Hash; bytes: number }): Promise<void> {
  for await (const c of req) {
    u.hash.update(c as Buffer);
    u.bytes += (c as Buffer).length;
  }
}

async function hashBody(req: IncomingMessage): Promise<{ hash: Hash; bytes: number }> {
  const u = { hash: createHash('sha256'), bytes: 0 };
  await feed(req, u);
  return u;
}
