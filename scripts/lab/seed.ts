/**
 * Seeds distribution's filesystem storage layout directly (no push): blob data files plus the repository
 * link files that make them visible. Layout (distribution 2.x, `registry/storage/paths.go`):
 *
 * ```
 * <root>/docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data
 * <root>/docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link                (configs, layers)
 * <root>/docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link   (every manifest)
 * <root>/docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link
 * <root>/docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link
 * ```
 * A link file holds `sha256:<hex>` with no newline. Large blobs are hard-linked from the cache (distribution
 * never rewrites a blob file in place; it renames new uploads over), small ones copied.
 */
import { copyFile, link, mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cacheBlobPath, type BuiltImage } from './images.js';

/** Blobs at least this big are hard-linked instead of copied. */
const LINK_THRESHOLD = 8 * 1024 * 1024;

/** distribution's v2 root under the storage rootdirectory. */
export function v2Root(storageRoot: string): string {
  return join(storageRoot, 'docker', 'registry', 'v2');
}

/** Path of a blob's data file in the storage (also the CDN path after the storage root). */
export function storageBlobPath(storageRoot: string, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return join(v2Root(storageRoot), 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

async function writeLink(path: string, digest: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, digest);
}

async function placeBlob(cacheDir: string, storageRoot: string, digest: string, size: number): Promise<void> {
  const dst = storageBlobPath(storageRoot, digest);
  try {
    if ((await stat(dst)).size === size) return;
    await unlink(dst);
  } catch {
    /* missing */
  }
  await mkdir(dirname(dst), { recursive: true });
  const src = cacheBlobPath(cacheDir, digest);
  if (size >= LINK_THRESHOLD) {
    try {
      await link(src, dst);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
  }
  await copyFile(src, dst);
}

/** Writes every blob and link of `images` into the storage (idempotent). */
export async function seedStorage(cacheDir: string, storageRoot: string, images: readonly BuiltImage[]): Promise<void> {
  const v2 = v2Root(storageRoot);
  for (const img of images) {
    const repo = join(v2, 'repositories', ...img.repo.split('/'));
    const manifests = [{ digest: img.digest, size: img.size }, ...img.manifests];
    for (const m of manifests) {
      await placeBlob(cacheDir, storageRoot, m.digest, m.size);
      await writeLink(join(repo, '_manifests', 'revisions', ...m.digest.split(':'), 'link'), m.digest);
    }
    for (const b of img.blobs) {
      await placeBlob(cacheDir, storageRoot, b.digest, b.size);
      await writeLink(join(repo, '_layers', ...b.digest.split(':'), 'link'), b.digest);
    }
    const tag = join(repo, '_manifests', 'tags', img.tag);
    await writeLink(join(tag, 'current', 'link'), img.digest);
    await writeLink(join(tag, 'index', ...img.digest.split(':'), 'link'), img.digest);
  }
}
