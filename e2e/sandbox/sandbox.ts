// The local sandbox: a one-node Kubernetes cluster with pulltrace installed, on loopback, in
// one call. Everything in it is real:
//   - containerd, the registry and a throttle in front of it (e2e/env), the real kubectl;
//   - etcd, kube-apiserver, kube-controller-manager (every controller: Deployments, ReplicaSets,
//     namespaces, garbage collection…), kube-scheduler and a kubelet on that containerd
//     (e2e/cluster, built by e2e/env/build-kube.sh);
//   - pulltrace as the chart installs it, rendered by the real helm: the node agent's
//     ServiceAccount, ClusterRole and binding and its same-node ValidatingAdmissionPolicy, the
//     webhook's MutatingWebhookConfiguration (caBundle from certs/make-certs.sh) and its Service;
//   - the webhook and the node agent as the processes they are in the cluster's pods. The agent
//     authenticates with a ServiceAccount token bound to a pod on the node, so the API server
//     gives it the node's name as a kubelet-issued token would (e2e/cluster/token.ts); the pod
//     (`pulltrace-node-agent-<node>` in `pulltrace`) runs the pause image. The webhook listens on
//     a random 127.x.y.z:443 and the chart's Service is made an ExternalName Service of that
//     address: the API server calls it through the Service, by the chart's own configuration.
// The throttle and the change feed (changes.ts) live in the calling process: keep its event loop
// free (no *Sync child processes) while pulls run.
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Agent } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../test-support/net.js';
import { type Logger, silentLogger } from '../../common/logging.js';
import { startApiProxy, type ApiProxy } from '../cluster/api-proxy.js';
import {
  helmTemplate,
  nodeBoundToken,
  startCluster,
  startKubelet,
  type Cluster,
  type Kubelet,
  type NodeBoundToken,
} from '../cluster/index.js';
import { SANDBOX_IMAGE } from '../cluster/pause-image.js';
import { httpsPostJson } from '../cluster/component.js';
import { startService, waitReady, type Service } from '../env/process.js';
import { startTestEnv, type TestEnv } from '../env/test-env.js';
import { startChangeFeed, type ChangeFeed } from './changes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The chart's release and namespace as the sandbox installs it. */
export const RELEASE = 'pulltrace';
export const NAMESPACE = 'pulltrace';
const WEBHOOK_SERVICE = `${RELEASE}-webhook`;
const AGENT_SERVICE_ACCOUNT = `${RELEASE}-node-agent`;
/** The chart's templates the sandbox applies (the Deployment and DaemonSet are the processes). */
const TEMPLATES = [
  'templates/serviceaccounts.yaml',
  'templates/node-agent-rbac.yaml',
  'templates/node-agent-policy.yaml',
  'templates/webhook-service.yaml',
  'templates/mutatingwebhookconfiguration.yaml',
];

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
  /** Pods the kubelet pulls for at once (default 1: serializeImagePulls, the kubelet's default). */
  parallelPulls?: number;
  logger?: Logger;
}

/** What `DIR/env` holds, as shell lines. */
export interface SandboxEnv {
  /** Admin kubeconfig (system:masters). */
  KUBECONFIG: string;
  /** Push here (unthrottled). */
  REGISTRY: string;
  /** What pod images should reference (throttled). */
  PULL_REGISTRY: string;
  CONTAINERD_ADDRESS: string;
  NODE_NAME: string;
  /** The node agent's kubeconfig: its ServiceAccount, with a token bound to the node. */
  AGENT_KUBECONFIG: string;
  /** The control plane's directory (its logs are under logs/). */
  CLUSTER_DIR: string;
}

export interface Sandbox {
  env: SandboxEnv;
  test: TestEnv;
  cluster: Cluster;
  kubelet: Kubelet;
  /** Admin client configuration. */
  kubeconfig: KubeConfig;
  /** Every pod and event change on the API server, from a watch (changes.ts). */
  changes: ChangeFeed;
  /**
   * A proxy in front of the API server that can answer chosen requests with 429/500/409 (the
   * faults a real API server cannot be made to produce on demand). The agent goes through it
   * only when started with `startAgent(args, { viaProxy: true })`.
   */
  api: ApiProxy;
  /** The agent's node-bound token (and its kubeconfig, straight to the API server). */
  agentToken: NodeBoundToken;
  /** The webhook's certificate directory (ca.crt, ca.key, tls.crt, tls.key), its address, its configuration's name. */
  webhook: { certDir: string; host: string; configName: string };
  /** Creates a namespace and waits for its `default` ServiceAccount (pods need it at admission). */
  createNamespace(name: string, labels?: Record<string, string>): Promise<void>;
  /** Starts the node agent (if it was started with agent: false, or after stopAgent()). */
  startAgent(extraArgs?: string[], opts?: { viaProxy?: boolean }): Promise<void>;
  /** Stops the node agent (SIGTERM), e.g. to test a restart mid-pull. */
  stopAgent(): Promise<void>;
  /** Kills the node agent with SIGKILL (no shutdown at all), as an OOM kill or node crash does. */
  killAgent(): Promise<void>;
  /** `http://127.0.0.1:PORT` of the running agent's /metrics, /healthz, /readyz, else null. */
  agentMetricsUrl(): string | null;
  /** The node agent's log file. */
  agentLog: string;
  /** The webhook's log file. */
  webhookLog: string;
  /** Stops the webhook process (SIGTERM); its MutatingWebhookConfiguration stays. */
  stopWebhook(): Promise<void>;
  /** Starts the webhook again on the same address (after stopWebhook()). */
  startWebhook(): Promise<void>;
  /** The node agent's process id while it runs (for /proc readings), else null. */
  agentPid(): number | null;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
    child.stdin?.end(input ?? '');
  });
}

/** Whether a TLS handshake with `host:port` succeeds, the certificate checked as the API server checks it. */
function tlsReady(host: string, port: number, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host, port, ca, servername: `${WEBHOOK_SERVICE}.${NAMESPACE}.svc` }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function httpReady(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return res.ok;
}

/** Whether `host:port` can be bound now. */
function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/**
 * A loopback address of its own for the webhook's port 443 (the port the chart's configuration
 * calls), so sandboxes side by side do not collide: 127.R.R.R, free on 443.
 */
async function webhookHost(): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const host = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    if (await canBind(host, 443)) return host;
  }
  throw new Error('no 127.x.y.z address free on port 443 (the sandbox runs as root to bind it)');
}

/**
 * The settings the chart's MutatingWebhookConfiguration has, pointed at `url`. The sandbox
 * registers the chart's own (rendered by helm); this copy stays for charts/chart.test.ts.
 */
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

/**
 * The chart's objects for the sandbox: rendered by helm (TLS from a Secret: the caBundle of
 * certs/make-certs.sh; the same-node policy on), with the webhook Service turned into an
 * ExternalName Service of the webhook process's address.
 */
export async function chartObjects(caBundle: string, webhookAddress: string): Promise<string> {
  const rendered = await helmTemplate({
    release: RELEASE,
    namespace: NAMESPACE,
    set: [
      'webhook.tls.mode=secret',
      `webhook.tls.secret.name=${WEBHOOK_SERVICE}-tls`,
      `webhook.tls.secret.caBundle=${caBundle}`,
      'nodeAgent.sameNodePolicy.enabled=true',
    ],
    showOnly: TEMPLATES,
  });
  const docs = parseAllDocuments(rendered)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((d): d is Record<string, unknown> => d !== null);
  for (const d of docs) {
    if (d.kind !== 'Service') continue;
    const spec = d.spec as { ports?: { name?: string; port: number; targetPort?: unknown }[] };
    // The API server resolves an ExternalName Service to `externalName:port` (its service
    // resolver), with the certificate checked against `<service>.<namespace>.svc` as always.
    d.spec = {
      type: 'ExternalName',
      externalName: webhookAddress,
      ports: (spec.ports ?? []).map((p) => ({ name: p.name, port: p.port, protocol: 'TCP' })),
    };
  }
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs });
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

    log.info('starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler');
    const cluster = await startCluster({
      // Image volumes (pod-view.test.ts): beta and off by default in 1.34.
      apiserverArgs: ['--feature-gates=ImageVolume=true'],
      // PULLTRACE_E2E_KEEP=1 (the e2e suites' switch): keep the components' logs after stop().
      keep: process.env.PULLTRACE_E2E_KEEP !== undefined,
    });
    stops.push(async () => {
      // Nothing must recreate the pods the kubelet's cleanup deletes (ReplicaSets would).
      await cluster.stopComponent('kube-controller-manager').catch(() => undefined);
      await cluster.stop();
    });
    rmSync(join(opts.dir, 'cluster'), { force: true });
    symlinkSync(cluster.dir, join(opts.dir, 'cluster'));
    const kubeconfigPath = join(opts.dir, 'kubeconfig');
    copyFileSync(cluster.kubeconfigPath, kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);

    log.info({ ms: cluster.timings.total }, 'control plane ready; starting the kubelet');
    const kubelet = await startKubelet(cluster, {
      nodeName,
      containerd: test.containerd,
      registry: test.pushHost,
      featureGates: { ImageVolume: true },
      // A full node's 110 pods (bench/agent.bench.ts), plus the pod holding the agent's identity.
      maxPods: 120,
      ...(opts.parallelPulls === undefined ? {} : { parallelPulls: opts.parallelPulls }),
    });

    const adminTls = {
      ca: cluster.caPath,
      cert: join(cluster.pki.dir, 'admin.crt'),
      key: join(cluster.pki.dir, 'admin.key'),
    };
    const changes = await startChangeFeed({ url: cluster.url, tls: adminTls });
    stops.push(() => Promise.resolve(changes.stop()));
    const api = await startApiProxy(cluster);
    stops.push(() => api.stop());

    // --- the webhook process, on its own loopback address, port 443
    const certDir = join(opts.dir, 'certs');
    const caBundle = (
      await run('bash', [
        join(ROOT, 'certs/make-certs.sh'),
        '--out',
        certDir,
        '--service',
        WEBHOOK_SERVICE,
        '--namespace',
        NAMESPACE,
        '--san',
        'IP:127.0.0.1',
      ])
    ).trim();
    const host = await webhookHost();
    const webhookMetricsPort = await freePort();
    const webhookLog = join(opts.dir, 'webhook.log');
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
          `${host}:443`,
          '--metrics-listen',
          `127.0.0.1:${webhookMetricsPort}`,
          '--tls-cert',
          join(certDir, 'tls.crt'),
          '--tls-key',
          join(certDir, 'tls.key'),
          // The chart's default is 10s; a rotated certificate is served sooner here.
          '--cert-reload-interval',
          '1s',
        ],
        webhookLog,
      );
      webhook = svc;
      // The CA of the certificate there now (a test may have replaced both).
      const ca = () => readFileSync(join(certDir, 'ca.crt'));
      // Ready as its probes say (plain-HTTP /readyz), and serving TLS on its address.
      const ready = async () => (await httpReady(webhookMetricsPort)) && tlsReady(host, 443, ca());
      await waitReady('pulltrace-webhook', svc, ready, 60_000).catch((err: unknown) => {
        webhook = null;
        throw err;
      });
    };
    const stopWebhook = async () => {
      await webhook?.stop();
      webhook = null;
    };
    stops.push(stopWebhook);
    await startWebhook();

    // --- the chart's objects
    log.info('applying the chart (helm template)');
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await run(
      'kubectl',
      ['--kubeconfig', kubeconfigPath, 'apply', '-f', '-'],
      await chartObjects(caBundle, host),
    );
    await waitWebhookCalled(cluster.url, adminTls);

    // --- the node agent's identity: a pod on the node, and a token bound to it
    const holder = `${AGENT_SERVICE_ACCOUNT}-${nodeName}`;
    await core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: {
          name: holder,
          namespace: NAMESPACE,
          labels: { 'app.kubernetes.io/name': RELEASE, 'app.kubernetes.io/component': 'node-agent' },
        },
        spec: {
          nodeName,
          serviceAccountName: AGENT_SERVICE_ACCOUNT,
          automountServiceAccountToken: false,
          hostNetwork: true,
          terminationGracePeriodSeconds: 1,
          tolerations: [{ operator: 'Exists' }],
          // The agent runs beside it as a process; the pod holds its identity (and runs pause).
          containers: [{ name: 'node-agent', image: SANDBOX_IMAGE, imagePullPolicy: 'IfNotPresent' }],
        },
      },
    });
    const agentToken = await nodeBoundToken(cluster, {
      namespace: NAMESPACE,
      serviceAccount: AGENT_SERVICE_ACCOUNT,
      nodeName,
      podName: holder,
      createNode: false,
      // `sandbox up` may run for days.
      expirationSeconds: 30 * 24 * 3600,
    });
    const agentKubeconfig = join(opts.dir, 'agent.kubeconfig');
    copyFileSync(agentToken.kubeconfigPath, agentKubeconfig);
    const proxyKubeconfig = api.kubeconfigFor('node-agent', {
      token: agentToken.token,
      namespace: NAMESPACE,
    });

    // --- the node agent process
    const agentLog = join(opts.dir, 'node-agent.log');
    let agent: Service | null = null;
    let agentMetrics = 0;
    const startAgent = async (extra: string[] = [], o: { viaProxy?: boolean } = {}) => {
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
          o.viaProxy === true ? proxyKubeconfig : agentKubeconfig,
          '--metrics-listen',
          `127.0.0.1:${metrics}`,
          // The node's containerd registry config, as the chart mounts it: the agent resolves
          // tags through the same hosts (registry.test → the throttle) as the kubelet's pulls.
          '--registry-config-path',
          join(test.containerd.dir, 'certs.d'),
          ...(opts.agentArgs ?? []),
          ...extra,
        ],
        agentLog,
      );
      agent = svc;
      await waitReady('pulltrace-node-agent', svc, () => httpReady(metrics), 60_000).catch((err: unknown) => {
        agent = null;
        throw err;
      });
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

    const createNamespace = async (name: string, labels?: Record<string, string>) => {
      await core.createNamespace({
        body: { metadata: { name, ...(labels === undefined ? {} : { labels }) } },
      });
      const deadline = Date.now() + 30_000;
      for (;;) {
        const ok = await core
          .readNamespacedServiceAccount({ name: 'default', namespace: name })
          .then(() => true)
          .catch(() => false);
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`namespace ${name}: no default ServiceAccount after 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    const env: SandboxEnv = {
      KUBECONFIG: kubeconfigPath,
      REGISTRY: test.pushHost,
      PULL_REGISTRY: test.pullHost,
      CONTAINERD_ADDRESS: test.containerd.address,
      NODE_NAME: nodeName,
      AGENT_KUBECONFIG: agentKubeconfig,
      CLUSTER_DIR: cluster.dir,
    };
    writeFileSync(
      join(opts.dir, 'env'),
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') + '\n',
    );
    log.info({ env, timings: cluster.timings, kubeletReadyMs: kubelet.readyMs }, 'sandbox ready');
    return {
      env,
      test,
      cluster,
      kubelet,
      kubeconfig: kc,
      changes,
      api,
      agentToken,
      webhook: { certDir, host, configName: RELEASE },
      createNamespace,
      startAgent,
      stopAgent,
      agentPid,
      killAgent,
      agentMetricsUrl,
      agentLog,
      webhookLog,
      stopWebhook,
      startWebhook,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Waits until the API server calls the webhook: a dry-run pod in `default` comes back labelled.
 * (The API server picks a new MutatingWebhookConfiguration and Service up from its informers.)
 */
async function waitWebhookCalled(url: string, tls: { ca: string; cert: string; key: string }): Promise<void> {
  const agent = new Agent({
    ca: readFileSync(tls.ca),
    cert: readFileSync(tls.cert),
    key: readFileSync(tls.key),
  });
  const body = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'sandbox-probe', namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'registry.test/probe:1' }] },
  };
  const post = async () =>
    (await httpsPostJson(new URL('/api/v1/namespaces/default/pods?dryRun=All', url).href, agent, body)).body;
  const deadline = Date.now() + 60_000;
  let last: string;
  try {
    for (;;) {
      last = await post().catch((err: unknown) => String(err));
      if (last.includes('"pulltrace.io/tracked":"true"')) return;
      if (Date.now() > deadline)
        throw new Error(
          `the API server does not call the webhook after 60 s; last answer: ${last.slice(0, 300)}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    agent.destroy();
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
