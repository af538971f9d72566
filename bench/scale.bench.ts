// The node agent's API writes at cluster scale, by simulation (bench/scale-sim.ts: the real
// WriteBudget per node, modelled pulls, a simulated clock; no cluster), and the pod informer's
// memory per node, measured. docs/scale.md quotes this output.
//   npm run bench -- scale
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import {
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  LABEL_PROGRESS,
  LABEL_TRACKED,
  MAX_STATUS_ANNOTATION_BYTES,
} from '../common/contract.js';
import type { JsonObject } from '../webhook/mutate.js';
import { podReview } from '../test-support/webhook.js';
import { DENSE_NODE, ROLLOUT_5000, simulate, type ScaleOptions, type ScaleResult } from './scale-sim.js';

const R = ROLLOUT_5000;

/** The scenarios: the 5 000-pod rollout, its variations, and one dense node. */
export const SCENARIOS: { name: string; options: ScaleOptions }[] = [
  { name: 'rollout 5000 pods / 5000 nodes, 500 MB, 100 pods/s', options: R },
  { name: '  same, 100 MB image', options: { ...R, imageBytes: 100e6 } },
  { name: '  same, 2 GB image', options: { ...R, imageBytes: 2000e6 } },
  { name: '  same, created at 20 pods/s', options: { ...R, createPerSecond: 20 } },
  {
    name: '  same, --min-patch-interval 5s',
    options: { ...R, budget: { ...R.budget, minPatchIntervalMs: 5000 } },
  },
  {
    name: 'dense node: 110 pods, 20 pulls at once, 100 MB each',
    options: DENSE_NODE,
  },
];

const f0 = (n: number) => Math.round(n).toLocaleString('en-US').replace(/,/g, ' ');
const f1 = (n: number) => n.toFixed(1);

function row(name: string, r: ScaleResult): string[] {
  return [
    name,
    f0(r.seconds),
    f1(r.pullSeconds.p50),
    `${f1(r.writesPerPod.mean)} / ${f0(r.writesPerPod.p99)} / ${f0(r.maxWritesPerPull)}`,
    f1(r.requestsPerPod.mean),
    f0(r.totalRequests),
    f0(r.clusterPeakPerSecond),
    f0(r.clusterMeanPerSecond),
    `${f0(r.nodePeakPerSecond)} / ${f1(r.nodePeakPer10s)}`,
    f0(r.kubeletRequests),
    `${f0(r.finalWritten)}/${f0(r.options.pods)}`,
  ];
}

function table(rows: string[][]): string {
  const header = [
    'scenario',
    'span s',
    'pull p50 s',
    'writes/pod mean / p99 / max per pull',
    'req/pod',
    'requests',
    'cluster peak req/s',
    'cluster mean req/s',
    'node peak req/s (1 s / 10 s)',
    'kubelet requests',
    'final written',
  ];
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** A garbage collection, if one can be had (the bench is not started with --expose-gc). */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  return gc ?? (() => undefined);
}

/** A Deployment's pod as the API returns it: spec, status, managedFields, our keys. */
function apiPod(statusBytes: number): JsonObject {
  const review = podReview();
  const pod = (review.request as JsonObject).object as JsonObject;
  const meta = pod.metadata as JsonObject;
  meta.name = 'web-7d9f8b6c5-x2x9z';
  meta.uid = '4c0f6d0e-0b8d-4b8a-9a57-2f3c2d1e0a9b';
  meta.resourceVersion = '123456789';
  meta.creationTimestamp = '2026-11-25T10:00:00Z';
  const status = JSON.stringify({ pad: 'x'.repeat(Math.max(0, statusBytes - 12)) });
  meta.labels = { ...(meta.labels as JsonObject), [LABEL_TRACKED]: 'true', [LABEL_PROGRESS]: '100' };
  meta.annotations = {
    [ANNOTATION_PROGRESS]: '100',
    [ANNOTATION_PHASE]: 'Pulled',
    [ANNOTATION_STATUS]: status,
  };
  const managed = (manager: string, op: string, sub?: string) => ({
    manager,
    operation: op,
    apiVersion: 'v1',
    time: '2026-11-25T10:00:05Z',
    fieldsType: 'FieldsV1',
    fieldsV1: {
      'f:metadata': { 'f:labels': { '.': {}, 'f:app': {}, 'f:pod-template-hash': {} } },
      'f:spec': {
        'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {}, 'f:ports': {} } },
      },
    },
    ...(sub === undefined ? {} : { subresource: sub }),
  });
  meta.managedFields = [
    managed('kube-controller-manager', 'Update'),
    managed('kubelet', 'Update', 'status'),
    managed('pulltrace', 'Update'),
    managed('pulltrace', 'Update', 'status'),
  ];
  const cond = (type: string, s: string) => ({ type, status: s, lastTransitionTime: '2026-11-25T10:00:05Z' });
  pod.status = {
    phase: 'Running',
    hostIP: '10.0.3.17',
    podIP: '10.244.3.41',
    podIPs: [{ ip: '10.244.3.41' }],
    startTime: '2026-11-25T10:00:01Z',
    qosClass: 'Burstable',
    conditions: [
      cond('PodReadyToStartContainers', 'True'),
      cond('Initialized', 'True'),
      cond('Ready', 'True'),
      cond('ContainersReady', 'True'),
      cond('PodScheduled', 'True'),
      {
        type: 'pulltrace.io/ImagesPulled',
        status: 'True',
        reason: 'Pulled',
        message: 'registry.test/team/web:1.4.2 pulled: 512.0 MB fetched',
        lastTransitionTime: '2026-11-25T10:00:05Z',
      },
    ],
    containerStatuses: [
      {
        name: 'web',
        image: 'registry.test/team/web:1.4.2',
        imageID: `registry.test/team/web@sha256:${'a'.repeat(64)}`,
        containerID: `containerd://${'b'.repeat(64)}`,
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: '2026-11-25T10:00:06Z' } },
      },
    ],
  };
  return pod;
}

/** Heap bytes per pod held as the informer holds them (parsed JSON), over `n` copies. */
function heapPerPod(text: string, n: number, gc: () => void): number {
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const held: unknown[] = [];
  for (let i = 0; i < n; i++) held.push(JSON.parse(text));
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (held.length !== n) throw new Error('unreachable');
  return (after - before) / n;
}

export async function run(): Promise<void> {
  const results: { name: string; r: ScaleResult; ms: number }[] = [];
  for (const s of SCENARIOS) {
    const t0 = performance.now();
    const r = simulate(s.options);
    results.push({ name: s.name, r, ms: performance.now() - t0 });
    // Each scenario runs synchronously for up to ~2 s: let output and signals through between them.
    await new Promise((resolve) => setImmediate(resolve));
  }
  console.log(
    `Simulated with the agent's defaults (--min-patch-interval 2s, --api-qps 5, --api-burst 10, ` +
      `--max-writes-per-pull 25, --stall-after 30s, 1 s poll); per node throughput lognormal, ` +
      `median ${f0(R.throughputMedian / 1e6)} MB/s (σ ${R.throughputSigma}); ${R.stallShare * 100} % of pulls stall ` +
      `${R.stallSeconds[0]}-${R.stallSeconds[1]} s, ${R.failShare * 100} % fail once and are retried after ` +
      `${R.retryBackoffSeconds} s. A write = 1 request (one pods/status patch); events 1 each.\n`,
  );
  console.log(table(results.map(({ name, r }) => row(name, r))));
  const main = results[0]?.r;
  if (main !== undefined) {
    console.log(
      `\nrollout: ${f0(main.totalRequests)} requests in all (${f0(main.events)} events), ` +
        `${f0(main.stalls)} stalls and ${f0(main.failures)} failed pulls shown; the kubelet's own writes for ` +
        `the same pods ≈ ${f0(main.kubeletRequests)}; node leases of 5 000 nodes alone: 500 writes/s.`,
    );
  }
  console.log(`(simulation time: ${results.map((x) => `${f0(x.ms)} ms`).join(', ')})`);

  const gc = collector();
  const typical = JSON.stringify(apiPod(900));
  const worst = JSON.stringify(apiPod(MAX_STATUS_ANNOTATION_BYTES));
  const n = 1100;
  const typicalHeap = heapPerPod(typical, n, gc);
  const worstHeap = heapPerPod(worst, n, gc);
  console.log(
    `\ninformer memory (pods held as parsed JSON, ${n} copies, after gc): typical pod ` +
      `${f0(typical.length)} B JSON → ${f0(typicalHeap)} B heap; with a full ${f0(MAX_STATUS_ANNOTATION_BYTES)} B ` +
      `status annotation ${f0(worst.length)} B → ${f0(worstHeap)} B. 110 pods on a node: ` +
      `${f1((110 * typicalHeap) / 1024 / 1024)} MiB typical, ${f1((110 * worstHeap) / 1024 / 1024)} MiB at the bound.`,
  );
}
