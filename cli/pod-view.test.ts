import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  LABEL_TRACKED,
  STATUS_VERSION,
  type ImagePullStatus,
  type PodPullStatus,
} from '../common/contract.js';
import { parseStatusAnnotation, podView, rolloutState } from './pod-view.js';
import { fitWidth, line, rows, table } from './render.js';
import { parseWorkload } from './workload.js';

function image(over: Partial<ImagePullStatus> = {}): ImagePullStatus {
  return {
    image: 'registry.test/team/app:1',
    phase: 'Downloading',
    percent: 63,
    bytesDone: 42_300_000,
    bytesTotal: 67_000_000,
    bytesCached: 0,
    layersDone: 1,
    layersTotal: 3,
    bytesPerSecond: 5_100_000,
    etaSeconds: 5,
    startedAt: '2026-11-25T00:00:00Z',
    finishedAt: null,
    error: null,
    ...over,
  };
}

function doc(images: ImagePullStatus[]): PodPullStatus {
  return {
    version: STATUS_VERSION,
    phase: 'Downloading',
    percent: 63,
    etaSeconds: 5,
    updatedAt: 'x',
    images,
  };
}

function pod(
  name: string,
  opts: { status?: PodPullStatus; cond?: [string, string, string]; running?: boolean },
): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'ns',
      labels: { [LABEL_TRACKED]: 'true' },
      annotations: opts.status === undefined ? {} : { [ANNOTATION_STATUS]: JSON.stringify(opts.status) },
    },
    spec: { containers: [{ name: 'app', image: 'registry.test/team/app:1' }] },
    status: {
      conditions:
        opts.cond === undefined
          ? []
          : [
              {
                type: CONDITION_IMAGES_PULLED,
                status: opts.cond[0],
                reason: opts.cond[1],
                message: opts.cond[2],
              },
            ],
      containerStatuses: [
        {
          name: 'app',
          image: 'registry.test/team/app:1',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: opts.running === true ? { running: {} } : { waiting: { reason: 'ContainerCreating' } },
        },
      ],
    },
  };
}

test('parseStatusAnnotation accepts the documented document and refuses others', () => {
  assert.deepEqual(parseStatusAnnotation(JSON.stringify(doc([image()]))), doc([image()]));
  assert.equal(parseStatusAnnotation(undefined), null);
  assert.equal(parseStatusAnnotation('{not json'), null);
  assert.equal(parseStatusAnnotation(JSON.stringify({ ...doc([]), version: 'v0' })), null);
  assert.equal(parseStatusAnnotation(JSON.stringify({ ...doc([]), images: [{ image: 3 }] })), null);
  assert.equal(parseStatusAnnotation('null'), null);
});

test('rolloutState: waiting, done, failed', () => {
  const downloading = podView(pod('a', { status: doc([image()]), cond: ['False', 'Downloading', 'm'] }));
  const pulled = podView(pod('b', { cond: ['True', 'Pulled', 'ok'] }));
  const running = podView(pod('c', { running: true }));
  const failed = podView(
    pod('d', {
      status: doc([image({ phase: 'Failed', error: 'not found' })]),
      cond: ['False', 'Failed', 'x'],
    }),
  );
  assert.deepEqual(rolloutState([downloading, pulled], 2), { state: 'waiting' });
  assert.deepEqual(rolloutState([pulled, running], 2), { state: 'done' });
  assert.deepEqual(rolloutState([pulled], 2), { state: 'waiting' }, 'fewer pods than replicas');
  assert.deepEqual(rolloutState([pulled, failed], 2), {
    state: 'failed',
    reason: 'ns/d: registry.test/team/app:1: not found',
  });
});

test('condition type is compared case-insensitively, as kubectl wait does', () => {
  const p = pod('a', {});
  p.status!.conditions = [{ type: CONDITION_IMAGES_PULLED.toLowerCase(), status: 'true' }];
  assert.deepEqual(rolloutState([podView(p)], 1), { state: 'done' });
});

test('rows and table show progress, bytes, rate and ETA', () => {
  const v = podView(pod('a', { status: doc([image()]) }));
  const rs = rows([v]);
  assert.equal(rs.length, 1);
  assert.equal(line(rs[0]!), 'ns/a registry.test/team/app:1 Downloading 63% 42.3/67.0 MB 5.1 MB/s eta=5s');
  const t = table(rs, true).split('\n');
  assert.match(t[0]!, /^POD\s+IMAGE\s+PHASE\s+PROGRESS\s+BYTES\s+RATE\s+ETA$/);
  assert.match(t[1]!, /\[#{13}\.{7}\] 63%/);
  const untracked = pod('u', {});
  untracked.metadata!.labels = {};
  assert.equal(rows([podView(untracked)])[0]!.phase, 'NotTracked');
});

test('parseWorkload', () => {
  assert.deepEqual(parseWorkload('deployment/web'), { kind: 'deployment', name: 'web' });
  assert.deepEqual(parseWorkload('deploy/web'), { kind: 'deployment', name: 'web' });
  assert.deepEqual(parseWorkload('sts/db'), { kind: 'statefulset', name: 'db' });
  assert.deepEqual(parseWorkload('daemonset.apps/agent'), { kind: 'daemonset', name: 'agent' });
  assert.throws(() => parseWorkload('pod/x'), /deployment\/NAME/);
  assert.throws(() => parseWorkload('web'), /deployment\/NAME/);
});

test('rows: a pod whose containers run shows its images present, even before the final write', () => {
  const lagging = podView(pod('lagging', { status: doc([image()]), running: true }));
  assert.deepEqual(rows([lagging]), [
    {
      pod: 'ns/lagging',
      image: 'registry.test/team/app:1',
      phase: 'Pulled',
      percent: 100,
      bytes: '67.0/67.0 MB',
      rate: '-',
      eta: '-',
    },
  ]);
  const failed = podView(
    pod('failed', { status: doc([image({ phase: 'Failed', error: 'boom' })]), running: true }),
  );
  assert.equal(rows([failed])[0]?.phase, 'Failed');
  const waiting = podView(pod('waiting', { status: doc([image()]) }));
  assert.equal(rows([waiting])[0]?.phase, 'Downloading');
});

test('fitWidth keeps every line shorter than the terminal, so a redraw never wraps', () => {
  assert.equal(fitWidth('abcdef\nab', 5), 'abc…\nab');
  assert.equal(fitWidth('abcd', 5), 'abcd');
  assert.equal(fitWidth('abcdef', undefined), 'abcdef');
});
