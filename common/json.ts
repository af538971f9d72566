// The one plain-object check for data decoded from JSON, TOML or an API (objects, not arrays
// or null), for the webhook's reviews, the registry's manifests and containerd's host files.

/** `v` as a plain object (a JSON object: not null, not an array), else null. */
export function asRecord(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}
