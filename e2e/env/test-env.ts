// The whole real environment one test needs: containerd, the registry, and a throttle in front
// of it that pulls go through. Private dirs, free loopback ports: runs side by side with others.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  configureRegistryHost,
  startContainerd,
  type Containerd,
  type ContainerdOptions,
} from './containerd.js';
import { startRegistry, startThrottle, type Registry, type Throttle } from './registry.js';

export interface TestEnv {
  dir: string;
  containerd: Containerd;
  registry: Registry;
  throttle: Throttle;
  /** Push here (unthrottled). */
  pushHost: string;
  /** Reference host for pulls (throttled): 127.0.0.1:PORT of the throttle. */
  pullHost: string;
  stop(): Promise<void>;
}

export interface TestEnvOptions {
  /** Throttle rate in bytes per second (default 4 MiB/s). */
  rate?: number;
  snapshotter?: string;
  /** Which containerd and how it is configured (a matrix variant); default the system 1.6. */
  containerd?: ContainerdOptions;
}

/** Starts everything; on any failure stops what started and throws with the reason. */
export async function startTestEnv(opts: TestEnvOptions = {}): Promise<TestEnv> {
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
    const throttle = await startThrottle(registry.host, opts.rate ?? 4 * 1024 * 1024);
    stops.push(() => throttle.stop());
    const containerd = await startContainerd(join(dir, 'c'), {
      ...opts.containerd,
      ...(opts.snapshotter === undefined ? {} : { snapshotter: opts.snapshotter }),
    });
    stops.push(() => containerd.stop());
    configureRegistryHost(containerd, throttle.host, throttle.host);
    configureRegistryHost(containerd, 'registry.test', throttle.host);
    configureRegistryHost(containerd, registry.host, registry.host);
    let stopped = false;
    return {
      dir,
      containerd,
      registry,
      throttle,
      pushHost: registry.host,
      pullHost: throttle.host,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw new Error(
      `the test environment (containerd, registry) did not start: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
      },
    );
  }
}
