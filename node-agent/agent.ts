// The node agent's run: the tracker on containerd (with the registry look-ups), the publisher
// and the pod watch feeding it, and the side server, each given its slice of AgentConfig whole;
// on `stop`, the pod watch, the publisher's last pass, the tracker and the server end in turn.
import { KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logging.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { ConfigError, fieldProblem } from '../common/options.js';
import { untilStopped } from '../common/run-main.js';
import { AGENT_FIELDS, type AgentConfig } from './config.js';
import { GrpcContainerdSource } from './containerd/grpc-client.js';
import { createAgentMetrics } from './metrics.js';
import { PodWatchRunner } from './pod-watch.js';
import { KubePodWriter, watchNodePods } from './publisher/kube-writer.js';
import { Publisher } from './publisher/publisher.js';
import { RegistryClient } from './registry/client.js';
import { PullTracker } from './tracker/tracker.js';

export const AGENT_NAME = 'pulltrace-node-agent';

/** The tracker on containerd, with the registry look-ups; logs each pull's phase changes. */
function startTracker(config: AgentConfig, logger: Logger): { tracker: PullTracker; close(): void } {
  const source = new GrpcContainerdSource({
    ...config.containerd,
    onBadEvent: (reason) => {
      logger.warn({ reason }, 'undecodable containerd event');
    },
  });
  const registryLog = logger.child({ component: 'registry' });
  const registry = config.registry.lookups
    ? new RegistryClient({
        ...config.registry,
        onWarning: (message, err) => {
          registryLog.warn({ err }, message);
        },
      })
    : null;
  const tracker = new PullTracker({
    ...config.tracker,
    source,
    snapshotter: config.containerd.snapshotter,
    registry,
    logger: logger.child({ component: 'tracker' }),
  });
  const phases = new Map<string, string>();
  tracker.onChange((snap) => {
    for (const p of snap.pulls) {
      if (phases.get(p.key) === p.status.phase) continue;
      phases.set(p.key, p.status.phase);
      logger.info({ image: p.status.image, phase: p.status.phase, bytesTotal: p.status.bytesTotal }, 'pull');
    }
  });
  tracker.start();
  return {
    tracker,
    close: () => {
      tracker.stop();
      source.close();
    },
  };
}

/** The kubeconfig as the agent uses it; a file that cannot be read is a bad --kubeconfig (exit 2). */
function kubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (path === '') kc.loadFromCluster();
    else kc.loadFromFile(path);
  } catch (err) {
    const which = path === '' ? '(in-cluster)' : path;
    throw new ConfigError([
      fieldProblem(
        AGENT_FIELDS,
        'kube.kubeconfig',
        `cannot load the kubeconfig ${which}: ${errorMessage(err)}`,
      ),
    ]);
  }
  return kc;
}

/** The publisher and the pod watch feeding it, restarted with back-off (pod-watch.ts). */
function startPublishing(config: AgentConfig, tracker: PullTracker, logger: Logger) {
  const kc = kubeConfig(config.kube.kubeconfig);
  const publisher = new Publisher({
    nodeName: config.kube.nodeName,
    tracker,
    writer: new KubePodWriter(kc),
    budget: config.budget,
    thresholds: config.tracker,
    logger: logger.child({ component: 'publisher' }),
  });
  const watch = watchNodePods(kc, config.kube.nodeName, {
    onListed: () => {
      runner.ok();
    },
    onPod: (p) => {
      publisher.onPod(p);
    },
    onDelete: (p) => {
      publisher.onDelete(p);
    },
    onError: (err) => {
      runner.failed(err);
    },
  });
  const runner: PodWatchRunner = new PodWatchRunner({
    start: () => watch.start(),
    log: logger.child({ component: 'pod-watch' }),
  });
  runner.start();
  publisher.start();
  return {
    publisher,
    runner,
    stop: async () => {
      runner.stop();
      await watch.stop();
      await publisher.stop();
    },
  };
}

/** Follows the node's pulls and publishes them until `stop`; resolves to exit code 0. */
export async function runAgent(config: AgentConfig, stop: AbortSignal): Promise<number> {
  const logger = createLogger(AGENT_NAME, config.log.level);
  const t = startTracker(config, logger);
  let p: ReturnType<typeof startPublishing>;
  try {
    p = startPublishing(config, t.tracker, logger);
  } catch (err) {
    t.close();
    throw err;
  }
  let closing = false;
  const side = await startMetricsServer({
    ...config.metrics,
    registry: createAgentMetrics(t.tracker, { processMetrics: true, publisher: p.publisher }),
    notReady: () => {
      if (closing) return 'shutting down';
      if (t.tracker.lastError !== null) return `containerd: ${t.tracker.lastError}`;
      return p.runner.notReady();
    },
    logger,
  });
  logger.info({ node: config.kube.nodeName, containerd: config.containerd.address }, 'following image pulls');
  await untilStopped(stop);
  closing = true;
  await p.stop();
  t.close();
  await side.close();
  return 0;
}
