// Keeps the node's pod watch (publisher/kube-writer.ts watchNodePods) running: a start that
// fails or a watch that ends is retried with the common back-off, and each distinct cause is
// said once, in words a user can act on (a kubeconfig the client refuses, credentials refused,
// RBAC, the API server unreachable), not as a stack trace every second. `/readyz` reads
// `notReady()`.
import { ApiException } from '@kubernetes/client-node';
import { backoffMs, type Backoff } from '../common/backoff.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logging.js';

/** Why the pod watch does not run, and what to do about it. */
export interface KubeProblem {
  /** One line: what failed. */
  message: string;
  /** What to do, or null when the cause is transient. */
  hint: string | null;
}

/**
 * Words for a Kubernetes API failure (from @kubernetes/client-node): refused kubeconfig, 401,
 * 403, unreachable, else the error's own message.
 */
export function explainKubeError(err: unknown): KubeProblem {
  const text = errorMessage(err);
  if (/HTTP protocol is not allowed/i.test(text)) {
    return {
      message: 'the kubeconfig points at a plain http:// server, which the Kubernetes client refuses',
      hint: 'use the https:// address of the API server, or set insecure-skip-tls-verify: true for that cluster in the kubeconfig (e.g. behind `kubectl proxy`)',
    };
  }
  const code = err instanceof ApiException ? (err as ApiException<unknown>).code : undefined;
  if (code === 401) {
    return {
      message: 'the API server refused the credentials (HTTP 401)',
      hint: "check the kubeconfig's user, or the service account token mounted in the pod",
    };
  }
  if (code === 403) {
    return {
      message: 'RBAC forbids listing/watching pods (HTTP 403)',
      hint: "the agent needs list and watch on pods in all namespaces: the chart's ClusterRole pulltrace-node-agent gives it; check its ClusterRoleBinding names this service account",
    };
  }
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|socket hang up/i.test(text)) {
    return { message: `the API server is unreachable: ${text.slice(0, 200)}`, hint: null };
  }
  return { message: text.slice(0, 300), hint: null };
}

export interface PodWatchRunnerOptions {
  start: () => Promise<void>;
  log: Logger;
  /** Default: 1 s doubling to 60 s. */
  backoff?: Backoff;
}

/** Runs a pod watch until stop(): restarts it with back-off, says each new problem once. */
export class PodWatchRunner {
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastSaid: string | null = null;
  /** The current problem, null while the watch runs. */
  problem: KubeProblem | null = { message: 'pod watch not started yet', hint: null };

  constructor(private readonly o: PodWatchRunnerOptions) {}

  /** Starts the watch (resolves at once; failures are retried). */
  start(): void {
    void this.run();
  }

  /** The watch listed the pods: it works. */
  ok(): void {
    if (this.problem !== null && this.lastSaid !== null) this.o.log.info('pod watch running again');
    this.problem = null;
    this.lastSaid = null;
    this.attempt = 0;
  }

  /** The running watch ended with an error: restart it. */
  failed(err: unknown): void {
    this.report(err);
    this.retry();
  }

  /** For /readyz: null when watching, else why not. */
  notReady(): string | null {
    if (this.problem === null) return null;
    return `pod watch: ${this.problem.message}`;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    // Success is the list arriving (ok(), from onListed): the client resolves start() and
    // reports a failed list through the watch's error callback instead.
    try {
      await this.o.start();
    } catch (err) {
      this.report(err);
      this.retry();
    }
  }

  private report(err: unknown): void {
    const p = explainKubeError(err);
    this.problem = p;
    const retryInMs = backoffMs(this.attempt, this.o.backoff ?? { baseMs: 1000, maxMs: 60_000 });
    if (p.message === this.lastSaid) {
      this.o.log.debug({ retryInMs }, `pod watch still failing: ${p.message}`);
      return;
    }
    this.lastSaid = p.message;
    this.o.log.warn({ hint: p.hint ?? undefined, retryInMs }, `pod watch failed: ${p.message}`);
  }

  private retry(): void {
    if (this.stopped) return;
    const wait = backoffMs(this.attempt, this.o.backoff ?? { baseMs: 1000, maxMs: 60_000 });
    this.attempt++;
    this.timer = setTimeout(() => void this.run(), wait);
    this.timer.unref();
  }
}
