// The ContainerdSource conformance suite (test-support/containerd-conformance.ts) on the gRPC
// adapter against a real containerd, after a real CRI PullImage from a real registry: the same
// cases node-agent/containerd/conformance.test.ts runs on the fake. By default on the system's
// containerd 1.6; PULLTRACE_CONTAINERD_MATRIX adds the other releases' variants that keep layer
// blobs (with discard_unpacked_layers the state differs by design: no layer blobs or l.<i> labels).
import { createHash } from 'node:crypto';
import { containerdMatrix, variantOptions, type ContainerdVariant } from '../../e2e/env/containerd.js';
import { CriPuller } from '../../e2e/env/cri-puller.js';
import { buildImage, MEDIA } from '../../e2e/env/image-builder.js';
import { startTestEnv, type TestEnv } from '../../e2e/env/test-env.js';
import {
  conformance,
  pulledImage,
  type ConformanceTarget,
  type ImageSpec,
} from '../../test-support/containerd-conformance.js';
import { GrpcContainerdSource } from '../containerd/grpc-client.js';

const MiB = 1024 * 1024;

/** A blob or manifest of `repo` as the registry serves it, checked against its digest. */
async function fetchBlob(env: TestEnv, repo: string, kind: 'manifests' | 'blobs', digest: string) {
  const res = await fetch(`http://${env.pushHost}/v2/${repo}/${kind}/${digest}`, {
    headers: { accept: MEDIA.manifest },
  });
  if (!res.ok) throw new Error(`registry: ${kind}/${digest} answered ${res.status}`);
  const data = Buffer.from(await res.arrayBuffer());
  const got = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  if (got !== digest) throw new Error(`registry: ${kind}/${digest} served ${got}`);
  return data;
}

/** Builds and pushes an image with random layers; returns it as pulled through the throttle. */
async function push(env: TestEnv, repo: string, tag: string, layers: number[]): Promise<ImageSpec> {
  const built = await buildImage({ registry: env.pushHost, name: `${repo}:${tag}`, layers });
  return {
    host: env.pullHost,
    repo,
    tag,
    manifest: await fetchBlob(env, repo, 'manifests', built.manifestDigest),
    config: await fetchBlob(env, repo, 'blobs', built.configDigest),
    layers: built.layers.map((l) => ({ digest: l.digest, size: l.size, diffId: l.diffId })),
  };
}

async function realContainerd(variant: ContainerdVariant | null): Promise<ConformanceTarget> {
  const env = await startTestEnv({
    rate: 64 * MiB,
    ...(variant === null ? {} : { containerd: variantOptions(variant) }),
  });
  const source = new GrpcContainerdSource({ address: env.containerd.socketPath });
  const puller = new CriPuller(env.containerd.address);
  try {
    const spec = await push(env, 'team/conf', 'v1', [30_000, 40_000]);
    await puller.pullImage(`${spec.host}/${spec.repo}:${spec.tag}`);
    return {
      source,
      fixture: pulledImage(spec, env.containerd.snapshotter),
      startPull: async () => {
        // The first layer smallest: it is committed while the second is still coming.
        const live = await push(env, 'team/live', 'v1', [MiB, 3 * MiB]);
        env.throttle.setRate(MiB);
        // Settled here so that a failure while the case looks is reported by finish(), not lost.
        const pulled = puller.pullImage(`${live.host}/${live.repo}:${live.tag}`).then(
          () => ({ err: null as unknown }),
          (err: unknown) => ({ err }),
        );
        let ended: { err: unknown } | null = null;
        void pulled.then((r) => (ended = r));
        const until = async <T>(what: string, probe: () => Promise<T | null>): Promise<T> => {
          const deadline = Date.now() + 30_000;
          for (;;) {
            const v = await probe();
            if (v !== null) return v;
            if (ended !== null) throw new Error(`the pull ended before ${what}`, { cause: ended.err });
            if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        };
        await until('a layer ingest', async () =>
          (await source.listIngests()).some((i) => i.ref.startsWith('layer-')) ? true : null,
        );
        return {
          image: pulledImage(live, env.containerd.snapshotter),
          layerCommitted: () =>
            until('a layer committed while another is fetched', async () => {
              const ingests = await source.listIngests();
              if (ingests.length === 0) return null;
              for (const l of live.layers) {
                if (ingests.some((i) => i.ref === `layer-${l.digest}`)) continue;
                if ((await source.contentInfo(l.digest)) !== null) return l.digest;
              }
              return null;
            }),
          finish: async () => {
            const { err } = await pulled;
            if (err !== null) throw new Error('the CRI pull failed', { cause: err });
          },
        };
      },
      cleanup: async () => {
        source.close();
        await env.stop();
      },
    };
  } catch (err) {
    source.close();
    await env.stop();
    throw err;
  }
}

const spec = process.env.PULLTRACE_CONTAINERD_MATRIX;
if (spec === undefined || spec.trim() === '') {
  conformance('GrpcContainerdSource on containerd 1.6 (CRI pull)', () => realContainerd(null));
} else {
  for (const v of containerdMatrix(spec).filter((x) => !x.discardUnpackedLayers)) {
    conformance(`GrpcContainerdSource on containerd ${v.name} (CRI pull)`, () => realContainerd(v));
  }
}
