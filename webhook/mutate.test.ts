import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANNOTATION_READINESS_GATE,
  CONDITION_IMAGES_PULLED,
  KEY_TRACK,
  LABEL_TRACKED,
} from '../common/contract.js';
import { BadReviewError, admit, type JsonObject, type MutateOptions } from './mutate.js';
import { applyAsApiServer, decodePatch, podReview } from '../test-support/webhook.js';

const opts: MutateOptions = { readinessGateNamespaces: new Set(['gated']) };

function meta(o: JsonObject): JsonObject {
  return o.metadata as JsonObject;
}
function spec(o: JsonObject): JsonObject {
  return o.spec as JsonObject;
}

/** Admits, applies the patch as the API server would, returns the stored pod. */
function admitted(review: JsonObject): { pod: JsonObject; patched: boolean } {
  const decision = admit(review, opts);
  const request = review.request as JsonObject;
  assert.equal(decision.review.response.uid, request.uid, 'uid echoed');
  assert.equal(decision.review.response.allowed, true);
  const ops = decodePatch(decision.review);
  if (ops === null) {
    assert.equal(decision.review.response.patchType, undefined, 'no patchType without a patch');
    return { pod: request.object as JsonObject, patched: false };
  }
  assert.equal(decision.review.response.patchType, 'JSONPatch');
  return { pod: applyAsApiServer(request.object as JsonObject, ops), patched: true };
}

test('labels a new pod for tracking and keeps its other labels', () => {
  const { pod, patched } = admitted(podReview());
  assert.ok(patched);
  assert.deepEqual(meta(pod).labels, {
    app: 'web',
    'pod-template-hash': '7d9f8b6c5',
    [LABEL_TRACKED]: 'true',
  });
  assert.equal(spec(pod).readinessGates, undefined, 'no gate unless asked');
});

test('the patch applies to pods with no labels, null labels, or no metadata', async (t) => {
  const variants: [string, (pod: JsonObject) => void][] = [
    ['no labels', (p) => delete meta(p).labels],
    ['labels: null', (p) => (meta(p).labels = null)],
    ['empty labels', (p) => (meta(p).labels = {})],
    ['no metadata', (p) => delete p.metadata],
  ];
  for (const [name, edit] of variants) {
    await t.test(name, () => {
      const { pod } = admitted(podReview(edit));
      assert.equal((meta(pod).labels as JsonObject)[LABEL_TRACKED], 'true');
    });
  }
});

test('label keys with "/" are escaped as ~1 in the patch path', () => {
  const decision = admit(podReview(), opts);
  const ops = decodePatch(decision.review)!;
  assert.deepEqual(ops, [{ op: 'add', path: '/metadata/labels/pulltrace.io~1tracked', value: 'true' }]);
});

test('readiness gate: by annotation, by namespace, appended to existing gates, never twice', async (t) => {
  await t.test('annotation', () => {
    const { pod } = admitted(
      podReview((p) => (meta(p).annotations = { [ANNOTATION_READINESS_GATE]: 'true' })),
    );
    assert.deepEqual(spec(pod).readinessGates, [{ conditionType: CONDITION_IMAGES_PULLED }]);
  });
  await t.test('annotation other than "true" does not opt in', () => {
    const { pod } = admitted(
      podReview((p) => (meta(p).annotations = { [ANNOTATION_READINESS_GATE]: 'yes' })),
    );
    assert.equal(spec(pod).readinessGates, undefined);
  });
  await t.test('configured namespace, taken from request.namespace when the pod has none', () => {
    const { pod } = admitted(
      podReview((p, req) => {
        delete meta(p).namespace;
        req.namespace = 'gated';
      }),
    );
    assert.deepEqual(spec(pod).readinessGates, [{ conditionType: CONDITION_IMAGES_PULLED }]);
  });
  await t.test('existing gates are kept', () => {
    const { pod } = admitted(
      podReview((p) => {
        meta(p).annotations = { [ANNOTATION_READINESS_GATE]: 'true' };
        spec(p).readinessGates = [{ conditionType: 'example.com/Warm' }];
      }),
    );
    assert.deepEqual(spec(pod).readinessGates, [
      { conditionType: 'example.com/Warm' },
      { conditionType: CONDITION_IMAGES_PULLED },
    ]);
  });
  await t.test('an existing pulltrace gate is not duplicated', () => {
    const { pod } = admitted(
      podReview((p) => {
        meta(p).annotations = { [ANNOTATION_READINESS_GATE]: 'true' };
        spec(p).readinessGates = [{ conditionType: CONDITION_IMAGES_PULLED }];
      }),
    );
    assert.deepEqual(spec(pod).readinessGates, [{ conditionType: CONDITION_IMAGES_PULLED }]);
  });
});

test('opt-out by label or annotation gets nothing', () => {
  for (const where of ['labels', 'annotations'] as const) {
    const review = podReview((p) => {
      meta(p)[where] = { ...(meta(p)[where] as JsonObject | undefined), [KEY_TRACK]: 'false' };
      meta(p).annotations = {
        ...(meta(p).annotations as JsonObject | undefined),
        [ANNOTATION_READINESS_GATE]: 'true',
      };
    });
    const d = admit(review, opts);
    assert.equal(d.outcome, 'opted_out', where);
    assert.equal(d.review.response.patch, undefined);
  }
});

test('idempotent: the mutated pod admitted again gets no patch', () => {
  const first = admitted(podReview((p) => (meta(p).annotations = { [ANNOTATION_READINESS_GATE]: 'true' })));
  const again = podReview((_p, req) => (req.object = first.pod));
  const d = admit(again, opts);
  assert.equal(d.outcome, 'unchanged');
  assert.equal(d.review.response.patch, undefined);
});

test('dryRun gets the same patch as a real create', () => {
  const real = admit(podReview(), opts);
  const dry = admit(
    podReview((_p, req) => (req.dryRun = true)),
    opts,
  );
  assert.equal(dry.review.response.patch, real.review.response.patch);
});

test('other kinds and operations are allowed unchanged', async (t) => {
  const cases: [string, (req: JsonObject) => void][] = [
    ['UPDATE', (r) => (r.operation = 'UPDATE')],
    ['DELETE', (r) => (r.operation = 'DELETE')],
    [
      'a Deployment',
      (r) => {
        r.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
        r.resource = { group: 'apps', version: 'v1', resource: 'deployments' };
      },
    ],
    ['a pod subresource', (r) => (r.subResource = 'status')],
  ];
  for (const [name, edit] of cases) {
    await t.test(name, () => {
      const d = admit(
        podReview((_p, req) => edit(req)),
        opts,
      );
      assert.equal(d.outcome, 'skipped');
      assert.deepEqual(d.review.response, { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    });
  }
});

test('malformed reviews are refused with a clear reason', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['not an object', [1, 2], /JSON object/],
    ['null', null, /JSON object/],
    ['wrong apiVersion', { ...podReview(), apiVersion: 'admission.k8s.io/v1beta1' }, /apiVersion/],
    ['wrong kind', { ...podReview(), kind: 'Pod' }, /kind must be AdmissionReview/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request is missing/],
    ['no uid', podReview((_p, r) => delete r.uid), /uid/],
    ['pod create without object', podReview((_p, r) => (r.object = 'nope')), /request.object/],
  ];
  for (const [name, body, re] of cases) {
    await t.test(name, () =>
      assert.throws(
        () => admit(body, opts),
        (e) => e instanceof BadReviewError && re.test(e.message),
      ),
    );
  }
});

test('a fault inside the mutator still admits the pod, with a warning', () => {
  const d = admit(podReview(), opts, () => {
    throw new Error('boom');
  });
  assert.equal(d.outcome, 'error');
  assert.equal(d.review.response.allowed, true);
  assert.equal(d.review.response.patch, undefined);
  assert.match(d.review.response.warnings?.[0] ?? '', /internal error/);
});
