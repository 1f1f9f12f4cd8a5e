/**
 * Manifest and blob media types (OCI image-spec, Docker image-manifest v2) and
 * predicates on them, after go-containerregistry's pkg/v1/types.
 */
export const MediaTypes = {
  OCIIndex: 'application/vnd.oci.image.index.v1+json',
  OCIManifest: 'application/vnd.oci.image.manifest.v1+json',
  OCIConfig: 'application/vnd.oci.image.config.v1+json',
  OCILayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCILayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCILayerTar: 'application/vnd.oci.image.layer.v1.tar',
  OCIEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerManifestSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** Lower-case, parameters dropped ("application/json; charset=utf-8" → "application/json"). */
export function baseMediaType(mt: string | null | undefined): string | null {
  if (!mt) return null;
  const t = mt.split(';')[0]!.trim().toLowerCase();
  return t || null;
}

export function isIndex(mt: string | null | undefined): boolean {
  const t = baseMediaType(mt);
  return t === MediaTypes.OCIIndex || t === MediaTypes.DockerManifestList;
}

export function isImageManifest(mt: string | null | undefined): boolean {
  const t = baseMediaType(mt);
  return t === MediaTypes.OCIManifest || t === MediaTypes.DockerManifest;
}

export function isSchema1(mt: string | null | undefined): boolean {
  const t = baseMediaType(mt);
  return t === MediaTypes.DockerManifestSchema1 || t === MediaTypes.DockerManifestSchema1Signed;
}

export function isManifestType(mt: string | null | undefined): boolean {
  return isIndex(mt) || isImageManifest(mt) || isSchema1(mt);
}

export function isConfig(mt: string | null | undefined): boolean {
  const t = baseMediaType(mt);
  return t === MediaTypes.OCIConfig || t === MediaTypes.DockerConfig;
}

export function isOci(mt: string | null | undefined): boolean {
  return !!baseMediaType(mt)?.startsWith('application/vnd.oci.');
}

/** Short human name: "Docker manifest list", "OCI index", … */
export function describeMediaType(mt: string | null | undefined): string {
  const t = baseMediaType(mt);
  switch (t) {
    case MediaTypes.OCIIndex:
      return 'OCI index';
    case MediaTypes.OCIManifest:
      return 'OCI manifest';
    case MediaTypes.DockerManifestList:
      return 'Docker manifest list';
    case MediaTypes.DockerManifest:
      return 'Docker manifest v2';
    case MediaTypes.DockerManifestSchema1:
    case MediaTypes.DockerManifestSchema1Signed:
      return 'Docker schema1 manifest';
    case MediaTypes.OCIConfig:
    case MediaTypes.DockerConfig:
      return 'image config';
    default:
      return t ?? 'unknown';
  }
}
