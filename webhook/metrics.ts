// The webhook's Prometheus metrics, on a registry of their own (one per app, so tests can
// build several apps in one process).
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from './mutate.js';

/** The webhook's metrics and how the app feeds them. */
export interface WebhookMetrics {
  /** Served on /metrics (app and side server). */
  registry: Registry;
  /** Counts one answered request and its duration in seconds. */
  observe(outcome: Outcome, seconds: number): void;
}

/**
 * A fresh registry with pulltrace_webhook_requests_total{outcome},
 * pulltrace_webhook_request_duration_seconds{outcome} and pulltrace_webhook_patches_total;
 * with `processMetrics`, Node's default metrics too, prefixed pulltrace_webhook_.
 */
export function createWebhookMetrics(opts: { processMetrics: boolean }): WebhookMetrics {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'pulltrace_webhook_' });
  const requests = new Counter({
    name: 'pulltrace_webhook_requests_total',
    help: 'Admission requests answered, by outcome (patched, unchanged, opted_out, skipped, error, bad_request).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'pulltrace_webhook_request_duration_seconds',
    help: 'Time to answer an admission request, by outcome.',
    labelNames: ['outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const patches = new Counter({
    name: 'pulltrace_webhook_patches_total',
    help: 'Pods patched (labelled and/or given the readiness gate).',
    registers: [registry],
  });
  return {
    registry,
    observe(outcome, seconds) {
      requests.inc({ outcome });
      duration.observe({ outcome }, seconds);
      if (outcome === 'patched') patches.inc();
    },
  };
}
