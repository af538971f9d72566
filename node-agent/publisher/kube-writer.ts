// The publisher's edge to the API server: the two writes it makes (the pods/status patch of
// labels, annotations and condition; an event) and the pod watch, over @kubernetes/client-node. Errors come back classified so
// the publisher decides: gone (404), retry after a delay (409, 429 with Retry-After, 5xx,
// network), or give up on this write (other 4xx: a bug; logged).
import { asRecord } from '../../common/json.js';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type CoreV1Event,
  type V1Pod,
} from '@kubernetes/client-node';
import { LABEL_TRACKED } from '../../common/contract.js';
import { errorMessage } from '../../common/errors.js';
import type { PodPatch } from './patches.js';

/** What to do about a failed write (classify()). */
export type WriteError =
  | { kind: 'gone' }
  /** `retryAfter`: the delay is the server's own (a 429's Retry-After), not a default. */
  | { kind: 'retry'; afterMs: number; message: string; retryAfter?: true }
  | { kind: 'fatal'; message: string };

/** What the publisher needs from the API (a fake implements it in unit tests). */
export interface PodWriter {
  /**
   * PATCH pods/<name>/status with a strategic merge patch of the owned labels, annotations and
   * the condition (patches.ts). Resolves to the pod as stored; rejects with the API's error.
   */
  patchStatus(namespace: string, name: string, patch: PodPatch): Promise<V1Pod>;
  /** POST an Event in `namespace`. Rejects with the API's error. */
  createEvent(namespace: string, body: CoreV1Event): Promise<void>;
}

/** A running list + watch of the node's pods (watchNodePods). */
export interface PodWatch {
  /** Lists, then watches; resolves once started (a failed list comes through onError). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Where watchNodePods sends what it sees. */
export interface PodWatchHandlers {
  /** The list of the node's tracked pods arrived (the API server accepted the request). */
  onListed?(): void;
  /** A pod was listed, added or changed. */
  onPod(pod: V1Pod): void;
  /** A pod was deleted (or left the selection). */
  onDelete(pod: V1Pod): void;
  /** The list or the watch failed; the watch is not restarted by itself. */
  onError(err: unknown): void;
}

const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/**
 * The API server's own words for a refusal: the `message` of the Status it answered with (an
 * RBAC 403 names the verb and resource, an admission policy's 422 its message), at most 500
 * characters; null when the body is not a Status.
 */
export function statusMessage(err: ApiException<unknown>): string | null {
  const body: unknown = err.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return null;
    }
  }
  const m = asRecord(parsed)?.message;
  return typeof m === 'string' && m !== '' ? m.slice(0, 500) : null;
}

/**
 * Turns a failed API call into what to do about it: 404 → gone; 409 → retry after 200 ms; 429 →
 * retry after its Retry-After (seconds, at least 1), else 1 s; 5xx and errors without an HTTP
 * answer (network, timeouts) → retry after 1 s; any other status → fatal. The publisher doubles
 * these delays for a pod's patches failing in a row, except a Retry-After.
 */
export function classify(err: unknown): WriteError {
  if (err instanceof ApiException) {
    const code = (err as ApiException<unknown>).code;
    const headers = (err as ApiException<unknown>).headers;
    const message = `HTTP ${code}: ${statusMessage(err) ?? errorMessage(err).slice(0, 300)}`;
    if (code === 404) return { kind: 'gone' };
    if (code === 409) return { kind: 'retry', afterMs: 200, message };
    if (code === 429) {
      const retryAfter = Number(headers['retry-after'] ?? headers['Retry-After']);
      return Number.isFinite(retryAfter)
        ? { kind: 'retry', afterMs: Math.max(1, retryAfter) * 1000, message, retryAfter: true }
        : { kind: 'retry', afterMs: 1000, message };
    }
    if (code >= 500) return { kind: 'retry', afterMs: 1000, message };
    return { kind: 'fatal', message };
  }
  return { kind: 'retry', afterMs: 1000, message: errorMessage(err) };
}

/** The PodWriter over @kubernetes/client-node's CoreV1Api; writes with fieldManager "pulltrace". */
export class KubePodWriter implements PodWriter {
  private readonly api: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  patchStatus(namespace: string, name: string, patch: PodPatch): Promise<V1Pod> {
    return this.api.patchNamespacedPodStatus(
      { name, namespace, body: patch, fieldManager: 'pulltrace' },
      STRATEGIC,
    );
  }

  async createEvent(namespace: string, body: CoreV1Event): Promise<void> {
    await this.api.createNamespacedEvent({ namespace, body });
  }
}

/**
 * Watches the tracked pods on one node: fieldSelector spec.nodeName, labelSelector
 * pulltrace.io/tracked=true. client-node's ListWatch lists, then watches from the list's
 * resourceVersion, and lists again after a 410 Gone.
 */
export function watchNodePods(kc: KubeConfig, nodeName: string, h: PodWatchHandlers): PodWatch {
  const api = kc.makeApiClient(CoreV1Api);
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const labelSelector = `${LABEL_TRACKED}=true`;
  const lw = new ListWatch<V1Pod>(
    '/api/v1/pods',
    new Watch(kc),
    async () => {
      const list = await api.listPodForAllNamespaces({ fieldSelector, labelSelector });
      h.onListed?.();
      return list;
    },
    false,
    labelSelector,
    fieldSelector,
  );
  lw.on('add', (p) => {
    h.onPod(p);
  });
  lw.on('update', (p) => {
    h.onPod(p);
  });
  lw.on('delete', (p) => {
    h.onDelete(p);
  });
  lw.on('error', (err) => {
    h.onError(err);
  });
  return {
    start: () => lw.start(),
    stop: () => lw.stop(),
  };
}
