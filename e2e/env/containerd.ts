// A real containerd with a private root, state dir and socket (see ../shared/TESTENV.md), for
// tests and the sandbox. Registry hosts are configured per test under DIR/certs.d.
//
// Three releases can run: 1.6 is the system's (Debian bookworm, install.sh); 1.7 (Debian
// trixie) and 2.1 (Debian sid) are unpacked into a cache by install-containerd.sh. Each can
// keep or discard the layer blobs after unpack (discard_unpacked_layers, the EKS/GKE default),
// and 2.1 can pull through its transfer service (its default) or the old local client pull.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { startService, waitReady, type Service } from './process.js';

export type ContainerdVersion = '1.6' | '1.7' | '2.1';

export const CONTAINERD_VERSIONS: readonly ContainerdVersion[] = ['1.6', '1.7', '2.1'];

export interface ContainerdOptions {
  /** Which release runs (default '1.6', the system's containerd). */
  version?: ContainerdVersion;
  /** Snapshotter the CRI unpacks into (default overlayfs). */
  snapshotter?: string;
  /**
   * CRI `discard_unpacked_layers`: layer blobs are left to the GC once unpacked, and manifests
   * get no `containerd.io/gc.ref.content.l.<i>` labels (default false). On 2.1 it forces the
   * local pull (the transfer service does not support it).
   */
  discardUnpackedLayers?: boolean;
  /**
   * 2.1 only: CRI `use_local_image_pull`, the 1.x client.Pull path instead of the transfer
   * service (default: false, or true when `discardUnpackedLayers`, as containerd does itself).
   * 1.6 and 1.7 always pull locally; `false` there is refused.
   */
  localPull?: boolean;
  /** containerd's --log-level (default info; debug logs which path each CRI pull takes). */
  logLevel?: 'info' | 'debug';
}

export interface Containerd {
  dir: string;
  socketPath: string;
  /** unix:///… form, as kubelet's --container-runtime-endpoint takes it. */
  address: string;
  namespace: 'k8s.io';
  log: string;
  version: ContainerdVersion;
  /** As `containerd --version` prints it, e.g. 1.7.24~ds1. */
  release: string;
  /** Where `containerd` and its `ctr` are. */
  binDir: string;
  snapshotter: string;
  discardUnpackedLayers: boolean;
  /** How the CRI pulls: 'local' (client.Pull, all of 1.x) or 'transfer' (2.1's transfer service). */
  pullPath: 'local' | 'transfer';
  stop(): Promise<void>;
  /** Stops and starts it again on the same state (a containerd restart on a node). */
  restart(): Promise<void>;
}

/** Debian suite each cached release comes from (install-containerd.sh). */
const SUITE: Record<Exclude<ContainerdVersion, '1.6'>, string> = { '1.7': 'trixie', '2.1': 'sid' };

/** The cache install-containerd.sh fills (PULLTRACE_CACHE, default ~/.cache/pulltrace). */
export function containerdCacheDir(): string {
  return join(process.env.PULLTRACE_CACHE ?? join(homedir(), '.cache', 'pulltrace'), 'containerd');
}

/**
 * The containerd binary of a release: 1.6 from PATH, 1.7 and 2.1 from the cache. Null when it
 * is not there (then `bash e2e/env/install.sh` or `bash e2e/env/install-containerd.sh`).
 */
export function findContainerd(version: ContainerdVersion): string | null {
  if (version === '1.6') {
    for (const d of (process.env.PATH ?? '').split(delimiter)) {
      if (d !== '' && existsSync(join(d, 'containerd'))) return join(d, 'containerd');
    }
    return null;
  }
  const bin = join(containerdCacheDir(), SUITE[version], 'usr', 'bin', 'containerd');
  return existsSync(bin) ? bin : null;
}

/** The release a binary reports (`containerd --version`'s third word), e.g. 2.1.9+unknown. */
function releaseOf(bin: string): string {
  const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return out.trim().split(/\s+/)[2] ?? '';
}

/** The CRI's settings in config version 2 (1.6, 1.7): one `io.containerd.grpc.v1.cri` plugin. */
function configV2(dir: string, snapshotter: string, discard: boolean): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
[grpc]
  address = "${dir}/ctd.sock"
[ttrpc]
  address = "${dir}/ctd.sock.ttrpc"
[debug]
  address = "${dir}/ctd-debug.sock"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "${dir}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "${snapshotter}"
      discard_unpacked_layers = ${discard}
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "${dir}/cni-net.d"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "${dir}/certs.d"
`;
}

/**
 * Config version 3 (2.x): the CRI is split into `io.containerd.cri.v1.images` (pulls) and
 * `io.containerd.cri.v1.runtime` (CNI). A version-2 file would be migrated, but it would lose
 * `discard_unpacked_layers`.
 */
function configV3(dir: string, snapshotter: string, discard: boolean, localPull: boolean): string {
  return `version = 3
root = "${dir}/root"
state = "${dir}/state"
[grpc]
  address = "${dir}/ctd.sock"
[ttrpc]
  address = "${dir}/ctd.sock.ttrpc"
[debug]
  address = "${dir}/ctd-debug.sock"
[metrics]
  address = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "${dir}/opt"
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "${snapshotter}"
    discard_unpacked_layers = ${discard}
    use_local_image_pull = ${localPull}
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.cri.v1.images".registry]
      config_path = "${dir}/certs.d"
  [plugins."io.containerd.cri.v1.runtime"]
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "${dir}/cni-net.d"
`;
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts containerd on `dir` (root, state, socket, config, log, certs.d all inside it).
 * The second argument is the snapshotter name (the old form) or the options; by default the
 * system's 1.6 with overlayfs, keeping layer blobs. `dir` must be short: unix socket paths are
 * limited to 107 bytes.
 */
export async function startContainerd(
  dir: string,
  snapshotterOrOptions: string | ContainerdOptions = {},
): Promise<Containerd> {
  const opts: ContainerdOptions =
    typeof snapshotterOrOptions === 'string' ? { snapshotter: snapshotterOrOptions } : snapshotterOrOptions;
  const version = opts.version ?? '1.6';
  const snapshotter = opts.snapshotter ?? 'overlayfs';
  const discard = opts.discardUnpackedLayers ?? false;
  if (version !== '2.1' && opts.localPull === false)
    throw new Error(`containerd ${version} has no transfer service: it always pulls locally`);
  const localPull = version === '2.1' ? (opts.localPull ?? discard) : true;
  if (version === '2.1' && discard && !localPull)
    throw new Error(
      'containerd 2.1 cannot discard unpacked layers with the transfer service (it would fall back to the local pull)',
    );

  const bin = findContainerd(version);
  if (bin === null) {
    throw new Error(
      version === '1.6'
        ? 'containerd could not be started: not found on PATH (is it installed? bash e2e/env/install.sh)'
        : `containerd ${version} is not in ${containerdCacheDir()} (fetch it: bash e2e/env/install-containerd.sh)`,
    );
  }
  const release = releaseOf(bin);
  if (!release.replace(/^v/, '').startsWith(`${version}.`))
    throw new Error(`${bin} is containerd ${release}, not ${version}.x`);
  const binDir = dirname(bin);

  mkdirSync(join(dir, 'certs.d'), { recursive: true });
  const configPath = join(dir, 'config.toml');
  writeFileSync(
    configPath,
    version === '2.1' ? configV3(dir, snapshotter, discard, localPull) : configV2(dir, snapshotter, discard),
  );
  const socketPath = join(dir, 'ctd.sock');
  if (socketPath.length > 100)
    throw new Error(`containerd socket path too long for a unix socket: ${socketPath}`);
  const log = join(dir, 'containerd.log');
  // Its own shims (containerd-shim-runc-v2) first on PATH; runc is the system's.
  const env = { ...process.env, PATH: `${binDir}${delimiter}${process.env.PATH ?? ''}` };
  let svc: Service;
  const start = async () => {
    svc = startService(bin, ['--config', configPath, '--log-level', opts.logLevel ?? 'info'], log, env);
    await waitReady(`containerd ${release}`, svc, () => socketAnswers(socketPath));
  };
  await start();
  return {
    dir,
    socketPath,
    address: `unix://${socketPath}`,
    namespace: 'k8s.io',
    log,
    version,
    release,
    binDir,
    snapshotter,
    discardUnpackedLayers: discard,
    pullPath: localPull ? 'local' : 'transfer',
    stop: () => svc.stop(),
    restart: async () => {
      await svc.stop();
      await start();
    },
  };
}

/** Points containerd's CRI at a plain-HTTP registry for pulls of `name` (a host[:port]). */
export function configureRegistryHost(ctd: Containerd, name: string, upstream: string): void {
  const d = join(ctd.dir, 'certs.d', name);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'hosts.toml'),
    `server = "http://${upstream}"\n[host."http://${upstream}"]\n  capabilities = ["pull", "resolve"]\n  skip_verify = true\n`,
  );
}

/** One containerd setup of the test matrix: options for startContainerd and a stable name. */
export interface ContainerdVariant {
  /** e.g. "1.6/keep", "1.7/discard", "2.1/transfer/keep", "2.1/local/discard". */
  name: string;
  version: ContainerdVersion;
  discardUnpackedLayers: boolean;
  /** Always true on 1.x; on 2.1 false means the transfer service. */
  localPull: boolean;
}

const ALL_VARIANTS: readonly ContainerdVariant[] = [
  { name: '1.6/keep', version: '1.6', discardUnpackedLayers: false, localPull: true },
  { name: '1.6/discard', version: '1.6', discardUnpackedLayers: true, localPull: true },
  { name: '1.7/keep', version: '1.7', discardUnpackedLayers: false, localPull: true },
  { name: '1.7/discard', version: '1.7', discardUnpackedLayers: true, localPull: true },
  { name: '2.1/transfer/keep', version: '2.1', discardUnpackedLayers: false, localPull: false },
  { name: '2.1/local/keep', version: '2.1', discardUnpackedLayers: false, localPull: true },
  { name: '2.1/local/discard', version: '2.1', discardUnpackedLayers: true, localPull: true },
];

/**
 * The containerd setups integration tests loop over, from PULLTRACE_CONTAINERD_MATRIX (or
 * `spec`): comma-separated versions ("1.6,2.1": every variant of each) or variant names and
 * their prefixes ("1.7/discard", "2.1/transfer"). Empty or unset: all seven variants (1.6 and
 * 1.7 keep/discard; 2.1 transfer/keep, local/keep, local/discard). "1.6/keep" alone is the
 * default setup. Unknown entries throw, so a typo does not silently test nothing.
 */
export function containerdMatrix(
  spec: string | undefined = process.env.PULLTRACE_CONTAINERD_MATRIX,
): ContainerdVariant[] {
  const tokens = (spec ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (tokens.length === 0) return [...ALL_VARIANTS];
  const picked = new Set<ContainerdVariant>();
  for (const t of tokens) {
    const hits = ALL_VARIANTS.filter((v) => v.name === t || v.name.startsWith(`${t}/`));
    if (hits.length === 0)
      throw new Error(
        `PULLTRACE_CONTAINERD_MATRIX: unknown entry "${t}" (versions ${CONTAINERD_VERSIONS.join(', ')}; variants ${ALL_VARIANTS.map((v) => v.name).join(', ')})`,
      );
    for (const h of hits) picked.add(h);
  }
  return ALL_VARIANTS.filter((v) => picked.has(v));
}

/** startContainerd's options for a matrix variant, with an optional snapshotter. */
export function variantOptions(v: ContainerdVariant, snapshotter?: string): ContainerdOptions {
  return {
    version: v.version,
    discardUnpackedLayers: v.discardUnpackedLayers,
    localPull: v.localPull,
    ...(snapshotter === undefined ? {} : { snapshotter }),
  };
}
