// kubectl-pulltrace: a kubectl plugin (`kubectl pulltrace ...`) that shows image-pull progress
// of a rollout's pods from what the node agents write on them, and exits when the images are in.
//   kubectl pulltrace rollout deployment/web [-n NS] [--timeout 10m]
//   kubectl pulltrace pods [-l app=web] [-n NS | -A]
// Exit codes: 0 all images in; 1 a pull failed; 2 usage or API error; 3 timed out.
import { ApiException, AppsV1Api, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import { formatDuration } from '../common/contract.js';
import { PulltraceError, errorMessage } from '../common/errors.js';
import { parseDuration } from '../common/options.js';
import type { Run } from '../common/run-main.js';
import { podView, rolloutState, type PodView } from './pod-view.js';
import { fitWidth, line, rows, table, type Row } from './render.js';
import {
  daemonSetTarget,
  deploymentTarget,
  parseWorkload,
  selectorString,
  statefulSetTarget,
  type Target,
  type Workload,
} from './workload.js';

/** The plugin's exit codes. */
export const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 3 } as const;

interface Global {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

/**
 * The kubeconfig as kubectl would read it (--kubeconfig, else $KUBECONFIG, else ~/.kube/config),
 * with --context applied. Throws PT_KUBECONFIG naming the file when it cannot be read, names no
 * such context, or its context has no cluster (client-node would fail later, less clearly).
 */
function kubeConfig(g: Global): KubeConfig {
  const kc = new KubeConfig();
  const where = g.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config';
  try {
    if (g.kubeconfig !== undefined) kc.loadFromFile(g.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    // client-node reads an empty or foreign YAML document by dereferencing what is not there.
    const why =
      err instanceof TypeError
        ? 'not a kubeconfig (empty, or no clusters, users and contexts)'
        : errorMessage(err);
    throw new PulltraceError('PT_KUBECONFIG', `${where}: ${why}`);
  }
  if (g.context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === g.context)) {
      throw new PulltraceError('PT_KUBECONFIG', `${where} has no context "${g.context}"`);
    }
    kc.setCurrentContext(g.context);
  }
  if (kc.getCurrentCluster() === null) {
    const ctx = kc.getCurrentContext();
    throw new PulltraceError(
      'PT_KUBECONFIG',
      ctx === '' ? `${where} has no current context` : `${where}: context "${ctx}" names no cluster`,
    );
  }
  return kc;
}

function namespaceOf(kc: KubeConfig, g: Global): string {
  if (g.namespace !== undefined) return g.namespace;
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return ctx?.namespace ?? 'default';
}

/**
 * An error in one line: for an API error, the HTTP code and the message of the Status the
 * API server sent (client-node's own message carries the whole body and every header).
 */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const e = err as ApiException<unknown>;
    let body: unknown = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // not JSON: shown as it is
      }
    }
    const message =
      typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
        ? (body as { message: string }).message
        : typeof body === 'string' && body !== ''
          ? body.slice(0, 200)
          : 'no message';
    return `API answered ${e.code}: ${message}`;
  }
  return errorMessage(err);
}

/** Worth another try before the deadline: no answer at all, 429, or a 5xx. */
export function isTransient(err: unknown): boolean {
  if (err instanceof ApiException) {
    const code = (err as ApiException<unknown>).code;
    return code === 429 || code >= 500;
  }
  return true;
}

/** The workload's new pods, read from the workload objects. */
async function readTarget(kc: KubeConfig, ns: string, w: Workload): Promise<Target> {
  const apps = kc.makeApiClient(AppsV1Api);
  if (w.kind === 'deployment') {
    const d = await apps.readNamespacedDeployment({ name: w.name, namespace: ns });
    const rs = await apps.listNamespacedReplicaSet({
      namespace: ns,
      labelSelector: selectorString(d.spec?.selector),
    });
    return deploymentTarget(d, rs.items);
  }
  if (w.kind === 'statefulset') {
    return statefulSetTarget(await apps.readNamespacedStatefulSet({ name: w.name, namespace: ns }));
  }
  return daemonSetTarget(await apps.readNamespacedDaemonSet({ name: w.name, namespace: ns }));
}

async function listPods(kc: KubeConfig, ns: string | null, selector: string): Promise<V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list =
    ns === null
      ? await core.listPodForAllNamespaces({ labelSelector: selector })
      : await core.listNamespacedPod({ namespace: ns, labelSelector: selector });
  return list.items.filter((p) => p.metadata?.deletionTimestamp === undefined);
}

type RolloutRead = { ok: true; target: Target; views: PodView[] } | { ok: false; err: unknown };

/** The workload's new pods as they are now; a transient failure is returned, others thrown. */
async function readRollout(kc: KubeConfig, ns: string, w: Workload): Promise<RolloutRead> {
  try {
    const target = await readTarget(kc, ns, w);
    const views = target.state === 'ready' ? (await listPods(kc, ns, target.selector)).map(podView) : [];
    return { ok: true, target, views };
  } catch (err) {
    if (!isTransient(err)) throw err;
    return { ok: false, err };
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const TIMED_OUT = Symbol('timed out');

/** `p`, or TIMED_OUT if the deadline comes first (an API call that hangs cannot outlive --timeout). */
async function beforeDeadline<T>(p: Promise<T>, deadline: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(
      () => {
        resolve(TIMED_OUT);
      },
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Shows each read of a rollout: on a terminal the table redrawn in place, else only the header
 * and the lines that changed since the last read.
 */
function rolloutDisplay(tty: boolean): (header: string, rs: Row[]) => void {
  let drawn = 0;
  let lastHeader = '';
  const seen = new Map<string, string>();
  return (header, rs) => {
    if (tty) {
      const text = fitWidth(
        rs.length === 0 ? header : `${header}\n${table(rs, true)}`,
        process.stdout.columns,
      );
      if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      process.stdout.write(`${text}\n`);
      drawn = text.split('\n').length;
    } else {
      if (header !== lastHeader) process.stdout.write(`${header}\n`);
      for (const r of rs) {
        const key = `${r.pod} ${r.image}`;
        const l = line(r);
        if (seen.get(key) !== l) process.stdout.write(`${l}\n`);
        seen.set(key, l);
      }
    }
    lastHeader = header;
  };
}

async function rollout(
  g: Global,
  workload: Workload,
  timeoutMs: number,
  intervalMs: number,
): Promise<number> {
  const kc = kubeConfig(g);
  const ns = namespaceOf(kc, g);
  const show = rolloutDisplay(process.stdout.isTTY);
  const name = `${workload.kind}/${workload.name}`;
  const deadline = Date.now() + timeoutMs;
  let lastWarning = '';
  const timedOut = () => {
    process.stderr.write(
      `error: timed out after ${formatDuration(timeoutMs / 1000)} waiting for the images of ${name}\n`,
    );
    return EXIT.timeout;
  };
  for (;;) {
    const read = await beforeDeadline(readRollout(kc, ns, workload), deadline);
    if (read === TIMED_OUT) return timedOut();
    if (!read.ok) {
      // A transient failure: said once, tried again until the deadline.
      const w = `warning: ${describeError(read.err)}; retrying`;
      if (w !== lastWarning) process.stderr.write(`${w}\n`);
      lastWarning = w;
    } else {
      const { target, views } = read;
      show(
        target.state === 'pending'
          ? `${name}: ${target.why}`
          : `${name}: ${views.length}/${target.expected} pods`,
        rows(views),
      );
      if (target.state === 'ready') {
        const st = rolloutState(views, target.expected);
        if (st.state === 'done') {
          process.stdout.write(`${name}: all images pulled\n`);
          return EXIT.ok;
        }
        if (st.state === 'failed') {
          process.stderr.write(`error: image pull failed: ${st.reason}\n`);
          return EXIT.failed;
        }
      }
    }
    if (Date.now() >= deadline) return timedOut();
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

async function pods(g: Global, selector: string, all: boolean): Promise<number> {
  const kc = kubeConfig(g);
  const views = (await listPods(kc, all ? null : namespaceOf(kc, g), selector)).map(podView);
  if (views.length === 0) {
    process.stderr.write('No pods found.\n');
    return EXIT.ok;
  }
  process.stdout.write(`${table(rows(views), process.stdout.isTTY)}\n`);
  return EXIT.ok;
}

/**
 * The plugin's command line. `select` gets what the command runs (resolving to its exit code);
 * nothing runs while the line is parsed. Usage errors throw commander's CommanderError from
 * parse() (exitOverride, inherited by the subcommands).
 */
export function program(select: (run: Run) => void): Command {
  const cmd = new Command('kubectl-pulltrace')
    .description('image-pull progress of pods, from what pulltrace writes on them')
    .exitOverride()
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .option('-n, --namespace <ns>', "namespace (default: the context's, else default)")
    .addHelpText(
      'after',
      '\nExit codes: 0 all images in; 1 a pull failed; 2 usage or API error; 3 timed out.',
    );
  cmd
    .command('rollout')
    .description("follow a workload's new pods until their images are in")
    .argument('<workload>', 'deployment/NAME, statefulset/NAME or daemonset/NAME', parseWorkload)
    .addOption(
      new Option('--timeout <duration>', 'give up after this long')
        .default(600_000, '10m')
        .argParser(parseDuration),
    )
    .addOption(
      new Option('--interval <duration>', 'how often to read the pods')
        .default(1000, '1s')
        .argParser(parseDuration),
    )
    .action((w: Workload, o: { timeout: number; interval: number }) => {
      select(() => rollout(cmd.opts<Global>(), w, o.timeout, Math.max(100, o.interval)));
    });
  cmd
    .command('pods')
    .description('one table of the pods and their image pulls (exit 0 once shown, as kubectl get)')
    .addOption(new Option('-l, --selector <selector>', 'label selector').default('', 'all pods'))
    .option('-A, --all-namespaces', 'all namespaces', false)
    .action((o: { selector: string; allNamespaces: boolean }) => {
      select(() => pods(cmd.opts<Global>(), o.selector, o.allNamespaces));
    });
  return cmd;
}
