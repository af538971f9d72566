#!/usr/bin/env node
// pulltrace-node-agent: follows the image pulls on this node (DaemonSet), or with `pulls`
// prints them once or live (a debugging command for a node).
import { KubeConfig } from '@kubernetes/client-node';
import { Command, CommanderError } from 'commander';
import { errorMessage } from '../common/errors.js';
import { readBooleanEnv } from '../common/options.js';
import { createLogger } from '../common/logging.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { addAgentOptions, addPullsOptions, agentConfig, pullsConfig, type AgentConfig } from './config.js';
import { GrpcContainerdSource } from './containerd/grpc-client.js';
import { createAgentMetrics } from './metrics.js';
import { KubePodWriter, watchNodePods } from './publisher/kube-writer.js';
import { Publisher } from './publisher/publisher.js';
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

async function runAgent(config: AgentConfig): Promise<void> {
  const logger = createLogger(NAME, config.logLevel);
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

  const kc = new KubeConfig();
  if (config.kubeconfig === '') kc.loadFromCluster();
  else kc.loadFromFile(config.kubeconfig);
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
  let watching = false;
  const watch = watchNodePods(kc, config.nodeName, {
    onPod: (p) => {
      watching = true;
      publisher.onPod(p);
    },
    onDelete: (p) => {
      publisher.onDelete(p);
    },
    onError: (err) => {
      watching = false;
      logger.warn({ err }, 'pod watch failed; restarting it');
      setTimeout(() => {
        watch.start().catch((e: unknown) => {
          logger.warn({ err: e }, 'pod watch restart failed');
        });
      }, 1000).unref();
    },
  });
  await watch.start().then(
    () => {
      watching = true;
    },
    (err: unknown) => {
      logger.warn({ err }, 'pod watch did not start; retrying');
      setTimeout(() => void watch.start().catch(() => undefined), 1000).unref();
    },
  );
  publisher.start();
  let closing = false;
  const side = await startMetricsServer({
    listen: config.metricsListen,
    registry: createAgentMetrics(tracker, { processMetrics: true, publisher }),
    notReady: () => {
      if (closing) return 'shutting down';
      if (tracker.lastError !== null) return `containerd: ${tracker.lastError}`;
      return watching ? null : 'not watching pods';
    },
    logger,
  });
  logger.info({ node: config.nodeName, containerd: config.containerdAddress }, 'following image pulls');
  await interrupted();
  closing = true;
  await watch.stop();
  await publisher.stop();
  tracker.stop();
  source.close();
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
