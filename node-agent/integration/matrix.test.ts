// The pull tracker on every containerd production nodes run: 1.6, 1.7 and 2.1, with
// discard_unpacked_layers off and on, and 2.1's transfer service and local pull
// (e2e/env/containerd.ts containerdMatrix; PULLTRACE_CONTAINERD_MATRIX picks a subset). Real
// registry, real CRI PullImage through a throttle. 1.7 and 2.1 come from Debian packages
// (e2e/env/install-containerd.sh); a missing one fails the suite saying so.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ImagePullStatus } from '../../common/contract.js';
import { isCode } from '../../common/errors.js';
import { containerdMatrix, findContainerd, variantOptions } from '../../e2e/env/containerd.js';
import { CriPuller } from '../../e2e/env/cri-puller.js';
import { buildImage, type BuiltImage } from '../../e2e/env/image-builder.js';
import { startTestEnv, type TestEnv } from '../../e2e/env/test-env.js';
import { GrpcContainerdSource } from '../containerd/grpc-client.js';
import { PullTracker, type PullTrackerOptions } from '../tracker/tracker.js';

const MiB = 1024 * 1024;
const KiB = 1024;

async function until<T>(
  what: string,
  fn: () => T | null | undefined | false,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every status of the pull of `manifestDigest` the tracker reports, until stopped. */
function record(t: PullTracker, manifestDigest: string) {
  const seen: ImagePullStatus[] = [];
  const off = t.onChange((snap) => {
    const p = snap.pulls.find((x) => x.manifestDigest === manifestDigest);
    if (p !== undefined) seen.push(p.status);
  });
  return { seen, stop: off };
}

function monotonic(seen: ImagePullStatus[]): void {
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1];
    const b = seen[i];
    assert.ok(
      a !== undefined && b !== undefined && b.percent >= a.percent,
      `percent went back: ${a?.percent} → ${b?.percent}`,
    );
  }
}

function within(actual: number, want: number, share: number, what: string): void {
  assert.ok(
    Math.abs(actual - want) <= want * share,
    `${what}: ${actual} not within ${share * 100} % of ${want}`,
  );
}

for (const variant of containerdMatrix()) {
  describe(`containerd ${variant.name}`, () => {
    let env: TestEnv;
    let source: GrpcContainerdSource;
    let puller: CriPuller;
    let n = 0;

    before(async () => {
      if (findContainerd(variant.version) === null) {
        throw new Error(`containerd ${variant.version} is not installed: run e2e/env/install-containerd.sh`);
      }
      env = await startTestEnv({ rate: 8 * MiB, containerd: variantOptions(variant) });
      source = new GrpcContainerdSource({ address: env.containerd.socketPath });
      puller = new CriPuller(env.containerd.address);
    });

    after(async () => {
      source.close();
      await env.stop();
    });

    const tracker = (opts: Partial<PullTrackerOptions> = {}) => {
      const t = new PullTracker({ source, pollIntervalMs: 200, failAfterMs: 3000, ...opts });
      t.start();
      return t;
    };

    const image = async (
      layers: number[],
      extra: { baseLayers?: BuiltImage['layers']; layerOrder?: number[] } = {},
    ) => {
      n++;
      const built = await buildImage({ registry: env.pushHost, name: `team/m${n}:v${n}`, layers, ...extra });
      return { built, ref: `${env.pullHost}/team/m${n}:v${n}` };
    };

    test('an image of two 12 MB layers: found from the first report with its whole size, Pulled at the end', async () => {
      env.throttle.setRate(8 * MiB);
      const img = await image([12 * MiB, 12 * MiB]);
      const t = tracker();
      const rec = record(t, img.built.manifestDigest);
      try {
        await puller.pullImage(img.ref);
        const done = await until('Pulled', () =>
          t
            .snapshot()
            .pulls.find((p) => p.manifestDigest === img.built.manifestDigest && p.status.phase === 'Pulled'),
        );
        const first = rec.seen[0];
        assert.ok(first !== undefined, 'seen while it ran');
        within(first.bytesTotal + first.bytesCached, img.built.totalSize, 0.02, 'size at the first report');
        assert.ok(
          rec.seen.some((s) => s.phase === 'Downloading' && s.percent < 100),
          'seen downloading',
        );
        monotonic(rec.seen);
        assert.equal(done.status.percent, 100);
        assert.equal(done.status.layersDone, 2);
        assert.equal(done.status.layersTotal, 2);
        within(done.status.bytesTotal, img.built.totalSize, 0.02, 'bytes fetched');
        assert.equal(done.status.bytesCached, 0);
      } finally {
        rec.stop();
        t.stop();
      }
    });

    test('a derived image (two shared layers + one new): the shared ones are cached, only the new one fetched', async () => {
      env.throttle.setRate(8 * MiB);
      const base = await image([6 * MiB, 6 * MiB]);
      await puller.pullImage(base.ref);
      const derived = await image([5 * MiB], { baseLayers: base.built.layers });
      const t = tracker();
      const rec = record(t, derived.built.manifestDigest);
      try {
        await puller.pullImage(derived.ref);
        const done = await until('Pulled', () =>
          t
            .snapshot()
            .pulls.find(
              (p) => p.manifestDigest === derived.built.manifestDigest && p.status.phase === 'Pulled',
            ),
        );
        const shared = base.built.layers.reduce((s, l) => s + l.size, 0);
        const first = rec.seen[0];
        assert.ok(first !== undefined);
        within(first.bytesCached, shared, 0.02, 'cached at the first report');
        within(done.status.bytesCached, shared, 0.02, 'cached at the end');
        within(done.status.bytesTotal, derived.built.totalSize - shared, 0.02, 'to fetch');
        assert.equal(done.status.layersDone, 3);
        assert.equal(done.status.layersTotal, 3);
        monotonic(rec.seen);
      } finally {
        rec.stop();
        t.stop();
      }
    });

    test('a layer listed twice: fetched and counted once; layers done never above layers total', async () => {
      env.throttle.setRate(8 * MiB);
      const img = await image([6 * MiB, 3 * MiB], { layerOrder: [0, 1, 0] });
      const t = tracker();
      const rec = record(t, img.built.manifestDigest);
      try {
        await puller.pullImage(img.ref);
        const done = await until('Pulled', () =>
          t
            .snapshot()
            .pulls.find((p) => p.manifestDigest === img.built.manifestDigest && p.status.phase === 'Pulled'),
        );
        within(done.status.bytesTotal, img.built.totalSize, 0.02, 'distinct bytes');
        assert.equal(done.status.layersTotal, 2);
        for (const s of rec.seen)
          assert.ok(s.layersDone <= s.layersTotal, `${s.layersDone}/${s.layersTotal}`);
        monotonic(rec.seen);
        const jumps = rec.seen.map((s, i) => s.percent - (rec.seen[i - 1]?.percent ?? 0));
        assert.ok(Math.max(...jumps.slice(1)) < 60, `no jump to the end: ${jumps.join(',')}`);
      } finally {
        rec.stop();
        t.stop();
      }
    });

    // containerd 2.1 only: the case production nodes on 2.x hit (transfer service and local pull).
    if (variant.version === '2.1')
      test('containerd restarted mid-pull: the tracker keeps its state and follows the retry to Pulled', async () => {
        env.throttle.setRate(2 * MiB);
        const img = await image([6 * MiB, 6 * MiB]);
        const tr = tracker();
        const rec = record(tr, img.built.manifestDigest);
        try {
          const first = puller.pullImage(img.ref).then(
            () => null,
            (err: unknown) => err,
          );
          await until('downloading', () =>
            rec.seen.find((s) => s.phase === 'Downloading' && s.bytesDone > 2 * MiB),
          );
          await env.containerd.restart();
          const err = await first;
          assert.ok(err !== null, 'the CRI pull in flight failed with the restart');
          // A new client: the old connection's pending calls are gone with the old process.
          const retry = new CriPuller(env.containerd.address);
          try {
            env.throttle.setRate(8 * MiB);
            // As the kubelet does: try again while the restarted containerd does not answer yet
            // (its socket accepts before its CRI serves; a loaded machine widens that gap).
            const deadline = Date.now() + 20_000;
            for (;;) {
              const failed = await retry.pullImage(img.ref).then(
                () => null,
                (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
              );
              if (failed === null) break;
              if (!isCode(failed, 'PT_CONTAINERD_UNAVAILABLE') || Date.now() > deadline) throw failed;
              await new Promise((r) => setTimeout(r, 250));
            }
          } finally {
            retry.close();
          }
          const done = await until('Pulled after the retry', () =>
            tr
              .snapshot()
              .pulls.find(
                (p) => p.manifestDigest === img.built.manifestDigest && p.status.phase === 'Pulled',
              ),
          );
          assert.equal(tr.lastError, null, 'reading containerd works again');
          assert.equal(done.status.percent, 100);
          within(done.status.bytesTotal, img.built.totalSize, 0.02, 'bytes fetched');
          monotonic(rec.seen);
        } finally {
          rec.stop();
          tr.stop();
        }
      });

    test('a trickle (one 1 MiB write every 8 s) stays Downloading with a rate once measured; it ends Pulled', async () => {
      const rate = 128 * KiB;
      env.throttle.setRate(rate);
      const img = await image([2 * MiB + 300 * KiB]);
      const t = tracker({ stallAfterMs: 3000 });
      const rec = record(t, img.built.manifestDigest);
      try {
        await puller.pullImage(img.ref);
        await until('Pulled', () =>
          t
            .snapshot()
            .pulls.find((p) => p.manifestDigest === img.built.manifestDigest && p.status.phase === 'Pulled'),
        );
        const measured = rec.seen.findIndex((s) => s.bytesPerSecond > 0);
        assert.ok(measured >= 0, 'a rate was measured');
        const after = rec.seen.slice(measured).filter((s) => s.phase !== 'Unpacking' && s.phase !== 'Pulled');
        assert.deepEqual(
          [...new Set(after.map((s) => s.phase))],
          ['Downloading'],
          'no Stalled between writes',
        );
        for (const s of after) {
          assert.ok(
            s.bytesPerSecond > rate * 0.5 && s.bytesPerSecond < rate * 1.6,
            `rate ${s.bytesPerSecond}`,
          );
          assert.ok(s.etaSeconds !== null, 'an ETA between writes');
        }
      } finally {
        env.throttle.setRate(8 * MiB);
        rec.stop();
        t.stop();
      }
    });
  });
}
