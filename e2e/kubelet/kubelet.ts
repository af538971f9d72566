// A stand-in for one kubelet, for the sandbox and the e2e suite: it does what a kubelet does
// that pulltrace depends on, and nothing else (no containers are run).
//   - watches the pods bound to its node (fieldSelector spec.nodeName=NODE) through the API;
//   - pulls each pod's images through containerd's CRI ImageService/PullImage, init
//     containers first, then containers, one pull at a time across the node (the kubelet's
//     default serializeImagePulls=true; `parallelPulls` > 1 is serializeImagePulls=false with
//     maxParallelImagePulls: that many pods pull at once), skipping images already present
//     (imagePullPolicy IfNotPresent semantics; Always re-pulls);
//   - writes pod status as a kubelet does, with a strategic merge patch of pods/status that
//     leaves condition types it does not own alone: Pending with waiting reasons
//     (PodInitializing / ContainerCreating, ErrImagePull then ImagePullBackOff with
//     back-off retries), then Running with ready containers; the Ready condition also waits
//     for every readiness gate's condition to be True, and is recomputed when they change;
//   - emits the kubelet's Pulling / Pulled (with the image size) / Failed / BackOff events.
// It talks only to the API server (any: the stand-in or a real one) and to containerd.
import {
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type {
  CoreV1Event,
  V1Container,
  V1ContainerStatus,
  V1Pod,
  V1PodCondition,
} from '@kubernetes/client-node';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import { CriPuller } from '../env/cri-puller.js';

export interface KubeletOptions {
  kubeconfig: KubeConfig;
  nodeName: string;
  /** containerd's CRI endpoint, unix:///… or a socket path. */
  criAddress: string;
  /** First back-off after a failed pull (the kubelet's is 10 s, doubling to 5 min). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Pods whose images are pulled at once (default 1: serialized, the kubelet's default). */
  parallelPulls?: number;
  logger?: Logger;
}

interface PodWork {
  key: string;
  pod: V1Pod;
  /** Images still to pull, in order. */
  pending: { container: string; init: boolean; image: string; always: boolean }[];
  failures: number;
  done: boolean;
  deleted: boolean;
}

const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const KUBELET_CONDITIONS = ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'];

/** The CRI error as the kubelet prints it: "rpc error: code = NotFound desc = …". */
function rpcError(err: unknown): string {
  const cause = (err as { cause?: { code?: number; details?: string } }).cause;
  if (cause?.code === undefined || cause.details === undefined) return errorMessage(err);
  const name = (grpc.status[cause.code] ?? String(cause.code))
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _s: string, c: string) => c.toUpperCase());
  return `rpc error: code = ${name} desc = ${cause.details}`;
}

function podKey(p: V1Pod): string {
  return `${p.metadata?.namespace ?? 'default'}/${p.metadata?.name ?? ''}`;
}

function now(): Date {
  return new Date();
}

export class KubeletStandIn {
  private readonly api: CoreV1Api;
  private readonly puller: CriPuller;
  private readonly log: Logger;
  private readonly work = new Map<string, PodWork>();
  private readonly queue: PodWork[] = [];
  private informer: ListWatch<V1Pod> | null = null;
  /** Pods being pulled now (at most parallelPulls). */
  private active = 0;
  private stopped = false;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly parallelPulls: number;

  constructor(private readonly o: KubeletOptions) {
    this.api = o.kubeconfig.makeApiClient(CoreV1Api);
    this.puller = new CriPuller(o.criAddress);
    this.log = o.logger ?? silentLogger();
    this.backoffMs = o.backoffMs ?? 10_000;
    this.maxBackoffMs = o.maxBackoffMs ?? 300_000;
    this.parallelPulls = o.parallelPulls ?? 1;
    if (!Number.isInteger(this.parallelPulls) || this.parallelPulls < 1) {
      throw new Error(`parallelPulls must be a positive integer, got ${this.parallelPulls}`);
    }
  }

  async start(): Promise<void> {
    const fieldSelector = `spec.nodeName=${this.o.nodeName}`;
    this.informer = new ListWatch<V1Pod>(
      '/api/v1/pods',
      new Watch(this.o.kubeconfig),
      () => this.api.listPodForAllNamespaces({ fieldSelector }),
      false,
      undefined,
      fieldSelector,
    );
    this.informer.on('add', (p) => {
      this.onPod(p);
    });
    this.informer.on('update', (p) => {
      this.onPod(p);
    });
    this.informer.on('delete', (p) => {
      const w = this.work.get(podKey(p));
      if (w !== undefined) w.deleted = true;
      this.work.delete(podKey(p));
    });
    this.informer.on('error', (err) => {
      this.log.warn({ err }, 'kubelet watch failed; restarting');
      setTimeout(() => {
        if (!this.stopped) void this.informer?.start();
      }, 1000).unref();
    });
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
    this.puller.close();
  }

  private onPod(pod: V1Pod): void {
    if (this.stopped || pod.metadata?.deletionTimestamp !== undefined) return;
    const key = podKey(pod);
    const known = this.work.get(key);
    if (known !== undefined) {
      known.pod = pod;
      // A readiness gate's condition may have changed: recompute Ready once running.
      if (known.done) void this.writeRunning(known).catch((err: unknown) => this.warn(known, err));
      return;
    }
    const images = [
      ...(pod.spec?.initContainers ?? []).map((c) => ({ c, init: true })),
      ...(pod.spec?.containers ?? []).map((c) => ({ c, init: false })),
    ];
    const w: PodWork = {
      key,
      pod,
      pending: images.map(({ c, init }: { c: V1Container; init: boolean }) => ({
        container: c.name,
        init,
        image: c.image ?? '',
        always: c.imagePullPolicy === 'Always',
      })),
      failures: 0,
      done: false,
      deleted: false,
    };
    this.work.set(key, w);
    void this.writeWaiting(w, null).catch((err: unknown) => this.warn(w, err));
    this.queue.push(w);
    this.drain();
  }

  private warn(w: PodWork, err: unknown): void {
    if (!w.deleted) this.log.warn({ pod: w.key, err: errorMessage(err) }, 'kubelet status write failed');
  }

  /**
   * Starts pods from the queue while fewer than parallelPulls are pulling: one pull at a time
   * across the node by default, like the kubelet's serialized image puller. Each pod's own
   * images are always pulled in order.
   */
  private drain(): void {
    while (this.active < this.parallelPulls && !this.stopped) {
      const w = this.queue.shift();
      if (w === undefined) return;
      if (w.deleted) continue;
      this.active++;
      void this.pullPod(w)
        .catch((err: unknown) => {
          this.log.warn({ pod: w.key, err: errorMessage(err) }, 'kubelet pod pull failed');
        })
        .finally(() => {
          this.active--;
          this.drain();
        });
    }
  }

  private async pullPod(w: PodWork): Promise<void> {
    while (w.pending.length > 0 && !w.deleted && !this.stopped) {
      const next = w.pending[0];
      if (next === undefined) break;
      const present = next.always ? null : await this.puller.imageStatus(next.image).catch(() => null);
      if (present !== null) {
        await this.event(
          w,
          'Normal',
          'Pulled',
          `Container image "${next.image}" already present on machine`,
          next,
        );
        w.pending.shift();
        continue;
      }
      await this.event(w, 'Normal', 'Pulling', `Pulling image "${next.image}"`, next);
      const started = Date.now();
      try {
        const id = await this.puller.pullImage(next.image);
        const size = (await this.puller.imageStatus(id).catch(() => null))?.size ?? 0;
        const secs = ((Date.now() - started) / 1000).toFixed(3);
        await this.event(
          w,
          'Normal',
          'Pulled',
          `Successfully pulled image "${next.image}" in ${secs}s (${secs}s including waiting). Image size: ${size} bytes.`,
          next,
        );
        w.pending.shift();
        w.failures = 0;
      } catch (err) {
        w.failures++;
        const message = `Failed to pull image "${next.image}": ${rpcError(err)}`;
        await this.event(w, 'Warning', 'Failed', message, next);
        await this.writeWaiting(w, { reason: 'ErrImagePull', message }).catch((e: unknown) =>
          this.warn(w, e),
        );
        const backoff = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (w.failures - 1));
        // Let other pods pull meanwhile, as the kubelet does; come back after the back-off.
        setTimeout(() => {
          if (w.deleted || this.stopped) return;
          void this.writeWaiting(w, {
            reason: 'ImagePullBackOff',
            message: `Back-off pulling image "${next.image}"`,
          }).catch((e: unknown) => this.warn(w, e));
          this.queue.push(w);
          this.drain();
        }, backoff).unref();
        await this.event(w, 'Normal', 'BackOff', `Back-off pulling image "${next.image}"`, next);
        return;
      }
    }
    if (w.deleted || this.stopped) return;
    w.done = true;
    await this.writeRunning(w).catch((err: unknown) => this.warn(w, err));
  }

  private containerStatuses(
    w: PodWork,
    init: boolean,
    waiting: { reason: string; message: string } | null,
  ): V1ContainerStatus[] {
    const list = init ? (w.pod.spec?.initContainers ?? []) : (w.pod.spec?.containers ?? []);
    const blocked = w.pending[0]?.container;
    const anyInitPending = w.pending.some((p) => p.init);
    return list.map((c) => {
      const isBlocked = c.name === blocked && waiting !== null;
      const reason = isBlocked
        ? waiting.reason
        : !init && anyInitPending
          ? 'PodInitializing'
          : 'ContainerCreating';
      return {
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: false,
        restartCount: 0,
        started: false,
        state: { waiting: isBlocked ? { reason, message: waiting.message } : { reason } },
      };
    });
  }

  private async writeWaiting(w: PodWork, waiting: { reason: string; message: string } | null): Promise<void> {
    const t = now();
    const conditions: V1PodCondition[] = [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: t },
      {
        type: 'Initialized',
        status: w.pending.some((p) => p.init) ? 'False' : 'True',
        lastTransitionTime: t,
      },
      { type: 'ContainersReady', status: 'False', lastTransitionTime: t, reason: 'ContainersNotReady' },
      { type: 'Ready', status: 'False', lastTransitionTime: t, reason: 'ContainersNotReady' },
    ];
    await this.patchStatus(w, {
      phase: 'Pending',
      hostIP: '127.0.0.1',
      startTime: w.pod.status?.startTime ?? t,
      conditions: this.keepTransitions(w.pod, conditions),
      initContainerStatuses: this.containerStatuses(w, true, waiting),
      containerStatuses: this.containerStatuses(w, false, waiting),
    });
  }

  private async writeRunning(w: PodWork): Promise<void> {
    const t = now();
    const gates = (w.pod.spec?.readinessGates ?? []).map((g) => g.conditionType);
    const have = new Map((w.pod.status?.conditions ?? []).map((c) => [c.type, c.status]));
    const gatesOk = gates.every((g) => have.get(g) === 'True');
    // reason/message null: a strategic merge patch keeps fields it does not mention, and the
    // kubelet clears the "not ready" reason when a condition turns True.
    const cleared = { reason: null, message: null } as unknown as Pick<V1PodCondition, 'reason' | 'message'>;
    const conditions: V1PodCondition[] = [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: t },
      { type: 'Initialized', status: 'True', lastTransitionTime: t, ...cleared },
      { type: 'ContainersReady', status: 'True', lastTransitionTime: t, ...cleared },
      gatesOk
        ? { type: 'Ready', status: 'True', lastTransitionTime: t, ...cleared }
        : {
            type: 'Ready',
            status: 'False',
            lastTransitionTime: t,
            reason: 'ReadinessGatesNotReady',
            message: `corresponding condition of pod readiness gate "${gates.find((g) => have.get(g) !== 'True') ?? ''}" does not exist.`,
          },
    ];
    const running = (c: V1Container, init: boolean): V1ContainerStatus => ({
      name: c.name,
      image: c.image ?? '',
      imageID: c.image ?? '',
      ready: !init,
      restartCount: 0,
      started: !init,
      state: init
        ? { terminated: { exitCode: 0, reason: 'Completed', startedAt: t, finishedAt: t } }
        : { running: { startedAt: t } },
    });
    const desired = {
      phase: 'Running',
      hostIP: '127.0.0.1',
      podIP: '127.0.0.1',
      startTime: w.pod.status?.startTime ?? t,
      conditions: this.keepTransitions(w.pod, conditions),
      initContainerStatuses: (w.pod.spec?.initContainers ?? []).map((c) => running(c, true)),
      containerStatuses: (w.pod.spec?.containers ?? []).map((c) => running(c, false)),
    };
    // Written once, then only when Ready flips (a readiness gate's condition changed).
    const ready = w.pod.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    if (w.pod.status?.phase === 'Running' && ready === (gatesOk ? 'True' : 'False')) return;
    await this.patchStatus(w, desired);
  }

  /** Keeps lastTransitionTime of kubelet conditions whose status did not change. */
  private keepTransitions(pod: V1Pod, next: V1PodCondition[]): V1PodCondition[] {
    const prev = new Map(
      (pod.status?.conditions ?? [])
        .filter((c) => KUBELET_CONDITIONS.includes(c.type))
        .map((c) => [c.type, c]),
    );
    return next.map((c) => {
      const p = prev.get(c.type);
      return p?.status === c.status && p.lastTransitionTime !== undefined
        ? {
            type: c.type,
            status: c.status,
            reason: c.reason,
            message: c.message,
            lastTransitionTime: p.lastTransitionTime,
          }
        : c;
    });
  }

  private async patchStatus(w: PodWork, status: object): Promise<void> {
    if (w.deleted) return;
    const name = w.pod.metadata?.name ?? '';
    const namespace = w.pod.metadata?.namespace ?? 'default';
    w.pod = await this.api.patchNamespacedPodStatus({ name, namespace, body: { status } }, STRATEGIC);
  }

  private async event(
    w: PodWork,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    c: { container: string; init: boolean },
  ): Promise<void> {
    const meta = w.pod.metadata;
    const namespace = meta?.namespace ?? 'default';
    const t = now();
    const body: CoreV1Event = {
      metadata: { generateName: `${meta?.name ?? 'pod'}.`, namespace },
      involvedObject: {
        kind: 'Pod',
        apiVersion: 'v1',
        name: meta?.name,
        namespace,
        uid: meta?.uid,
        fieldPath: `spec.${c.init ? 'initContainers' : 'containers'}{${c.container}}`,
      },
      type,
      reason,
      message,
      source: { component: 'kubelet', host: this.o.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: this.o.nodeName,
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
    };
    await this.api.createNamespacedEvent({ namespace, body }).catch((err: unknown) => {
      this.warn(w, err);
    });
  }
}
