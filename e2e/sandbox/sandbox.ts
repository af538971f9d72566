// The local sandbox: everything pulltrace runs against, on loopback, in one call.
//   real:        containerd, the registry (+ a throttle in front of it), kubectl, our webhook
//                and our node agent (as the processes they are in a cluster);
//   stand-ins:   the API server (e2e/control-plane), one kubelet (e2e/kubelet), a trivial
//                scheduler (binds every pod to the one node) and a Deployment controller.
// The throttle, the stand-ins and the scheduler live in the calling process: keep its event
// loop free (no *Sync child processes) while pulls run.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { freePort } from '../../test-support/net.js';
import { type Logger, silentLogger } from '../../common/logging.js';
import { webhookAdmission } from '../control-plane/admission.js';
import { startControlPlane, type ControlPlane } from '../control-plane/index.js';
import type { AdmitHook } from '../control-plane/store.js';
import { DeploymentController } from '../controllers/deployment.js';
import { startService, waitReady, type Service } from '../env/process.js';
import { startTestEnv, type TestEnv } from '../env/test-env.js';
import { KubeletStandIn } from '../kubelet/kubelet.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface SandboxOptions {
  /** State directory: kubeconfig, certificates, logs, `env`. */
  dir: string;
  /** Throttle rate for pulls, bytes per second (default 4 MiB/s). */
  rate?: number;
  nodeName?: string;
  /** Extra node-agent flags (e.g. --poll-interval 250ms). */
  agentArgs?: string[];
  /** Start the node agent (default true); tests of the agent itself may start their own. */
  agent?: boolean;
  /** Pods the kubelet stand-in pulls at once (default 1: serialized, as a kubelet by default). */
  parallelPulls?: number;
  logger?: Logger;
}

/** What `DIR/env` holds, as shell lines. */
export interface SandboxEnv {
  KUBECONFIG: string;
  /** Push here (unthrottled). */
  REGISTRY: string;
  /** What pod images should reference (throttled). */
  PULL_REGISTRY: string;
  CONTAINERD_ADDRESS: string;
  NODE_NAME: string;
}

export interface Sandbox {
  env: SandboxEnv;
  test: TestEnv;
  controlPlane: ControlPlane;
  kubeconfig: KubeConfig;
  /** Starts the node agent (if it was started with agent: false, or after stopAgent()). */
  startAgent(extraArgs?: string[]): Promise<void>;
  /** Stops the node agent (SIGTERM), e.g. to test a restart mid-pull. */
  stopAgent(): Promise<void>;
  /** Kills the node agent with SIGKILL (no shutdown at all), as an OOM kill or node crash does. */
  killAgent(): Promise<void>;
  /** `http://127.0.0.1:PORT` of the running agent's /metrics, /healthz, /readyz, else null. */
  agentMetricsUrl(): string | null;
  /** Stops the webhook process (SIGTERM); its MutatingWebhookConfiguration stays. */
  stopWebhook(): Promise<void>;
  /** Starts the webhook again on the same address (after stopWebhook()). */
  startWebhook(): Promise<void>;
  /** The node agent's process id while it runs (for /proc readings), else null. */
  agentPid(): number | null;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

function httpsReady(port: number, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/readyz', ca, agent: new Agent({ keepAlive: false }) },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function httpReady(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return res.ok;
}

/** The configuration the chart installs, pointed at the local webhook by URL. */
export function webhookConfiguration(url: string, caBundle: string): V1MutatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'pulltrace' },
    webhooks: [
      {
        name: 'pods.pulltrace.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Ignore',
        timeoutSeconds: 5,
        reinvocationPolicy: 'IfNeeded',
        clientConfig: { url, caBundle },
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
        ],
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'pulltrace'] },
            { key: 'pulltrace.io/track', operator: 'NotIn', values: ['false'] },
          ],
        },
      },
    ],
  };
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const log = opts.logger ?? silentLogger();
  const nodeName = opts.nodeName ?? 'sandbox-node';
  mkdirSync(opts.dir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => log.warn({ err }, 'stop failed'));
    stops.length = 0;
  };
  try {
    log.info('starting containerd, registry and throttle');
    const test = await startTestEnv({ rate: opts.rate ?? 4 * 1024 * 1024 });
    stops.push(() => test.stop());

    const certs = join(opts.dir, 'certs');
    const caBundle = (
      await run('bash', [join(ROOT, 'certs/make-certs.sh'), '--out', certs, '--san', 'IP:127.0.0.1'])
    ).trim();
    const ca = readFileSync(join(certs, 'ca.crt'));
    const webhookPort = await freePort();
    const webhookMetricsPort = await freePort();
    let webhook: Service | null = null;
    const startWebhook = async () => {
      if (webhook !== null) return;
      const svc = startService(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'webhook/main.ts'),
          '--listen',
          `127.0.0.1:${webhookPort}`,
          '--metrics-listen',
          `127.0.0.1:${webhookMetricsPort}`,
          '--tls-cert',
          join(certs, 'tls.crt'),
          '--tls-key',
          join(certs, 'tls.key'),
        ],
        join(opts.dir, 'webhook.log'),
      );
      webhook = svc;
      await waitReady('pulltrace-webhook', svc, () => httpsReady(webhookPort, ca), 30_000);
    };
    const stopWebhook = async () => {
      await webhook?.stop();
      webhook = null;
    };
    stops.push(stopWebhook);
    await startWebhook();

    let admit: AdmitHook | null = null;
    const controlPlane = await startControlPlane({
      kubeconfigPath: join(opts.dir, 'kubeconfig'),
      admit: (input) => (admit === null ? Promise.resolve({ allowed: true }) : admit(input)),
    });
    stops.push(() => controlPlane.stop());
    admit = webhookAdmission(controlPlane.store);
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane.kubeconfigPath);
    await kc.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
      body: webhookConfiguration(`https://127.0.0.1:${webhookPort}/mutate`, caBundle),
    });
    const core = kc.makeApiClient(CoreV1Api);
    await core
      .createNode({
        body: {
          metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } },
          status: {
            conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'stand-in' }],
          },
        },
      })
      .catch((err: unknown) => log.warn({ err }, 'node object not created'));

    const scheduler = new Scheduler(core, nodeName, log);
    scheduler.start();
    stops.push(() => scheduler.stop());
    const kubelet = new KubeletStandIn({
      kubeconfig: kc,
      nodeName,
      criAddress: test.containerd.address,
      backoffMs: 2000,
      maxBackoffMs: 10_000,
      ...(opts.parallelPulls === undefined ? {} : { parallelPulls: opts.parallelPulls }),
      logger: log,
    });
    await kubelet.start();
    stops.push(() => kubelet.stop());
    const deployments = new DeploymentController(kc, 300, log);
    deployments.start();
    stops.push(() => deployments.stop());

    let agent: Service | null = null;
    let agentMetrics = 0;
    const startAgent = async (extra: string[] = []) => {
      const metrics = await freePort();
      agentMetrics = metrics;
      const svc = startService(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'node-agent/main.ts'),
          '--node-name',
          nodeName,
          '--containerd-address',
          test.containerd.socketPath,
          '--kubeconfig',
          controlPlane.kubeconfigPath,
          '--metrics-listen',
          `127.0.0.1:${metrics}`,
          // The node's containerd registry config, as the chart mounts it: the agent resolves
          // tags through the same hosts (registry.test → the throttle) as the kubelet's pulls.
          '--registry-config-path',
          join(test.containerd.dir, 'certs.d'),
          ...(opts.agentArgs ?? []),
          ...extra,
        ],
        join(opts.dir, 'node-agent.log'),
      );
      agent = svc;
      await waitReady('pulltrace-node-agent', svc, () => httpReady(metrics), 30_000);
    };
    const stopAgent = async () => {
      await agent?.stop();
      agent = null;
    };
    const agentPid = (): number | null => {
      const child = agent?.child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return null;
      return child.pid ?? null;
    };
    const killAgent = async () => {
      const child = agent?.child;
      agent = null;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    };
    const agentMetricsUrl = () => (agent === null ? null : `http://127.0.0.1:${agentMetrics}`);
    stops.push(stopAgent);
    if (opts.agent !== false) await startAgent();

    const env: SandboxEnv = {
      KUBECONFIG: controlPlane.kubeconfigPath,
      REGISTRY: test.pushHost,
      PULL_REGISTRY: test.pullHost,
      CONTAINERD_ADDRESS: test.containerd.address,
      NODE_NAME: nodeName,
    };
    writeFileSync(
      join(opts.dir, 'env'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') + '\n',
    );
    log.info({ env }, 'sandbox ready');
    return {
      env,
      test,
      controlPlane,
      kubeconfig: kc,
      startAgent,
      stopAgent,
      agentPid,
      killAgent,
      agentMetricsUrl,
      stopWebhook,
      startWebhook,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Binds every pod without a node to the one node, through pods/binding as a scheduler does. */
class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly core: CoreV1Api,
    private readonly nodeName: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.running = this.pass()
        .catch((err: unknown) => this.log.warn({ err }, 'scheduler pass failed'))
        .finally(() => {
          this.running = null;
          if (this.timer !== null) this.timer = setTimeout(tick, 200);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private async pass(): Promise<void> {
    const pods = await this.core.listPodForAllNamespaces();
    for (const p of pods.items) {
      if (p.spec?.nodeName !== undefined && p.spec.nodeName !== '') continue;
      if (p.metadata?.deletionTimestamp !== undefined) continue;
      const name = p.metadata?.name ?? '';
      const namespace = p.metadata?.namespace ?? 'default';
      await this.core.createNamespacedPodBinding({
        name,
        namespace,
        body: { metadata: { name, namespace }, target: { kind: 'Node', name: this.nodeName } },
      });
    }
  }
}

/** Reads DIR/env as written by startSandbox. */
export function readSandboxEnv(dir: string): SandboxEnv {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(dir, 'env'), 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out as unknown as SandboxEnv;
}
