import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from './api-error.js';
import {
  applyJsonPatch,
  applyMergePatch,
  applyPatchOfType,
  applyStrategicMergePatch,
  mergeKeyFor,
  PATCH_TYPES,
} from './patch.js';
import type { JsonObject } from './types.js';

function pod(): JsonObject {
  return {
    metadata: { name: 'p', labels: { a: '1' }, finalizers: ['x'] },
    spec: {
      containers: [
        { name: 'c1', image: 'i1', env: [{ name: 'E', value: '1' }] },
        { name: 'c2', image: 'i2' },
      ],
    },
    status: {
      conditions: [
        { type: 'Ready', status: 'False' },
        { type: 'pulltrace.io/ImagesPulled', status: 'False', reason: 'Downloading' },
      ],
    },
  };
}

const isCode = (code: number) => (e: unknown) => e instanceof ApiError && e.code === code;

test('JSON patch: applies RFC 6902 operations without touching the input', () => {
  const doc = pod();
  const out = applyJsonPatch(doc, [
    { op: 'add', path: '/metadata/labels/b', value: '2' },
    { op: 'replace', path: '/spec/containers/0/image', value: 'i9' },
    { op: 'remove', path: '/metadata/finalizers' },
    { op: 'test', path: '/metadata/name', value: 'p' },
  ]);
  assert.deepEqual((out.metadata as JsonObject).labels, { a: '1', b: '2' });
  assert.equal(((out.spec as JsonObject).containers as JsonObject[])[0]?.image, 'i9');
  assert.equal((out.metadata as JsonObject).finalizers, undefined);
  assert.deepEqual(doc, pod(), 'input unchanged');
});

test('JSON patch: what the API server rejects is 422 (missing parent, failing test, missing path) or 400 (not a list)', () => {
  const rejected422 = [
    [{ op: 'add', path: '/metadata/annotations/x', value: 'y' }],
    [{ op: 'test', path: '/metadata/name', value: 'other' }],
    [{ op: 'remove', path: '/metadata/annotations' }],
    [{ op: 'replace', path: '/spec/nodeName', value: 'n' }],
    [{ op: 'add', path: '/spec/containers/5', value: {} }],
    [{ op: '_get', path: '/metadata' }],
    [{ op: 'frobnicate', path: '/metadata' }],
  ];
  for (const ops of rejected422) {
    assert.throws(() => applyJsonPatch(pod(), ops), isCode(422), JSON.stringify(ops));
  }
  assert.throws(() => applyJsonPatch(pod(), { op: 'add' }), isCode(400));
});

test('JSON merge patch: maps merge, null deletes, lists are replaced whole', () => {
  const out = applyMergePatch(pod(), {
    metadata: { labels: { a: null, b: '2' } },
    status: { conditions: [{ type: 'X', status: 'True' }] },
  }) as JsonObject;
  assert.deepEqual((out.metadata as JsonObject).labels, { b: '2' });
  assert.deepEqual((out.status as JsonObject).conditions, [{ type: 'X', status: 'True' }]);
});

test('strategic merge patch: conditions merge by type, containers by name, env by name', () => {
  const out = applyStrategicMergePatch(pod(), {
    spec: {
      '$setElementOrder/containers': [{ name: 'c1' }, { name: 'c2' }],
      containers: [
        { name: 'c2', image: 'i2b' },
        { name: 'c1', env: [{ name: 'F', value: '2' }] },
      ],
    },
    status: {
      conditions: [
        { type: 'pulltrace.io/ImagesPulled', status: 'True', reason: 'Pulled' },
        { type: 'Initialized', status: 'True' },
      ],
    },
  });
  const containers = (out.spec as JsonObject).containers as JsonObject[];
  assert.deepEqual(
    containers.map((c) => [c.name, c.image]),
    [
      ['c1', 'i1'],
      ['c2', 'i2b'],
    ],
  );
  assert.deepEqual(containers[0]?.env, [
    { name: 'E', value: '1' },
    { name: 'F', value: '2' },
  ]);
  assert.deepEqual((out.status as JsonObject).conditions, [
    { type: 'Ready', status: 'False' },
    { type: 'pulltrace.io/ImagesPulled', status: 'True', reason: 'Pulled' },
    { type: 'Initialized', status: 'True' },
  ]);
});

test('strategic merge patch directives: $patch delete/replace, $retainKeys, $deleteFromPrimitiveList, set-merged finalizers', () => {
  const out = applyStrategicMergePatch(pod(), {
    metadata: { finalizers: ['y', 'x'], '$deleteFromPrimitiveList/finalizers': ['x'] },
    spec: { containers: [{ name: 'c1', $patch: 'delete' }] },
    status: { $patch: 'replace', phase: 'Running' },
  });
  assert.deepEqual((out.metadata as JsonObject).finalizers, ['y']);
  assert.deepEqual(
    ((out.spec as JsonObject).containers as JsonObject[]).map((c) => c.name),
    ['c2'],
  );
  assert.deepEqual(out.status, { phase: 'Running' });
  const retained = applyStrategicMergePatch(
    { spec: { a: 1, b: 2, c: 3 } },
    { spec: { $retainKeys: ['a', 'c'], c: 4 } },
  );
  assert.deepEqual(retained.spec, { a: 1, c: 4 });
  assert.throws(
    () => applyStrategicMergePatch(pod(), { status: { conditions: [{ status: 'True' }] } }),
    isCode(400),
  );
});

test('merge keys are found by the end of the field path (pods and pod templates alike)', () => {
  assert.equal(mergeKeyFor(['spec', 'containers']), 'name');
  assert.equal(mergeKeyFor(['spec', 'template', 'spec', 'containers']), 'name');
  assert.equal(mergeKeyFor(['spec', 'template', 'spec', 'containers', 'ports']), 'containerPort');
  assert.equal(mergeKeyFor(['status', 'conditions']), 'type');
  assert.equal(mergeKeyFor(['spec', 'readinessGates']), undefined);
  assert.equal(mergeKeyFor(['spec', 'tolerations']), undefined);
});

test('patch content types: the three are dispatched, others are 415', () => {
  const doc = pod();
  assert.equal(
    (applyPatchOfType(doc, PATCH_TYPES.merge, { metadata: { name: 'q' } }).metadata as JsonObject).name,
    'q',
  );
  assert.throws(() => applyPatchOfType(doc, 'application/apply-patch+yaml', {}), isCode(415));
  assert.throws(() => applyPatchOfType(doc, PATCH_TYPES.merge, [1]), isCode(400));
});
