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

/** One ustar entry (header + content padded to 512 bytes). */
function tarEntry(name: string, content: Buffer, mode: string): Buffer {
  const header = Buffer.alloc(512);
  const field = (value: string, offset: number, length: number) =>
    header.write(value, offset, length, 'ascii');
  field(name, 0, 100);
  field(`${mode}\0`, 100, 8);
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
  return Buffer.concat([header, content, Buffer.alloc(pad)]);
}

/** An ELF64 executable for linux/amd64 made of one loadable segment holding `code` (entry: its start). */
function elf(code: (base: bigint) => Buffer): Buffer {
  const base = 0x400000n;
  const body = code(base + 120n);
  const size = 64 + 56 + body.length;
  const b = Buffer.alloc(size);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0); // magic, 64-bit, little endian, version 1
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(base + 120n, 24); // entry: the code after the two headers
  b.writeBigUInt64LE(64n, 32); // program headers right after this header
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(5, 68); // R + X
  b.writeBigUInt64LE(0n, 72);
  b.writeBigUInt64LE(base, 80);
  b.writeBigUInt64LE(base, 88);
  b.writeBigUInt64LE(BigInt(size), 96);
  b.writeBigUInt64LE(BigInt(size), 104);
  b.writeBigUInt64LE(0x1000n, 112);
  body.copy(b, 120);
  return b;
}

/**
 * The smallest program that exits 0 on linux/amd64: an ELF64 header, one loadable segment, and
 * `mov eax, 60; xor edi, edi; syscall` (exit(0)). Every test layer carries it as /true, the
 * images' default command, so a real kubelet can start their containers (an init container
 * completes at once; see sleepProgram() for one that stays up).
 */
export function trueProgram(): Buffer {
  return elf(() => Buffer.from([0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]));
}

/**
 * A program that runs until SIGTERM or SIGINT and then exits 0, on linux/amd64: what a
 * container that must stay up (and become Ready) runs, and stops at once when the kubelet stops
 * it (as PID 1 a signal without a handler would be ignored until the grace period ends):
 *
 *     rt_sigaction(SIGTERM, &act, 0, 8); rt_sigaction(SIGINT, &act, 0, 8);
 *     for (;;) pause();
 *     handler: exit(0);
 *     act: { handler, SA_RESTORER, handler, 0 }   // x86-64 wants a restorer; exit() never returns
 */
export function sleepProgram(): Buffer {
  return elf((at) => {
    const handler = at + 63n;
    const sigaction = (signal: number, rel: number) => [
      ...[0xb8, 13, 0, 0, 0], // mov eax, 13 (rt_sigaction)
      ...[0xbf, signal, 0, 0, 0], // mov edi, signal
      ...[0x48, 0x8d, 0x35, rel, 0, 0, 0], // lea rsi, [rip + rel] (act)
      ...[0x31, 0xd2], // xor edx, edx
      ...[0x41, 0xba, 8, 0, 0, 0], // mov r10d, 8
      ...[0x0f, 0x05], // syscall
    ];
    const code = Buffer.from([
      ...sigaction(15, 72 - 17), // 0..27, act at 72
      ...sigaction(2, 72 - 44), // 27..54
      ...[0xb8, 34, 0, 0, 0], // 54: mov eax, 34 (pause)
      ...[0x0f, 0x05], // syscall
      ...[0xeb, 0xf7], // jmp 54
      ...[0xb8, 60, 0, 0, 0], // 63: mov eax, 60 (exit)
      ...[0x31, 0xff], // xor edi, edi
      ...[0x0f, 0x05], // syscall
    ]);
    const act = Buffer.alloc(32);
    act.writeBigUInt64LE(handler, 0);
    act.writeBigUInt64LE(0x04000000n, 8); // SA_RESTORER
    act.writeBigUInt64LE(handler, 16);
    return Buffer.concat([code, act]);
  });
}

/** A ustar archive of `size` random bytes in `name`, /true and /sleep. */
function tar(name: string, content: Buffer): Buffer {
  return Buffer.concat([
    tarEntry(name, content, '0000644'),
    tarEntry('true', trueProgram(), '0000755'),
    tarEntry('sleep', sleepProgram(), '0000755'),
    Buffer.alloc(1024),
  ]);
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

function manifestFor(layers: Layer[], platform: { os: string; architecture: string }, cmd: string[]) {
  const config = json({
    architecture: platform.architecture,
    os: platform.os,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    config: { Cmd: cmd },
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
  /**
   * The manifest's layer list as indexes into baseLayers + layers, repeats allowed (a layer
   * listed twice, as repeated no-op build steps make). Default: each layer once, in order.
   */
  layerOrder?: number[];
  /**
   * The image's command (config `Cmd`). Default `['/true']`: exits 0 at once (an init container,
   * or a pod that only has to pull). `['/sleep']` stays up until SIGTERM: for pods that must run
   * and become Ready (Deployments, readiness gates). Both programs are in every layer.
   */
  cmd?: string[];
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
    const listed =
      opts.layerOrder === undefined
        ? layers
        : opts.layerOrder.map((i) => {
            const l = layers[i];
            if (l === undefined)
              throw new Error(`buildImage: layerOrder names layer ${i} of ${layers.length}`);
            return l;
          });
    const platforms = (opts.platforms ?? ['linux/amd64']).map((p) => {
      const [os = 'linux', architecture = 'amd64'] = p.split('/');
      return { os, architecture };
    });
    const tag = opts.name.split(':')[1] ?? 'latest';
    const repo = opts.name.split(':')[0] ?? opts.name;
    const built = platforms.map((p) => ({ p, ...manifestFor(listed, p, opts.cmd ?? ['/true']) }));
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
