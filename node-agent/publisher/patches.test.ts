import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod, V1PodCondition } from '@kubernetes/client-node';
import {
  ANNOTATION_ETA_SECONDS,
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  LABEL_ETA,
  LABEL_PROGRESS,
  LABEL_TRACKED,
} from '../../common/contract.js';
import { buildPatch, previousStateOf, type PodPatch } from './patches.js';
import { podProgress, publishedState, type PublishedState } from './pod-progress.js';
import { MB, imageStatus, pulled, resolving } from '../../test-support/publisher.js';

const NGINX = 'docker.io/library/nginx:1.27';
const T0 = new Date('2026-11-25T10:00:00Z');
const T1 = new Date('2026-11-25T10:00:05Z');

const downloading = (done: number, eta: number | null, now = T0, gen?: number) =>
  publishedState(
    podProgress([imageStatus({ bytesDone: done * MB, bytesTotal: 100 * MB, etaSeconds: eta })]),
    gen === undefined ? { now } : { now, generation: gen },
  );

/** Applies the patch the way the API server does, to a plain pod (SMP: maps by key, conditions by type). */
function apply(pod: V1Pod, patch: PodPatch | null): V1Pod {
  const meta = patch?.metadata;
  const status = patch?.status;
  const out = structuredClone(pod);
  const m = (out.metadata ??= {});
  const merge = (into: Record<string, string>, patch: Record<string, string | null> | undefined) => {
    for (const [k, v] of Object.entries(patch ?? {})) {
      if (v === null) Reflect.deleteProperty(into, k);
      else into[k] = v;
    }
    return into;
  };
  if (meta !== undefined) {
    m.labels = merge(m.labels ?? {}, meta.labels);
    m.annotations = merge(m.annotations ?? {}, meta.annotations);
  }
  if (status !== undefined) {
    const st = (out.status ??= {});
    const conditions = st.conditions ?? [];
    for (const c of status.conditions) {
      const i = conditions.findIndex((x) => x.type === c.type);
      const merged: Record<string, unknown> = Object.fromEntries(Object.entries(conditions[i] ?? {}));
      for (const [k, v] of Object.entries(c)) {
        if (v === null) Reflect.deleteProperty(merged, k);
        else merged[k] = k === 'lastTransitionTime' ? new Date(v) : v;
      }
      if (i >= 0) conditions[i] = merged as unknown as V1PodCondition;
      else conditions.push(merged as unknown as V1PodCondition);
    }
    st.conditions = conditions;
  }
  return out;
}

const basePod = (): V1Pod => ({
  metadata: {
    name: 'web-0',
    namespace: 'default',
    labels: { app: 'web', [LABEL_TRACKED]: 'true' },
    annotations: { 'example.com/other': 'keep' },
  },
  spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] },
  status: { conditions: [{ type: 'PodScheduled', status: 'True' }] },
});

test('first write: every owned key and the condition, in one body', () => {
  const next = downloading(40, 12);
  const patch = buildPatch(null, next);
  assert.deepEqual(Object.keys(patch ?? {}).sort(), ['metadata', 'status']);
  const { metadata, status } = patch ?? {};
  assert.deepEqual(metadata?.labels, { [LABEL_PROGRESS]: '40', [LABEL_ETA]: '12s' });
  assert.deepEqual(Object.keys(metadata.annotations ?? {}).sort(), [
    ANNOTATION_ETA_SECONDS,
    ANNOTATION_PHASE,
    ANNOTATION_PROGRESS,
    ANNOTATION_STATUS,
  ]);
  assert.deepEqual(status, { conditions: [{ ...next.condition }] });
  assert.equal(status.conditions[0].type, CONDITION_IMAGES_PULLED);
});

function without(s: PublishedState, label: string, annotation: string): PublishedState {
  const out = structuredClone(s);
  Reflect.deleteProperty(out.labels, label);
  Reflect.deleteProperty(out.annotations, annotation);
  return out;
}

test('the patch is the difference (table)', () => {
  const a = downloading(40, 12);
  const cases: {
    name: string;
    prev: PublishedState;
    next: PublishedState;
    meta: unknown;
    status: boolean;
  }[] = [
    { name: 'equal: nothing', prev: a, next: a, meta: undefined, status: false },
    {
      name: 'ETA unknown now: its keys removed with null',
      prev: a,
      next: without(a, LABEL_ETA, ANNOTATION_ETA_SECONDS),
      meta: { labels: { [LABEL_ETA]: null }, annotations: { [ANNOTATION_ETA_SECONDS]: null } },
      status: false,
    },
    {
      name: 'only the label changed: no annotations key, no status key',
      prev: a,
      next: { ...a, labels: { ...a.labels, [LABEL_PROGRESS]: '45' } },
      meta: { labels: { [LABEL_PROGRESS]: '45' } },
      status: false,
    },
    {
      name: 'only the condition message changed',
      prev: a,
      next: { ...a, condition: { ...a.condition, message: 'other' } },
      meta: undefined,
      status: true,
    },
  ];
  for (const c of cases) {
    const p = buildPatch(c.prev, c.next);
    assert.equal(p === null, c.meta === undefined && !c.status, `${c.name}: null only when nothing changed`);
    assert.deepEqual(p?.metadata, c.meta, c.name);
    assert.equal(p?.status !== undefined, c.status, c.name);
  }
});

test('removing observedGeneration sets it to null (SMP keeps fields left out)', () => {
  const withGen = downloading(40, 12, T0, 2);
  const without = downloading(40, 12, T0);
  const p = buildPatch(withGen, without);
  assert.equal(p?.status?.conditions[0].observedGeneration, null);
  assert.equal(buildPatch(without, withGen)?.status?.conditions[0].observedGeneration, 2);
});

test('read back from the pod: a written state patches to nothing, foreign keys untouched', () => {
  let pod = basePod();
  const first = downloading(40, 12, T0, 1);
  let p = buildPatch(previousStateOf(pod), first);
  pod = apply(pod, p);
  assert.equal(pod.metadata?.labels?.app, 'web');
  assert.equal(pod.metadata.annotations?.['example.com/other'], 'keep');
  assert.equal(pod.status?.conditions?.length, 2, "the kubelet's condition stays");

  // The client hands lastTransitionTime back as a Date: it still compares equal.
  assert.ok(pod.status.conditions[1]!.lastTransitionTime instanceof Date);
  assert.equal(buildPatch(previousStateOf(pod), first), null);

  const progress = publishedState(
    podProgress([imageStatus({ bytesDone: 70 * MB, bytesTotal: 100 * MB, etaSeconds: null })]),
    { now: T1, generation: 1, previous: previousStateOf(pod).condition },
  );
  p = buildPatch(previousStateOf(pod), progress);
  assert.equal(p?.status?.conditions[0].lastTransitionTime, '2026-11-25T10:00:00Z', 'no flip: kept');
  pod = apply(pod, p);
  assert.equal(pod.metadata?.labels?.[LABEL_ETA], undefined);
  assert.equal(pod.metadata?.labels?.[LABEL_PROGRESS], '70');

  const done = publishedState(podProgress([pulled(NGINX, 100 * MB)]), {
    now: T1,
    generation: 1,
    previous: previousStateOf(pod).condition,
  });
  p = buildPatch(previousStateOf(pod), done);
  pod = apply(pod, p);
  const cond = pod.status?.conditions?.find((c) => c.type === CONDITION_IMAGES_PULLED);
  assert.equal(cond?.status, 'True');
  assert.equal(cond.reason, 'Pulled');
  assert.equal(cond.lastTransitionTime?.toISOString(), T1.toISOString(), 'flipped: new time');
  assert.deepEqual(pod.metadata?.labels, {
    app: 'web',
    [LABEL_TRACKED]: 'true',
    [LABEL_PROGRESS]: '100',
    [LABEL_ETA]: '0s',
  });
});

test('previousStateOf ignores what it cannot read as its own', () => {
  const pod = basePod();
  pod.metadata!.labels![LABEL_PROGRESS] = '12';
  pod.status!.conditions!.push({ type: CONDITION_IMAGES_PULLED, status: 'Unknown', reason: 'Whatever' });
  const prev = previousStateOf(pod);
  assert.deepEqual(prev.labels, { [LABEL_PROGRESS]: '12' });
  assert.deepEqual(prev.annotations, {});
  assert.equal(prev.condition, null);
  const next = publishedState(podProgress([resolving(NGINX)]), { now: T0 });
  assert.ok(buildPatch(prev, next)?.status !== undefined, 'an unreadable condition is replaced');
});
