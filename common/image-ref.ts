// Image references as the kubelet and containerd's CRI plugin normalise them
// ("nginx" → "docker.io/library/nginx:latest"), so a pod's image can be matched to the image
// records and to the `containerd.io/distribution.source.<host>` labels of a pull.

export interface ImageRef {
  /** Registry host, with its port if any: "docker.io", "127.0.0.1:5000". */
  domain: string;
  /** Repository path: "library/nginx", "team/app". */
  path: string;
  tag: string | null;
  digest: string | null;
}

const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const PATH_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Parses and normalises a reference; null when it is not one. */
export function parseImageRef(input: string): ImageRef | null {
  if (input === '' || input.length > 4096 || /\s/.test(input)) return null;
  let rest = input;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) return null;
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) return null;
  }
  let domain = 'docker.io';
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (!PATH_RE.test(path)) return null;
  if (tag === null && digest === null) tag = 'latest';
  return { domain, path, tag, digest };
}

/** The canonical string: domain/path[:tag][@digest]. */
export function formatImageRef(r: ImageRef): string {
  return `${r.domain}/${r.path}${r.tag === null ? '' : `:${r.tag}`}${r.digest === null ? '' : `@${r.digest}`}`;
}

/** The normalised form of a reference, or the input unchanged when it does not parse. */
export function normalizeImageRef(input: string): string {
  const r = parseImageRef(input);
  return r === null ? input : formatImageRef(r);
}

/**
 * How containerd names the repository in its distribution-source label: the host WITHOUT its
 * port, then the path ("127.0.0.1:5000/team/app" → "127.0.0.1/team/app").
 */
export function sourceKey(r: ImageRef): string {
  const host = r.domain.replace(/:\d+$/, '');
  return `${host}/${r.path}`;
}
