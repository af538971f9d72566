// The big-node benchmark's environment: the registry, the throttle and a real containerd whose
// content store (namespace k8s.io) already holds 300 images of 15 small layers each (~5 100
// blobs, 900 image records: CRI writes a tag, a repo-digest and an id record per image), as a
// busy node's does. Filling it takes minutes (300 skopeo pushes, 300 CRI pulls), so the
// filled containerd root is kept under ~/.cache/pulltrace/bench-big-node/ and copied into each
// run's private dir: a run never writes to the cache, so later runs start from the same store.
// containerd's gRPC metrics are turned on (loopback) so the bench can count the calls it serves.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { freePort } from '../test-support/net.js';
import { configureRegistryHost, startContainerd, type Containerd } from '../e2e/env/containerd.js';
import { CriPuller } from '../e2e/env/cri-puller.js';
import { buildImage } from '../e2e/env/image-builder.js';
import { prng } from '../e2e/env/prng.js';
import { startRegistry, startThrottle, type Registry, type Throttle } from '../e2e/env/registry.js';

const run = promisify(execFile);

/** What the store holds before the benchmark's own pulls. */
export const BIG_STORE = {
  images: 300,
  layersPerImage: 15,
  /** Layer sizes are drawn from [minLayer, maxLayer] bytes (before gzip), seeded. */
  minLayer: 4 * 1024,
  maxLayer: 16 * 1024,
  seed: 10,
} as const;

/** Bumped whenever the way the store is filled changes: older caches are then not used. */
const CACHE_FORMAT = 1;

export interface BigNodeEnv {
  dir: string;
  containerd: Containerd;
  registry: Registry;
  throttle: Throttle;
  /** Push here (unthrottled). */
  pushHost: string;
  /** Reference host for pulls through the throttle. */
  pullHost: string;
  /** containerd's Prometheus endpoint (grpc_server_started_total per method). */
  metricsUrl: string;
  /** True when the store came from the cache; else how long filling it took. */
  cached: boolean;
  populateSeconds: number;
  stop(): Promise<void>;
}

/** Runs `fn` on every item, at most `n` at a time. */
async function pool<T>(
  items: readonly T[],
  n: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      const item = items[i];
      if (item === undefined) return;
      await fn(item, i);
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
}

function cacheDir(release: string): string {
  const base = process.env.PULLTRACE_CACHE ?? join(homedir(), '.cache', 'pulltrace');
  const s = BIG_STORE;
  const key = `v${CACHE_FORMAT}-containerd-${release.replace(/[^\w.-]/g, '_')}-${s.images}x${s.layersPerImage}-${s.minLayer}-${s.maxLayer}-s${s.seed}`;
  return join(base, 'bench-big-node', key);
}

/**
 * Builds the 300 images, pushes them to the registry and pulls each once over the CRI
 * (unthrottled, a few at a time), as the kubelet would have over the node's life.
 */
async function populate(registry: Registry, containerd: Containerd, log: (s: string) => void): Promise<void> {
  const rnd = prng(BIG_STORE.seed);
  const size = () => BIG_STORE.minLayer + Math.floor(rnd() * (BIG_STORE.maxLayer - BIG_STORE.minLayer + 1));
  const specs = Array.from({ length: BIG_STORE.images }, (_, i) => ({
    name: `big/app${i}:1`,
    layers: Array.from({ length: BIG_STORE.layersPerImage }, size),
  }));
  const t0 = performance.now();
  await pool(specs, 4, async (s, i) => {
    await buildImage({ registry: registry.host, name: s.name, layers: s.layers });
    if ((i + 1) % 50 === 0)
      log(`  pushed ${i + 1}/${specs.length} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  });
  const puller = new CriPuller(containerd.address);
  try {
    await pool(specs, 4, async (s, i) => {
      await puller.pullImage(`${registry.host}/${s.name}`);
      if ((i + 1) % 50 === 0)
        log(`  pulled ${i + 1}/${specs.length} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    });
  } finally {
    puller.close();
  }
}

/** Turns on containerd's metrics endpoint (gRPC counters) on a loopback port; takes effect at the next start. */
function enableMetrics(containerd: Containerd, port: number): void {
  const cfg = join(containerd.dir, 'config.toml');
  const text = readFileSync(cfg, 'utf8');
  const off = '[metrics]\n  address = ""';
  if (!text.includes(off)) throw new Error(`cannot enable containerd metrics: no "${off}" in ${cfg}`);
  writeFileSync(cfg, text.replace(off, `[metrics]\n  address = "127.0.0.1:${port}"`));
}

/** Starts the registry, the throttle and containerd on the big store (filled or from the cache). */
export async function startBigNode(rate: number, log: (s: string) => void): Promise<BigNodeEnv> {
  // Short: containerd's socket path must fit a unix socket address.
  const dir = mkdtempSync('/tmp/pt-');
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const registry = await startRegistry(join(dir, 'reg'));
    stops.push(() => registry.stop());
    const throttle = await startThrottle(registry.host, rate);
    stops.push(() => throttle.stop());
    // containerd's root is DIR/c/root (e2e/env/containerd.ts): a copied root is picked up as is.
    const cdir = join(dir, 'c');
    mkdirSync(cdir, { recursive: true });
    const { stdout } = await run('containerd', ['--version']);
    const release = stdout.trim().split(/\s+/)[2] ?? 'unknown';
    const cache = cacheDir(release);
    const cached = existsSync(join(cache, 'complete.json'));
    if (cached) {
      log(`store from the cache ${cache}`);
      await run('cp', ['-a', '--reflink=auto', join(cache, 'root'), join(cdir, 'root')]);
    }
    const containerd = await startContainerd(cdir);
    stops.push(() => containerd.stop());
    for (const host of [throttle.host, registry.host]) configureRegistryHost(containerd, host, host);
    let populateSeconds = 0;
    if (!cached) {
      log(
        `filling the store (${BIG_STORE.images} images × ${BIG_STORE.layersPerImage} layers); kept in ${cache}`,
      );
      const t0 = performance.now();
      await populate(registry, containerd, log);
      populateSeconds = (performance.now() - t0) / 1000;
      // Copied while containerd is stopped: its bolt databases are then consistent.
      await containerd.stop();
      const tmp = `${cache}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      await run('cp', ['-a', '--reflink=auto', join(cdir, 'root'), join(tmp, 'root')]);
      writeFileSync(
        join(tmp, 'complete.json'),
        `${JSON.stringify({ ...BIG_STORE, release, filledAt: new Date().toISOString(), populateSeconds })}\n`,
      );
      rmSync(cache, { recursive: true, force: true });
      renameSync(tmp, cache);
    }
    const metricsPort = await freePort();
    enableMetrics(containerd, metricsPort);
    await containerd.restart();
    let stopped = false;
    return {
      dir,
      containerd,
      registry,
      throttle,
      pushHost: registry.host,
      pullHost: throttle.host,
      metricsUrl: `http://127.0.0.1:${metricsPort}/v1/metrics`,
      cached,
      populateSeconds,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw new Error(
      `the big-node environment did not start: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
