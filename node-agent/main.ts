#!/usr/bin/env node
// pulltrace-node-agent: follows the image pulls on this node (DaemonSet), or with `pulls`
// prints them once or live (a debugging command for a node).
import { KubeConfig } from '@kubernetes/client-node';
import { Command, CommanderError } from 'commander';
import { errorMessage } from '../common/errors.js';
import { readBooleanEnv } from '../common/options.js';
import { createLogger, type Logger } from '../common/logging.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { addAgentOptions, addPullsOptions, agentConfig, pullsConfig, type AgentConfig } from './config.js';
import { GrpcContainerdSource } from './containerd/grpc-client.js';
import { createAgentMetrics } from './metrics.js';
import { KubePodWriter, watchNodePods } from './publisher/kube-writer.js';
import { Publisher } from './publisher/publisher.js';
import { PodWatchRunner } from './pod-watch.js';
import { runPulls } from './pulls.js';
import { RegistryClient } from './registry/client.js';
import { PullTracker } from './tracker/tracker.js';

const NAME = 'pulltrace-node-agent';

function fail(code: number, message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(code);
}

function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => {
      resolve();
    });
    process.once('SIGTERM', () => {
      resolve();
    });
  });
}

/** The tracker on containerd, with the registry look-ups; logs each pull's phase changes. */
function startTracker(config: AgentConfig, logger: Logger): { tracker: PullTracker; close(): void } {
  const source = new GrpcContainerdSource({
    address: config.containerdAddress,
    namespace: config.namespace,
    onBadEvent: (reason) => {
      logger.warn({ reason }, 'undecodable containerd event');
    },
  });
  const registryLog = logger.child({ component: 'registry' });
  const registry = config.registryLookups
    ? new RegistryClient({
        configPath: config.registryConfigPath,
        timeoutMs: config.registryTimeoutMs,
        onWarning: (message, err) => {
          registryLog.warn({ err }, message);
        },
      })
    : null;
  const tracker = new PullTracker({
    source,
    pollIntervalMs: config.pollIntervalMs,
    stallAfterMs: config.stallAfterMs,
    slowRateBytesPerSecond: config.slowRate,
    snapshotter: config.snapshotter,
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

/** The kubeconfig as the agent uses it; exits 2 with the reason when the file cannot be read. */
function kubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (path === '') kc.loadFromCluster();
    else kc.loadFromFile(path);
  } catch (err) {
    fail(2, `cannot load the kubeconfig ${path === '' ? '(in-cluster)' : path}: ${errorMessage(err)}`);
  }
  return kc;
}

/** The publisher and the pod watch feeding it, restarted with back-off (pod-watch.ts). */
function startPublishing(config: AgentConfig, tracker: PullTracker, logger: Logger) {
  const kc = kubeConfig(config.kubeconfig);
  const publisher = new Publisher({
    nodeName: config.nodeName,
    tracker,
    writer: new KubePodWriter(kc),
    stallAfterMs: config.stallAfterMs,
    slowRate: config.slowRate,
    minPatchIntervalMs: config.minPatchIntervalMs,
    apiQps: config.apiQps,
    apiBurst: config.apiBurst,
    maxWritesPerPull: config.maxWritesPerPull,
    logger: logger.child({ component: 'publisher' }),
  });
  const watch = watchNodePods(kc, config.nodeName, {
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

async function runAgent(config: AgentConfig): Promise<void> {
  const logger = createLogger(NAME, config.logLevel);
  const t = startTracker(config, logger);
  const p = startPublishing(config, t.tracker, logger);
  let closing = false;
  const side = await startMetricsServer({
    listen: config.metricsListen,
    registry: createAgentMetrics(t.tracker, { processMetrics: true, publisher: p.publisher }),
    notReady: () => {
      if (closing) return 'shutting down';
      if (t.tracker.lastError !== null) return `containerd: ${t.tracker.lastError}`;
      return p.runner.notReady();
    },
    logger,
  });
  logger.info({ node: config.nodeName, containerd: config.containerdAddress }, 'following image pulls');
  await interrupted();
  closing = true;
  await p.stop();
  t.close();
  await side.close();
}

function program(): Command {
  const root = addAgentOptions(
    new Command(NAME).description('Follows image pulls on this node and reports them on the waiting pods.'),
  )
    // Flags after `pulls` are the subcommand's own, though the agent has some of the same names.
    .enablePositionalOptions()
    .exitOverride()
    .action(async (raw: Parameters<typeof agentConfig>[0]) => {
      let config: AgentConfig;
      try {
        config = agentConfig(raw);
      } catch (err) {
        fail(2, errorMessage(err));
      }
      await runAgent(config);
    });
  root.addCommand(
    addPullsOptions(
      new Command('pulls').description("Prints this node's image pulls as containerd shows them."),
    )
      .exitOverride()
      .hook('preAction', (_root, action) => {
        try {
          readBooleanEnv(action);
        } catch (err) {
          action.error(`error: ${errorMessage(err)}`, { exitCode: 2 });
        }
      })
      .action(async (raw: Parameters<typeof pullsConfig>[0]) => {
        let config;
        try {
          config = pullsConfig(raw);
        } catch (err) {
          fail(2, errorMessage(err));
        }
        const source = new GrpcContainerdSource({
          address: config.containerdAddress,
          namespace: config.namespace,
        });
        try {
          await runPulls(config, source, {
            out: (t) => process.stdout.write(t),
            isTTY: process.stdout.isTTY,
            interrupted: interrupted(),
          });
        } catch (err) {
          fail(1, `cannot read containerd at ${config.containerdAddress}: ${errorMessage(err)}`);
        } finally {
          source.close();
        }
      }),
  );
  return root;
}

program()
  .parseAsync(process.argv)
  .then(
    () => process.exit(0),
    (err: unknown) => {
      if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
      fail(1, errorMessage(err));
    },
  );
