// ServiceAccount tokens as a kubelet gets them for a pod: a TokenRequest bound to the pod
// (boundObjectRef kind Pod). When the pod is bound to a node, the API server also puts the node
// in the token (claim kubernetes.io.node; feature ServiceAccountTokenPodNodeInfo, GA and locked on
// since 1.32), and on every request with that token it sets the user's extra
// `authentication.kubernetes.io/node-name` (and `…/node-uid` when the Node object exists). The
// chart's same-node ValidatingAdmissionPolicy reads that extra: this is how tests give the node
// agent the identity it has in a real cluster without running it in a pod.
import { join } from 'node:path';
import { ApiException, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Cluster } from './cluster.js';
import { writeClusterKubeconfig } from './kubeconfig.js';

/** The user's extra key the API server sets from a node-bound token. */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface NodeBoundTokenOptions {
  namespace: string;
  /** The ServiceAccount (created if missing). */
  serviceAccount: string;
  /** Node the token is bound to, through the pod's spec.nodeName. */
  nodeName: string;
  /**
   * The pod to bind to. Default: a pod `<serviceAccount>-<nodeName>` bound to `nodeName`, made if
   * missing, that never needs to run (its image is never pulled without a kubelet on that node).
   */
  podName?: string;
  /**
   * Create a Node object `nodeName` if there is none (default true). Without one the token still
   * carries the node's name (not its uid), but the pod-garbage-collector deletes pods bound to a
   * missing node after ~40 s, and that invalidates the token.
   */
  createNode?: boolean;
  /** Token lifetime (default 3600 s; the API server's minimum is 600). */
  expirationSeconds?: number;
  /** Audiences (default: the API server's own, so the token works against it). */
  audiences?: string[];
}

/** The decoded `kubernetes.io` private claim of a ServiceAccount token (the parts tests read). */
export interface KubernetesClaims {
  namespace?: string;
  serviceaccount?: { name: string; uid: string };
  pod?: { name: string; uid: string };
  node?: { name: string; uid?: string };
}

export interface NodeBoundToken {
  token: string;
  /** A kubeconfig using the token (cluster CA, no client certificate). */
  kubeconfigPath: string;
  pod: V1Pod;
  /** The token's `kubernetes.io` claim, decoded (not verified). */
  claims: KubernetesClaims;
}

/** Decodes a JWT's payload (no signature check: the API server made it, tests only read it). */
export function jwtPayload(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (part === undefined) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function ignoreConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ApiException && (err as ApiException<unknown>).code === 409)) throw err;
  }
}

/**
 * Makes a ServiceAccount token bound to a pod on `nodeName` (as the kubelet's projected token
 * is) and a kubeconfig that uses it. Requests with it authenticate as
 * `system:serviceaccount:<namespace>:<serviceAccount>` with extra
 * `authentication.kubernetes.io/node-name: [<nodeName>]`. RBAC for the ServiceAccount is the
 * caller's business (install the chart, or bind a role).
 */
export async function nodeBoundToken(cluster: Cluster, opts: NodeBoundTokenOptions): Promise<NodeBoundToken> {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const { namespace, serviceAccount, nodeName } = opts;
  if (opts.createNode !== false) {
    await ignoreConflict(
      core.createNode({
        body: { metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } } },
      }),
    );
  }
  await ignoreConflict(
    core.createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name: serviceAccount, namespace } },
    }),
  );
  const podName = opts.podName ?? `${serviceAccount}-${nodeName}`;
  let pod: V1Pod;
  try {
    pod = await core.readNamespacedPod({ name: podName, namespace });
  } catch (err) {
    if (!(err instanceof ApiException && (err as ApiException<unknown>).code === 404)) throw err;
    pod = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: {
          name: podName,
          namespace,
          labels: { 'app.kubernetes.io/name': 'pulltrace-token-holder' },
        },
        spec: {
          nodeName,
          serviceAccountName: serviceAccount,
          automountServiceAccountToken: false,
          containers: [{ name: 'holder', image: 'registry.test/pulltrace/token-holder:never-pulled' }],
        },
      },
    });
  }
  const uid = pod.metadata?.uid;
  if (uid === undefined) throw new Error(`pod ${namespace}/${podName} has no uid`);
  const tr = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: {
      spec: {
        audiences: opts.audiences ?? [],
        expirationSeconds: opts.expirationSeconds ?? 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: podName, uid },
      },
    },
  });
  const token = tr.status?.token;
  if (token === undefined || token === '') throw new Error('TokenRequest returned no token');
  const claims = (jwtPayload(token)['kubernetes.io'] ?? {}) as KubernetesClaims;
  const kubeconfigPath = writeClusterKubeconfig(
    join(cluster.dir, 'kubeconfigs', `token-${namespace}-${podName}`),
    {
      server: cluster.url,
      caPath: cluster.caPath,
      credentials: { token },
      namespace,
    },
  );
  return { token, kubeconfigPath, pod, claims };
}
