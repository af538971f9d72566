// A real kubelet (built by e2e/env/build-kube.sh) as one node of the cluster from cluster.ts,
// running pods on a real containerd (e2e/env/containerd.ts) with runc. What it needs here, and
// why (see README.md "The kubelet" for what was tried):
//   - cgroup v1 (these machines mount v1 controllers): cgroupDriver cgroupfs, failCgroupV1 false,
//     and no per-QoS cgroup tree (cgroupsPerQOS false), so the kubelet leaves the host's cgroup
//     roots as they are;
//   - the sandbox image, built here (pause-image.ts), since registry.k8s.io is unreachable;
//   - a CNI network for containerd's CRI to report NetworkReady (else the node stays NotReady):
//     Debian's ptp + host-local plugins on a private /24, IPAM state under our directory. Only
//     pods without hostNetwork use it (a veth pair and a /32 route each, removed with the pod);
//     hostNetwork pods touch no host network settings;
//   - its own root dir, pod log dir and certificate dir under ours: nothing under /var/lib/kubelet.
// stop() deletes the node's pods first (so the kubelet tears their sandboxes down), then stops
// the kubelet, kills any container left through `ctr`, unmounts what is still mounted under its
// root dir and removes it.
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { freePort } from '../../test-support/net.js';
import type { Containerd } from '../env/containerd.js';
import { requireBinaries } from './binaries.js';
import type { Cluster } from './cluster.js';
import { ComponentError, httpProbe, startComponent, waitHealthy, type Component } from './component.js';
import { providePauseImage } from './pause-image.js';

const run = promisify(execFile);

export interface KubeletOptions {
  /** Node name (default `pt-node`). */
  nodeName?: string;
  /** The containerd the kubelet drives (its CRI socket); the caller starts and stops it. */
  containerd: Containerd;
  /** A plain-HTTP registry (host:port) to push the pause image to. */
  registry: string;
  /**
   * Pod network for non-hostNetwork pods (default a random 10.88.N.0/24, so that two kubelets
   * started side by side by parallel tests do not hand out the same address and host route).
   */
  podCidr?: string;
  /** Time allowed for the kubelet to register a Ready node (default 90 s). */
  timeoutMs?: number;
  /** KubeletConfiguration `featureGates` (e.g. `{ ImageVolume: true }`; the API server needs it too). */
  featureGates?: Record<string, boolean>;
  /**
   * Pods whose images are pulled at once (default 1: `serializeImagePulls: true`, the kubelet's
   * default). More is `serializeImagePulls: false` with `maxParallelImagePulls` that many.
   */
  parallelPulls?: number;
  /** KubeletConfiguration `maxPods` (default the kubelet's, 110). */
  maxPods?: number;
}

export interface Kubelet {
  nodeName: string;
  /** The kubelet's kubeconfig (user system:node:<nodeName>, group system:nodes). */
  kubeconfigPath: string;
  component: Component;
  /** Where the pause image was pushed. */
  pauseImage: string;
  /** Milliseconds from startKubelet() to a Ready node. */
  readyMs: number;
  /** Deletes the node's pods, stops the kubelet, cleans up containers and mounts. Idempotent. */
  stop(): Promise<void>;
}

function cniConfig(dir: string, cidr: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'pulltrace-ptp',
      plugins: [
        {
          type: 'ptp',
          ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet: cidr }]], dataDir: join(dir, 'cni-ipam') },
        },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

/** Unmounts (lazily, deepest first) every mount point at or under `dir`. */
async function unmountUnder(dir: string): Promise<void> {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await run('umount', ['-l', p]).catch(() => undefined);
}

/**
 * Turns on containerd's CRI `restrict_oom_score_adj` and restarts containerd if it was off. The
 * CRI gives every pod sandbox oom_score_adj -998 (and Guaranteed containers -997); lowering it
 * needs CAP_SYS_RESOURCE, which root lacks on these machines, so runc's nsexec dies with
 * "failed to update /proc/self/oom_score_adj: Permission denied" (reported as "can't get final
 * child's PID from pipe: EOF"). With the option, containerd caps the value at its own (0).
 * e2e/env/containerd.ts has no option for it, hence the edit of the file it wrote.
 */
async function allowOomScoreOfContainerd(containerd: Containerd): Promise<void> {
  const path = join(containerd.dir, 'config.toml');
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  if (text.includes('restrict_oom_score_adj')) return;
  const section = '[plugins."io.containerd.grpc.v1.cri"]\n';
  if (!text.includes(section))
    throw new Error(`no CRI section in ${path}: cannot set restrict_oom_score_adj`);
  writeFileSync(path, text.replace(section, `${section}    restrict_oom_score_adj = true\n`));
  await containerd.restart();
}

async function ctr(containerd: Containerd, args: string[]): Promise<string> {
  const { stdout } = await run('ctr', ['--address', containerd.socketPath, '--namespace', 'k8s.io', ...args]);
  return stdout;
}

/**
 * Go's runtime aborting the kubelet on a data race of its own, as kubelet v1.34.4 sometimes does
 * while it starts: `fatal error: concurrent map read and map write` in
 * containerManagerImpl.GetCapacity, the node status sync reading the capacity map the container
 * manager's start is still writing (kubernetes/kubernetes#119637 describes the race). Not ours
 * to fix; a fresh start does not meet it again, so startKubelet() starts once more on it.
 */
export function isKubeletStartRace(log: string): boolean {
  return /fatal error: concurrent map (read and map write|iteration and map write|writes)/.test(log);
}

/** Starts on a kubelet start race (isKubeletStartRace) this many times in all, then gives up. */
const START_ATTEMPTS = 3;

/**
 * Starts a kubelet registering node `nodeName` with `cluster`, and resolves once the node is
 * Ready. Throws a ComponentError (kubelet's log tail) if it exits or the node does not get Ready;
 * a kubelet that crashed on its own start race (isKubeletStartRace) is started again first, up to
 * START_ATTEMPTS times in all, each with the whole timeout.
 */
export async function startKubelet(cluster: Cluster, opts: KubeletOptions): Promise<Kubelet> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startKubeletOnce(cluster, opts);
    } catch (err) {
      const raced =
        err instanceof ComponentError &&
        existsSync(err.logFile) &&
        isKubeletStartRace(readFileSync(err.logFile, 'utf8'));
      if (!raced || attempt >= START_ATTEMPTS) throw err;
      console.error(`kubelet crashed on its own start race (attempt ${attempt}); starting it again`);
    }
  }
}

async function startKubeletOnce(cluster: Cluster, opts: KubeletOptions): Promise<Kubelet> {
  const t0 = Date.now();
  const deadline = t0 + (opts.timeoutMs ?? 90_000);
  const nodeName = opts.nodeName ?? 'pt-node';
  const bins = requireBinaries(['kubelet'], cluster.binDir);
  const dir = join(cluster.dir, `kl-${nodeName}`);
  mkdirSync(dir, { recursive: true });
  await allowOomScoreOfContainerd(opts.containerd);
  const pauseImage = await providePauseImage(opts.containerd, opts.registry);
  // containerd's CRI watches its CNI conf dir: the network is picked up without a restart.
  const cniDir = join(opts.containerd.dir, 'cni-net.d');
  mkdirSync(cniDir, { recursive: true });
  writeFileSync(
    join(cniDir, '10-pulltrace.conflist'),
    cniConfig(dir, opts.podCidr ?? `10.88.${randomInt(256)}.0/24`),
  );

  const kubeconfigPath = await cluster.kubeconfigFor(`kubelet-${nodeName}`, {
    user: `system:node:${nodeName}`,
    groups: ['system:nodes'],
  });
  const serving = await cluster.pki.serving(`kubelet-${nodeName}`, [`DNS:${nodeName}`]);
  const [port, healthzPort] = await Promise.all([freePort(), freePort()]);
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: '127.0.0.1',
      port,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort,
      tlsCertFile: serving.cert,
      tlsPrivateKeyFile: serving.key,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: cluster.caPath },
      },
      authorization: { mode: 'Webhook' },
      containerRuntimeEndpoint: opts.containerd.address,
      imageServiceEndpoint: opts.containerd.address,
      cgroupDriver: 'cgroupfs',
      failCgroupV1: false,
      cgroupsPerQOS: false,
      enforceNodeAllocatable: [],
      failSwapOn: false,
      podLogsDir: join(dir, 'pod-logs'),
      // A test machine's disk may be fuller than a node's: never evict or GC images for it.
      evictionHard: { 'memory.available': '0%', 'nodefs.available': '0%', 'imagefs.available': '0%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      // Start the next pull at once and report status often: tests watch these.
      ...((opts.parallelPulls ?? 1) > 1
        ? { serializeImagePulls: false, maxParallelImagePulls: opts.parallelPulls }
        : { serializeImagePulls: true }),
      ...(opts.featureGates === undefined ? {} : { featureGates: opts.featureGates }),
      ...(opts.maxPods === undefined ? {} : { maxPods: opts.maxPods }),
      nodeStatusUpdateFrequency: '2s',
      syncFrequency: '5s',
      fileCheckFrequency: '5s',
    }),
  );
  const kubelet = startComponent(
    'kubelet',
    bins.kubelet,
    [
      `--config=${configPath}`,
      `--kubeconfig=${kubeconfigPath}`,
      `--root-dir=${join(dir, 'root')}`,
      `--cert-dir=${join(dir, 'pki')}`,
      `--hostname-override=${nodeName}`,
      // No --node-ip=127.0.0.1: the kubelet refuses a loopback node IP ("nodeIP can't be
      // loopback address") and then reports no address at all (no hostIP, no hostNetwork pod IP).
      // It picks the machine's own address, as on local-up-cluster; it still serves on 127.0.0.1.
      '--v=2',
    ],
    join(cluster.dir, 'logs', `kubelet-${nodeName}.log`),
  );
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Pods first: the kubelet stops their containers and tears down their sandboxes (network
    // included), then removes them from the API server.
    const fieldSelector = `spec.nodeName=${nodeName}`;
    const podDeadline = Date.now() + 30_000;
    try {
      const pods = await core.listPodForAllNamespaces({ fieldSelector });
      for (const p of pods.items) {
        await core
          .deleteNamespacedPod({
            name: p.metadata?.name ?? '',
            namespace: p.metadata?.namespace ?? '',
            gracePeriodSeconds: 1,
          })
          .catch(() => undefined);
      }
      while (Date.now() < podDeadline && kubelet.exitStatus() === null) {
        if ((await core.listPodForAllNamespaces({ fieldSelector })).items.length === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    } catch {
      // the API server may be gone already; clean up below regardless
    }
    await kubelet.stop();
    try {
      const tasks = (await ctr(opts.containerd, ['tasks', 'ls', '-q'])).split('\n').filter((t) => t !== '');
      for (const t of tasks)
        await ctr(opts.containerd, ['tasks', 'kill', '-s', 'SIGKILL', t]).catch(() => undefined);
      for (const t of tasks) await ctr(opts.containerd, ['tasks', 'delete', '-f', t]).catch(() => undefined);
    } catch {
      // containerd stopped already: its shims keep running containers; nothing more to do here
    }
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(cniDir, '10-pulltrace.conflist'), { force: true });
  };
  cluster.addCleanup(stop);
  try {
    await waitHealthy(kubelet, httpProbe(`http://127.0.0.1:${healthzPort}/healthz`), deadline);
    await waitHealthy(
      kubelet,
      async () => {
        const node = await core.readNode({ name: nodeName }).catch(() => null);
        const ready = node?.status?.conditions?.find((c) => c.type === 'Ready');
        return {
          ok: ready?.status === 'True',
          detail:
            node === null
              ? `node ${nodeName} not registered`
              : `node Ready=${ready?.status ?? '?'}: ${ready?.message ?? ''}`,
        };
      },
      deadline,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodeName, kubeconfigPath, component: kubelet, pauseImage, readyMs: Date.now() - t0, stop };
}
