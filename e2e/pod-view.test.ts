// The pod's view end to end, through the real kubectl on the local sandbox (a real one-node
// cluster: kube-apiserver, controllers, scheduler, a kubelet on containerd): what a pod waits
// for is every image it needs, each tied to its own pull — two tags of one repository, a tag
// pinned by digest, imagePullPolicy Always and Never, image volumes, `kubectl set image` — and
// the pod's ETA covers all of them, queued ones included (DESIGN.md, "The pod's figures cover
// every image…").
//
// Times are read where they happen: the moment an image is in is its containerd image record
// (created, or updated when a pull moved an existing tag), read with containerd's Images API;
// the pod's annotations are sampled by `kubectl get -w`, each line stamped as it arrives, so a
// sample is the agent's write itself and not a stale read of it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ImagePullStatus, type PodPullStatus } from '../common/contract.js';
import { GrpcContainerdSource } from '../node-agent/containerd/grpc-client.js';
import type { ImageRecord } from '../node-agent/containerd/source.js';
import { kubectlFor, type Kubectl } from './cluster/kubectl.js';
import { buildImage, type BuiltImage } from './env/image-builder.js';
import { startSandbox, type Sandbox } from './sandbox/sandbox.js';

const MB = 1_000_000;
const MiB = 1024 * 1024;

let sandbox: Sandbox;
let k: Kubectl;
let containerd: GrpcContainerdSource;
let ns: string;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pt-pod-view-'));
  sandbox = await startSandbox({ dir: join(dir, 'sb'), rate: 6 * MiB });
  k = kubectlFor(sandbox.env.KUBECONFIG);
  containerd = new GrpcContainerdSource({ address: sandbox.test.containerd.socketPath });
  ns = `pt-view-${randomBytes(3).toString('hex')}`;
  await sandbox.createNamespace(ns);
});

after(async () => {
  // before() may have failed half-way.
  (containerd as GrpcContainerdSource | undefined)?.close();
  (k as Kubectl | undefined)?.cleanup();
  await (sandbox as Sandbox | undefined)?.stop();
  // PULLTRACE_E2E_KEEP=1 keeps the sandbox's logs (node-agent.log, webhook.log) for a look.
  if (process.env.PULLTRACE_E2E_KEEP === undefined) rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`kept ${dir}\n`);
});

/**
 * Builds and pushes `name` (repo:tag); returns it and the reference pods use (throttled host).
 * Its command stays up (`/sleep`) unless `cmd: '/true'` (an init container, which must end).
 */
async function push(
  name: string,
  layersMb: number[],
  base?: BuiltImage,
  cmd: '/sleep' | '/true' = '/sleep',
): Promise<{ built: BuiltImage; ref: string }> {
  const built = await buildImage({
    registry: sandbox.env.REGISTRY,
    name,
    layers: layersMb.map((m) => m * MB),
    cmd: [cmd],
    ...(base === undefined ? {} : { baseLayers: base.layers }),
  });
  return { built, ref: `${sandbox.env.PULL_REGISTRY}/${name}` };
}

/**
 * Waits into the next second. A pod's creationTimestamp has one-second resolution on the API
 * server, so an image whose record was made in the same second as the pod looks pulled after
 * the pod began to wait (the agent cannot tell): a test of "already on the node" creates its
 * pod in a later second than the pull it relies on.
 */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
}

/** The repository of a `repo:tag` reference. */
function repoOf(ref: string): string {
  return ref.slice(0, ref.lastIndexOf(':'));
}

function unique(repo: string): string {
  return `${repo}-${randomBytes(2).toString('hex')}`;
}

interface Ctr {
  name: string;
  image: string;
  pullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
}

function podYaml(
  name: string,
  spec: { init?: Ctr[]; containers: Ctr[]; volumes?: { name: string; reference: string }[] },
): string {
  const ctr = (c: Ctr) =>
    `  - name: ${c.name}\n    image: ${c.image}\n${c.pullPolicy === undefined ? '' : `    imagePullPolicy: ${c.pullPolicy}\n`}`;
  const volumes = spec.volumes ?? [];
  return [
    'apiVersion: v1',
    'kind: Pod',
    `metadata: {name: ${name}, namespace: ${ns}}`,
    'spec:',
    ...(spec.init === undefined ? [] : ['  initContainers:', ...spec.init.map(ctr)]),
    '  containers:',
    ...spec.containers.map(ctr),
    ...(volumes.length === 0
      ? []
      : ['  volumes:', ...volumes.map((v) => `  - name: ${v.name}\n    image: {reference: ${v.reference}}`)]),
    '',
  ].join('\n');
}

async function create(name: string, spec: Parameters<typeof podYaml>[1]): Promise<void> {
  const r = await k.run(['create', '-f', '-'], { input: podYaml(name, spec) });
  assert.equal(r.code, 0, r.stderr);
}

async function jsonpath(pod: string, path: string): Promise<string> {
  const r = await k.run(['get', 'pod', pod, '-n', ns, '-o', `jsonpath=${path}`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/**
 * A field the kubelet writes once the container exists (`imageID`), which may come a moment
 * after the agent's condition: the kubelet creates and starts the container after its pull
 * returns, then reports it. Polls until set (15 s at most).
 */
async function kubeletField(pod: string, path: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await jsonpath(pod, path);
    if (v !== '' || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function pullStatus(pod: string): Promise<PodPullStatus> {
  const raw = await jsonpath(pod, '{.metadata.annotations.pulltrace\\.io/status}');
  return JSON.parse(raw) as PodPullStatus;
}

const CONDITION = '{.status.conditions[?(@.type=="pulltrace.io/ImagesPulled")]';

/** `kubectl wait --for=condition=pulltrace.io/ImagesPulled`, started now; resolves with when it returned. */
function startWait(pod: string, timeout = '120s'): Promise<number> {
  const running = k.start([
    'wait',
    '-n',
    ns,
    '--for=condition=pulltrace.io/ImagesPulled',
    `pod/${pod}`,
    `--timeout=${timeout}`,
  ]);
  return running.done.then((r) => {
    const at = Date.now();
    assert.equal(r.code, 0, `kubectl wait ${pod}: ${r.stdout}${r.stderr}`);
    return at;
  });
}

/** One line of `kubectl get pod -w`, stamped when it arrived. */
interface Sample {
  at: number;
  status: PodPullStatus | null;
  etaSeconds: number | null;
  condition: string;
  images: string[];
  imageIDs: string[];
  restarts: string;
}

// Not a tab: kubectl prints `get -w` output through a tabwriter, which turns tabs into spaces.
const SEP = '|#|';
const TEMPLATE = [
  '{.metadata.annotations.pulltrace\\.io/status}',
  '{.metadata.annotations.pulltrace\\.io/eta-seconds}',
  `${CONDITION}.status}`,
  '{.status.containerStatuses[*].image}',
  '{.status.containerStatuses[*].imageID}',
  '{.status.containerStatuses[*].restartCount}',
].join(`{"${SEP}"}`);

interface PodWatch {
  samples: Sample[];
  /** Resolves at the first sample (already seen or to come) for which `ok` holds; fails after 30 s. */
  until(ok: (s: Sample) => boolean, what: string): Promise<Sample>;
  stop(): Promise<void>;
}

/** Follows the pod with `kubectl get pod -w -o jsonpath`: every write, as it happens. */
function watchPod(pod: string): PodWatch {
  const samples: Sample[] = [];
  const waiters = new Set<(s: Sample) => void>();
  const bad: string[] = [];
  const running = k.start(['get', 'pod', pod, '-n', ns, '-w', '-o', `jsonpath=${TEMPLATE}{"\\n"}`]);
  let buf = '';
  running.child.stdout?.on('data', (d: Buffer) => {
    const at = Date.now();
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const [status = '', eta = '', condition = '', images = '', ids = '', restarts = ''] = line.split(SEP);
      let parsed: PodPullStatus | null = null;
      try {
        parsed = status === '' ? null : (JSON.parse(status) as PodPullStatus);
      } catch {
        bad.push(line);
      }
      const sample: Sample = {
        at,
        status: parsed,
        etaSeconds: eta === '' ? null : Number(eta),
        condition,
        images: images.split(' ').filter((s) => s !== ''),
        imageIDs: ids.split(' ').filter((s) => s !== ''),
        restarts,
      };
      samples.push(sample);
      for (const w of waiters) w(sample);
    }
  });
  return {
    samples,
    until: (ok, what) => {
      const seen = samples.find(ok);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}`));
        }, 30_000);
        const check = (s: Sample) => {
          if (!ok(s)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(s);
        };
        waiters.add(check);
      });
    },
    stop: async () => {
      running.child.kill('SIGTERM');
      await running.done;
      assert.deepEqual(bad, [], 'kubectl get -w printed lines that do not parse');
    },
  };
}

/** The containerd image record named `name` (as the CRI names it), or null. */
async function record(name: string): Promise<ImageRecord | null> {
  return (await containerd.listImages()).find((i) => i.name === name) ?? null;
}

/** When the record came to be or last moved (a pull that retags updates it). */
function recordTime(r: ImageRecord | null): number {
  assert.ok(r !== null, 'image record exists');
  const t = r.updatedAt ?? r.createdAt;
  assert.ok(t !== null, `record ${r.name} has a time`);
  return t.getTime();
}

function entry(s: Sample, image: string): ImagePullStatus | undefined {
  return s.status?.images.find((i) => i.image === image);
}

/** The samples as `ms-from-t0 phase percent% [condition]`, for the log. */
function timeline(samples: Sample[], t0: number): string {
  return samples
    .map((s) => `${s.at - t0}ms ${s.status?.phase ?? '-'} ${s.status?.percent ?? '-'}% ${s.condition || '-'}`)
    .join(', ');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

test('two tags of one repository: the pod is pulled only once the kubelet has the second', async (t) => {
  sandbox.test.throttle.setRate(6 * MiB);
  const repo = unique('team/app');
  const migrate = await push(`${repo}:migrate`, [8, 8], undefined, '/true');
  const v2 = await push(`${repo}:v2`, [8, 8, 8]);
  await create('two-tags', {
    init: [{ name: 'migrate', image: migrate.ref }],
    containers: [{ name: 'app', image: v2.ref }],
  });
  const watch = watchPod('two-tags');
  const waited = await startWait('two-tags');
  await watch.stop();

  const v2In = recordTime(await record(v2.ref));
  const lag = waited - v2In;
  t.diagnostic(
    `two-tags: kubectl wait returned ${lag} ms after the app:v2 record; writes ${timeline(watch.samples, v2In)}`,
  );
  assert.ok(lag >= 0, `kubectl wait returned ${-lag} ms before app:v2 was in`);

  const whileMigrate = watch.samples.filter((s) => entry(s, migrate.ref)?.phase === 'Downloading');
  assert.ok(whileMigrate.length > 0, 'a write showed app:migrate Downloading');
  for (const s of whileMigrate) {
    const e = entry(s, v2.ref);
    assert.ok(e !== undefined, `app:v2 listed: ${JSON.stringify(s.status)}`);
    assert.ok(['Queued', 'Resolving'].includes(e.phase), `app:v2 waits its turn: ${JSON.stringify(e)}`);
    assert.equal(e.bytesDone, 0);
  }
  t.diagnostic(
    `two-tags: while app:migrate downloaded, app:v2 was ${[...new Set(whileMigrate.map((s) => entry(s, v2.ref)?.phase))].join('/')} (${whileMigrate.length} writes)`,
  );
  // The kubelet's view: each container with its own tag and the repo digest it runs.
  const host = sandbox.env.PULL_REGISTRY;
  assert.equal(
    await kubeletField('two-tags', '{.status.initContainerStatuses[0].imageID}'),
    `${host}/${repo}@${migrate.built.manifestDigest}`,
  );
  assert.equal(
    await kubeletField('two-tags', '{.status.containerStatuses[0].imageID}'),
    `${host}/${repo}@${v2.built.manifestDigest}`,
  );
  assert.equal(await jsonpath('two-tags', '{.status.containerStatuses[0].image}'), v2.ref);
  // The lag itself (962 ms in a quiet run; the goal is ≤ 1 s) is a wall-clock figure on a shared
  // 2-core machine: reported above, bounded here only against a gross regression.
  assert.ok(lag <= 2000, `kubectl wait returned ${lag} ms after app:v2 was in`);
});

test('repo:tag@sha256:… of an image on the node: Cached within one poll', async (t) => {
  const img = await push(`${unique('e2e/pinned')}:v1`, [2]);
  await create('pin-warm', { containers: [{ name: 'main', image: img.ref }] });
  await startWait('pin-warm');
  await nextSecond();
  const pinned = `${img.ref}@${img.built.manifestDigest}`;
  const t0 = Date.now();
  await create('pinned', { containers: [{ name: 'main', image: pinned }] });
  const watch = watchPod('pinned');
  const waited = await startWait('pinned', '20s');
  await watch.stop();
  t.diagnostic(
    `pinned: condition True ${waited - t0} ms after kubectl create began; writes ${timeline(watch.samples, t0)}`,
  );
  assert.ok(waited - t0 <= 3000, `Cached took ${waited - t0} ms`);
  assert.equal(await jsonpath('pinned', `${CONDITION}.reason}`), 'Cached');
  assert.equal(
    await kubeletField('pinned', '{.status.containerStatuses[0].imageID}'),
    `${repoOf(img.ref)}@${img.built.manifestDigest}`,
  );
});

test('imagePullPolicy Always on a tag pushed again: the pod follows the new download and ends Pulled', async (t) => {
  sandbox.test.throttle.setRate(3 * MiB);
  try {
    const name = `${unique('e2e/always')}:v1`;
    const first = await push(name, [3]);
    await create('always-warm', { containers: [{ name: 'main', image: first.ref }] });
    await startWait('always-warm');
    const second = await push(name, [10], first.built);
    // The first pull ends in an earlier second than the pod's creationTimestamp (1 s resolution):
    // in the same second the agent cannot tell that pull from this pod's (docs/limitations.md).
    await nextSecond();

    await create('always-new', { containers: [{ name: 'main', image: second.ref, pullPolicy: 'Always' }] });
    const watch = watchPod('always-new');
    const waited = await startWait('always-new');
    await watch.stop();
    const moved = recordTime(await record(second.ref));
    const downloading = watch.samples
      .map((s) => s.status?.images[0])
      .filter((i) => i?.phase === 'Downloading' && i.bytesDone > 0);
    t.diagnostic(
      `always-new: ${downloading.length} writes Downloading (bytesDone ${downloading.map((i) => i?.bytesDone).join(',')}); wait ${waited - moved} ms after the record moved; writes ${timeline(watch.samples, moved)}`,
    );
    // The kubelet runs the new image: the premise of what follows (said first, with the writes,
    // so a failure in CI's output tail shows what happened).
    const seen = `writes ${timeline(watch.samples, moved)}`;
    assert.equal(
      await kubeletField('always-new', '{.status.containerStatuses[0].imageID}'),
      `${repoOf(second.ref)}@${second.built.manifestDigest}`,
      `the kubelet runs the tag's new image; ${seen}`,
    );
    assert.ok(waited >= moved, `not True before the new image was in; ${seen}`);
    const s = await pullStatus('always-new');
    assert.equal(s.phase, 'Pulled');
    assert.equal(
      s.images[0]?.bytesCached,
      first.built.layers[0]?.size,
      `the old layer counts as cached: ${JSON.stringify(s.images[0])}; ${seen}`,
    );
    assert.ok(downloading.length > 0, 'the new download was shown (Downloading, bytesDone > 0)');
  } finally {
    sandbox.test.throttle.setRate(6 * MiB);
  }
});

test('imagePullPolicy Always on an unchanged image already present: condition True', async (t) => {
  const img = await push(`${unique('e2e/same')}:v1`, [2]);
  await create('same-warm', { containers: [{ name: 'main', image: img.ref }] });
  await startWait('same-warm');
  await nextSecond();
  const t0 = Date.now();
  await create('always-same', { containers: [{ name: 'main', image: img.ref, pullPolicy: 'Always' }] });
  const waited = await startWait('always-same', '30s');
  const reason = await jsonpath('always-same', `${CONDITION}.reason}`);
  t.diagnostic(`always-same: True ${waited - t0} ms after kubectl create began, reason ${reason}`);
  assert.ok(['Pulled', 'Cached'].includes(reason), reason);
});

test('a pod of two images: eta-seconds while the first downloads, within 30 % of the time until both are in', async (t) => {
  sandbox.test.throttle.setRate(1 * MiB);
  try {
    const a = await push(`${unique('e2e/eta-a')}:v1`, [6, 6]);
    const b = await push(`${unique('e2e/eta-b')}:v1`, [6, 6]);
    await create('eta', {
      containers: [
        { name: 'a', image: a.ref },
        { name: 'b', image: b.ref },
      ],
    });
    const watch = watchPod('eta');
    await startWait('eta');
    await watch.stop();
    const end = Math.max(recordTime(await record(a.ref)), recordTime(await record(b.ref)));

    const firstDownloading = watch.samples.filter((s) => entry(s, a.ref)?.phase === 'Downloading');
    assert.ok(firstDownloading.length > 0, 'a write showed the first image Downloading');
    assert.ok(
      firstDownloading.some((s) => s.etaSeconds !== null),
      'eta-seconds is present while the first image downloads',
    );
    const inWindow = (s: Sample | undefined): s is Sample =>
      s?.status != null && s.status.percent >= 10 && s.status.percent <= 40 && s.etaSeconds !== null;
    const error = (s: Sample, at: number) => {
      const truth = (end - at) / 1000;
      return {
        percent: s.status?.percent,
        eta: s.etaSeconds,
        truth: Number(truth.toFixed(2)),
        err: Math.abs((s.etaSeconds ?? 0) - truth) / truth,
      };
    };
    // Each of the agent's writes (a pod patch and a status patch print two lines; the kubelet's
    // writes print the same annotations again), taken when it arrived.
    const writes = watch.samples.filter(
      (s, i, all) => all.findIndex((o) => o.status?.updatedAt === s.status?.updatedAt) === i,
    );
    const atWrite = writes.filter(inWindow).map((s) => error(s, s.at));
    // What `kubectl get` would have shown every 250 ms: the last write, read later.
    const polled: ReturnType<typeof error>[] = [];
    for (let t = watch.samples[0]?.at ?? end; t < end; t += 250) {
      const shown = writes.filter((s) => s.at <= t).at(-1);
      if (inWindow(shown)) polled.push(error(shown, t));
    }
    const m = median(atWrite.map((e) => e.err));
    const mPolled = median(polled.map((e) => e.err));
    t.diagnostic(
      `eta: writes in 10–40 %: ${JSON.stringify(atWrite.map((e) => ({ ...e, err: Number(e.err.toFixed(3)) })))}; median error ${(100 * m).toFixed(1)} % at the writes, ${(100 * mPolled).toFixed(1)} % read every 250 ms (${polled.length} reads)`,
    );
    assert.ok(atWrite.length > 0, 'writes while the pod was 10–40 %');
    assert.ok(m <= 0.3, `median ETA error ${(100 * m).toFixed(1)} %`);
  } finally {
    sandbox.test.throttle.setRate(6 * MiB);
  }
});

test('imagePullPolicy Never with the image absent: Failed with ErrImageNeverPull, nothing pulled', async (t) => {
  const img = await push(`${unique('e2e/never')}:v1`, [1]);
  await create('never', { containers: [{ name: 'main', image: img.ref, pullPolicy: 'Never' }] });
  const r = await k.run(
    ['wait', '-n', ns, `--for=jsonpath=${CONDITION}.reason}=Failed`, 'pod/never', '--timeout=30s'],
    { timeoutMs: 40_000 },
  );
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.equal(await jsonpath('never', `${CONDITION}.status}`), 'False');
  const message = await jsonpath('never', `${CONDITION}.message}`);
  t.diagnostic(`never: condition message ${message}`);
  assert.match(message, /ErrImageNeverPull/);
  assert.equal(
    await jsonpath('never', '{.status.containerStatuses[0].state.waiting.reason}'),
    'ErrImageNeverPull',
  );
  assert.equal(
    await jsonpath('never', '{.status.containerStatuses[0].state.waiting.message}'),
    `Container image "${img.ref}" is not present with pull policy of Never`,
  );
  assert.equal(await record(img.ref), null, 'no pull');
});

test("an image reference that does not parse (upper case): Failed with the kubelet's InvalidImageName", async (t) => {
  const bad = `${sandbox.env.PULL_REGISTRY}/E2E/Invalid:v1`;
  await create('invalid', { containers: [{ name: 'main', image: bad }] });
  const r = await k.run(
    ['wait', '-n', ns, `--for=jsonpath=${CONDITION}.reason}=Failed`, 'pod/invalid', '--timeout=30s'],
    { timeoutMs: 40_000 },
  );
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  assert.equal(await jsonpath('invalid', `${CONDITION}.status}`), 'False');
  const message = await jsonpath('invalid', `${CONDITION}.message}`);
  t.diagnostic(`invalid: condition message ${message}`);
  assert.match(message, /InvalidImageName/);
  assert.equal(
    await jsonpath('invalid', '{.status.containerStatuses[0].state.waiting.reason}'),
    'InvalidImageName',
  );
});

test('kubectl set image on a live pod: the new image is pulled, the status keeps the old one until it is in', async (t) => {
  const old = await push(`${unique('e2e/setimg')}:v1`, [3]);
  await create('setimg', { containers: [{ name: 'main', image: old.ref }] });
  await startWait('setimg');
  const oldId = await kubeletField('setimg', '{.status.containerStatuses[0].imageID}');
  // A pull of ~3 s (the agent once dropped a final Pulled that followed a final Pulled within
  // its interval; it now compares the images and the generation too).
  const next = await push(`${unique('e2e/setimg')}:v2`, [16]);
  const watch = watchPod('setimg');
  const t0 = Date.now();
  const r = await k.run(['set', 'image', '-n', ns, 'pod/setimg', `main=${next.ref}`]);
  assert.equal(r.code, 0, r.stderr);
  // Until the agent has seen the change, its condition is for the old generation, which
  // `kubectl wait` ignores (observedGeneration); it waits for the new image's False then True.
  const flipped = await watch
    .until((s) => s.condition === 'False', 'the condition False for the new image')
    .catch(async (err: unknown) => {
      await watch.stop();
      throw new Error(
        `${String(err)}; writes ${timeline(watch.samples, t0)} ${JSON.stringify(watch.samples.at(-1))}`,
      );
    });
  t.diagnostic(`setimg: condition False ${flipped.at - t0} ms after kubectl set image began`);
  const waited = await startWait('setimg');
  const nextIn = recordTime(await record(next.ref));
  // The kubelet writes the restarted container once its pull has returned.
  const last = await watch.until((s) => s.images[0] === next.ref, 'the new image in the status');
  await watch.stop();
  t.diagnostic(`setimg: kubectl wait returned ${waited - nextIn} ms after the new record`);
  assert.ok(waited >= nextIn, 'not True before the new image was in');
  const before = watch.samples.filter((s) => s.at < nextIn);
  assert.ok(before.length > 0);
  for (const s of before) {
    assert.deepEqual([s.images, s.imageIDs], [[old.ref], [oldId]], 'the old image until the new one is in');
  }
  assert.deepEqual(last.imageIDs, [`${repoOf(next.ref)}@${next.built.manifestDigest}`]);
  assert.equal(last.restarts, '1');
});

test('an image volume is pulled before the containers and counts in the pod', async () => {
  const vol = await push(`${unique('e2e/vol')}:v1`, [4]);
  const main = await push(`${unique('e2e/volmain')}:v1`, [2]);
  await create('vol', {
    containers: [{ name: 'main', image: main.ref }],
    volumes: [{ name: 'data', reference: vol.ref }],
  });
  const watch = watchPod('vol');
  await startWait('vol');
  await watch.stop();
  const volIn = recordTime(await record(vol.ref));
  const mainIn = recordTime(await record(main.ref));
  assert.ok(volIn < mainIn, 'the volume image came first');
  const s = await pullStatus('vol');
  assert.deepEqual(
    s.images.map((i) => [i.image, i.phase]),
    [
      [vol.ref, 'Pulled'],
      [main.ref, 'Pulled'],
    ],
  );
  const e = await k.run([
    'get',
    'events',
    '-n',
    ns,
    '--field-selector',
    'involvedObject.name=vol,reason=Pulling',
    '-o',
    'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
  ]);
  assert.equal(e.code, 0, e.stderr);
  // Both pulled through the kubelet (the order is the records', above: events list by name).
  assert.deepEqual(
    e.stdout.trim().split('\n').sort(),
    [`Pulling image "${vol.ref}"`, `Pulling image "${main.ref}"`].sort(),
  );
});
