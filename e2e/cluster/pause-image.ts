// The pod sandbox ("pause") image, made here: registry.k8s.io cannot be reached from these
// machines, and containerd's CRI starts every pod from its sandbox image. pause/main.go is built
// once with `CGO_ENABLED=0 go build` (a static binary, cached by the source's hash), put into an
// OCI image by e2e/env/image-builder.ts and pushed to the local registry. containerd then finds
// its configured sandbox image (`registry.k8s.io/pause:3.6`, see e2e/env/containerd.ts) through a
// certs.d mirror entry for registry.k8s.io pointing at that registry: no containerd config change,
// and the name stays the one real clusters use.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { configureRegistryHost, type Containerd } from '../env/containerd.js';
import { buildImage, type Layer } from '../env/image-builder.js';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./pause/main.go', import.meta.url));

/** The sandbox image containerd's CRI is configured with (e2e/env/containerd.ts). */
export const SANDBOX_IMAGE = 'registry.k8s.io/pause:3.6';

/** Builds pause/main.go into the cache (once per source version) and returns the binary's path. */
export async function pauseBinary(
  cacheDir = join(process.env.PULLTRACE_CACHE ?? join(homedir(), '.cache', 'pulltrace'), 'pause'),
): Promise<string> {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12);
  const out = join(cacheDir, `pause-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  await run('go', ['build', '-trimpath', '-ldflags', '-s -w', '-o', tmp, SOURCE], {
    env: { ...process.env, CGO_ENABLED: '0', GOOS: 'linux', GOARCH: 'amd64' },
  }).catch((err: unknown) => {
    throw new Error(`go build of ${SOURCE} failed (Go at /usr/local/go/bin? see shared TESTENV.md)`, {
      cause: err,
    });
  });
  renameSync(tmp, out);
  return out;
}

/**
 * One layer holding the pause binary as /pause and, hard-linked, as /true: image-builder gives
 * every image the command /true, so /true is the pause program here.
 */
async function pauseLayer(binary: string): Promise<Layer> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-pause-'));
  try {
    const root = join(dir, 'root');
    mkdirSync(root);
    linkSync(binary, join(root, 'pause'));
    linkSync(binary, join(root, 'true'));
    const { stdout } = await run(
      'tar',
      [
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        '--mtime=@0',
        '--sort=name',
        '-C',
        root,
        '-cf',
        '-',
        'pause',
        'true',
      ],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
    );
    const tar = stdout;
    const gz = gzipSync(tar);
    const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    return { digest: sha(gz), size: gz.length, data: gz, diffId: sha(tar) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Pushes the pause image to `registry` (host:port, plain HTTP) as `pause:3.6` and makes
 * `containerd` resolve registry.k8s.io there. Returns the pushed reference.
 */
export async function providePauseImage(containerd: Containerd, registry: string): Promise<string> {
  const layer = await pauseLayer(await pauseBinary());
  const built = await buildImage({ registry, name: 'pause:3.6', layers: [], baseLayers: [layer] });
  configureRegistryHost(containerd, 'registry.k8s.io', registry);
  return built.reference;
}
