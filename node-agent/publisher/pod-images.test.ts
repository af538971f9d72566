import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ERROR_LENGTH } from '../../common/contract.js';
import { asPresent, podImages, type PodImages } from './pod-images.js';
import {
  imageStatus,
  pod,
  pulled,
  ranStatus,
  resolving,
  waitingStatus,
  type PodSpecLite,
} from '../../test-support/publisher.js';

const NGINX = 'docker.io/library/nginx:1.27';
const BUSYBOX = 'docker.io/library/busybox:1.36';
const LOCAL = '127.0.0.1:5000/team/app:1';

const cases: { name: string; pod: PodSpecLite; want: Partial<PodImages> }[] = [
  {
    name: 'one container waiting: its image, normalised',
    pod: {
      containers: [{ name: 'web', image: 'nginx:1.27' }],
      statuses: [waitingStatus('web', 'nginx:1.27')],
    },
    want: { waiting: [NGINX], failures: [] },
  },
  {
    name: 'no container status yet: everything is still to come',
    pod: {
      init: [{ name: 'setup', image: 'busybox:1.36' }],
      containers: [{ name: 'web', image: 'nginx:1.27' }],
    },
    want: { waiting: [BUSYBOX, NGINX] },
  },
  {
    name: 'init containers first, then containers, each image once',
    pod: {
      init: [
        { name: 'a', image: 'busybox:1.36' },
        { name: 'b', image: 'docker.io/library/busybox:1.36' },
      ],
      containers: [
        { name: 'web', image: 'nginx:1.27' },
        { name: 'side', image: 'busybox:1.36' },
        { name: 'app', image: LOCAL },
      ],
    },
    want: { waiting: [BUSYBOX, NGINX, LOCAL] },
  },
  {
    name: 'an init container that ran has its image; the main one is still waited for',
    pod: {
      init: [{ name: 'setup', image: 'busybox:1.36' }],
      containers: [{ name: 'web', image: 'nginx:1.27' }],
      initStatuses: [ranStatus('setup', BUSYBOX, 'terminated')],
      statuses: [waitingStatus('web', 'nginx:1.27', 'PodInitializing')],
    },
    want: { waiting: [NGINX] },
  },
  {
    name: 'an image ID on a waiting container means the image is there (crash loop)',
    pod: {
      containers: [{ name: 'web', image: 'nginx:1.27' }],
      statuses: [
        Object.assign(waitingStatus('web', 'nginx:1.27', 'CrashLoopBackOff'), { imageID: 'sha256:1' }),
      ],
    },
    want: { waiting: [], failures: [] },
  },
  {
    name: 'one container of two sharing an image started: the image is there',
    pod: {
      containers: [
        { name: 'a', image: 'nginx:1.27' },
        { name: 'b', image: 'nginx:1.27' },
      ],
      statuses: [waitingStatus('a', 'nginx:1.27'), ranStatus('b', NGINX)],
    },
    want: { waiting: [] },
  },
  {
    name: 'a finished pod waits for nothing',
    pod: { containers: [{ name: 'job', image: 'busybox:1.36' }], phase: 'Succeeded' },
    want: { waiting: [] },
  },
  {
    name: 'digests and registries with ports keep their form',
    pod: {
      containers: [
        { name: 'a', image: `nginx@sha256:${'b'.repeat(64)}` },
        { name: 'b', image: 'LOCALHOST_IS_NOT_A_REF' },
      ],
    },
    want: { waiting: [`docker.io/library/nginx@sha256:${'b'.repeat(64)}`, 'LOCALHOST_IS_NOT_A_REF'] },
  },
];

test('podImages: which images a pod waits for, in pull order', () => {
  for (const c of cases) {
    const got = podImages(pod(c.pod));
    for (const [k, v] of Object.entries(c.want)) {
      assert.deepEqual(got[k as keyof PodImages], v, `${c.name}: ${k}`);
    }
  }
});

test('podImages lists each image with its containers and where it is first needed', () => {
  const got = podImages(
    pod({
      init: [{ name: 'setup', image: 'busybox:1.36' }],
      containers: [
        { name: 'web', image: 'nginx:1.27' },
        { name: 'side', image: 'busybox:1.36' },
      ],
      initStatuses: [ranStatus('setup', BUSYBOX, 'terminated')],
    }),
  );
  assert.deepEqual(got.images, [
    {
      image: BUSYBOX,
      containers: ['setup', 'side'],
      init: true,
      volume: false,
      pullPolicy: 'IfNotPresent',
      present: true,
    },
    {
      image: NGINX,
      containers: ['web'],
      init: false,
      volume: false,
      pullPolicy: 'IfNotPresent',
      present: false,
    },
  ]);
});

test('pull policies: as given, else the API server default (Always for :latest or no tag); the strictest wins', () => {
  const p = pod({
    containers: [
      { name: 'a', image: 'nginx' },
      { name: 'b', image: 'nginx:latest', imagePullPolicy: 'IfNotPresent' },
      { name: 'c', image: 'busybox:1.36' },
      { name: 'd', image: 'busybox:1.36', imagePullPolicy: 'Always' },
      { name: 'e', image: LOCAL, imagePullPolicy: 'Never' },
      { name: 'f', image: `redis@sha256:${'c'.repeat(64)}` },
      { name: 'g', image: `redis:latest@sha256:${'d'.repeat(64)}` },
    ],
  });
  const got = podImages(p).images.map((i) => [i.image, i.pullPolicy]);
  assert.deepEqual(got, [
    ['docker.io/library/nginx:latest', 'Always'],
    [BUSYBOX, 'Always'],
    [LOCAL, 'Never'],
    [`docker.io/library/redis@sha256:${'c'.repeat(64)}`, 'IfNotPresent'],
    [`docker.io/library/redis:latest@sha256:${'d'.repeat(64)}`, 'IfNotPresent'],
  ]);
});

test('image volumes come first (the kubelet pulls them before any container), with their own policy', () => {
  const p = pod({
    init: [{ name: 'setup', image: 'busybox:1.36' }],
    containers: [{ name: 'web', image: 'nginx:1.27' }],
  });
  const volumes = [
    { name: 'models', image: { reference: 'registry.test/ml/model:v3', pullPolicy: 'IfNotPresent' } },
    { name: 'data', emptyDir: {} },
    { name: 'tools', image: { reference: 'registry.test/tools' } },
  ];
  if (p.spec !== undefined) p.spec.volumes = volumes;
  const got = podImages(p);
  assert.deepEqual(
    got.images.map((i) => [i.image, i.volume, i.pullPolicy]),
    [
      ['registry.test/ml/model:v3', true, 'IfNotPresent'],
      ['registry.test/tools:latest', true, 'Always'],
      [BUSYBOX, false, 'IfNotPresent'],
      [NGINX, false, 'IfNotPresent'],
    ],
  );
  assert.deepEqual(got.waiting, ['registry.test/ml/model:v3', 'registry.test/tools:latest', BUSYBOX, NGINX]);
  // Once a container started, the volumes' images were in.
  const started = pod({
    init: [{ name: 'setup', image: 'busybox:1.36' }],
    containers: [{ name: 'web', image: 'nginx:1.27' }],
    initStatuses: [ranStatus('setup', BUSYBOX, 'terminated')],
  });
  if (started.spec !== undefined) started.spec.volumes = volumes;
  assert.deepEqual(podImages(started).waiting, [NGINX]);
});

test('an image changed in place (kubectl set image): the old container status does not make the new image present', () => {
  const p = pod({
    containers: [{ name: 'web', image: 'registry.test/team/app:v2' }],
    statuses: [
      Object.assign(ranStatus('web', 'registry.test/team/app:v1'), {
        imageID: `registry.test/team/app@sha256:${'1'.repeat(64)}`,
      }),
    ],
  });
  assert.deepEqual(podImages(p).waiting, ['registry.test/team/app:v2']);
  // Two tags of one repository are two images.
  const q = pod({
    init: [{ name: 'migrate', image: 'registry.test/team/app:migrate' }],
    containers: [{ name: 'web', image: 'registry.test/team/app:v2' }],
    initStatuses: [ranStatus('migrate', 'registry.test/team/app:migrate', 'terminated')],
  });
  assert.deepEqual(podImages(q).waiting, ['registry.test/team/app:v2']);
  // A digest reference is present when the image ID carries its digest.
  const digest = `sha256:${'2'.repeat(64)}`;
  const r = pod({
    containers: [{ name: 'web', image: `registry.test/team/app:v2@${digest}` }],
    statuses: [
      Object.assign(ranStatus('web', `registry.test/team/app@${digest}`), {
        imageID: `registry.test/team/app@${digest}`,
      }),
    ],
  });
  assert.deepEqual(podImages(r).waiting, []);
});

test('podImages passes on the pull failures the kubelet reports', () => {
  const long = 'x'.repeat(MAX_ERROR_LENGTH * 3);
  const got = podImages(
    pod({
      init: [{ name: 'setup', image: 'busybox:nope' }],
      containers: [
        { name: 'web', image: 'nginx:1.27' },
        { name: 'bad', image: 'Not A Ref' },
        { name: 'long', image: LOCAL },
        { name: 'ok', image: 'redis:7' },
      ],
      initStatuses: [
        waitingStatus('setup', 'busybox:nope', 'ErrImagePull', 'rpc error: busybox:nope: not found'),
      ],
      statuses: [
        waitingStatus('web', 'nginx:1.27', 'ImagePullBackOff'),
        waitingStatus('bad', 'Not A Ref', 'InvalidImageName', 'Failed to apply default image tag'),
        waitingStatus('long', LOCAL, 'ErrImagePull', long),
        waitingStatus('ok', 'redis:7', 'ContainerCreating', 'still creating'),
      ],
    }),
  );
  assert.deepEqual(
    got.failures.map((f) => [f.image, f.container, f.reason, f.message.length <= MAX_ERROR_LENGTH]),
    [
      ['docker.io/library/busybox:nope', 'setup', 'ErrImagePull', true],
      [NGINX, 'web', 'ImagePullBackOff', true],
      ['Not A Ref', 'bad', 'InvalidImageName', true],
      [LOCAL, 'long', 'ErrImagePull', true],
    ],
  );
  assert.equal(got.failures[0]?.message, 'rpc error: busybox:nope: not found');
  assert.equal(got.failures[1]?.message, 'ImagePullBackOff', 'no message: the reason stands in');
  assert.ok(got.failures[3]?.message.includes(' … '), 'cut in the middle: both ends kept');
  assert.deepEqual(got.waiting, [
    'docker.io/library/busybox:nope',
    NGINX,
    'Not A Ref',
    LOCAL,
    'docker.io/library/redis:7',
  ]);
});

test('asPresent: an image the kubelet has is in — Pulled when bytes came for it, else Cached; final statuses stay', () => {
  const now = Date.parse('2026-11-30T12:00:00Z');
  const r = asPresent(resolving(NGINX), now);
  assert.deepEqual(
    [r.phase, r.percent, r.etaSeconds, r.finishedAt],
    ['Cached', 100, 0, '2026-11-30T12:00:00.000Z'],
  );
  const d = asPresent(imageStatus({ phase: 'Downloading', bytesDone: 5, bytesTotal: 10 }), now);
  assert.deepEqual([d.phase, d.percent, d.bytesPerSecond], ['Pulled', 100, 0]);
  const f = asPresent(imageStatus({ phase: 'Failed', error: 'x', bytesDone: 0 }), now);
  assert.deepEqual([f.phase, f.error], ['Cached', null]);
  const p = pulled(NGINX, 10);
  assert.equal(asPresent(p, now), p);
});

test('ErrImageNeverPull (pull policy Never, image absent) is a pull failure the pod reports', () => {
  const got = podImages(
    pod({
      containers: [{ name: 'web', image: 'registry.test/team/app:v9', imagePullPolicy: 'Never' }],
      statuses: [
        waitingStatus(
          'web',
          'registry.test/team/app:v9',
          'ErrImageNeverPull',
          'Container image "registry.test/team/app:v9" is not present with pull policy of Never',
        ),
      ],
    }),
  );
  assert.deepEqual(
    got.failures.map((f) => [f.image, f.reason]),
    [['registry.test/team/app:v9', 'ErrImageNeverPull']],
  );
  assert.match(got.failures[0]?.message ?? '', /not present with pull policy of Never/);
});
