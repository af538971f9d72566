// Parses image manifests and indexes (OCI and Docker schema 2) from their JSON, so the size
// of a whole image is known as soon as its manifest is in the content store; and image
// configs' diff_ids, whose chain IDs name the layers' unpacked snapshots.
import { createHash } from 'node:crypto';
import { parseDigest } from '../../common/image-ref.js';

/** The manifest and index media types the tracker reads (OCI and Docker schema 2). */
/** Manifests, indexes and configs are small; anything bigger is not read (bytes). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The media types of manifests and indexes (OCI and Docker schema 2), as registries and containerd label them. */
export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** A descriptor as a manifest lists it: the blob's digest ("sha256:<hex>") and size in bytes (compressed, as stored). */
export interface BlobRef {
  digest: string;
  size: number;
}

/** A platform image manifest: its config and its layers in order, repeats included. */
export interface Manifest {
  kind: 'manifest';
  config: BlobRef;
  layers: BlobRef[];
}

/** One manifest of an index, with its platform (null when the entry names none). */
export interface IndexEntry extends BlobRef {
  platform: { os: string; architecture: string; variant?: string } | null;
}

/** An image index (OCI) or manifest list (Docker): one manifest per platform. */
export interface Index {
  kind: 'index';
  manifests: IndexEntry[];
}

function blobRef(v: unknown, where: string): BlobRef {
  if (typeof v !== 'object' || v === null) throw new Error(`${where} is not a descriptor`);
  const o = v as Record<string, unknown>;
  if (typeof o.digest !== 'string' || parseDigest(o.digest) === null)
    throw new Error(`${where} has no valid digest`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new Error(`${where} has no valid size`);
  }
  return { digest: o.digest, size: o.size };
}

/**
 * Parses a manifest or index (bytes read from containerd with Content/Read); throws an Error
 * saying what is wrong (not JSON, no layers, a descriptor without a valid digest or size) for
 * anything else.
 */
export function parseManifest(data: Buffer | string): Manifest | Index {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch (err) {
    throw new Error('manifest is not valid JSON', { cause: err });
  }
  if (typeof doc !== 'object' || doc === null) throw new Error('manifest is not a JSON object');
  const o = doc as Record<string, unknown>;
  const mediaType = typeof o.mediaType === 'string' ? o.mediaType : '';
  if (
    Array.isArray(o.manifests) ||
    mediaType === MEDIA_TYPES.ociIndex ||
    mediaType === MEDIA_TYPES.dockerList
  ) {
    if (!Array.isArray(o.manifests)) throw new Error('index has no manifests');
    return {
      kind: 'index',
      manifests: o.manifests.map((m: unknown, i) => {
        const ref = blobRef(m, `manifests[${i}]`);
        const p = (m as Record<string, unknown>).platform;
        const platform =
          typeof p === 'object' && p !== null && typeof (p as Record<string, unknown>).os === 'string'
            ? (p as { os: string; architecture: string; variant?: string })
            : null;
        return { ...ref, platform };
      }),
    };
  }
  if (!Array.isArray(o.layers)) throw new Error('manifest has no layers');
  return {
    kind: 'manifest',
    config: blobRef(o.config, 'config'),
    layers: o.layers.map((l: unknown, i) => blobRef(l, `layers[${i}]`)),
  };
}

/** OCI platform of this process, e.g. linux/amd64, linux/arm64/v8. */
export function currentPlatform(): string {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
  };
  return `linux/${arch[process.arch] ?? process.arch}`;
}

/** The index entry for `platform` ("os/arch[/variant]"); null when the index has none. */
export function pickPlatform(index: Index, platform: string): IndexEntry | null {
  const [os, architecture, variant] = platform.split('/');
  const matches = index.manifests.filter(
    (m) => m.platform !== null && m.platform.os === os && m.platform.architecture === architecture,
  );
  return matches.find((m) => variant === undefined || m.platform?.variant === variant) ?? matches[0] ?? null;
}

/**
 * The config and layers of a manifest with each digest once, in first-listed order: a layer
 * listed twice (repeated no-op build steps) is fetched and stored once.
 */
export function distinctBlobs(m: Manifest): BlobRef[] {
  const seen = new Set<string>();
  const out: BlobRef[] = [];
  for (const b of [m.config, ...m.layers]) {
    if (seen.has(b.digest)) continue;
    seen.add(b.digest);
    out.push(b);
  }
  return out;
}

/** An image config's `rootfs.diff_ids` (uncompressed layer digests, in order); throws if absent. */
export function parseDiffIds(data: Buffer | string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch (err) {
    throw new Error('image config is not valid JSON', { cause: err });
  }
  const rootfs =
    typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).rootfs : undefined;
  const ids =
    typeof rootfs === 'object' && rootfs !== null ? (rootfs as Record<string, unknown>).diff_ids : undefined;
  if (
    !Array.isArray(ids) ||
    !ids.every((d): d is string => typeof d === 'string' && parseDigest(d) !== null)
  ) {
    throw new Error('image config has no valid rootfs.diff_ids');
  }
  return ids;
}

/**
 * OCI chain IDs of a layer stack: ChainID(L0) = DiffID(L0), ChainID(Ln) =
 * sha256(ChainID(Ln-1) + " " + DiffID(Ln)). containerd's unpacker commits each layer's
 * snapshot under its chain ID, so Snapshots/Stat(chainID) tells whether a layer is unpacked.
 */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}
