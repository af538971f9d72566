import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANNOTATION_ETA_SECONDS,
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  CONDITION_IMAGES_PULLED,
  LABEL_ETA,
  LABEL_PROGRESS,
  MAX_ERROR_LENGTH,
  MAX_IMAGE_REF_LENGTH,
  MAX_MESSAGE_LENGTH,
  MAX_STATUS_ANNOTATION_BYTES,
  STATUS_VERSION,
  isValidLabelValue,
  type ImagePullStatus,
  type Phase,
  type PodPullStatus,
} from '../../common/contract.js';
import { parseStatusAnnotation } from '../../cli/pod-view.js';
import {
  boundStatus,
  conditionMessage,
  podProgress,
  publishedState,
  statusDocument,
  type PodProgress,
} from './pod-progress.js';
import { MB, cached, imageStatus, pulled, resolving } from '../../test-support/publisher.js';
import { shortImage, truncate } from './text.js';

const NGINX = 'docker.io/library/nginx:1.27';
const BUSYBOX = 'docker.io/library/busybox:1.36';
const APP = '127.0.0.1:5000/team/app:1';
const NOW = new Date('2026-11-25T10:00:10.250Z');

const phases = (p: PodProgress): Phase[] => p.images.map((i) => i.phase);

test('one image downloading: its figures, and the message people read', () => {
  const p = podProgress([imageStatus()]);
  assert.equal(p.phase, 'Downloading');
  assert.equal(p.percent, 63, '⌊100 · 42.3 / 67.0⌋');
  assert.equal(p.etaSeconds, 5, "a single image's ETA is the tracker's");
  assert.equal(p.bytesPerSecond, 5_100_000);
  assert.equal(conditionMessage(p), 'nginx:1.27 63% (42.3/67.0 MB) 5.1 MB/s ETA 5s');
});

test('phase rules (table)', () => {
  const stalled = imageStatus({ image: APP, phase: 'Stalled', bytesPerSecond: 0, etaSeconds: null });
  const failed = imageStatus({ image: APP, phase: 'Failed', error: 'not found', etaSeconds: null });
  const cases: {
    name: string;
    images: ImagePullStatus[];
    nodeBusy?: boolean;
    phase: Phase;
    each: Phase[];
  }[] = [
    { name: 'no image to wait for', images: [], phase: 'Cached', each: [] },
    { name: 'cached image', images: [cached(NGINX, 67 * MB)], phase: 'Cached', each: ['Cached'] },
    {
      name: 'pulled and cached',
      images: [cached(BUSYBOX, MB), pulled(NGINX, 67 * MB)],
      phase: 'Pulled',
      each: ['Cached', 'Pulled'],
    },
    {
      name: 'init image downloading, main image not started: Queued',
      images: [imageStatus({ image: BUSYBOX }), resolving(NGINX)],
      phase: 'Downloading',
      each: ['Downloading', 'Queued'],
    },
    {
      name: 'init image in, main downloading',
      images: [pulled(BUSYBOX, MB), imageStatus()],
      phase: 'Downloading',
      each: ['Pulled', 'Downloading'],
    },
    {
      name: 'first image resolving, second waits behind it',
      images: [resolving(BUSYBOX), resolving(NGINX)],
      phase: 'Resolving',
      each: ['Resolving', 'Queued'],
    },
    {
      name: 'another pull on the node: Queued before any byte moves',
      images: [resolving(NGINX)],
      nodeBusy: true,
      phase: 'Queued',
      each: ['Queued'],
    },
    {
      name: 'another pull on the node does not hide a pull of our own',
      images: [imageStatus()],
      nodeBusy: true,
      phase: 'Downloading',
      each: ['Downloading'],
    },
    {
      name: 'unpacking',
      images: [imageStatus({ phase: 'Unpacking', bytesDone: 67_000_000, percent: 99 })],
      phase: 'Unpacking',
      each: ['Unpacking'],
    },
    {
      name: 'a stalled image stalls the pod, even beside a moving one',
      images: [imageStatus(), stalled],
      phase: 'Stalled',
      each: ['Downloading', 'Stalled'],
    },
    {
      name: 'any failure fails the pod',
      images: [pulled(BUSYBOX, MB), failed, resolving(NGINX)],
      phase: 'Failed',
      each: ['Pulled', 'Failed', 'Resolving'],
    },
  ];
  for (const c of cases) {
    const p = podProgress(c.images, { nodeBusy: c.nodeBusy ?? false });
    assert.equal(p.phase, c.phase, c.name);
    assert.deepEqual(phases(p), c.each, c.name);
  }
});

test('init-container image then main image: Queued, then Downloading, percent over both', () => {
  const init = (done: number) =>
    imageStatus({ image: BUSYBOX, bytesDone: done, bytesTotal: 10 * MB, bytesPerSecond: MB, etaSeconds: 1 });
  let floor = 0;
  const step = (images: ImagePullStatus[]) => {
    const p = podProgress(images, { floor });
    floor = p.percent;
    return p;
  };
  const a = step([init(5 * MB), resolving(NGINX)]);
  assert.deepEqual(phases(a), ['Downloading', 'Queued']);
  assert.equal(a.percent, 25, 'the main image counts as big as the init one until its size is known');
  assert.equal(a.etaSeconds, 5, 'the main image size is unknown: the init image’s 5 MB at 1 MB/s');
  assert.equal(a.etaIsLowerBound, true, 'and says it is a lower bound');
  assert.equal(a.active?.image, BUSYBOX);
  assert.match(
    conditionMessage(a),
    /^busybox:1\.36 \d+% \(5\.0\/10\.0 MB\) 1\.0 MB\/s, then 1 more image ETA ≥5s$/,
  );
  // With the main image's size from its manifest: percent and ETA over both.
  const sizes = (image: string) => (image === NGINX ? 20 * MB : null);
  const known = podProgress([init(5 * MB), resolving(NGINX)], { sizeOf: sizes });
  assert.equal(known.percent, Math.floor((100 * 5) / 30));
  assert.equal(known.etaSeconds, 25);
  assert.equal(known.etaIsLowerBound, false);
  assert.match(conditionMessage(known), /, then 1 more image ETA 25s$/);
  // Another pod's pull ahead of this one on the node: its bytes come first.
  const behind = podProgress([resolving(NGINX)], {
    nodeBusy: true,
    sizeOf: sizes,
    bytesAhead: 10 * MB,
    nodeBytesPerSecond: 2 * MB,
  });
  assert.equal(behind.phase, 'Queued');
  assert.equal(behind.etaSeconds, 15);
  assert.equal(behind.etaIsLowerBound, false);
  const unknownAhead = podProgress([resolving(NGINX)], {
    nodeBusy: true,
    sizeOf: sizes,
    bytesAhead: 10 * MB,
    aheadUnknown: true,
    nodeBytesPerSecond: 2 * MB,
  });
  assert.equal(unknownAhead.etaIsLowerBound, true);
  assert.equal(podProgress([resolving(NGINX)], { sizeOf: sizes }).etaSeconds, null, 'no rate: no ETA');

  const b = step([pulled(BUSYBOX, 10 * MB), resolving(NGINX)]);
  assert.equal(b.phase, 'Resolving');
  assert.equal(b.percent, 50);

  const c = step([pulled(BUSYBOX, 10 * MB), imageStatus({ bytesDone: 0, bytesTotal: 90 * MB })]);
  assert.equal(c.phase, 'Downloading');
  assert.deepEqual(phases(c), ['Pulled', 'Downloading']);
  assert.equal(c.percent, 50, 'the real size is larger: percent holds instead of going back to 11');
  assert.equal(c.active?.image, NGINX);

  const d = step([pulled(BUSYBOX, 10 * MB), imageStatus({ bytesDone: 80 * MB, bytesTotal: 90 * MB })]);
  assert.equal(d.percent, 90);
  assert.equal(d.etaSeconds, 5);
  const e = step([pulled(BUSYBOX, 10 * MB), pulled(NGINX, 90 * MB)]);
  assert.equal(e.phase, 'Pulled');
  assert.equal(e.percent, 100);
  assert.equal(e.etaSeconds, 0);
});

test('percent never goes backwards, and stays under 100 until every image is present', () => {
  const done = [10, 40, 35, 60, 59, 99, 100, 100];
  let floor = 0;
  const seen: number[] = [];
  for (const mb of done) {
    const p = podProgress([imageStatus({ bytesDone: mb * MB, bytesTotal: 100 * MB })], { floor });
    floor = p.percent;
    seen.push(p.percent);
  }
  assert.deepEqual(seen, [10, 40, 40, 60, 60, 99, 99, 99]);
  assert.equal(podProgress([pulled(NGINX, 100 * MB)], { floor }).percent, 100);
  const failed = podProgress([imageStatus({ phase: 'Failed', error: 'x' })], { floor: 99 });
  assert.equal(failed.percent, 99, 'a failure keeps the progress made');
});

test('ETA of several images: remaining bytes over the current rate', () => {
  const p = podProgress([
    imageStatus({ image: BUSYBOX, bytesDone: 2 * MB, bytesTotal: 12 * MB, bytesPerSecond: 2 * MB }),
    imageStatus({ bytesDone: 0, bytesTotal: 20 * MB, bytesPerSecond: 3 * MB }),
  ]);
  assert.equal(p.etaSeconds, 6, '(10 + 20) MB at 5 MB/s');
  const stalled = podProgress([imageStatus({ phase: 'Stalled', bytesPerSecond: 0, etaSeconds: null })]);
  assert.equal(stalled.etaSeconds, null);
});

test('messages for every phase stay on one bounded line', () => {
  const huge = `registry.example.test:5000/${'a'.repeat(400)}:1`;
  const cases: [ImagePullStatus[], RegExp][] = [
    [[resolving(NGINX)], /^nginx:1\.27 resolving$/],
    [[imageStatus({ phase: 'Stalled', bytesPerSecond: 0 })], /^nginx:1\.27 63% \(42\.3\/67\.0 MB\) stalled/],
    [[imageStatus({ phase: 'Unpacking', bytesDone: 67 * MB })], /^nginx:1\.27 unpacking \(67\.0 MB\)$/],
    [[imageStatus({ phase: 'Failed', error: 'manifest unknown' })], /^nginx:1\.27 failed: manifest unknown$/],
    [[pulled(NGINX, 67 * MB)], /^nginx:1\.27 pulled: 67\.0 MB fetched$/],
    [
      [cached(BUSYBOX, MB), pulled(NGINX, 67 * MB)],
      /^2 images pulled: 67\.0 MB fetched, 1\.0 MB already present$/,
    ],
    [[cached(NGINX, 67 * MB)], /^nginx:1\.27 already present on the node$/],
    [[cached(NGINX, 1), cached(BUSYBOX, 1)], /^all 2 images already present on the node$/],
    [[imageStatus({ image: huge, phase: 'Failed', error: 'e'.repeat(5000) })], /…$/],
    [[imageStatus({ image: huge })], /… 63% \(42\.3\/67\.0 MB\) 5\.1 MB\/s ETA 5s$/],
  ];
  for (const [images, want] of cases) {
    const m = conditionMessage(podProgress(images));
    assert.match(m, want);
    assert.ok(m.length <= MAX_MESSAGE_LENGTH, `${m.length} chars`);
    assert.ok(!m.includes('\n'));
  }
  assert.equal(
    conditionMessage(podProgress([resolving(NGINX)], { nodeBusy: true })),
    'nginx:1.27 queued behind another pull on the node',
  );
});

test('publishedState: labels, annotations and condition', () => {
  const p = podProgress([imageStatus()]);
  const s = publishedState(p, { now: NOW, generation: 3 });
  assert.deepEqual(s.labels, { [LABEL_PROGRESS]: '63', [LABEL_ETA]: '5s' });
  for (const v of Object.values(s.labels)) assert.ok(isValidLabelValue(v), v);
  assert.equal(s.annotations[ANNOTATION_PROGRESS], '63');
  assert.equal(s.annotations[ANNOTATION_ETA_SECONDS], '5');
  assert.equal(s.annotations[ANNOTATION_PHASE], 'Downloading');
  const doc = parseStatusAnnotation(s.annotations[ANNOTATION_STATUS]);
  assert.ok(doc !== null);
  assert.equal(doc.version, STATUS_VERSION);
  assert.equal(doc.updatedAt, NOW.toISOString());
  assert.deepEqual(doc.images, [imageStatus()]);
  assert.deepEqual(s.condition, {
    type: CONDITION_IMAGES_PULLED,
    status: 'False',
    reason: 'Downloading',
    message: 'nginx:1.27 63% (42.3/67.0 MB) 5.1 MB/s ETA 5s',
    lastTransitionTime: '2026-11-25T10:00:10Z',
    observedGeneration: 3,
  });

  const unknown = publishedState(podProgress([resolving(NGINX)]), { now: NOW });
  assert.equal(unknown.labels[LABEL_ETA], undefined, 'no ETA label while unknown');
  assert.equal(unknown.annotations[ANNOTATION_ETA_SECONDS], undefined);
  assert.equal(unknown.condition.observedGeneration, undefined, 'left out when no generation is given');
});

test('condition: cached pod is True at once; lastTransitionTime kept unless the status flips', () => {
  const earlier = { status: 'False' as const, lastTransitionTime: '2026-11-25T09:00:00Z' };
  const down = publishedState(podProgress([imageStatus()]), { now: NOW, previous: earlier });
  assert.equal(down.condition.lastTransitionTime, '2026-11-25T09:00:00Z', 'still False: kept');

  const c = publishedState(podProgress([cached(NGINX, 67 * MB)]), { now: NOW, previous: null });
  assert.equal(c.condition.status, 'True');
  assert.equal(c.condition.reason, 'Cached');
  assert.equal(c.labels[LABEL_PROGRESS], '100');
  assert.equal(c.labels[LABEL_ETA], '0s');
  assert.equal(c.condition.lastTransitionTime, '2026-11-25T10:00:10Z');

  const flipped = publishedState(podProgress([pulled(NGINX, 67 * MB)]), { now: NOW, previous: earlier });
  assert.equal(flipped.condition.status, 'True');
  assert.equal(flipped.condition.lastTransitionTime, '2026-11-25T10:00:10Z', 'flipped: now');

  const failed = publishedState(podProgress([imageStatus({ phase: 'Failed', error: 'denied' })]), {
    now: NOW,
  });
  assert.equal(failed.condition.status, 'False');
  assert.equal(failed.condition.reason, 'Failed');
  assert.equal(failed.labels[LABEL_ETA], undefined);
});

test('the status annotation stays within its bound and valid: long errors, many images', () => {
  const many = (n: number, over: (i: number) => Partial<ImagePullStatus>) =>
    Array.from({ length: n }, (_, i) =>
      imageStatus({ image: `${APP.replace(':1', '')}-${i}:${'v'.repeat(100)}`, ...over(i) }),
    );
  const cases: { name: string; images: ImagePullStatus[]; omitted: boolean }[] = [
    {
      name: 'error too long for its own bound',
      images: [imageStatus({ phase: 'Failed', error: 'é'.repeat(10_000) })],
      omitted: false,
    },
    {
      name: 'image reference too long',
      images: [imageStatus({ image: `x/${'a'.repeat(5000)}` })],
      omitted: false,
    },
    {
      name: '20 failed images with long multi-byte errors: errors shortened',
      images: many(20, () => ({ phase: 'Failed', error: '错'.repeat(MAX_ERROR_LENGTH) })),
      omitted: false,
    },
    {
      name: '300 images: summarised',
      images: many(300, (i) => (i < 200 ? pulled(NGINX, MB) : i < 299 ? resolving(NGINX) : imageStatus())),
      omitted: true,
    },
    {
      name: '60 images with the longest references',
      images: many(60, () => ({ image: `${APP}/${'r'.repeat(2 * MAX_IMAGE_REF_LENGTH)}` })),
      omitted: true,
    },
  ];
  for (const c of cases) {
    const p = podProgress(c.images);
    const doc = statusDocument(p, NOW);
    const text = JSON.stringify(doc);
    assert.ok(
      Buffer.byteLength(text) <= MAX_STATUS_ANNOTATION_BYTES,
      `${c.name}: ${Buffer.byteLength(text)} B`,
    );
    const parsed = parseStatusAnnotation(text);
    assert.ok(parsed !== null, `${c.name}: readable by the CLI`);
    assert.equal(parsed.phase, p.phase);
    assert.equal(parsed.images.length + (parsed.imagesOmitted ?? 0), c.images.length, c.name);
    assert.equal(parsed.imagesOmitted !== undefined, c.omitted, c.name);
    for (const i of parsed.images) {
      assert.ok(i.image.length <= MAX_IMAGE_REF_LENGTH, c.name);
      assert.ok(i.error === null || i.error.length <= MAX_ERROR_LENGTH, c.name);
    }
    if (p.active !== null) {
      const kept = parsed.images.some((i) => i.image === truncate(p.active!.image, MAX_IMAGE_REF_LENGTH));
      assert.ok(kept, `${c.name}: the active image is kept`);
    }
  }
});

test('boundStatus leaves finished images out first, then queued ones, in pull order', () => {
  const imgs = [
    pulled('a/one:1', MB),
    imageStatus({ image: 'a/two:1' }),
    pulled('a/three:1', MB),
    resolving('a/four:1'),
  ];
  const doc: PodPullStatus = {
    version: STATUS_VERSION,
    phase: 'Downloading',
    percent: 1,
    etaSeconds: null,
    updatedAt: 'x',
    images: imgs,
  };
  const size = (n: number) => Buffer.byteLength(JSON.stringify(boundStatus(doc, n)));
  const full = Buffer.byteLength(JSON.stringify(doc));
  assert.deepEqual(boundStatus(doc, full), doc, 'fits: unchanged');
  const one = Buffer.byteLength(JSON.stringify(imgs[0]));
  const cut = boundStatus(doc, full - 1);
  assert.deepEqual(
    cut.images.map((i) => i.image),
    ['a/one:1', 'a/two:1', 'a/four:1'],
  );
  assert.equal(cut.imagesOmitted, 1);
  const cut2 = boundStatus(doc, full - one - 1);
  assert.deepEqual(
    cut2.images.map((i) => i.image),
    ['a/two:1', 'a/four:1'],
  );
  assert.equal(cut2.imagesOmitted, 2);
  const active = Buffer.byteLength(JSON.stringify(imgs[1]));
  const last = boundStatus(doc, active + 200);
  assert.deepEqual(
    last.images.map((i) => i.image),
    ['a/two:1'],
    'the active image goes last',
  );
  assert.equal(last.imagesOmitted, 3);
  const tiny = boundStatus(doc, 200);
  assert.deepEqual(tiny.images, [], 'not even the active image fits in 200 bytes');
  assert.equal(tiny.imagesOmitted, 4);
  for (const n of [full - 1, full - one - 1, active + 200, 200]) assert.ok(size(n) <= n, `bound ${n}`);
});

test('shortImage and truncate', () => {
  assert.equal(shortImage(NGINX), 'nginx:1.27');
  assert.equal(shortImage('docker.io/team/app:1'), 'team/app:1');
  assert.equal(shortImage(APP), APP);
  assert.equal(shortImage(`nginx@sha256:${'c'.repeat(64)}`), 'nginx@sha256:cccccccccccc');
  assert.equal(shortImage('Not A Ref'), 'Not A Ref');
  assert.equal(truncate('abc', 3), 'abc');
  assert.equal(truncate('abcd', 3), 'ab…');
  assert.equal(truncate('😀😀😀', 4), '😀…', 'never cuts a surrogate pair');
});

test('an image of unknown size counts as the mean of the known ones (two known of different sizes)', () => {
  const a = imageStatus({ image: 'a:1', bytesDone: 10 * MB, bytesTotal: 10 * MB, phase: 'Unpacking' });
  const b = imageStatus({ image: 'b:1', bytesDone: 5 * MB, bytesTotal: 30 * MB });
  // Known: 40 MB over 2 images, so the unknown one counts 20 MB: 15 of 60 MB.
  assert.equal(podProgress([a, b, resolving('c:1')]).percent, 25);
  // Counted as the total (40 MB) it would be 18 %; as the first image's (10 MB) 30 %.
});
