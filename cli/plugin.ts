// kubectl-pulltrace: a kubectl plugin (`kubectl pulltrace ...`) that shows image-pull progress
// of a rollout's pods from what the node agents write on them, and exits when the images are in.
//   kubectl pulltrace rollout deployment/web [-n NS] [--timeout 10m]
//   kubectl pulltrace pods [-l app=web] [-n NS | -A]
// Exit codes: 0 all images in; 1 a pull failed; 2 usage or API error; 3 timed out.
import { AppsV1Api, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Command, InvalidArgumentError } from 'commander';
import { parseDuration } from '../common/options.js';
import { podView, rolloutState } from './pod-view.js';
import { line, rows, table } from './render.js';

interface Global {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

function kubeConfig(g: Global): KubeConfig {
  const kc = new KubeConfig();
  if (g.kubeconfig !== undefined) kc.loadFromFile(g.kubeconfig);
  else kc.loadFromDefault();
  if (g.context !== undefined) kc.setCurrentContext(g.context);
  return kc;
}

function namespaceOf(kc: KubeConfig, g: Global): string {
  if (g.namespace !== undefined) return g.namespace;
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return ctx?.namespace ?? 'default';
}

type WorkloadKind = 'deployment' | 'statefulset' | 'daemonset';
type Workload = { kind: WorkloadKind; name: string };

const WORKLOAD_KINDS: Record<string, WorkloadKind> = {
  deployment: 'deployment',
  deployments: 'deployment',
  deploy: 'deployment',
  statefulset: 'statefulset',
  statefulsets: 'statefulset',
  sts: 'statefulset',
  daemonset: 'daemonset',
  daemonsets: 'daemonset',
  ds: 'daemonset',
};

export function parseWorkload(value: string): Workload {
  const m =
    /^(deployment|deployments|deploy|statefulset|statefulsets|sts|daemonset|daemonsets|ds)(?:\.apps)?\/(.+)$/.exec(
      value,
    );
  if (m?.[1] === undefined || m[2] === undefined) {
    throw new InvalidArgumentError(
      `expected deployment/NAME, statefulset/NAME or daemonset/NAME, got "${value}"`,
    );
  }
  return { kind: WORKLOAD_KINDS[m[1]] ?? 'deployment', name: m[2] };
}

function selectorString(matchLabels: Record<string, string> | undefined): string {
  return Object.entries(matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** The label selector of the workload's current pods, and how many there should be. */
async function currentPods(
  kc: KubeConfig,
  ns: string,
  w: Workload,
): Promise<{ selector: string; expected: number }> {
  const apps = kc.makeApiClient(AppsV1Api);
  if (w.kind === 'deployment') {
    const d = await apps.readNamespacedDeployment({ name: w.name, namespace: ns });
    let selector = selectorString(d.spec?.selector.matchLabels);
    // The newest ReplicaSet's pod-template-hash picks only the new pods of a rollout.
    const rsList = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: selector });
    const owned = rsList.items.filter((rs) =>
      rs.metadata?.ownerReferences?.some((o) => o.uid === d.metadata?.uid),
    );
    const revision = (rs: (typeof owned)[number]) =>
      Number(rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? '0');
    const newest = owned.sort((a, b) => revision(b) - revision(a))[0];
    const hash = newest?.metadata?.labels?.['pod-template-hash'];
    if (hash !== undefined) selector = `${selector},pod-template-hash=${hash}`;
    return { selector, expected: d.spec?.replicas ?? 1 };
  }
  if (w.kind === 'statefulset') {
    const s = await apps.readNamespacedStatefulSet({ name: w.name, namespace: ns });
    return { selector: selectorString(s.spec?.selector.matchLabels), expected: s.spec?.replicas ?? 1 };
  }
  const ds = await apps.readNamespacedDaemonSet({ name: w.name, namespace: ns });
  return {
    selector: selectorString(ds.spec?.selector.matchLabels),
    expected: ds.status?.desiredNumberScheduled ?? 0,
  };
}

async function listPods(kc: KubeConfig, ns: string | null, selector: string): Promise<V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list =
    ns === null
      ? await core.listPodForAllNamespaces({ labelSelector: selector })
      : await core.listNamespacedPod({ namespace: ns, labelSelector: selector });
  return list.items.filter((p) => p.metadata?.deletionTimestamp === undefined);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rollout(
  g: Global,
  workload: Workload,
  timeoutMs: number,
  intervalMs: number,
): Promise<number> {
  const kc = kubeConfig(g);
  const ns = namespaceOf(kc, g);
  const tty = process.stdout.isTTY;
  const deadline = Date.now() + timeoutMs;
  let drawn = 0;
  const seen = new Map<string, string>();
  for (;;) {
    const { selector, expected } = await currentPods(kc, ns, workload);
    const views = (await listPods(kc, ns, selector)).map(podView);
    const rs = rows(views);
    if (tty) {
      const text = `${workload.kind}/${workload.name}: ${views.length}/${expected} pods\n${table(rs, true)}`;
      if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      process.stdout.write(`${text}\n`);
      drawn = text.split('\n').length;
    } else {
      for (const r of rs) {
        const key = `${r.pod} ${r.image}`;
        const l = line(r);
        if (seen.get(key) !== l) process.stdout.write(`${l}\n`);
        seen.set(key, l);
      }
    }
    const st = rolloutState(views, expected);
    if (st.state === 'done') {
      process.stdout.write(`${workload.kind}/${workload.name}: all images pulled\n`);
      return 0;
    }
    if (st.state === 'failed') {
      process.stderr.write(`error: image pull failed: ${st.reason}\n`);
      return 1;
    }
    if (Date.now() >= deadline) {
      process.stderr.write(`error: timed out waiting for the images of ${workload.kind}/${workload.name}\n`);
      return 3;
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

async function pods(g: Global, selector: string, all: boolean): Promise<number> {
  const kc = kubeConfig(g);
  const views = (await listPods(kc, all ? null : namespaceOf(kc, g), selector)).map(podView);
  if (views.length === 0) {
    process.stderr.write('No pods found.\n');
    return 0;
  }
  process.stdout.write(`${table(rows(views), process.stdout.isTTY)}\n`);
  return 0;
}

export function program(run: (p: Promise<number>) => void): Command {
  const cmd = new Command('kubectl-pulltrace')
    .description('image-pull progress of pods, from pulltrace (https://github.com/pulltrace/pulltrace)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .option('-n, --namespace <ns>', "namespace (default: the context's, else default)");
  cmd
    .command('rollout')
    .description("follow a workload's new pods until their images are in")
    .argument('<workload>', 'deployment/NAME, statefulset/NAME or daemonset/NAME', parseWorkload)
    .option('--timeout <duration>', 'give up after this long (default 10m)', parseDuration, 600_000)
    .option('--interval <duration>', 'how often to read the pods (default 1s)', parseDuration, 1000)
    .action((w: Workload, o: { timeout: number; interval: number }) => {
      run(rollout(cmd.opts<Global>(), w, o.timeout, o.interval));
    });
  cmd
    .command('pods')
    .description('one table of the pods and their image pulls')
    .option('-l, --selector <selector>', 'label selector (default: all pods)', '')
    .option('-A, --all-namespaces', 'all namespaces', false)
    .action((o: { selector: string; allNamespaces: boolean }) => {
      run(pods(cmd.opts<Global>(), o.selector, o.allNamespaces));
    });
  return cmd;
}
