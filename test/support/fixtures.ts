/**
 * The recordings in fixtures/ (made by scripts/make-fixtures; see fixtures/README.md) and the lab
 * image digests they contain. The lab images are generated deterministically (scripts/lab/images.ts),
 * so these digests are the same on every machine: they are written out here, not computed.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Recording } from '../../src/store/index.js';

export const FIXTURES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures');

export type FixtureName = 'dockerd-pull-multiarch' | 'skopeo-copy' | 'ctr-pull' | 'dockerd-push' | 'podman-pull' | 'skopeo-copy-registry' | 'curl-script' | 'failing-pulls';

/** Open a fixture read-only (the committed copies are in rollback-journal mode: nothing is left beside them). */
export function openFixture(name: FixtureName): Recording {
  return Recording.open(path.join(FIXTURES_DIR, `${name}.db`), { readonly: true });
}

/** Lab image digests (scripts/lab/images.ts, SPEC_VERSION 1). */
export const D = {
  /** lab/alpine:3.9: Docker manifest list (987 bytes), linux/amd64, linux/arm64, linux/arm/v7. */
  alpineList: 'sha256:20ded9c7f836840b2b9f2d6d71dc7c12c4e08b4c3fa6c1a3b2be174b754a86f4',
  alpineAmd64: 'sha256:a35e61ba1d5938453a9adcf606038037b2424d5d88a13d17fe9bf88b8c1eb0db',
  alpineArm64: 'sha256:370f42a7c7d5d10c8c364d8c7efa5d8bb76463bd7bbfc6267594bf2b1c52b163',
  alpineArmV7: 'sha256:21d8673defef59cfcb8f6ef22550e1245687cacb720c85ee3764a2f2fd47b6d4',
  /** Config (536 bytes) and layers (704073, 1503877 bytes) of the linux/amd64 image. */
  alpineAmd64Config: 'sha256:50108d05ca2acd1ab78ac12e84d06c7721e0484171beac0417336f4c8d16bb4f',
  alpineAmd64Layer0: 'sha256:a46e3afeb199262b4b1348fae345ceaeca72c6f2880795611427f8cac3071e47',
  alpineAmd64Layer1: 'sha256:2ad900e8e23b6de338827f22c39834051185a9680fc3135f2ac78a7cd78c2128',
  /** lab/oci:1: OCI index (645 bytes), linux/amd64 and linux/arm64. */
  ociIndex: 'sha256:4604e912d6edeb4fcbb06449e498fb1a6a56e62cad0f1eafe579aeba1d096164',
  ociAmd64: 'sha256:481641640497a7bea0885204411b9044027c6c6baefbd38d76e8b24df64600ce',
  ociArm64: 'sha256:0e292a9b64c3a8a8623d9970cbfd10a5eb807c53ac80a6dd39eadd3021c568ea',
  /** Config (359 bytes) and layer (404021 bytes) of the linux/amd64 image. */
  ociAmd64Config: 'sha256:863d482f6339c50bd6c3132ac483bc3faf0d9e4bf0467d3cef06f13d7968a25c',
  ociAmd64Layer0: 'sha256:4366f899283d761ea37201a8ca3da533b2607f48f63ce3bb29205580bb04d66d',
  /** lab/tiny:latest: one Docker manifest v2 (499 bytes), config 359 bytes, one layer 4631 bytes. */
  tiny: 'sha256:04acf6ea374a1b35d26a4260a4a54f584ac90eb1325e5f81d10a341a718325ec',
  tinyConfig: 'sha256:6d32606540da4cc97c0e17f9431b9b8ec48b9e542668bf3cd8024d0c45e0a554',
  tinyLayer0: 'sha256:5e9dc0373344f440730c15637471d5708747c643ebf7d63dbe0fd850e197b81e',
} as const;

/** Media types (OCI image-spec, Docker image-manifest v2.2). */
export const MT = {
  json: 'application/json',
  octet: 'application/octet-stream',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/**
 * Where distribution's redirect middleware sends a blob GET/HEAD: the blob's path under the
 * filesystem driver's root, `/docker/registry/v2/blobs/sha256/<first 2 hex>/<hex>/data`.
 */
export function cdnPath(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return `/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}
