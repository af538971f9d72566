// One conformance suite for every ContainerdSource (after spegel's pkg/store/storetest): the
// same cases, asking the same questions, run on the fake (node-agent/containerd/conformance.test.ts,
// a unit test) and on the gRPC adapter against a real containerd after a real CRI pull
// (node-agent/integration/containerd-conformance.test.ts). A case passing on both is what lets
// unit tests trust the fake; a case that fails on the fake only is a bug in the fake.
//
// The state under test is what one CRI PullImage leaves (observed on containerd 1.6, 1.7 and
// 2.1 with layers kept): the manifest blob labelled with its children (gc.ref.content.config,
// gc.ref.content.l.<i>) and its source (distribution.source.<host>), the config labelled with the
// top layer's snapshot, the layers labelled with their diff IDs, three image records (tag,
// repo@digest, config digest) labelled io.cri-containerd.image=managed, one committed snapshot
// per layer named by its chain ID, and no lease or ingest left. scriptPulledImage puts the same
// state into a FakeContainerdSource; scriptPullStart the state midway through such a pull.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PulltraceError } from '../common/errors.js';
import type {
  ContainerdEvent,
  ContainerdSource,
  IngestStatus,
  LeaseResource,
} from '../node-agent/containerd/source.js';
import { chainIds } from '../node-agent/tracker/manifest.js';
import type { FakeContainerdSource } from './fake-containerd.js';

const MEDIA = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** The label CRI puts on every image record it writes. */
const CRI_MANAGED = { 'io.cri-containerd.image': 'managed' } as const;

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** An image as its registry serves it: what a pull of it fetches. */
export interface ImageSpec {
  /** Registry host:port the image is pulled from. */
  host: string;
  /** Repository path, e.g. "team/app". */
  repo: string;
  tag: string;
  /** The manifest's exact bytes (an OCI image manifest, one platform). */
  manifest: Buffer;
  /** The config's exact bytes. */
  config: Buffer;
  /** The manifest's layers in order, with the digest of each one uncompressed. */
  layers: { digest: string; size: number; diffId: string }[];
}

/** What a CRI pull of an ImageSpec leaves in containerd: the answers the cases expect. */
export interface PulledImage {
  spec: ImageSpec;
  /** The image records CRI writes: host/repo:tag, host/repo@manifest digest, the config digest. */
  names: { tag: string; repoDigest: string; id: string };
  manifest: { digest: string; size: number; data: Buffer };
  config: { digest: string; size: number; data: Buffer };
  layers: { digest: string; size: number; diffId: string; chainId: string }[];
  /** Where the layers are unpacked. */
  snapshotter: string;
  /** The labels containerd leaves on each blob once the pull has ended. */
  labels: {
    manifest: Record<string, string>;
    config: Record<string, string>;
    layers: Record<string, string>[];
  };
}

/** The answers for a pull of `spec` into `snapshotter`, worked out from the image alone. */
export function pulledImage(spec: ImageSpec, snapshotter = 'overlayfs'): PulledImage {
  const chains = chainIds(spec.layers.map((l) => l.diffId));
  const layers = spec.layers.map((l, i) => ({ ...l, chainId: chains[i] ?? '' }));
  const manifest = { digest: sha256(spec.manifest), size: spec.manifest.length, data: spec.manifest };
  const config = { digest: sha256(spec.config), size: spec.config.length, data: spec.config };
  // containerd names the source by host without the port (reference.Spec.Hostname()).
  const source = { [`containerd.io/distribution.source.${spec.host.replace(/:\d+$/, '')}`]: spec.repo };
  const top = chains[chains.length - 1];
  return {
    spec,
    names: {
      tag: `${spec.host}/${spec.repo}:${spec.tag}`,
      repoDigest: `${spec.host}/${spec.repo}@${manifest.digest}`,
      id: config.digest,
    },
    manifest,
    config,
    layers,
    snapshotter,
    labels: {
      manifest: {
        ...source,
        'containerd.io/gc.ref.content.config': config.digest,
        ...Object.fromEntries(layers.map((l, i) => [`containerd.io/gc.ref.content.l.${i}`, l.digest])),
      },
      config: {
        ...source,
        ...(top === undefined ? {} : { [`containerd.io/gc.ref.snapshot.${snapshotter}`]: top }),
      },
      layers: layers.map((l) => ({ ...source, 'containerd.io/uncompressed': l.diffId })),
    },
  };
}

/**
 * An image with made-up layers (random digests, no bytes), its config and manifest written the
 * way e2e/env/image-builder.ts writes them: for the fake, where nothing is pushed or unpacked.
 */
export function syntheticImage(opts: {
  host: string;
  repo: string;
  tag: string;
  layerSizes: number[];
}): ImageSpec {
  const layers = opts.layerSizes.map((size) => ({
    digest: sha256(randomBytes(32)),
    size,
    diffId: sha256(randomBytes(32)),
  }));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      config: { Cmd: ['/true'] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: { mediaType: MEDIA.config, digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
    }),
  );
  return { host: opts.host, repo: opts.repo, tag: opts.tag, manifest, config, layers };
}

// ---------------------------------------------------------------------------------------------
// The fake, scripted the way containerd shows a CRI pull (1.6, the default test containerd).

/** A pull scripted midway on the fake, moved on step by step. */
export interface ScriptedPull {
  lease: string;
  /** Layer `i`'s blob is committed (its ingest leaves the list and the lease); the unpack moves on. */
  commitLayer(i: number): void;
  /** Commits the layers still in flight, labels the config, writes the records, drops the lease. */
  finish(): void;
}

let leaseSeq = 0;

/**
 * Scripts on `fake` a CRI pull of `img` caught midway, as containerd shows one: a lease (labelled
 * containerd.io/gc.expire, a day ahead) holding the committed manifest (already labelled with its
 * children) and config, one ingest per layer ("layer-<digest>", the first half written, the
 * others not started) and the first layer's active "extract-<id> <chain ID>" snapshot; no image
 * record yet. Layers unpack in order: once the blobs of the next ones are in, their extract
 * snapshots are committed under their chain IDs (held by the lease) and the next extract starts.
 * `finish()` ends it as CRI on containerd 1.6 does: the config labelled with the top snapshot,
 * the image records written with 1.6's events (the tag created, the config digest created, the
 * tag updated, repo@digest created; 1.7 and 2.1 do not update the tag) and the lease deleted.
 */
export function scriptPullStart(fake: FakeContainerdSource, img: PulledImage): ScriptedPull {
  leaseSeq++;
  const seq = String(leaseSeq);
  const lease = `${String(Date.now() % 1e9)}-pt${seq}`;
  const expire = new Date(Date.now() + 24 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  fake.createLease(lease, { 'containerd.io/gc.expire': expire });
  const source = Object.fromEntries(
    Object.entries(img.labels.manifest).filter(([k]) => k.startsWith('containerd.io/distribution.source.')),
  );
  fake.addBlob(img.manifest.data, { lease, labels: img.labels.manifest });
  fake.addBlob(img.config.data, { lease, labels: source });
  img.layers.forEach((l, i) => {
    fake.setIngest(`layer-${l.digest}`, i === 0 ? Math.floor(l.size / 2) : 0, l.size, { lease });
  });

  const committed = new Set<number>();
  let unpacked = 0;
  const extract = (i: number) => `extract-${seq}${String(i)}-pt ${img.layers[i]?.chainId ?? ''}`;
  const snapshot = (i: number, kind: 'active' | 'committed') => {
    const chainId = img.layers[i]?.chainId ?? '';
    fake.setSnapshot(
      img.snapshotter,
      {
        name: kind === 'active' ? extract(i) : chainId,
        parent: img.layers[i - 1]?.chainId ?? '',
        kind,
        labels: { 'containerd.io/snapshot.ref': chainId },
      },
      { lease },
    );
  };
  const unpack = () => {
    while (committed.has(unpacked)) {
      fake.removeSnapshot(img.snapshotter, extract(unpacked));
      snapshot(unpacked, 'committed');
      unpacked++;
      if (unpacked < img.layers.length) snapshot(unpacked, 'active');
    }
  };
  if (img.layers.length > 0) snapshot(0, 'active');

  const commitLayer = (i: number) => {
    const l = img.layers[i];
    if (l === undefined || committed.has(i)) throw new Error(`no layer ${i} in flight`);
    fake.commit(`layer-${l.digest}`, { lease, labels: img.labels.layers[i] ?? {} });
    committed.add(i);
    unpack();
  };
  return {
    lease,
    commitLayer,
    finish() {
      img.layers.forEach((_, i) => {
        if (!committed.has(i)) commitLayer(i);
      });
      fake.setLabels(img.config.digest, img.labels.config);
      const target = { digest: img.manifest.digest, mediaType: MEDIA.manifest, size: img.manifest.size };
      for (const name of [img.names.tag, img.names.id, img.names.tag, img.names.repoDigest]) {
        fake.createImage(name, target, { labels: { ...CRI_MANAGED } });
      }
      fake.deleteLease(lease);
    },
  };
}

/** Scripts on `fake` the state a finished CRI pull of `img` leaves (see scriptPullStart). */
export function scriptPulledImage(fake: FakeContainerdSource, img: PulledImage): void {
  scriptPullStart(fake, img).finish();
}

// ---------------------------------------------------------------------------------------------
// The suite.

/** A pull in flight on the source under test: at least one layer ingest is listed. */
export interface PullInFlight {
  image: PulledImage;
  /**
   * Resolves with a layer's digest once its blob is committed while another layer is still
   * being fetched (the image's first layer must be the smallest).
   */
  layerCommitted(): Promise<string>;
  /** Resolves once the pull has ended (its image records written). */
  finish(): Promise<void>;
}

/** What a suite runs on: a source holding one pulled image and nothing else. */
export interface ConformanceTarget {
  source: ContainerdSource;
  /** The image pulled before the cases run. */
  fixture: PulledImage;
  /** Starts a slow pull of another image; resolves while it is in flight. */
  startPull(): Promise<PullInFlight>;
  cleanup(): Promise<void>;
}

const ABSENT = `sha256:${'0'.repeat(64)}`;

function coded(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof PulltraceError, `a PulltraceError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

const digests = (xs: { digest: string }[]) => xs.map((x) => x.digest);
const sorted = (xs: string[]) => [...xs].sort();
const label = (key: string, value: string) => `labels.${JSON.stringify(key)}==${value}`;

async function eventually(what: string, probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Registers the conformance cases for the source `setup` gives, under `describe(name)`. */
export function conformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  describe(`ContainerdSource conformance: ${name}`, () => {
    let t: ConformanceTarget;
    let img: PulledImage;
    before(async () => {
      t = await setup();
      img = t.fixture;
    });
    after(async () => {
      await t.cleanup();
    });
    const blobs = () => [img.manifest, img.config, ...img.layers];

    test('contentInfo: size and labels of every blob; null when absent; a malformed digest rejects', async () => {
      const want = [
        { ...img.manifest, labels: img.labels.manifest },
        { ...img.config, labels: img.labels.config },
        ...img.layers.map((l, i) => ({ ...l, labels: img.labels.layers[i] })),
      ];
      for (const w of want) {
        const info = await t.source.contentInfo(w.digest);
        assert.ok(info !== null, `${w.digest} is in the content store`);
        assert.equal(info.digest, w.digest);
        assert.equal(info.size, w.size);
        assert.deepEqual(info.labels, w.labels, `labels of ${w.digest}`);
        assert.ok(info.createdAt instanceof Date);
      }
      assert.equal(await t.source.contentInfo(ABSENT), null);
      await assert.rejects(t.source.contentInfo('sha256:nothex'), coded('PT_CONTAINERD_CALL_FAILED'));
    });

    test('listContent: no filter, an empty list or an empty filter lists everything, by digest', async () => {
      const all = sorted(digests(blobs()));
      assert.deepEqual(digests(await t.source.listContent()), all);
      assert.deepEqual(digests(await t.source.listContent([])), all);
      assert.deepEqual(digests(await t.source.listContent([''])), all);
    });

    test('listContent: digest and label filters, quoted keys and values, AND within, OR across', async () => {
      const [l0, l1] = img.layers;
      assert.ok(l0 !== undefined && l1 !== undefined, 'the fixture has two layers');
      const list = async (filters: string[]) => digests(await t.source.listContent(filters));
      assert.deepEqual(await list([`digest==${img.config.digest}`]), [img.config.digest]);
      assert.deepEqual(await list([`digest==${ABSENT}`]), []);
      const l0Key = 'containerd.io/gc.ref.content.l.0';
      assert.deepEqual(await list([label(l0Key, l0.digest)]), [img.manifest.digest]);
      assert.deepEqual(await list([label(l0Key, JSON.stringify(l0.digest))]), [img.manifest.digest]);
      assert.deepEqual(await list([label(l0Key, l1.digest)]), [], 'l.0 is not l.1');
      assert.deepEqual(
        await list([`digest==${l1.digest}`, label(l0Key, l0.digest), `digest==${img.config.digest}`]),
        sorted([l1.digest, img.manifest.digest, img.config.digest]),
      );
      assert.deepEqual(await list([`digest==${img.manifest.digest},${label(l0Key, l0.digest)}`]), [
        img.manifest.digest,
      ]);
      assert.deepEqual(await list([`digest==${img.config.digest},${label(l0Key, l0.digest)}`]), []);
      // Presence, !=, ~= and a field content has no filter for.
      const unc = 'containerd.io/uncompressed';
      assert.deepEqual(await list([`labels.${JSON.stringify(unc)}`]), sorted(digests(img.layers)));
      assert.deepEqual(
        await list([`labels.${JSON.stringify(unc)}!=${l0.diffId}`]),
        sorted(digests(blobs()).filter((d) => d !== l0.digest)),
        '!= matches blobs without the label too',
      );
      assert.deepEqual(await list([`digest~=^${img.manifest.digest.slice(0, 20)}`]), [img.manifest.digest]);
      assert.deepEqual(await list([`size==${img.config.size}`]), []);
    });

    test('listContent and listImages: a malformed filter rejects the whole call with PT_CONTAINERD_CALL_FAILED', async () => {
      const bad = [
        'name=',
        'labels."open',
        'name==a b',
        '.x==1',
        'a,',
        // An unquoted key with a slash: containerd reads "/" as a quote.
        `labels.containerd.io/gc.ref.content.l.0==${ABSENT}`,
      ];
      for (const f of bad) {
        await assert.rejects(t.source.listContent([f]), coded('PT_CONTAINERD_CALL_FAILED'), f);
        await assert.rejects(
          t.source.listContent([`digest==${img.config.digest}`, f]),
          coded('PT_CONTAINERD_CALL_FAILED'),
          `${f} after a good filter`,
        );
        await assert.rejects(t.source.listImages([f]), coded('PT_CONTAINERD_CALL_FAILED'), f);
      }
    });

    test('readBlob: exact bytes up to the bound; over it or absent rejects with PT_CONTAINERD_BAD_DATA', async () => {
      assert.deepEqual(await t.source.readBlob(img.manifest.digest, img.manifest.size), img.manifest.data);
      assert.deepEqual(await t.source.readBlob(img.config.digest, 1024 * 1024), img.config.data);
      await assert.rejects(
        t.source.readBlob(img.manifest.digest, img.manifest.size - 1),
        coded('PT_CONTAINERD_BAD_DATA'),
      );
      await assert.rejects(t.source.readBlob(ABSENT, 1024), coded('PT_CONTAINERD_BAD_DATA'));
    });

    test('listImages: the three records CRI writes, by name; name== filters match exactly', async () => {
      const names = sorted([img.names.tag, img.names.repoDigest, img.names.id]);
      const all = await t.source.listImages();
      assert.deepEqual(
        all.map((i) => i.name),
        names,
      );
      for (const rec of all) {
        assert.deepEqual(rec.target, {
          mediaType: MEDIA.manifest,
          digest: img.manifest.digest,
          size: img.manifest.size,
        });
        assert.deepEqual(rec.labels, CRI_MANAGED, `labels of ${rec.name}`);
        assert.ok(rec.createdAt instanceof Date && rec.updatedAt instanceof Date);
      }
      const list = async (filters: string[]) => (await t.source.listImages(filters)).map((i) => i.name);
      const named = (n: string) => `name==${JSON.stringify(n)}`;
      assert.deepEqual(await list([named(img.names.tag)]), [img.names.tag]);
      assert.deepEqual(await list([`name==${img.names.tag}`]), [img.names.tag], 'unquoted');
      assert.deepEqual(await list([named(img.names.repoDigest)]), [img.names.repoDigest]);
      assert.deepEqual(await list([named(`${img.names.tag}x`)]), []);
      assert.deepEqual(await list([named('nope'), named(img.names.id)]), [img.names.id]);
      assert.deepEqual(await list([`target.digest==${img.manifest.digest}`]), names);
      assert.deepEqual(await list([label('io.cri-containerd.image', 'managed')]), names);
      assert.deepEqual(await list([`name==${JSON.stringify(img.names.tag)},labels.nope`]), []);
    });

    test('statSnapshot: each layer committed by chain ID; unknown key null; unloaded snapshotter rejects', async () => {
      for (const [i, l] of img.layers.entries()) {
        assert.deepEqual(await t.source.statSnapshot(img.snapshotter, l.chainId), {
          name: l.chainId,
          parent: img.layers[i - 1]?.chainId ?? '',
          kind: 'committed',
          labels: { 'containerd.io/snapshot.ref': l.chainId },
        });
      }
      assert.equal(img.layers[0]?.chainId, img.layers[0]?.diffId, 'the first chain ID is the diff ID');
      assert.equal(await t.source.statSnapshot(img.snapshotter, ABSENT), null);
      const first = img.layers[0]?.chainId ?? '';
      // native is always loaded: it just has no such snapshot.
      assert.equal(await t.source.statSnapshot('native', first), null);
      await assert.rejects(
        t.source.statSnapshot('no-such-snapshotter', first),
        coded('PT_CONTAINERD_CALL_FAILED'),
      );
    });

    test('after the pull: no lease, no ingest; an unknown lease holds nothing', async () => {
      assert.deepEqual(await t.source.listLeases(), []);
      assert.deepEqual(await t.source.listLeaseResources('no-such-lease'), []);
      assert.deepEqual(await t.source.listIngests(), []);
    });

    // Last: it adds a second image to the store.
    test('a pull in flight: layer ingests held by its lease with the manifest; records and events at the end', async () => {
      const events: ContainerdEvent[] = [];
      const errors: Error[] = [];
      const sub = t.source.subscribe({
        onEvent: (e) => events.push(e),
        onError: (e) => errors.push(e),
      });
      try {
        const pull = await t.startPull();
        const p = pull.image;
        const ingests = await t.source.listIngests();
        const leases = await t.source.listLeases();
        const lease = leases[0];
        assert.ok(
          lease !== undefined && leases.length === 1,
          `one lease, the pull's: ${JSON.stringify(leases)}`,
        );
        const resources = await t.source.listLeaseResources(lease.id);
        checkInFlight(p, ingests, resources);
        const expire = Date.parse(lease.labels['containerd.io/gc.expire'] ?? '');
        assert.ok(expire > Date.now() + 3600_000, `the lease expires later: ${JSON.stringify(lease.labels)}`);
        assert.deepEqual((await t.source.contentInfo(p.manifest.digest))?.labels, p.labels.manifest);
        assert.deepEqual(await t.source.listImages([`name==${JSON.stringify(p.names.tag)}`]), []);
        for (const r of resources.filter((x) => x.type === `snapshots/${p.snapshotter}`)) {
          await checkSnapshotResource(t.source, p, r.id);
        }

        const done = await pull.layerCommitted();
        const [ingests2, resources2] = [
          await t.source.listIngests(),
          await t.source.listLeaseResources(lease.id),
        ];
        assert.ok(!ingests2.some((i) => i.ref === `layer-${done}`), `${done} is no longer an ingest`);
        assert.ok(
          resources2.some((r) => r.type === 'content' && r.id === done) &&
            !resources2.some((r) => r.type === 'ingests' && r.id === `layer-${done}`),
          `the lease holds the committed ${done}, not its ingest: ${JSON.stringify(resources2)}`,
        );
        checkInFlight(p, ingests2, resources2);

        await pull.finish();
        const names = [p.names.tag, p.names.repoDigest, p.names.id];
        const mine = () => events.filter((e) => names.includes(e.name));
        await eventually('an /images/create event for each record', () =>
          names.every((n) => mine().some((e) => e.name === n && e.topic === '/images/create')),
        );
        for (const n of names) {
          const topics = mine()
            .filter((e) => e.name === n)
            .map((e) => e.topic);
          assert.equal(topics[0], '/images/create', `${n}: ${topics.join(', ')}`);
          assert.ok(!topics.includes('/images/delete'), `${n}: ${topics.join(', ')}`);
        }
        assert.ok(mine().every((e) => e.namespace === 'k8s.io' && e.at instanceof Date));
        assert.deepEqual(errors, []);
        assert.deepEqual(
          (await t.source.listImages(names.map((n) => `name==${JSON.stringify(n)}`))).map((i) => i.name),
          sorted(names),
        );
        assert.deepEqual(await t.source.listLeases(), []);
        assert.deepEqual(await t.source.listIngests(), []);
        for (const l of p.layers) {
          assert.equal((await t.source.statSnapshot(p.snapshotter, l.chainId))?.kind, 'committed');
        }
        assert.deepEqual((await t.source.contentInfo(p.config.digest))?.labels, p.labels.config);
      } finally {
        sub.close();
      }
    });
  });
}

/** The in-flight state: `layer-` ingests of the image's layers, held by the lease with the manifest. */
function checkInFlight(p: PulledImage, ingests: IngestStatus[], resources: LeaseResource[]): void {
  assert.ok(ingests.length > 0, 'a layer is being fetched');
  for (const ing of ingests) {
    const layer = p.layers.find((l) => ing.ref === `layer-${l.digest}`);
    assert.ok(layer !== undefined, `${ing.ref} is a layer-<digest> ingest of the image`);
    assert.equal(ing.total, layer.size, ing.ref);
    assert.ok(ing.offset >= 0 && ing.offset <= ing.total, `${ing.ref}: ${ing.offset} of ${ing.total}`);
    assert.ok(ing.expected === '' || ing.expected === layer.digest, ing.expected);
    assert.ok(ing.startedAt instanceof Date && ing.updatedAt instanceof Date, ing.ref);
    // A layer may have been committed between the two calls: then the lease holds its blob.
    assert.ok(
      resources.some(
        (r) => (r.type === 'ingests' && r.id === ing.ref) || (r.type === 'content' && r.id === layer.digest),
      ),
      `the lease holds ${ing.ref}: ${JSON.stringify(resources)}`,
    );
  }
  for (const d of [p.manifest.digest, p.config.digest]) {
    assert.ok(
      resources.some((r) => r.type === 'content' && r.id === d),
      `the lease holds ${d}`,
    );
  }
  const types = ['content', 'ingests', `snapshots/${p.snapshotter}`];
  assert.ok(
    resources.every((r) => types.includes(r.type)),
    `resource types: ${JSON.stringify(resources)}`,
  );
  const order = (r: LeaseResource) => `${String(types.indexOf(r.type))} ${r.id}`;
  assert.deepEqual(
    resources.map(order),
    resources.map(order).sort(),
    'listed as containerd walks them: content, ingests, snapshots; each by id',
  );
}

/**
 * A snapshot an unpack's lease holds: a layer's active "extract-<id> <chain ID>" while it is
 * written, then the layer's committed one named by its chain ID.
 */
async function checkSnapshotResource(source: ContainerdSource, p: PulledImage, key: string): Promise<void> {
  const extract = /^extract-\S+ (sha256:[0-9a-f]{64})$/.exec(key);
  const chain = extract?.[1] ?? key;
  const i = p.layers.findIndex((l) => l.chainId === chain);
  assert.ok(i >= 0, `snapshot ${key} is one of the image's layers`);
  const snap = await source.statSnapshot(p.snapshotter, key);
  // An extract snapshot is removed once its layer is committed: it may be gone by now.
  if (extract !== null && snap === null) return;
  assert.deepEqual(snap, {
    name: key,
    parent: p.layers[i - 1]?.chainId ?? '',
    kind: extract === null ? 'committed' : 'active',
    labels: { 'containerd.io/snapshot.ref': chain },
  });
}
