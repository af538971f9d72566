import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanDuration, podRow, podTable } from './table.js';
import type { Pod } from './types.js';

const now = new Date('2025-01-01T12:00:00Z');

function pod(extra: Partial<Pod> = {}): Pod {
  return {
    metadata: { name: 'p', creationTimestamp: '2025-01-01T11:59:15Z' },
    spec: { containers: [{ name: 'c', image: 'nginx' }] },
    status: { phase: 'Pending' },
    ...extra,
  };
}

test('humanDuration prints ages as kubectl does', () => {
  const cases: [number, string][] = [
    [-5000, '<invalid>'],
    [-500, '0s'],
    [45_000, '45s'],
    [119_000, '119s'],
    [200_000, '3m20s'],
    [300_000, '5m'],
    [15 * 60_000, '15m'],
    [5 * 3600_000 + 3 * 60_000, '5h3m'],
    [30 * 3600_000, '30h'],
    [52 * 3600_000, '2d4h'],
    [400 * 86400_000, '400d'],
    [(3 * 365 + 20) * 86400_000, '3y20d'],
    [9 * 365 * 86400_000, '9y'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, String(ms));
});

test('pod rows: name, ready, status, restarts, age, IP, node, nominated node, readiness gates', () => {
  assert.deepEqual(podRow(pod(), now), [
    'p',
    '0/1',
    'Pending',
    '0',
    '45s',
    '<none>',
    '<none>',
    '<none>',
    '<none>',
  ]);
  const running = pod({
    spec: { containers: [{ name: 'c', image: 'nginx' }], nodeName: 'node-1' },
    status: {
      phase: 'Running',
      podIPs: [{ ip: '10.0.0.7' }],
      containerStatuses: [
        {
          name: 'c',
          ready: true,
          restartCount: 0,
          state: { running: { startedAt: '2025-01-01T11:59:30Z' } },
        },
      ],
    },
  });
  assert.deepEqual(podRow(running, now), [
    'p',
    '1/1',
    'Running',
    '0',
    '45s',
    '10.0.0.7',
    'node-1',
    '<none>',
    '<none>',
  ]);
});

test('pod STATUS follows waiting reasons, init containers and deletion', () => {
  const waiting = (reason: string): Pod =>
    pod({
      status: {
        phase: 'Pending',
        containerStatuses: [{ name: 'c', ready: false, state: { waiting: { reason } } }],
      },
    });
  assert.equal(podRow(waiting('ContainerCreating'), now)[2], 'ContainerCreating');
  assert.equal(podRow(waiting('ErrImagePull'), now)[2], 'ErrImagePull');
  assert.equal(podRow(waiting('ImagePullBackOff'), now)[2], 'ImagePullBackOff');

  const withInit = (reason: string): Pod =>
    pod({
      spec: { containers: [{ name: 'c', image: 'a' }], initContainers: [{ name: 'i', image: 'b' }] },
      status: {
        phase: 'Pending',
        initContainerStatuses: [{ name: 'i', ready: false, state: { waiting: { reason } } }],
        containerStatuses: [{ name: 'c', ready: false, state: { waiting: { reason: 'PodInitializing' } } }],
      },
    });
  assert.equal(podRow(withInit('ErrImagePull'), now)[2], 'Init:ErrImagePull');
  assert.equal(podRow(withInit('PodInitializing'), now)[2], 'Init:0/1');

  const deleting = pod({ metadata: { name: 'p', deletionTimestamp: '2025-01-01T12:00:00Z' } });
  assert.equal(podRow(deleting, now)[2], 'Terminating');
  const failed = pod({
    status: { phase: 'Failed', reason: 'Evicted' },
    metadata: { name: 'p', deletionTimestamp: 'x' },
  });
  assert.equal(podRow(failed, now)[2], 'Evicted');
});

test('pod restarts show when the last one was', () => {
  const p = pod({
    status: {
      phase: 'Running',
      containerStatuses: [
        {
          name: 'c',
          ready: true,
          restartCount: 2,
          state: { running: {} },
          lastState: { terminated: { exitCode: 1, finishedAt: '2025-01-01T11:55:00Z' } },
        },
      ],
    },
  });
  assert.equal(podRow(p, now)[3], '2 (5m ago)');
});

test('READINESS GATES counts gates whose condition is True; a missing condition counts as not passed', () => {
  const gates = [{ conditionType: 'pulltrace.io/ImagesPulled' }, { conditionType: 'other/Gate' }];
  assert.equal(podRow(pod({ spec: { containers: [], readinessGates: gates } }), now)[8], '0/2');
  const p = pod({
    spec: { containers: [], readinessGates: gates },
    status: {
      conditions: [
        { type: 'pulltrace.io/ImagesPulled', status: 'True' },
        { type: 'other/Gate', status: 'False' },
      ],
    },
  });
  assert.equal(podRow(p, now)[8], '1/2');
});

test('the pod table marks IP, Node, Nominated Node and Readiness Gates as wide-only (priority 1)', () => {
  const { columns, rows } = podTable([pod(), pod()], now);
  assert.deepEqual(
    columns.filter((c) => c.priority === 1).map((c) => c.name),
    ['IP', 'Node', 'Nominated Node', 'Readiness Gates'],
  );
  assert.equal(columns.length, rows[0]?.length);
  assert.equal(rows.length, 2);
});
