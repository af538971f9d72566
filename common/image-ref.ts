// Image references as the kubelet and containerd's CRI plugin normalise them
// ("nginx" → "docker.io/library/nginx:latest"), so a pod's image can be matched to the image
// records and to the `containerd.io/distribution.source.<host>` labels of a pull.
//
// Pure. The grammar is docker/distribution's `reference` package (ParseNormalizedNamed, then
// TagNameOnly), which both the kubelet and containerd use; digests are checked as go-digest
// does (a known algorithm and its exact lower-case hex length).

/** A parsed, normalised image reference. */
export interface ImageRef {
  /** Registry host, with its port if any, case kept: "docker.io", "127.0.0.1:5000", "[::1]:5000". */
  domain: string;
  /** Repository path, lower case: "library/nginx", "team/app". */
  path: string;
  /** Tag, case kept ("latest" when the reference had neither tag nor digest); null with a digest only. */
  tag: string | null;
  /** "algorithm:hex" ("sha256:…" 64 hex, "sha384:…" 96, "sha512:…" 128), or null. */
  digest: string | null;
}

/** The hex length of each digest algorithm go-digest knows (the only ones a pull accepts). */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^\w[\w.-]{0,127}$/;
/** A bare 64-hex string is an image ID, which the reference grammar refuses as a name. */
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
/** docker/distribution's NameTotalLengthMax: domain + "/" + path. */
const NAME_MAX = 255;
const INPUT_MAX = 4096;

/**
 * Parses a digest as go-digest validates it: "sha256:" + 64 lower-case hex, "sha384:" + 96,
 * "sha512:" + 128. Null for anything else (unknown algorithm, wrong length, upper case).
 */
export function parseDigest(s: string): { algorithm: string; hex: string } | null {
  const colon = s.indexOf(':');
  if (colon <= 0) return null;
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  const len = DIGEST_HEX_LENGTH[algorithm];
  if (len === undefined || hex.length !== len || !/^[a-f0-9]+$/.test(hex)) return null;
  return { algorithm, hex };
}

/**
 * Splits off the registry host as docker/distribution's splitDockerDomain does: the first
 * component is a host when it holds "." or ":", is "localhost", or has an upper-case letter
 * (Docker Hub namespaces are lower case, so "Docker/ubuntu" names a registry "Docker");
 * "index.docker.io" becomes "docker.io", and Hub names of one component get "library/".
 */
function splitDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  let domain = 'docker.io';
  let remainder = name;
  if (slash >= 0) {
    const first = name.slice(0, slash);
    if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
      domain = first;
      remainder = name.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !remainder.includes('/')) remainder = `library/${remainder}`;
  return { domain, remainder };
}

/**
 * Parses and normalises a reference as the kubelet and containerd's CRI do; null when either
 * would refuse it. Never throws, whatever the input.
 *
 * "nginx" → docker.io / library/nginx : latest; "Team/app" → registry "Team"; "team/App" → null
 * (a repository must be lower case; a tag may not be); "app@sha256:<64 hex>" keeps no tag.
 */
export function parseImageRef(input: string): ImageRef | null {
  if (typeof input !== 'string' || input === '' || input.length > INPUT_MAX) return null;
  if (IDENTIFIER_RE.test(input)) return null;
  const { domain, remainder } = splitDomain(input);
  let rest = remainder;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (parseDigest(digest) === null) return null;
  }
  let tag: string | null = null;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) return null;
  }
  const path = rest;
  if (!DOMAIN_RE.test(domain) || !PATH_RE.test(path)) return null;
  if (domain.length + 1 + path.length > NAME_MAX) return null;
  // TagNameOnly: a reference with neither tag nor digest means ":latest".
  if (tag === null && digest === null) tag = 'latest';
  return { domain, path, tag, digest };
}

/** The canonical string: domain/path[:tag][@digest] (both kept when both were given). */
export function formatImageRef(r: ImageRef): string {
  return `${r.domain}/${r.path}${r.tag === null ? '' : `:${r.tag}`}${r.digest === null ? '' : `@${r.digest}`}`;
}

/** The normalised form of a reference (formatImageRef), or the input unchanged when it does not parse. */
export function normalizeImageRef(input: string): string {
  const r = parseImageRef(input);
  return r === null ? input : formatImageRef(r);
}

/** The repository name, domain/path: "docker.io/library/nginx". */
export function repositoryName(r: ImageRef): string {
  return `${r.domain}/${r.path}`;
}

/**
 * The name containerd's CRI gives the image record it creates for a pull of this reference:
 * `repo@digest` when there is a digest (the CRI's ParseDockerRef drops the tag of a
 * `repo:tag@digest`), else `repo:tag`. For a tag, the CRI also records `repo@<resolved digest>`
 * and the image ID; those are known only once the tag is resolved.
 */
export function criImageName(r: ImageRef): string {
  return r.digest !== null ? `${repositoryName(r)}@${r.digest}` : `${repositoryName(r)}:${r.tag ?? 'latest'}`;
}

/** criImageName of a reference string; null when it does not parse. */
export function criImageNameOf(input: string): string | null {
  const r = parseImageRef(input);
  return r === null ? null : criImageName(r);
}

/**
 * The registry host without its port or IPv6 brackets, as Go's url.Hostname() gives it:
 * "127.0.0.1:5000" → "127.0.0.1", "[::1]:5000" → "::1".
 */
export function registryHostname(r: ImageRef): string {
  const m = /^\[([^\]]*)\](?::\d+)?$/.exec(r.domain);
  if (m !== null) return m[1] ?? '';
  return r.domain.replace(/:\d+$/, '');
}

/**
 * How containerd names the repository in its distribution-source label: the host WITHOUT its
 * port, then the path ("127.0.0.1:5000/team/app" → "127.0.0.1/team/app").
 */
export function sourceKey(r: ImageRef): string {
  return `${registryHostname(r)}/${r.path}`;
}
