// Small text helpers for what the publisher writes where people read it (condition message,
// events, the status annotation): bounded lengths and short image names.
import { oneLine } from '../../common/format.js';
import { parseImageRef } from '../../common/image-ref.js';

const ELLIPSIS = '…';

/**
 * `text` on one line (runs of whitespace and control characters become one space: messages
 * are single lines, whatever an image reference or an error held) and cut to at most `max`
 * UTF-16 units, ending in "…" when cut. Cuts between code points, never inside a surrogate
 * pair, so the result is always well-formed text.
 */
export function truncate(raw: string, max: number): string {
  const text = oneLine(raw);
  if (text.length <= max) return text;
  if (max <= 0) return '';
  let out = '';
  for (const ch of text) {
    if (out.length + ch.length > max - ELLIPSIS.length) break;
    out += ch;
  }
  return out + ELLIPSIS;
}

/** The UTF-8 size of `text`, which is what the API server counts for annotations. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * The image name as people write it: "docker.io/library/nginx:1.27" → "nginx:1.27",
 * "docker.io/team/app:1" → "team/app:1", a digest cut to 12 hex digits. Other registries keep
 * their host. Unparsable references come back unchanged.
 */
export function shortImage(image: string): string {
  const r = parseImageRef(image);
  if (r === null) return image;
  let name = `${r.domain}/${r.path}`;
  if (r.domain === 'docker.io') name = r.path.startsWith('library/') ? r.path.slice(8) : r.path;
  if (r.tag !== null) name += `:${r.tag}`;
  if (r.digest !== null) {
    const [algo, hex] = r.digest.split(':');
    name += `@${algo ?? ''}:${(hex ?? '').slice(0, 12)}`;
  }
  return name;
}

/** A timestamp as Kubernetes serialises metav1.Time: RFC 3339 at whole seconds, UTC. */
export function kubeTime(at: Date | number | string): string {
  const d = at instanceof Date ? at : new Date(at);
  if (Number.isNaN(d.getTime())) throw new RangeError(`not a time: ${String(at)}`);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
