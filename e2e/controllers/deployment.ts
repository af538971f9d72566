// A minimal Deployment + ReplicaSet controller for the sandbox, talking only to the API: enough
// for `kubectl create deployment`, `kubectl scale`, `kubectl set image`, `kubectl rollout
// status` and `kubectl pulltrace rollout` to behave as a user expects. One ReplicaSet per pod
// template (named NAME-HASH, labelled pod-template-hash=HASH, owned by the Deployment); a new
// template scales the old ReplicaSets to zero at once (no surge/unavailability subtleties);
// pods are created from the template with generateName and an owner reference.
// A reconcile loop over lists, not a set of informers: small and obviously correct for a stand-in.
import { createHash } from 'node:crypto';
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type {
  V1Deployment,
  V1OwnerReference,
  V1Pod,
  V1PodTemplateSpec,
  V1ReplicaSet,
} from '@kubernetes/client-node';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A stable short hash of the pod template, like the controller's pod-template-hash. */
export function templateHash(t: V1PodTemplateSpec | undefined): string {
  const h = createHash('sha256')
    .update(JSON.stringify(t ?? {}))
    .digest('hex');
  // Only consonants and digits, as the real controller's safe encoding: never spells a word.
  const alphabet = '0123456789bcdfghjklmnpqrstvwxz';
  let out = '';
  for (let i = 0; i < 10; i++) out += alphabet.charAt(parseInt(h.charAt(i), 16));
  return out;
}

function ownerRef(kind: string, o: { metadata?: { name?: string; uid?: string } }): V1OwnerReference {
  return {
    apiVersion: 'apps/v1',
    kind,
    name: o.metadata?.name ?? '',
    uid: o.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

function ownedBy(
  o: { metadata?: { ownerReferences?: V1OwnerReference[] } },
  uid: string | undefined,
): boolean {
  return (o.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true);
}

function isReady(p: V1Pod): boolean {
  return (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

export class DeploymentController {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    kc: KubeConfig,
    private readonly intervalMs = 300,
    logger?: Logger,
  ) {
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.log = logger ?? silentLogger();
  }

  start(): void {
    const tick = () => {
      this.running = this.reconcileAll()
        .catch((err: unknown) => {
          this.log.warn({ err: errorMessage(err) }, 'deployment controller pass failed');
        })
        .finally(() => {
          this.running = null;
          if (this.timer !== null) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass over every Deployment. */
  async reconcileAll(): Promise<void> {
    const deployments = await this.apps.listDeploymentForAllNamespaces();
    for (const d of deployments.items) await this.reconcile(d);
  }

  private async reconcile(d: V1Deployment): Promise<void> {
    const ns = d.metadata?.namespace ?? 'default';
    const name = d.metadata?.name ?? '';
    const want = d.spec?.replicas ?? 1;
    const hash = templateHash(d.spec?.template);
    const all = (await this.apps.listNamespacedReplicaSet({ namespace: ns })).items.filter((rs) =>
      ownedBy(rs, d.metadata?.uid),
    );
    let current = all.find((rs) => rs.metadata?.labels?.['pod-template-hash'] === hash);
    if (current === undefined) {
      const labels = { ...(d.spec?.template.metadata?.labels ?? {}), 'pod-template-hash': hash };
      current = await this.apps.createNamespacedReplicaSet({
        namespace: ns,
        body: {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          metadata: {
            name: `${name}-${hash}`,
            namespace: ns,
            labels,
            ownerReferences: [ownerRef('Deployment', d)],
          },
          spec: {
            replicas: want,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels, annotations: d.spec?.template.metadata?.annotations },
              spec: d.spec?.template.spec,
            },
          },
        },
      });
    }
    const pods = (await this.core.listNamespacedPod({ namespace: ns })).items.filter(
      (p) => p.metadata?.deletionTimestamp === undefined,
    );
    let updated = 0;
    let ready = 0;
    let total = 0;
    for (const rs of all.concat(all.includes(current) ? [] : [current])) {
      const replicas = rs === current ? want : 0;
      if ((rs.spec?.replicas ?? 0) !== replicas) {
        await this.apps.patchNamespacedReplicaSet(
          { name: rs.metadata?.name ?? '', namespace: ns, body: { spec: { replicas } } },
          MERGE,
        );
      }
      const mine = pods.filter((p) => ownedBy(p, rs.metadata?.uid));
      const kept = await this.scale(rs, mine, replicas);
      const rsReady = kept.filter(isReady).length;
      await this.setReplicaSetStatus(rs, kept.length, rsReady);
      total += kept.length;
      ready += rsReady;
      if (rs === current) updated = kept.length;
    }
    const status = {
      observedGeneration: d.metadata?.generation ?? 1,
      replicas: total,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: ready,
      unavailableReplicas: Math.max(0, want - ready),
    };
    const s = d.status ?? {};
    if (
      s.observedGeneration !== status.observedGeneration ||
      s.replicas !== status.replicas ||
      s.updatedReplicas !== status.updatedReplicas ||
      (s.readyReplicas ?? 0) !== status.readyReplicas ||
      (s.availableReplicas ?? 0) !== status.availableReplicas
    ) {
      const now = new Date().toISOString();
      await this.apps.patchNamespacedDeploymentStatus(
        {
          name,
          namespace: ns,
          body: {
            status: {
              ...status,
              conditions: [
                {
                  type: 'Available',
                  status: ready >= want ? 'True' : 'False',
                  reason: ready >= want ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
                  lastUpdateTime: now,
                  lastTransitionTime: now,
                },
                {
                  type: 'Progressing',
                  status: 'True',
                  reason: updated >= want && total === want ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated',
                  message: `ReplicaSet "${current.metadata?.name ?? ''}" is progressing.`,
                  lastUpdateTime: now,
                  lastTransitionTime: now,
                },
              ],
            },
          },
        },
        MERGE,
      );
    }
  }

  /** Creates or deletes pods of `rs` to reach `replicas`; returns the pods it keeps. */
  private async scale(rs: V1ReplicaSet, pods: V1Pod[], replicas: number): Promise<V1Pod[]> {
    const ns = rs.metadata?.namespace ?? 'default';
    const kept = pods.slice(0, replicas);
    for (const p of pods.slice(replicas)) {
      await this.core
        .deleteNamespacedPod({ name: p.metadata?.name ?? '', namespace: ns })
        .catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'pod already gone'));
    }
    for (let i = pods.length; i < replicas; i++) {
      const t = rs.spec?.template;
      kept.push(
        await this.core.createNamespacedPod({
          namespace: ns,
          body: {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              generateName: `${rs.metadata?.name ?? 'pod'}-`,
              namespace: ns,
              labels: t?.metadata?.labels,
              annotations: t?.metadata?.annotations,
              ownerReferences: [ownerRef('ReplicaSet', rs)],
            },
            spec: t?.spec ?? { containers: [] },
          },
        }),
      );
    }
    return kept;
  }

  private async setReplicaSetStatus(rs: V1ReplicaSet, replicas: number, ready: number): Promise<void> {
    const s = rs.status;
    if (s?.replicas === replicas && (s.readyReplicas ?? 0) === ready) return;
    await this.apps.patchNamespacedReplicaSetStatus(
      {
        name: rs.metadata?.name ?? '',
        namespace: rs.metadata?.namespace ?? 'default',
        body: {
          status: {
            replicas,
            readyReplicas: ready,
            availableReplicas: ready,
            observedGeneration: rs.metadata?.generation ?? 1,
          },
        },
      },
      MERGE,
    );
  }
}
