// The node agent's options: one typed config, parsed once from flags and PULLTRACE_* env vars,
// validated, and passed down. Nothing else in the agent reads process.env.
import { Command } from 'commander';
import {
  parseBool,
  intParser,
  logLevelOption,
  option,
  parseDuration,
  parseHostPort,
  type HostPort,
  type LogLevel,
} from '../common/options.js';

export interface ContainerdOptions {
  /** unix socket path of containerd's gRPC API. */
  containerdAddress: string;
  /** containerd namespace the kubelet's CRI uses. */
  namespace: string;
}

export interface TrackerOptions extends ContainerdOptions {
  pollIntervalMs: number;
  stallAfterMs: number;
  /** Bytes per second under which a pull is flagged slow; 0 turns the check off. */
  slowRate: number;
  snapshotter: string;
}

export interface AgentConfig extends TrackerOptions {
  nodeName: string;
  /**
   * Whether pods' tags are resolved (and queued images sized) by anonymous manifest requests
   * to their registries, as the kubelet's containerd resolves them. Default true.
   */
  registryLookups: boolean;
  /** containerd's registry config_path roots (certs.d dirs with hosts.toml), tried in order. */
  registryConfigPath: string[];
  /** Deadline of one registry request, ms. Default 2000. */
  registryTimeoutMs: number;
  /** Empty: in-cluster configuration. */
  kubeconfig: string;
  minPatchIntervalMs: number;
  apiQps: number;
  apiBurst: number;
  maxWritesPerPull: number;
  metricsListen: HostPort;
  logLevel: LogLevel;
}

export interface PullsCommandConfig extends ContainerdOptions {
  watch: boolean;
  json: boolean;
  pollIntervalMs: number;
  snapshotter: string;
}

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

/** Options both the agent and the `pulls` command take. */
function addContainerdOptions(cmd: Command): Command {
  return cmd
    .addOption(
      option('--containerd-address <path>', "containerd's gRPC socket").default(DEFAULT_CONTAINERD_ADDRESS),
    )
    .addOption(option('--namespace <ns>', 'containerd namespace the kubelet uses').default('k8s.io'))
    .addOption(
      option('--poll-interval <duration>', 'how often to read in-flight downloads from containerd')
        .default(1000, '1s')
        .argParser(parseDuration),
    )
    .addOption(
      option(
        '--snapshotter <name>',
        "containerd's CRI snapshotter: a layer whose blob was discarded after unpack (discard_unpacked_layers) counts as cached when its snapshot is there",
      ).default('overlayfs'),
    );
}

export function addAgentOptions(cmd: Command): Command {
  return addContainerdOptions(cmd)
    .addOption(option('--node-name <name>', 'this node (from the downward API spec.nodeName); required'))
    .addOption(
      option('--kubeconfig <path>', 'kubeconfig file; in-cluster configuration when empty').default(''),
    )
    .addOption(
      option(
        '--registry-lookups <bool>',
        "resolve pods' tags to digests (to tie each to its own pull) and size queued images with anonymous manifest requests to their registries; false: no requests, a tag is tied to its pull by its image record only",
      )
        .default(true, 'true')
        .argParser(parseBool),
    )
    .addOption(
      option(
        '--registry-config-path <dirs>',
        "containerd's registry config_path (certs.d roots with hosts.toml, ':'-separated), read as containerd reads it",
      ).default('/etc/containerd/certs.d'),
    )
    .addOption(
      option('--registry-timeout <duration>', 'deadline of one registry request')
        .default(2000, '2s')
        .argParser(parseDuration),
    )
    .addOption(
      option('--stall-after <duration>', 'a pull with no bytes for this long is Stalled')
        .default(30_000, '30s')
        .argParser(parseDuration),
    )
    .addOption(
      option('--slow-rate <bytes-per-second>', 'flag a pull slower than this for --stall-after; 0 = off')
        .default(0)
        .argParser(intParser(0)),
    )
    .addOption(
      option('--min-patch-interval <duration>', 'least time between two writes to one pod')
        .default(2000, '2s')
        .argParser(parseDuration),
    )
    .addOption(
      option('--api-qps <n>', 'API writes per second for this node').default(5).argParser(intParser(1)),
    )
    .addOption(option('--api-burst <n>', 'API write burst for this node').default(10).argParser(intParser(1)))
    .addOption(
      option(
        '--max-writes-per-pull <n>',
        'most updates of one pod for one pull (each: one pod patch + one pods/status patch), final state included',
      )
        .default(25)
        .argParser(intParser(2)),
    )
    .addOption(
      option('--metrics-listen <host:port>', 'plain-HTTP listener for /metrics, /healthz, /readyz')
        .default(parseHostPort('0.0.0.0:9091'), '0.0.0.0:9091')
        .argParser(parseHostPort),
    )
    .addOption(logLevelOption());
}

export function addPullsOptions(cmd: Command): Command {
  return addContainerdOptions(cmd)
    .addOption(option('--watch', 'keep printing as pulls change').default(false))
    .addOption(option('--json', 'one JSON object per image per line').default(false));
}

interface RawAgentOptions {
  containerdAddress: string;
  namespace: string;
  pollInterval: number;
  snapshotter: string;
  nodeName?: string;
  kubeconfig: string;
  registryLookups: boolean;
  registryConfigPath: string;
  registryTimeout: number;
  stallAfter: number;
  slowRate: number;
  minPatchInterval: number;
  apiQps: number;
  apiBurst: number;
  maxWritesPerPull: number;
  metricsListen: HostPort;
  logLevel: LogLevel;
}

/** Turns commander's parsed options into the agent's config; throws on what commander cannot check. */
export function agentConfig(raw: RawAgentOptions): AgentConfig {
  if (raw.nodeName === undefined || raw.nodeName.trim() === '') {
    throw new Error('--node-name (or PULLTRACE_NODE_NAME) is required');
  }
  if (raw.pollInterval < 100) throw new Error('--poll-interval must be at least 100ms');
  return {
    containerdAddress: raw.containerdAddress,
    namespace: raw.namespace,
    pollIntervalMs: raw.pollInterval,
    snapshotter: raw.snapshotter,
    nodeName: raw.nodeName.trim(),
    kubeconfig: raw.kubeconfig,
    registryLookups: raw.registryLookups,
    registryConfigPath: raw.registryConfigPath.split(':').filter((d) => d !== ''),
    registryTimeoutMs: raw.registryTimeout,
    stallAfterMs: raw.stallAfter,
    slowRate: raw.slowRate,
    minPatchIntervalMs: raw.minPatchInterval,
    apiQps: raw.apiQps,
    apiBurst: raw.apiBurst,
    maxWritesPerPull: raw.maxWritesPerPull,
    metricsListen: raw.metricsListen,
    logLevel: raw.logLevel,
  };
}

interface RawPullsOptions {
  containerdAddress: string;
  namespace: string;
  pollInterval: number;
  snapshotter: string;
  watch: boolean;
  json: boolean;
}

export function pullsConfig(raw: RawPullsOptions): PullsCommandConfig {
  if (raw.pollInterval < 100) throw new Error('--poll-interval must be at least 100ms');
  return {
    containerdAddress: raw.containerdAddress,
    namespace: raw.namespace,
    pollIntervalMs: raw.pollInterval,
    snapshotter: raw.snapshotter,
    watch: raw.watch,
    json: raw.json,
  };
}
