// The node agent's configuration, and the `pulls` command's: one typed object each, nested like
// the chart's `nodeAgent` values, each slice the very type the component it configures takes
// and handed to it whole. Read once from flags and PULLTRACE_* env vars (common/options.ts),
// every bad field reported at once; nothing else in the agent reads process.env.
import { Command, type OptionValues } from 'commander';
import type { LogConfig } from '../common/logging.js';
import type { MetricsConfig } from '../common/metrics-server.js';
import {
  LOG_LEVEL_FIELD,
  addFields,
  durationParser,
  intParser,
  parseBool,
  parseDuration,
  parseHostPort,
  parseText,
  readFields,
  type Field,
  type Fields,
  type SourceOf,
} from '../common/options.js';
import type { BudgetOptions } from './publisher/budget.js';
import type { RegistryClientOptions } from './registry/client.js';
import type { TrackerSettings } from './tracker/types.js';

/**
 * Where containerd is and how the kubelet's CRI uses it. GrpcContainerdSource takes `address`
 * and `namespace`; the tracker takes `snapshotter`.
 */
export interface ContainerdConfig {
  /** Unix socket path of containerd's gRPC API (--containerd-address). Default /run/containerd/containerd.sock. */
  address: string;
  /** containerd namespace of the kubelet's CRI, not a Kubernetes one (--namespace). Default k8s.io. */
  namespace: string;
  /** containerd's CRI snapshotter, where discarded layers' snapshots are (--snapshotter). Default overlayfs. */
  snapshotter: string;
}

/** The registry look-ups: whether there are any, and RegistryClient's settings for them. */
export interface RegistryConfig extends Required<Pick<RegistryClientOptions, 'configPath' | 'timeoutMs'>> {
  /**
   * Whether pods' tags are resolved (and queued images sized) by anonymous manifest requests
   * to their registries, as the kubelet's containerd resolves them (--registry-lookups). Default true.
   */
  lookups: boolean;
}

/** The agent's access to the Kubernetes API. */
export interface KubeAccess {
  /** This node's name, from the downward API (--node-name). Required. */
  nodeName: string;
  /** A kubeconfig file; empty: in-cluster configuration (--kubeconfig). Default "". */
  kubeconfig: string;
}

/** Everything the node agent is told; docs/configuration.md documents each flag. */
export interface AgentConfig {
  containerd: ContainerdConfig;
  /** PullTracker's settings: poll interval, stall and slow thresholds. */
  tracker: TrackerSettings;
  registry: RegistryConfig;
  /** The publisher's write budget, as WriteBudget takes it. */
  budget: BudgetOptions;
  kube: KubeAccess;
  /** The plain-HTTP side server: /metrics and the probes. Default listen 0.0.0.0:9091. */
  metrics: MetricsConfig;
  /** Default level info; info logs each pull's phase changes. */
  log: LogConfig;
}

/** What `pulls` prints. */
export interface PullsOutput {
  /** Keep printing as pulls change until interrupted (--watch). Default false. */
  watch: boolean;
  /** One JSON object per image per line (--json). Default false. */
  json: boolean;
}

/** Everything the `pulls` command is told. */
export interface PullsConfig {
  containerd: ContainerdConfig;
  tracker: Pick<TrackerSettings, 'pollIntervalMs'>;
  output: PullsOutput;
}

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

const CONTAINERD_FIELDS: Fields<ContainerdConfig> = {
  address: {
    flags: '--containerd-address <path>',
    help: "containerd's gRPC socket",
    default: DEFAULT_CONTAINERD_ADDRESS,
    parse: parseText,
  },
  namespace: {
    flags: '--namespace <ns>',
    help: 'containerd namespace the kubelet uses',
    default: 'k8s.io',
    parse: parseText,
  },
  snapshotter: {
    flags: '--snapshotter <name>',
    help: "containerd's CRI snapshotter: a layer whose blob was discarded after unpack (discard_unpacked_layers) counts as cached when its snapshot is there",
    default: 'overlayfs',
    parse: parseText,
  },
};

const POLL_INTERVAL: Field<number> = {
  flags: '--poll-interval <duration>',
  help: 'how often to read in-flight downloads from containerd (at least 100ms)',
  default: '1s',
  parse: durationParser(100, '100ms'),
};

/** Every flag of the agent, where its value goes, its default and its parser. */
export const AGENT_FIELDS: Fields<AgentConfig> = {
  containerd: CONTAINERD_FIELDS,
  tracker: {
    pollIntervalMs: POLL_INTERVAL,
    stallAfterMs: {
      flags: '--stall-after <duration>',
      help: 'a pull with no bytes for this long is Stalled',
      default: '30s',
      parse: parseDuration,
    },
    slowRateBytesPerSecond: {
      flags: '--slow-rate <bytes-per-second>',
      help: 'flag a pull slower than this for --stall-after; 0 = off',
      default: '0',
      parse: intParser(0),
    },
  },
  registry: {
    lookups: {
      flags: '--registry-lookups <bool>',
      help: "resolve pods' tags to digests (to tie each to its own pull) and size queued images with anonymous manifest requests to their registries; false: no requests, a tag is tied to its pull by its image record only",
      default: 'true',
      parse: parseBool,
    },
    configPath: {
      flags: '--registry-config-path <dirs>',
      help: "containerd's registry config_path (certs.d roots with hosts.toml, ':'-separated), read as containerd reads it",
      default: '/etc/containerd/certs.d',
      parse: (text) => text.split(':').filter((d) => d !== ''),
    },
    timeoutMs: {
      flags: '--registry-timeout <duration>',
      help: 'deadline of one registry request',
      default: '2s',
      parse: durationParser(1, '1ms'),
    },
  },
  budget: {
    minPatchIntervalMs: {
      flags: '--min-patch-interval <duration>',
      help: 'least time between two writes to one pod',
      default: '2s',
      parse: parseDuration,
    },
    apiQps: {
      flags: '--api-qps <n>',
      help: 'API writes per second for this node',
      default: '5',
      parse: intParser(1),
    },
    apiBurst: {
      flags: '--api-burst <n>',
      help: 'API write burst for this node',
      default: '10',
      parse: intParser(1),
    },
    maxWritesPerPull: {
      flags: '--max-writes-per-pull <n>',
      help: 'most updates of one pod for one pull (each: one pod patch + one pods/status patch), final state included',
      default: '25',
      parse: intParser(2),
    },
  },
  kube: {
    nodeName: {
      flags: '--node-name <name>',
      help: 'this node (from the downward API spec.nodeName); required',
      parse: (text) => text.trim(),
    },
    kubeconfig: {
      flags: '--kubeconfig <path>',
      help: 'kubeconfig file; in-cluster configuration when empty',
      default: '',
      parse: parseText,
    },
  },
  metrics: {
    listen: {
      flags: '--metrics-listen <host:port>',
      help: 'plain-HTTP listener for /metrics, /healthz, /readyz',
      default: '0.0.0.0:9091',
      parse: parseHostPort,
    },
  },
  log: { level: LOG_LEVEL_FIELD },
};

/** Every flag of `pulls`. */
export const PULLS_FIELDS: Fields<PullsConfig> = {
  containerd: CONTAINERD_FIELDS,
  tracker: { pollIntervalMs: POLL_INTERVAL },
  output: {
    watch: { flags: '--watch', help: 'keep printing as pulls change', default: 'false', parse: parseBool },
    json: { flags: '--json', help: 'one JSON object per image per line', default: 'false', parse: parseBool },
  },
};

/** Adds the agent's flags to `cmd`. */
export function addAgentOptions(cmd: Command): Command {
  return addFields(cmd, AGENT_FIELDS);
}

/** Adds the `pulls` command's flags to `cmd`. */
export function addPullsOptions(cmd: Command): Command {
  return addFields(cmd, PULLS_FIELDS);
}

/** The agent's config from parsed flags; throws ConfigError (PT_CONFIG_INVALID) naming every bad field. */
export function agentConfig(values: OptionValues, sourceOf?: SourceOf): AgentConfig {
  return readFields<AgentConfig>(AGENT_FIELDS, values, sourceOf);
}

/** The `pulls` command's config from parsed flags; throws ConfigError naming every bad field. */
export function pullsConfig(values: OptionValues, sourceOf?: SourceOf): PullsConfig {
  return readFields<PullsConfig>(PULLS_FIELDS, values, sourceOf);
}
