// Writes test images as an OCI image layout (random, incompressible layers; a config whose
// diff_ids match; a manifest; optionally a multi-platform index) and pushes them to a
// registry with skopeo. Nothing is downloaded from anywhere.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Blob {
  digest: string;
  size: number;
  data: Buffer;
}

export interface Layer extends Blob {
  diffId: string;
}

export interface BuiltImage {
  /** host/name:tag as pushed. */
  reference: string;
  manifestDigest: string;
  /** Set for a multi-platform image: the index digest. */
  indexDigest: string | null;
  configDigest: string;
  layers: Layer[];
  /** Config + layers of the linux/amd64 manifest: what a pull must fetch on an empty node. */
  totalSize: number;
}

function blob(data: Buffer): Blob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, size: data.length, data };
}

/** A one-file ustar archive. */
function tar(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const field = (value: string, offset: number, length: number) =>
    header.write(value, offset, length, 'ascii');
  field(name, 0, 100);
  field('0000644\0', 100, 8);
  field('0000000\0', 108, 8);
  field('0000000\0', 116, 8);
  field(`${content.length.toString(8).padStart(11, '0')}\0`, 124, 12);
  field('14700000000\0', 136, 12);
  field('        ', 148, 8);
  field('0', 156, 1);
  field('ustar\0', 257, 6);
  field('00', 263, 2);
  let sum = 0;
  for (const b of header) sum += b;
  field(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  const pad = (512 - (content.length % 512)) % 512;
  return Buffer.concat([header, content, Buffer.alloc(pad), Buffer.alloc(1024)]);
}

/** A gzip'ed tar of `size` random bytes (the gzip is a little larger than `size`). */
export function randomLayer(size: number, name = 'data.bin'): Layer {
  const t = tar(name, randomBytes(size));
  const diffId = `sha256:${createHash('sha256').update(t).digest('hex')}`;
  return { ...blob(gzipSync(t, { level: 1 })), diffId };
}

function json(value: unknown): Blob {
  return blob(Buffer.from(JSON.stringify(value)));
}

function manifestFor(layers: Layer[], platform: { os: string; architecture: string }) {
  const config = json({
    architecture: platform.architecture,
    os: platform.os,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    config: { Cmd: ['/bin/true'] },
  });
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
  });
  return { config, manifest };
}

export interface BuildOptions {
  /** Registry to push to, host:port (plain HTTP). */
  registry: string;
  /** repo:tag, e.g. team/app:1 */
  name: string;
  /** Sizes of new layers in bytes. */
  layers: number[];
  /** Layers to put first, shared with another image (same blobs, so a node holding them has them cached). */
  baseLayers?: Layer[];
  /** Platforms; more than one makes an image index. Default linux/amd64. */
  platforms?: string[];
}

/** Builds and pushes an image; returns its digests and sizes. */
export async function buildImage(opts: BuildOptions): Promise<BuiltImage> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-oci-'));
  try {
    const blobs = join(dir, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const put = (b: Blob) => writeFileSync(join(blobs, b.digest.slice('sha256:'.length)), b.data);
    const layers = [
      ...(opts.baseLayers ?? []),
      ...opts.layers.map((size, i) => randomLayer(size, `layer-${i}.bin`)),
    ];
    for (const l of layers) put(l);
    const platforms = (opts.platforms ?? ['linux/amd64']).map((p) => {
      const [os = 'linux', architecture = 'amd64'] = p.split('/');
      return { os, architecture };
    });
    const tag = opts.name.split(':')[1] ?? 'latest';
    const repo = opts.name.split(':')[0] ?? opts.name;
    const built = platforms.map((p) => ({ p, ...manifestFor(layers, p) }));
    for (const b of built) {
      put(b.config);
      put(b.manifest);
    }
    const first = built[0];
    if (first === undefined) throw new Error('buildImage: no platform');
    let top: Blob & { mediaType: string } = { ...first.manifest, mediaType: MEDIA.manifest };
    let indexDigest: string | null = null;
    if (built.length > 1) {
      const index = json({
        schemaVersion: 2,
        mediaType: MEDIA.index,
        manifests: built.map((b) => ({
          mediaType: MEDIA.manifest,
          digest: b.manifest.digest,
          size: b.manifest.size,
          platform: b.p,
        })),
      });
      put(index);
      top = { ...index, mediaType: MEDIA.index };
      indexDigest = index.digest;
    }
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(
      join(dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: top.mediaType,
            digest: top.digest,
            size: top.size,
            annotations: { 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    const reference = `${opts.registry}/${repo}:${tag}`;
    await run(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--dest-tls-verify=false',
        ...(built.length > 1 ? ['--all'] : []),
        `oci:${dir}:${tag}`,
        `docker://${reference}`,
      ],
      { maxBuffer: 16 * 1024 * 1024 },
    ).catch((err: unknown) => {
      throw new Error(`skopeo could not push ${reference}`, { cause: err });
    });
    return {
      reference,
      manifestDigest: first.manifest.digest,
      indexDigest,
      configDigest: first.config.digest,
      layers,
      totalSize: first.config.size + layers.reduce((s, l) => s + l.size, 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
