// Reads the manifests and indexes a registry serves (OCI and Docker schema 2) into plain data,
// with the same media-type checks containerd makes, and sums an image's size from its manifest.
//
// Pure: bytes and a media type in, data out; every failure is a PulltraceError
// PT_REGISTRY_BAD_RESPONSE saying what was wrong.
import { asRecord } from '../../common/json.js';
import { PulltraceError } from '../../common/errors.js';
import { parseDigest } from '../../common/image-ref.js';
import { normalizePlatform, type Platform } from './platform.js';

import { MEDIA_TYPES } from '../tracker/manifest.js';

export { MEDIA_TYPES };

const INDEX_TYPES: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList];
const MANIFEST_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
const SCHEMA1_TYPES: readonly string[] = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  // containerd reads an unlabelled text/plain answer as schema 1 (registries that predate schema 2).
  'text/plain',
];

/**
 * The Accept header of a manifest request, exactly as containerd's resolver sends it, so a
 * registry that picks a representation by Accept gives the digest containerd pulls.
 */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerList,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.ociIndex,
  '*/*',
].join(', ');

/** A content descriptor: a blob's digest ("sha256:…") and size in bytes. */
export interface Descriptor {
  digest: string;
  size: number;
  /** "" when the document gave none. */
  mediaType: string;
}

/** An image manifest: one config blob and its layers, in listed order (repeats kept). */
export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** One entry of an index: a manifest (or nested index) and the platform it is for, if stated. */
export interface IndexEntry extends Descriptor {
  platform: Platform | null;
}

/** An image index (OCI) or manifest list (Docker). */
export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: IndexEntry[];
}

/** True for the four media types of manifests and indexes this client follows. */
export function isKnownManifestType(mediaType: string): boolean {
  return INDEX_TYPES.includes(mediaType) || MANIFEST_TYPES.includes(mediaType);
}

/** True for an index or manifest-list media type. */
export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.includes(mediaType);
}

/** A Content-Type header value without parameters, lower case: "application/json; charset=x" → "application/json". */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function bad(detail: string, cause?: unknown): PulltraceError {
  return new PulltraceError('PT_REGISTRY_BAD_RESPONSE', detail, cause === undefined ? undefined : { cause });
}

const record = asRecord;

function descriptor(v: unknown, where: string): Descriptor {
  const o = record(v);
  if (o === null) throw bad(`${where} is not a descriptor`);
  if (typeof o.digest !== 'string' || parseDigest(o.digest) === null) {
    throw bad(`${where} has no valid digest`);
  }
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw bad(`${where} has no valid size`);
  }
  return { digest: o.digest, size: o.size, mediaType: typeof o.mediaType === 'string' ? o.mediaType : '' };
}

function platformOf(v: unknown): Platform | null {
  const p = record(v);
  if (p === null || typeof p.os !== 'string' || typeof p.architecture !== 'string') return null;
  return normalizePlatform({
    os: p.os,
    architecture: p.architecture,
    variant: typeof p.variant === 'string' ? p.variant : '',
  });
}

/**
 * Parses a manifest or index whose media type is `mediaType` (the Content-Type of a resolved
 * reference, or the descriptor's type for an index entry, as containerd does).
 *
 * Throws PT_REGISTRY_BAD_RESPONSE for: a schema 1 or other unknown media type, a body that is
 * not a JSON object, a manifest labelled as an index or the reverse (containerd's
 * validateMediaType), a body whose own `mediaType` names another kind, or a descriptor with
 * no valid digest or size.
 */
export function parseManifest(body: Buffer, mediaType: string): ImageManifest | ImageIndex {
  const mt = bareMediaType(mediaType);
  if (SCHEMA1_TYPES.includes(mt)) throw bad(`media type ${JSON.stringify(mt)} (schema 1) is not supported`);
  if (!isKnownManifestType(mt)) {
    throw bad(`unknown media type ${JSON.stringify(mt)}: not an OCI or Docker schema 2 manifest or index`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw bad(`${mt} body is not valid JSON`, err);
  }
  const o = record(doc);
  if (o === null) throw bad(`${mt} body is not a JSON object`);
  if (Array.isArray(o.fsLayers)) throw bad('schema 1 manifest is not supported');
  const own = typeof o.mediaType === 'string' ? o.mediaType : '';
  if (isIndexType(mt)) {
    if (o.config !== undefined || o.layers !== undefined || MANIFEST_TYPES.includes(own)) {
      throw bad(`expected an index (${mt}) but found a manifest`);
    }
    if (!Array.isArray(o.manifests)) throw bad('index has no manifests list');
    const manifests = (o.manifests as unknown[]).map((m, i) => ({
      ...descriptor(m, `manifests[${i}]`),
      platform: platformOf(record(m)?.platform),
    }));
    return { kind: 'index', mediaType: mt, manifests };
  }
  if (o.manifests !== undefined || INDEX_TYPES.includes(own)) {
    throw bad(`expected a manifest (${mt}) but found an index`);
  }
  if (!Array.isArray(o.layers)) throw bad('manifest has no layers list');
  return {
    kind: 'manifest',
    mediaType: mt,
    config: descriptor(o.config, 'config'),
    layers: (o.layers as unknown[]).map((l, i) => descriptor(l, `layers[${i}]`)),
  };
}

/** What a pull of one platform manifest fetches, from the manifest alone. */
export interface ManifestSize {
  configDigest: string;
  /** Bytes. */
  configSize: number;
  /** Config + each distinct layer once, bytes (a layer listed twice is fetched and stored once). */
  bytes: number;
  /** Distinct layers, in first-listed order (a layer equal to the config blob is not repeated). */
  layers: { digest: string; size: number }[];
}

/** Sums a manifest's config and distinct layers. */
export function manifestSize(m: ImageManifest): ManifestSize {
  const seen = new Set<string>([m.config.digest]);
  const layers: { digest: string; size: number }[] = [];
  for (const l of m.layers) {
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    layers.push({ digest: l.digest, size: l.size });
  }
  return {
    configDigest: m.config.digest,
    configSize: m.config.size,
    bytes: m.config.size + layers.reduce((sum, l) => sum + l.size, 0),
    layers,
  };
}
