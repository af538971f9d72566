// The ContainerdSource conformance suite (test-support/containerd-conformance.ts) on the fake
// unit tests use, scripted into the state a real CRI pull leaves: the same cases
// node-agent/integration/containerd-conformance.test.ts runs on real containerd.
import {
  conformance,
  pulledImage,
  scriptPulledImage,
  scriptPullStart,
  syntheticImage,
} from '../../test-support/containerd-conformance.js';
import { FakeContainerdSource } from '../../test-support/fake-containerd.js';

conformance('FakeContainerdSource', () => {
  const fake = new FakeContainerdSource();
  const host = '127.0.0.1:5000';
  const fixture = pulledImage(
    syntheticImage({ host, repo: 'team/conf', tag: 'v1', layerSizes: [30_000, 40_000] }),
  );
  scriptPulledImage(fake, fixture);
  return Promise.resolve({
    source: fake,
    fixture,
    startPull: () => {
      const image = pulledImage(
        syntheticImage({ host, repo: 'team/live', tag: 'v1', layerSizes: [1_000_000, 3_000_000] }),
      );
      const pull = scriptPullStart(fake, image);
      return Promise.resolve({
        image,
        layerCommitted: () => {
          pull.commitLayer(0);
          return Promise.resolve(image.layers[0]?.digest ?? '');
        },
        finish: () => {
          pull.finish();
          return Promise.resolve();
        },
      });
    },
    cleanup: () => {
      fake.close();
      return Promise.resolve();
    },
  });
});
