// Pure: what an ingest ref from content.v1.Content/ListStatuses names. containerd 1.6–2.x
// build refs with remotes.MakeRefKey: "<kind>-<digest>" where kind is layer, config,
// manifest, index, attestation (2.1+) or unknown (any other media type); other clients
// (ctr, BuildKit) use "<name>@<digest>", and an index entry annotated with a ref name gives
// "manifest-<name>@<digest>". Digests may use any registered algorithm
// (sha256 today, sha512 from 2.3).
import { parseDigest } from '../../common/image-ref.js';

/** What kind of blob an ingest fetches, from its ref's prefix. */
export type IngestKind = 'layer' | 'config' | 'manifest' | 'index' | 'attestation' | 'unknown';

/** An ingest ref, parsed: the blob's kind and its digest ("<algorithm>:<hex>"). */
export interface IngestRef {
  kind: IngestKind;
  digest: string;
}

const KINDS: readonly IngestKind[] = ['layer', 'config', 'manifest', 'index', 'attestation', 'unknown'];
/** A digest as go-digest validates it ("sha256:" + 64 lower-case hex, sha384, sha512), else null. */
function digestOf(s: string): string | null {
  return parseDigest(s) === null ? null : s;
}

/**
 * The kind and digest of an ingest ref, or null for a form this does not know (the caller
 * ignores it). `<name>@<digest>` refs are kind "unknown": their media type is not said.
 */
export function parseIngestRef(ref: string): IngestRef | null {
  if (ref.length > 4096) return null;
  const dash = ref.indexOf('-');
  const prefix = dash > 0 ? ref.slice(0, dash) : '';
  const kind = KINDS.find((k) => k === prefix);
  if (kind !== undefined) {
    const digest = digestOf(ref.slice(dash + 1));
    if (digest !== null) return { kind, digest };
  }
  // "<name>@<digest>", and "manifest-<ref.name annotation>@<digest>" (an index entry with an
  // org.opencontainers.image.ref.name annotation).
  const at = ref.lastIndexOf('@');
  if (at > 0) {
    const digest = digestOf(ref.slice(at + 1));
    if (digest !== null) return { kind: kind ?? 'unknown', digest };
  }
  return null;
}
