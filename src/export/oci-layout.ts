import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { getHeader, type FlowRecord } from '../flow/index.js';
import { loadRecording } from '../inspect/index.js';
import { baseMediaType, isDigest, isSchema1, MAX_MANIFEST, MediaTypes, parseManifest, type Operation } from '../registry/index.js';
import type { Recording } from '../store/index.js';
import { sha256Hex } from './util.js';
import { RegtapeError } from '../errors/index.js';

/**
 * The images a recording pulled, as an OCI image layout (image-spec image-layout.md):
 * `oci-layout`, `index.json`, `blobs/sha256/<hex>`. Every blob is the recorded body
 * byte for byte (bodies are stored by the sha256 of their bytes, so a blob is present
 * exactly when the recording holds a body with its digest; each copy is re-hashed).
 *
 * Only what was fetched is there. An index (manifest list) is written as the image
 * only when every manifest it lists was fetched with its config and layers; otherwise
 * the platform manifests that are complete go into index.json one by one, each with
 * its `platform` — an index naming manifests the layout does not hold would be a
 * broken image for every tool that follows it. See docs in `regtape export --help`.
 */

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';

export interface OciExportOptions {
  /** `[HOST/]REPO[:TAG|@DIGEST]` selectors; none: every image pulled. */
  images?: string[];
  /** Progress and notes (skipped images, platform fallbacks). */
  log?: (line: string) => void;
}

export interface OciExportedImage {
  /** `registry/repo:tag` or `registry/repo@digest`. */
  name: string;
  /** Digest the reference resolved to (top-level manifest or index). */
  digest: string;
  mediaType: string;
  /** 'image': a single manifest; 'index': the whole index; 'platforms': some platform manifests of an incomplete index. */
  mode: 'image' | 'index' | 'platforms';
  /** Platforms written (for 'platforms' and 'index'). */
  platforms: string[];
  /** `org.opencontainers.image.ref.name` values in index.json (none for digest-only pulls). */
  refNames: string[];
}

export interface OciExportResult {
  images: OciExportedImage[];
  /** Images pulled but not exportable, with why. */
  skipped: Array<{ name: string; why: string }>;
  blobsWritten: number;
  blobsPresent: number;
  bytesWritten: number;
}

interface RawDescriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string; [k: string]: unknown };
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

/** What a manifest digest leads to in the recording. */
interface Examined {
  digest: string;
  size: number;
  mediaType: string;
  kind: 'index' | 'image';
  /** Every digest needed to write it (itself, children, configs, layers), in write order (blobs before manifests). */
  blobs: string[];
  complete: boolean;
  /** Why not complete. */
  missing: string[];
  /** For an index: its children, with their raw descriptors. */
  children?: Array<{ desc: RawDescriptor; node: Examined | null }>;
}

interface Candidate {
  registry: string;
  repo: string;
  /** Tag or digest asked for. */
  reference: string;
  digest: string;
  mediaType: string | null;
}

/** A parsed `--image` selector. */
export interface ImageSelector {
  host: string | null;
  repo: string;
  tag: string | null;
  digest: string | null;
}

/** `[HOST[:PORT]/]REPO[:TAG][@DIGEST]`, as docker spells references (the host is the first part when it has a dot or port, or is localhost). */
export function parseImageSelector(s: string): ImageSelector {
  let rest = s.trim();
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new RegtapeError('export-failed', `--image ${s}: ${digest} is not a digest (expected sha256:<64 hex>)`);
  }
  let tag: string | null = null;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  let host: string | null = null;
  const first = rest.indexOf('/');
  if (first > 0) {
    const part = rest.slice(0, first);
    if (part.includes('.') || part.includes(':') || part === 'localhost') {
      host = part;
      rest = rest.slice(first + 1);
    }
  }
  if (!rest || !/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/.test(rest)) {
    throw new RegtapeError('export-failed', `--image ${s}: not an image reference (expected [HOST/]REPO[:TAG|@DIGEST], e.g. registry.test/lab/alpine:3.9)`);
  }
  return { host, repo: rest, tag, digest };
}

function contentTypes(flows: FlowRecord[]): Map<string, string> {
  const types = new Map<string, string>();
  for (const f of flows) {
    const sha = f.responseBody?.sha256;
    const t = f.response ? baseMediaType(getHeader(f.response.headers, 'content-type')) : null;
    if (sha && t && f.response?.status === 200 && !types.has(sha)) types.set(sha, t);
  }
  return types;
}

/** The digest a pull's reference resolved to: the manifest fetched for it. */
function resolveOperation(op: Operation, byId: Map<number, FlowRecord>): { digest: string; mediaType: string | null } | null {
  if (!op.reference) return null;
  if (isDigest(op.reference)) return { digest: op.reference, mediaType: null };
  let headDigest: string | null = null;
  for (const id of op.flowIds) {
    const f = byId.get(id);
    const r = f?.registry;
    if (!f || r?.role !== 'manifest' || r.reference !== op.reference || f.response?.status !== 200) continue;
    const type = baseMediaType(getHeader(f.response.headers, 'content-type'));
    if (f.request.method === 'GET' && f.responseBody?.sha256) return { digest: `sha256:${f.responseBody.sha256}`, mediaType: type };
    headDigest ??= r.digest;
  }
  if (headDigest) return { digest: headDigest, mediaType: null };
  if (op.index) return { digest: op.index.digest, mediaType: op.index.mediaType };
  if (op.manifests.length === 1) return { digest: op.manifests[0]!.digest, mediaType: op.manifests[0]!.mediaType };
  return null;
}

function platformOf(d: RawDescriptor): string {
  const p = d.platform;
  return p ? [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/') : '?';
}

/** 'list' for a Docker manifest list, 'index' for an OCI index. */
export function indexWord(mediaType: string): string {
  return baseMediaType(mediaType) === MediaTypes.DockerManifestList ? 'list' : 'index';
}

function short(d: string): string {
  return d.startsWith('sha256:') ? `${d.slice(0, 19)}…` : d;
}

class Examiner {
  private readonly cache = new Map<string, Examined | null>();

  constructor(
    private readonly rec: Recording,
    private readonly types: Map<string, string>,
  ) {}

  has(digest: string): boolean {
    const hex = sha256Hex(digest);
    return !!hex && this.rec.hasBody(hex);
  }

  /** Follow a manifest through the recording; null when its bytes were never fetched. */
  async examine(digest: string, hint: string | null = null, depth = 0): Promise<Examined | null> {
    if (this.cache.has(digest)) return this.cache.get(digest)!;
    const hex = sha256Hex(digest);
    if (!hex || !this.rec.hasBody(hex) || depth > 4) {
      this.cache.set(digest, null);
      return null;
    }
    const body = await this.rec.readBodyBuffer(hex, MAX_MANIFEST);
    let doc: Record<string, unknown>;
    let parsed;
    try {
      doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      parsed = parseManifest(body, typeof doc.mediaType === 'string' ? doc.mediaType : (hint ?? this.types.get(hex) ?? null));
    } catch {
      this.cache.set(digest, null);
      return null;
    }
    const node: Examined = { digest, size: body.length, mediaType: parsed.mediaType, kind: 'image', blobs: [], complete: true, missing: [] };
    if (parsed.kind === 'schema1' || isSchema1(parsed.mediaType)) {
      node.complete = false;
      node.missing.push(`${short(digest)} is a schema1 manifest (no OCI layout form)`);
    } else if (parsed.kind === 'index') {
      node.kind = 'index';
      node.children = [];
      const raw = (Array.isArray(doc.manifests) ? doc.manifests : []) as RawDescriptor[];
      for (const d of raw) {
        const child = await this.examine(d.digest, d.mediaType ?? null, depth + 1);
        node.children.push({ desc: d, node: child });
        if (!child) {
          node.complete = false;
          node.missing.push(`${platformOf(d)} manifest ${short(d.digest)} not fetched`);
        } else if (!child.complete) {
          node.complete = false;
          node.missing.push(...child.missing.map((m) => `${platformOf(d)}: ${m}`));
        } else node.blobs.push(...child.blobs);
      }
    } else {
      for (const d of [parsed.config, ...parsed.layers]) {
        if (!this.has(d.digest)) {
          node.complete = false;
          node.missing.push(`${d === parsed.config ? 'config' : 'layer'} ${short(d.digest)} not fetched${d.urls?.length ? ' (foreign layer)' : ''}`);
        } else node.blobs.push(d.digest);
      }
    }
    node.blobs.push(digest);
    this.cache.set(digest, node);
    return node;
  }
}

function matches(sel: ImageSelector, c: Candidate): boolean {
  if (sel.host && sel.host !== c.registry) return false;
  if (sel.repo !== c.repo && `library/${sel.repo}` !== c.repo) return false;
  if (sel.tag && sel.tag !== c.reference) return false;
  if (sel.digest && sel.digest !== c.digest && sel.digest !== c.reference) return false;
  return true;
}

/** Write the images a recording pulled into an OCI image layout at `dir`. */
export async function exportOciLayout(rec: Recording, dir: string, opts: OciExportOptions = {}): Promise<OciExportResult> {
  const log = opts.log ?? (() => undefined);
  const loaded = await loadRecording(rec);
  const byId = new Map(loaded.flows.map((f) => [f.id, f]));
  const types = contentTypes(loaded.flows);
  const examiner = new Examiner(rec, types);

  // Every pull, latest first wins for the same registry/repo/reference.
  const candidates = new Map<string, Candidate>();
  for (const op of loaded.operations) {
    if (op.kind !== 'pull' && op.kind !== 'inspect') continue;
    const resolved = resolveOperation(op, byId);
    if (!resolved || !op.reference) continue;
    const key = `${op.registry}/${op.repo}|${op.reference}`;
    const prev = candidates.get(key);
    if (prev && prev.digest !== resolved.digest) log(`${op.registry}/${op.repo}:${op.reference} was pulled more than once and moved (${short(prev.digest)} → ${short(resolved.digest)}); exporting the last`);
    candidates.set(key, { registry: op.registry, repo: op.repo, reference: op.reference, digest: resolved.digest, mediaType: resolved.mediaType });
  }
  let chosen = [...candidates.values()];
  if (opts.images?.length) {
    const picked: Candidate[] = [];
    for (const s of opts.images) {
      const sel = parseImageSelector(s);
      let found = chosen.filter((c) => matches(sel, c));
      const registries = new Set(found.map((c) => c.registry));
      if (!sel.host && registries.size > 1) {
        throw new RegtapeError('export-failed', `--image ${s} is ambiguous: ${[...registries].map((r) => `${r}/${found[0]!.repo}`).join(', ')} were pulled; put the registry host in front`);
      }
      if (!found.length && sel.digest) {
        // A digest the recording holds, though no pull asked for it by that digest (e.g. one platform of a list).
        const name = [...candidates.values()].find((c) => (!sel.host || c.registry === sel.host) && (c.repo === sel.repo || c.repo === `library/${sel.repo}`));
        if (examiner.has(sel.digest)) found = [{ registry: name?.registry ?? sel.host ?? '', repo: name?.repo ?? sel.repo, reference: sel.digest, digest: sel.digest, mediaType: null }];
      }
      if (!found.length) {
        const pulled = chosen.map((c) => `${c.registry}/${c.repo}${isDigest(c.reference) ? '@' : ':'}${c.reference}`);
        throw new RegtapeError('export-failed', `--image ${s}: no such image pulled in ${rec.path}${pulled.length ? `; pulled: ${pulled.join(', ')}` : ' (it has no pulls)'}`);
      }
      for (const c of found) if (!picked.includes(c)) picked.push(c);
    }
    chosen = picked;
  }
  if (!chosen.length) throw new RegtapeError('export-failed', `${rec.path} has no image pulls to export (pushes are not exported)`);

  // Plan: what goes into index.json, and which blobs.
  const result: OciExportResult = { images: [], skipped: [], blobsWritten: 0, blobsPresent: 0, bytesWritten: 0 };
  const entries: RawDescriptor[] = [];
  const blobs: string[] = [];
  for (const c of chosen) {
    const isTag = !isDigest(c.reference);
    const name = `${c.registry}/${c.repo}${isTag ? `:${c.reference}` : `@${c.reference}`}`;
    const node = await examiner.examine(c.digest, c.mediaType);
    if (!node) {
      result.skipped.push({ name, why: `its manifest ${short(c.digest)} was not fetched (HEAD only, or the client had it cached)` });
      continue;
    }
    const annotate = (refName: string | null): Record<string, string> => {
      const a: Record<string, string> = { [CONTAINERD_NAME]: name };
      if (refName) a[REF_NAME] = refName;
      return a;
    };
    if (node.complete) {
      blobs.push(...node.blobs);
      const refNames = isTag ? [c.reference] : [];
      entries.push({ mediaType: node.mediaType, digest: node.digest, size: node.size, annotations: annotate(refNames[0] ?? null) });
      const platforms = node.children?.map((ch) => platformOf(ch.desc)) ?? [];
      result.images.push({ name, digest: node.digest, mediaType: node.mediaType, mode: node.kind === 'index' ? 'index' : 'image', platforms, refNames });
      continue;
    }
    const done = (node.children ?? []).filter((ch) => ch.node?.complete && ch.node.kind === 'image');
    if (node.kind !== 'index' || !done.length) {
      result.skipped.push({ name, why: node.missing.slice(0, 4).join('; ') + (node.missing.length > 4 ? `; … (${node.missing.length - 4} more)` : '') });
      continue;
    }
    // An incomplete index: its complete platform manifests, each on its own.
    const refNames: string[] = [];
    for (const ch of done) {
      const platform = platformOf(ch.desc);
      const refName = isTag ? (done.length === 1 ? c.reference : `${c.reference}-${platform.replace(/\//g, '-')}`) : null;
      if (refName) refNames.push(refName);
      blobs.push(...ch.node!.blobs);
      const d: RawDescriptor = { mediaType: ch.node!.mediaType, digest: ch.desc.digest, size: ch.node!.size };
      if (ch.desc.platform) d.platform = ch.desc.platform;
      d.annotations = annotate(refName);
      entries.push(d);
    }
    const left = (node.children ?? []).length - done.length;
    log(
      `${name}: ${left} of ${(node.children ?? []).length} platforms were not fetched, so the ${indexWord(node.mediaType)} ${short(node.digest)} is not written; ` +
        `wrote ${done.map((ch) => platformOf(ch.desc)).join(', ')} as separate manifests${refNames.length ? ` (${refNames.join(', ')})` : ''}`,
    );
    result.images.push({ name, digest: node.digest, mediaType: node.mediaType, mode: 'platforms', platforms: done.map((ch) => platformOf(ch.desc)), refNames });
  }
  if (!entries.length) {
    throw new RegtapeError('export-failed', `nothing to export: ${result.skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`);
  }

  // Write: layout marker, blobs (each verified), index.json last — a failure never leaves an index naming missing blobs.
  const existing = prepareDir(dir);
  const blobDir = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobDir, { recursive: true });
  for (const digest of new Set(blobs)) {
    const hex = sha256Hex(digest)!;
    const dest = path.join(blobDir, hex);
    if (fs.existsSync(dest)) {
      result.blobsPresent++;
      continue;
    }
    result.bytesWritten += await copyVerified(rec, hex, dest);
    result.blobsWritten++;
  }
  const newNames = new Set(entries.map((e) => e.annotations?.[REF_NAME]).filter(Boolean));
  const kept = existing.filter((e) => !(e.annotations?.[REF_NAME] && newNames.has(e.annotations[REF_NAME])) && !entries.some((n) => n.digest === e.digest && !n.annotations?.[REF_NAME] && !e.annotations?.[REF_NAME]));
  const index = { schemaVersion: 2, mediaType: MediaTypes.OCIIndex, manifests: [...kept, ...entries] };
  writeAtomically(path.join(dir, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
  writeAtomically(path.join(dir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  return result;
}

/** A new or empty directory, or an existing OCI layout (whose index.json entries are returned to be kept). */
function prepareDir(dir: string): RawDescriptor[] {
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true });
    return [];
  }
  if (!fs.statSync(dir).isDirectory()) throw new RegtapeError('export-failed', `${dir} exists and is not a directory`);
  const names = fs.readdirSync(dir);
  if (!names.length) return [];
  if (!names.includes('oci-layout')) throw new RegtapeError('export-failed', `${dir} is not empty and not an OCI layout (no oci-layout file); give a new or empty directory`);
  const file = path.join(dir, 'index.json');
  if (!fs.existsSync(file)) return [];
  try {
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { manifests?: RawDescriptor[] };
    return Array.isArray(doc.manifests) ? doc.manifests : [];
  } catch (e) {
    throw new RegtapeError('export-failed', `${file}: not readable as an OCI index (${(e as Error).message}); give a new directory`);
  }
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** Copy a stored body to `dest` through a temp file, checking that it hashes to its name. */
async function copyVerified(rec: Recording, hex: string, dest: string): Promise<number> {
  const tmp = `${dest}.tmp-${process.pid}`;
  const hash = createHash('sha256');
  const out = fs.createWriteStream(tmp, { mode: 0o644 });
  let n = 0;
  try {
    for await (const c of rec.readBody(hex)) {
      const buf = c as Buffer;
      hash.update(buf);
      n += buf.length;
      if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((resolve, reject) => {
      out.once('error', reject);
      out.end(() => resolve());
    });
    const actual = hash.digest('hex');
    if (actual !== hex) throw new RegtapeError('export-failed', `body ${hex} in the recording hashes to ${actual}: the recording's body file is damaged`);
    fs.renameSync(tmp, dest);
    return n;
  } catch (e) {
    out.destroy();
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
