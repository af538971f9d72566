// A read-only, anonymous OCI distribution client for what the agent cannot learn from
// containerd: the digest a tag resolves to (mid-pull, containerd records no tag, only the
// digest), and the size of an image still queued behind the kubelet's serial pulls.
//
// It asks the registry as the node's containerd would: the hosts and mirrors of containerd's
// certs.d configuration in order (hosts.ts, transport.ts), the same Accept header and platform
// choice (manifest.ts, platform.ts), the anonymous Bearer token flow (auth.ts). Answers are
// cached (cache.ts): a tag's digest for a minute, anything named by digest until evicted, a
// failure for 30 s, and concurrent identical look-ups share one request. `digestOf` and
// `sizeOf` read that cache synchronously for callers that poll (the tracker's RegistryLookup).
//
// Every rejection is a PulltraceError with a PT_REGISTRY_* code (or PT_CONFIG_INVALID for a
// bad platform string); nothing else escapes.
import { createHash } from 'node:crypto';
import { PulltraceError, type ErrorCode } from '../../common/errors.js';
import { criImageName, parseDigest, parseImageRef, type ImageRef } from '../../common/image-ref.js';
import { TtlCache } from './cache.js';
import {
  bareMediaType,
  isKnownManifestType,
  manifestSize,
  parseManifest,
  type ImageIndex,
  type ImageManifest,
} from './manifest.js';
import {
  choosePlatformEntry,
  formatPlatform,
  hostPlatform,
  parsePlatform,
  type Platform,
} from './platform.js';
import { coded, header, Transport } from './transport.js';

/** Options of a RegistryClient; every one has a default. */
export interface RegistryClientOptions {
  /**
   * containerd's registry `config_path` roots (its CRI `registry.config_path`, split on ":"),
   * tried in order. Default: none, so every host gets containerd's defaults.
   */
  configPath?: readonly string[];
  /** Deadline of one HTTP exchange (redirects included), milliseconds. Default 2000. */
  timeoutMs?: number;
  /** How long a tag's resolved digest is reused, milliseconds. Default 60 000. */
  tagTtlMs?: number;
  /** How long a failure is reused before the registry is asked again, milliseconds. Default 30 000. */
  failureTtlMs?: number;
  /** Cached outcomes kept per kind (resolutions, manifests, tokens). Default 512. */
  maxEntries?: number;
  /** Largest manifest, index or token answer read, bytes. Default 4 MiB (containerd's cap is about 4.2 MB). */
  maxManifestBytes?: number;
  /** Platform whose manifest imageSize sizes when not told, "os/arch[/variant]". Default: this process's. */
  platform?: string;
  /** Clock for the caches, milliseconds since the epoch. Default Date.now. */
  now?: () => number;
  /** Told about configuration problems that do not stop a look-up (an invalid hosts.toml). */
  onWarning?: (message: string, err: unknown) => void;
  /** User-Agent header. Default "pulltrace". */
  userAgent?: string;
}

/** What a reference resolves to: the descriptor containerd's resolver would return. */
export interface Resolved {
  /** "sha256:…": the index's digest for a multi-platform image, else the manifest's. */
  digest: string;
  /** Media type of that document (an OCI or Docker index or manifest type). */
  mediaType: string;
  /** Size of that document, bytes. */
  size: number;
}

/** What a pull of one image for one platform fetches, from its manifest. */
export interface ImageSize {
  /** The CRI image record name of the reference (repo:tag or repo@digest). */
  reference: string;
  /** The resolved top digest (index or manifest) and its media type. */
  digest: string;
  mediaType: string;
  /** The platform manifest's digest (the same as `digest` for a single-platform image). */
  manifestDigest: string;
  /** The index entry's platform, "os/arch[/variant]"; null when the reference named a manifest. */
  platform: string | null;
  configDigest: string;
  /** Bytes. */
  configSize: number;
  /** Config + distinct layers, bytes: what a pull onto an empty node fetches besides manifests. */
  bytes: number;
  /** Distinct layers. */
  layerCount: number;
  /** Distinct layers, first-listed order; sizes in bytes (compressed, as stored in the registry). */
  layers: { digest: string; size: number }[];
}

const DEFAULTS = {
  timeoutMs: 2000,
  tagTtlMs: 60_000,
  failureTtlMs: 30_000,
  maxEntries: 512,
  maxManifestBytes: 4 * 1024 * 1024,
  userAgent: 'pulltrace',
} as const;

function fail(code: ErrorCode, detail: string, cause?: unknown): PulltraceError {
  return new PulltraceError(code, detail, cause === undefined ? undefined : { cause });
}

/** A reference with a digest is looked up by it alone (the CRI drops the tag of repo:tag@digest). */
function resolutionKey(ref: ImageRef): string {
  return criImageName(ref);
}

function sizeKey(ref: ImageRef, platform: Platform): string {
  return `${criImageName(ref)} ${formatPlatform(platform)}`;
}

function hashOf(body: Buffer, algorithm: string): string {
  return `${algorithm}:${createHash(algorithm).update(body).digest('hex')}`;
}

/** The registry client. One per agent; safe to share between callers. */
export class RegistryClient {
  private readonly opts: Required<Omit<RegistryClientOptions, 'platform' | 'onWarning'>> & {
    onWarning: (message: string, err: unknown) => void;
  };
  private readonly platform: Platform;
  private readonly resolutions: TtlCache<Resolved>;
  private readonly manifests: TtlCache<ImageManifest | ImageIndex>;
  private readonly sizes: TtlCache<ImageSize>;
  private readonly transport: Transport;

  /** Throws PT_CONFIG_INVALID for a platform that does not parse or a non-positive number. */
  constructor(options: RegistryClientOptions = {}) {
    this.opts = {
      configPath: options.configPath ?? [],
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      tagTtlMs: options.tagTtlMs ?? DEFAULTS.tagTtlMs,
      failureTtlMs: options.failureTtlMs ?? DEFAULTS.failureTtlMs,
      maxEntries: options.maxEntries ?? DEFAULTS.maxEntries,
      maxManifestBytes: options.maxManifestBytes ?? DEFAULTS.maxManifestBytes,
      now: options.now ?? Date.now,
      userAgent: options.userAgent ?? DEFAULTS.userAgent,
      onWarning: options.onWarning ?? (() => undefined),
    };
    for (const k of ['timeoutMs', 'maxEntries', 'maxManifestBytes'] as const) {
      if (!(this.opts[k] > 0)) throw fail('PT_CONFIG_INVALID', `registry client ${k} must be positive`);
    }
    this.platform =
      options.platform === undefined ? hostPlatform() : this.parsePlatformOption(options.platform);
    this.resolutions = new TtlCache(this.opts.maxEntries, this.opts.now);
    this.manifests = new TtlCache(this.opts.maxEntries, this.opts.now);
    this.sizes = new TtlCache(this.opts.maxEntries, this.opts.now);
    this.transport = new Transport({
      configPath: this.opts.configPath,
      onWarning: this.opts.onWarning,
      timeoutMs: this.opts.timeoutMs,
      maxBodyBytes: this.opts.maxManifestBytes,
      userAgent: this.opts.userAgent,
      maxEntries: this.opts.maxEntries,
      now: this.opts.now,
    });
  }

  /**
   * Resolves a reference to the digest, media type and size of its top document, as the
   * node's containerd would: `HEAD /v2/<path>/manifests/<tag|digest>`, then GET (hashing the
   * body with sha256) when the answer has no Docker-Content-Digest or Content-Length.
   * A reference with a digest resolves to that digest (a `repo:tag@digest` ignores its tag,
   * like the CRI).
   *
   * Rejects with PulltraceError: PT_REGISTRY_BAD_REFERENCE, PT_REGISTRY_CONFIG,
   * PT_REGISTRY_UNAVAILABLE, PT_REGISTRY_TIMEOUT, PT_REGISTRY_DENIED, PT_REGISTRY_NOT_FOUND,
   * PT_REGISTRY_BAD_RESPONSE (unknown media type, over the size cap, bad digest header).
   */
  async resolve(reference: string): Promise<Resolved> {
    const ref = this.parseRef(reference);
    try {
      return await this.resolveRef(ref);
    } catch (err) {
      throw coded(err, reference);
    }
  }

  /**
   * The size of the image `reference` names for `platform` ("linux/amd64", "linux/arm/v7";
   * default: the client's platform): an index is followed to the entry containerd's default
   * matcher picks (best compatible variant first), then the manifest's config and distinct
   * layers are summed.
   *
   * Rejects as resolve does, plus PT_REGISTRY_NO_PLATFORM when the index has no entry the
   * platform can run, PT_REGISTRY_BAD_RESPONSE for a manifest that is not JSON, of an unknown
   * media type, over the cap, or whose bytes do not match its digest, and PT_CONFIG_INVALID
   * for a platform string that does not parse.
   */
  async imageSize(reference: string, platform?: string): Promise<ImageSize> {
    const ref = this.parseRef(reference);
    const want = platform === undefined ? this.platform : this.parsePlatformOption(platform);
    try {
      return await this.sizeRef(ref, want);
    } catch (err) {
      throw coded(err, reference);
    }
  }

  /**
   * The digest `ref` resolves to, from the cache only: the reference's own digest when it has
   * one; else the tag's cached resolution, or null, having started the look-up in the
   * background (a failure is kept for `failureTtlMs`, so calling this on every poll asks the
   * registry at most that often). A resolution made before `notBefore` (ms: when the pod began
   * to wait) is asked again: the tag may have been pushed anew since, and the kubelet resolves
   * it when it pulls. Never throws. Fits the tracker's RegistryLookup.
   */
  digestOf(ref: ImageRef, notBefore?: number): string | null {
    if (ref.digest !== null) return ref.digest;
    // At least 2 s old before it counts as stale: a pod's creation time comes from the API
    // server's clock, and one ahead of ours must not make every poll ask again.
    const floor = notBefore === undefined ? undefined : Math.min(notBefore, this.opts.now() - 2000);
    const hit = this.resolutions.peek(resolutionKey(ref), floor);
    if (hit !== undefined) return hit.digest;
    this.resolveRef(ref).catch(() => undefined);
    return null;
  }

  /**
   * The bytes of `ref`'s image for the client's platform (config + distinct layers), from the
   * cache only; null (having started the look-up in the background) while unknown or while
   * the registry fails. Never throws. Fits the tracker's RegistryLookup.
   */
  sizeOf(ref: ImageRef): number | null {
    return this.cachedSize(ref)?.bytes ?? null;
  }

  /** The whole ImageSize behind sizeOf (layer digests and sizes included), same rules. */
  cachedSize(ref: ImageRef): ImageSize | null {
    const hit = this.sizes.peek(sizeKey(ref, this.platform));
    if (hit !== undefined) return hit;
    this.sizeRef(ref, this.platform).catch(() => undefined);
    return null;
  }

  private sizeRef(ref: ImageRef, want: Platform): Promise<ImageSize> {
    return this.sizes.get(sizeKey(ref, want), () => this.sizeUncached(ref, want), {
      ok: () => (ref.digest === null ? this.opts.tagTtlMs : Number.POSITIVE_INFINITY),
      error: () => this.opts.failureTtlMs,
    });
  }

  private async sizeUncached(ref: ImageRef, want: Platform): Promise<ImageSize> {
    const name = criImageName(ref);
    const top = await this.resolveRef(ref);
    let doc = await this.manifest(ref, top.digest, top.mediaType, top.size);
    let manifestDigest = top.digest;
    let chosen: string | null = null;
    for (let depth = 0; doc.kind === 'index'; depth++) {
      if (depth >= 4) throw fail('PT_REGISTRY_BAD_RESPONSE', `${name}: indexes nested too deep`);
      const entry = choosePlatformEntry(doc.manifests, want);
      if (entry === null) {
        const offered = doc.manifests.map((m) =>
          m.platform === null ? '(none)' : formatPlatform(m.platform),
        );
        throw fail(
          'PT_REGISTRY_NO_PLATFORM',
          `${name} has no manifest for ${formatPlatform(want)} (index offers ${offered.join(', ') || 'nothing'})`,
        );
      }
      chosen = entry.platform === null ? chosen : formatPlatform(entry.platform);
      manifestDigest = entry.digest;
      doc = await this.manifest(ref, entry.digest, entry.mediaType, entry.size);
    }
    const size = manifestSize(doc);
    return {
      reference: name,
      digest: top.digest,
      mediaType: top.mediaType,
      manifestDigest,
      platform: chosen,
      configDigest: size.configDigest,
      configSize: size.configSize,
      bytes: size.bytes,
      layerCount: size.layers.length,
      layers: size.layers,
    };
  }

  /** Callers may hand in anything (untyped JSON): parse what is a string, refuse the rest. */
  private parseRef(reference: unknown): ImageRef {
    const ref = typeof reference === 'string' ? parseImageRef(reference) : null;
    if (ref === null) {
      const shown =
        typeof reference === 'string' ? JSON.stringify(reference.slice(0, 300)) : typeof reference;
      throw fail('PT_REGISTRY_BAD_REFERENCE', shown);
    }
    return ref;
  }

  private parsePlatformOption(s: unknown): Platform {
    const p = typeof s === 'string' ? parsePlatform(s) : null;
    if (p === null) {
      const shown = typeof s === 'string' ? JSON.stringify(s.slice(0, 100)) : typeof s;
      throw fail('PT_CONFIG_INVALID', `platform ${shown} is not os/arch[/variant]`);
    }
    return p;
  }

  private resolveRef(ref: ImageRef): Promise<Resolved> {
    const object = ref.digest ?? ref.tag ?? 'latest';
    return this.resolutions.get(resolutionKey(ref), () => this.resolveUncached(ref, object), {
      ok: () => (ref.digest === null ? this.opts.tagTtlMs : Number.POSITIVE_INFINITY),
      error: () => this.opts.failureTtlMs,
    });
  }

  private async resolveUncached(ref: ImageRef, object: string): Promise<Resolved> {
    const byTag = ref.digest === null;
    return this.transport.acrossHosts(ref, byTag, async (endpoint) => {
      const head = await this.transport.manifest(endpoint, ref, 'HEAD', object);
      let digest = ref.digest;
      const headerDigest = header(head, 'docker-content-digest');
      const length = Number(header(head, 'content-length') ?? Number.NaN);
      let size = Number.isSafeInteger(length) && length >= 0 ? length : -1;
      let mediaType = bareMediaType(header(head, 'content-type'));
      if (digest === null && headerDigest !== undefined && size !== -1) {
        if (parseDigest(headerDigest) === null) {
          throw fail(
            'PT_REGISTRY_BAD_RESPONSE',
            `Docker-Content-Digest ${JSON.stringify(headerDigest)} is not a digest`,
          );
        }
        digest = headerDigest;
      }
      if (digest === null || size === -1) {
        // No digest or length in the HEAD answer: GET the manifest and hash it, as containerd does.
        const get = await this.transport.manifest(endpoint, ref, 'GET', object);
        mediaType = bareMediaType(header(get, 'content-type'));
        digest ??= hashOf(get.body, 'sha256');
        size = get.body.length;
      }
      if (size > this.opts.maxManifestBytes) {
        throw fail(
          'PT_REGISTRY_BAD_RESPONSE',
          `manifest of ${size} bytes is over the ${this.opts.maxManifestBytes}-byte limit`,
        );
      }
      if (!isKnownManifestType(mediaType)) {
        throw fail(
          'PT_REGISTRY_BAD_RESPONSE',
          `unknown media type ${JSON.stringify(mediaType)}: not an OCI or Docker schema 2 manifest or index`,
        );
      }
      return { digest, mediaType, size };
    });
  }

  /** A manifest or index by digest, checked against the digest and (when known) the size; cached until evicted. */
  private manifest(
    ref: ImageRef,
    digest: string,
    mediaType: string,
    size: number,
  ): Promise<ImageManifest | ImageIndex> {
    const key = `${ref.domain}/${ref.path}@${digest} ${mediaType}`;
    return this.manifests.get(
      key,
      () =>
        this.transport.acrossHosts(ref, false, async (endpoint) => {
          const reply = await this.transport.manifest(endpoint, ref, 'GET', digest);
          const algorithm = parseDigest(digest)?.algorithm ?? 'sha256';
          const got = hashOf(reply.body, algorithm);
          if (got !== digest)
            throw fail('PT_REGISTRY_BAD_RESPONSE', `manifest ${digest} arrived with digest ${got}`);
          if (size >= 0 && reply.body.length !== size) {
            throw fail(
              'PT_REGISTRY_BAD_RESPONSE',
              `manifest ${digest} is ${reply.body.length} bytes, not ${size}`,
            );
          }
          // An index entry's own media type decides, as in containerd; the answer's only when it has none.
          return parseManifest(
            reply.body,
            mediaType === '' ? (header(reply, 'content-type') ?? '') : mediaType,
          );
        }),
      { ok: () => Number.POSITIVE_INFINITY, error: () => this.opts.failureTtlMs },
    );
  }
}
