// Pure: what an ingest ref from content.v1.Content/ListStatuses names. containerd 1.6–2.x
// build refs with remotes.MakeRefKey: "<kind>-<digest>" where kind is layer, config,
// manifest, index, attestation (2.1+) or unknown (any other media type); other clients
// (ctr, BuildKit) use "<name>@<digest>", and an index entry annotated with a ref name gives
// "manifest-<name>@<digest>". Digests may use any registered algorithm
// (sha256 today, sha512 from 2.3).

/** What kind of blob an ingest fetches, from its ref's prefix. */
export type IngestKind = 'layer' | 'config' | 'manifest' | 'index' | 'attestation' | 'unknown';

/** An ingest ref, parsed: the blob's kind and its digest ("<algorithm>:<hex>"). */
export interface IngestRef {
  kind: IngestKind;
  digest: string;
}

const KINDS: readonly IngestKind[] = ['layer', 'config', 'manifest', 'index', 'attestation', 'unknown'];
/** Hex lengths of the algorithms containerd accepts (go-digest); others need at least 32. */
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([0-9a-f]+)$/;

/** A digest string as go-digest validates it: "sha256:" + 64 lower-case hex, etc.; else null. */
export function parseDigest(s: string): string | null {
  const m = DIGEST_RE.exec(s);
  const alg = m?.[1];
  const hex = m?.[2];
  if (alg === undefined || hex === undefined) return null;
  const want = HEX_LENGTH[alg];
  if (want === undefined ? hex.length < 32 : hex.length !== want) return null;
  return s;
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
    const digest = parseDigest(ref.slice(dash + 1));
    if (digest !== null) return { kind, digest };
  }
  // "<name>@<digest>", and "manifest-<ref.name annotation>@<digest>" (an index entry with an
  // org.opencontainers.image.ref.name annotation).
  const at = ref.lastIndexOf('@');
  if (at > 0) {
    const digest = parseDigest(ref.slice(at + 1));
    if (digest !== null) return { kind: kind ?? 'unknown', digest };
  }
  return null;
}
