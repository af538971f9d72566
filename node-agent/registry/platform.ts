// Platforms ("linux/amd64", "linux/arm/v7") and the choice of an index entry, as containerd's
// default matcher makes it (github.com/containerd/platforms: Normalize, Only, Ordered), so the
// manifest sized here is the one the node's containerd will pull.
//
// Pure.

/** An OCI platform, normalised: lower case, architecture aliases resolved ("x86_64" → amd64). */
export interface Platform {
  os: string;
  architecture: string;
  /** "" when none: "v7" for arm, "v8.2" / "v9" for arm64 ("v8" normalises to ""), "v3" for amd64. */
  variant: string;
}

/**
 * Normalises as containerd's platforms.Normalize: "i386" → 386, "x86_64"/"x86-64" → amd64
 * (variant "v1" → ""), "aarch64" → arm64 (variant "8"/"v8"/"v8.0" → "", "9"/"9.0"/"v9.0" → "v9"),
 * "armhf" → arm/v7, "armel" → arm/v6, arm with no variant → v7, "macos" → darwin.
 */
export function normalizePlatform(p: { os?: string; architecture?: string; variant?: string }): Platform {
  let os = (p.os ?? '').toLowerCase();
  if (os === 'macos') os = 'darwin';
  let architecture = (p.architecture ?? '').toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
    default:
  }
  return { os, architecture, variant };
}

/**
 * Parses "os/arch[/variant]" (e.g. "linux/amd64", "linux/arm/v7", "linux/arm64/v8") and
 * normalises it; null for anything else (a bare "amd64" is refused: say which OS).
 */
export function parsePlatform(s: string): Platform | null {
  if (typeof s !== 'string' || s.length > 100) return null;
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3) return null;
  if (!parts.every((x) => /^[A-Za-z0-9_.-]+$/.test(x))) return null;
  const [os, architecture, variant] = parts;
  return normalizePlatform({ os, architecture, variant });
}

/** "os/arch[/variant]". */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant === '' ? '' : `/${p.variant}`}`;
}

/**
 * The platform of this process as an OCI platform: Node's `process.platform` / `process.arch`
 * (and, for 32-bit arm, its `arm_version`) mapped to OCI names ("x64" → amd64).
 */
export function hostPlatform(
  platform: string = process.platform,
  arch: string = process.arch,
  armVersion = '7',
): Platform {
  const archMap: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
    loong64: 'loong64',
  };
  const architecture = archMap[arch] ?? arch;
  return normalizePlatform({
    os: platform === 'win32' ? 'windows' : platform,
    architecture,
    variant: architecture === 'arm' ? `v${armVersion}` : '',
  });
}

const ARM64_VERSIONS: Readonly<Record<string, { major: number[]; minor: number[] }>> = {
  v8: { major: [8], minor: [0] },
  'v8.0': { major: [8], minor: [0] },
  'v8.1': { major: [8], minor: [1] },
  'v8.2': { major: [8], minor: [2] },
  'v8.3': { major: [8], minor: [3] },
  'v8.4': { major: [8], minor: [4] },
  'v8.5': { major: [8], minor: [5] },
  'v8.6': { major: [8], minor: [6] },
  'v8.7': { major: [8], minor: [7] },
  'v8.8': { major: [8], minor: [8] },
  'v8.9': { major: [8], minor: [9] },
  v9: { major: [9, 8], minor: [0, 5] },
  'v9.0': { major: [9, 8], minor: [0, 5] },
  'v9.1': { major: [9, 8], minor: [1, 6] },
  'v9.2': { major: [9, 8], minor: [2, 7] },
  'v9.3': { major: [9, 8], minor: [3, 8] },
  'v9.4': { major: [9, 8], minor: [4, 9] },
  'v9.5': { major: [9, 8], minor: [5, 9] },
  'v9.6': { major: [9, 8], minor: [6, 9] },
  'v9.7': { major: [9, 8], minor: [7, 9] },
};

/**
 * The platforms a node of platform `p` can run, best first (containerd's platformVector):
 * amd64/vN also runs amd64/vN-1…v1, then 386; arm/vN runs arm/vN-1…v5; arm64/v8.x runs
 * arm64/v8.x…v8, arm64/v9.x also arm64/v8.(x+5)…, and every arm64 runs arm/v8…v5.
 */
export function compatiblePlatforms(p: Platform): Platform[] {
  const { os } = p;
  const out: Platform[] = [];
  const vnum = (v: string) => Number.parseInt(v.replace(/^v/, ''), 10);
  switch (p.architecture) {
    case 'amd64': {
      out.push(p);
      const n = vnum(p.variant);
      if (Number.isInteger(n) && n > 1) for (let i = n - 1; i >= 1; i--) out.push({ ...p, variant: `v${i}` });
      out.push({ os, architecture: '386', variant: '' });
      break;
    }
    case 'arm': {
      out.push(p);
      const n = vnum(p.variant);
      if (Number.isInteger(n) && n > 5) for (let i = n - 1; i >= 5; i--) out.push({ ...p, variant: `v${i}` });
      break;
    }
    case 'arm64': {
      const variant = p.variant === '' ? 'v8' : p.variant;
      const versions = ARM64_VERSIONS[variant];
      if (versions === undefined) break;
      versions.major.forEach((major, i) => {
        for (let minor = versions.minor[i] ?? 0; minor >= 0; minor--) {
          out.push({ os, architecture: 'arm64', variant: minor === 0 ? `v${major}` : `v${major}.${minor}` });
        }
      });
      out.push(...compatiblePlatforms({ os, architecture: 'arm', variant: 'v8' }));
      break;
    }
    default:
      out.push(p);
  }
  // Each entry compares in its normalised form ("arm64/v8" is "arm64").
  return out.map((x) => normalizePlatform(x));
}

/** Rank of `candidate` for a node of platform `want` (0 best); -1 when it cannot run there. */
export function platformRank(want: Platform, candidate: Platform): number {
  const c = normalizePlatform(candidate);
  return compatiblePlatforms(want).findIndex(
    (w) => w.os === c.os && w.architecture === c.architecture && w.variant === c.variant,
  );
}

/**
 * The index entry containerd pulls for `want`: among entries whose platform it can run, the
 * best ranked, the first listed on a tie; entries with no platform at all are kept by
 * containerd's filter and sorted last, so one is chosen only when nothing else matches.
 * Null when nothing qualifies.
 */
export function choosePlatformEntry<E extends { platform: Platform | null }>(
  entries: E[],
  want: Platform,
): E | null {
  let best: E | null = null;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const e of entries) {
    const rank = e.platform === null ? Number.MAX_SAFE_INTEGER : platformRank(want, e.platform);
    if (rank < 0) continue;
    if (rank < bestRank) {
      best = e;
      bestRank = rank;
    }
  }
  return best;
}
