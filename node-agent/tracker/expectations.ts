// The images pods wait for, each tied to the pull that fetches it: by image record name, by
// digest (the pod's own, or the one its tag resolves to in the registry), never by repository
// alone — two tags of one repository are two images. An image whose record is already there
// is Cached; one with no pull yet is Resolving.
import { MAX_ERROR_LENGTH, blankStatus, type ImagePullStatus } from '../../common/contract.js';
import { keepEnds } from '../../common/format.js';
import { criImageName, formatImageRef, parseImageRef, type ImageRef } from '../../common/image-ref.js';
import type { ContainerdSource } from '../containerd/source.js';
import type { PullState } from './state.js';

/**
 * What the registry says of an image, as the kubelet's containerd will see it. Both answer
 * from a cache at once (they are called on every poll) and start a lookup on a miss; null
 * means not known (yet): the registry refused, is unreachable, or has not answered.
 */
export interface RegistryLookup {
  /**
   * The digest a tag resolves to (index or manifest), as resolved at or after `notBefore` (ms;
   * when the pod began to wait: a tag pushed anew since resolves to its new digest).
   */
  digestOf(ref: ImageRef, notBefore?: number): string | null;
  /** Bytes of the image for this node's platform: config + distinct layers. */
  sizeOf(ref: ImageRef): number | null;
}

/** An image some pod waits for, matched to the pull that fetches it. */
interface Expectation {
  ref: ImageRef;
  /** The normalised reference: the key pods are matched by. */
  name: string;
  /** The name CRI gives the image record ("repo:tag", or "repo@digest" when a digest is given). */
  recordName: string;
  since: number;
  /** Why the pull failed as the kubelet reports it (ErrImagePull), or null. */
  failed: string | null;
  /** When fail() was last called: a pull that starts after it is a retry, and clears it. */
  failedAt: number;
  /** The image record, once known without a pull to show it: when containerd made or last changed it (ms), and the size. */
  record: ImageRecordSeen | null;
  /** A pod with pull policy Always waits for it: a record older than the pod does not count. */
  always: boolean;
}

interface ImageRecordSeen {
  createdAt: number;
  updatedAt: number;
  size: number;
}

function keyOf(image: string): { ref: ImageRef | null; name: string } {
  const ref = parseImageRef(image);
  return { ref, name: ref === null ? image : formatImageRef(ref) };
}

/** An image whose reference does not parse: Resolving until the kubelet reports it, then Failed. */
function invalidStatus(name: string, failed: string | null, since: number): ImagePullStatus {
  return {
    ...blankStatus(name, failed === null ? 'Resolving' : 'Failed'),
    startedAt: new Date(since).toISOString(),
    error: failed,
  };
}

/**
 * The images pods wait for (by normalised name) and the status of each, from the tracker's
 * pulls (shared, read-only here), image records looked up in containerd (Images/List) and the
 * registry's answers. The tracker's expect/unexpect/fail/statusOf/sizeOf are these.
 */
export class Expectations {
  private readonly expected = new Map<string, Expectation>();
  /**
   * Expected images whose reference does not parse (the kubelet refuses them with
   * InvalidImageName): nothing can pull them, so they wait for that report and then are Failed.
   * The value is the reported failure, null until then.
   */
  private readonly invalid = new Map<string, string | null>();

  constructor(
    private readonly pulls: ReadonlyMap<string, PullState>,
    private readonly now: () => number,
    private readonly registry: RegistryLookup | null,
  ) {}

  /** Names of the images expected. */
  names(): string[] {
    return [...this.expected.keys(), ...this.invalid.keys()];
  }

  /**
   * Follows `image`; returns its normalised name (the input when it does not parse). With
   * `policy` Always (any pod's), an existing record does not make the image present.
   */
  expect(image: string, policy?: string): string {
    const { ref, name } = keyOf(image);
    if (ref === null) {
      if (!this.invalid.has(name)) this.invalid.set(name, null);
      return name;
    }
    const e = this.expected.get(name);
    if (e === undefined) {
      this.expected.set(name, {
        ref,
        name,
        recordName: criImageName(ref),
        since: this.now(),
        failed: null,
        failedAt: 0,
        record: null,
        always: policy === 'Always',
      });
    } else if (policy === 'Always') {
      e.always = true;
    }
    return name;
  }

  /** Stops following `image` (no pod waits for it any more). */
  unexpect(image: string): void {
    const { name } = keyOf(image);
    this.expected.delete(name);
    this.invalid.delete(name);
  }

  /** The kubelet reports the pull of `image` failed (ErrImagePull and its message). */
  fail(image: string, message: string): void {
    const name = this.expect(image);
    if (this.invalid.has(name)) {
      this.invalid.set(name, keepEnds(message, MAX_ERROR_LENGTH - 64));
      return;
    }
    const e = this.expected.get(name);
    if (e === undefined) return;
    // The kubelet keeps reporting the old failure while it retries: a pull started since the
    // first report is that retry, so a repeated report does not hide it.
    if (e.failed === null) e.failedAt = this.now();
    e.failed = keepEnds(message, MAX_ERROR_LENGTH - 64);
  }

  /**
   * Bytes of an expected image not being pulled: its record's image size from the content
   * store, else the registry's figure; null when neither is known. See PullTracker.sizeOf.
   */
  sizeOf(image: string): number | null {
    const e = this.expected.get(keyOf(image).name);
    if (e === undefined) return null;
    if (e.record !== null && e.record.size > 0) return e.record.size;
    return this.registry?.sizeOf(e.ref) ?? null;
  }

  /** See PullTracker.statusOf. */
  statusOf(image: string, since?: number, policy?: string): ImagePullStatus | null {
    const { name } = keyOf(image);
    const invalid = this.invalid.get(name);
    if (invalid !== undefined) return invalidStatus(name, invalid, since ?? this.now());
    const e = this.expected.get(name);
    if (e === undefined) return null;
    const from = since ?? e.since;
    const p = this.match(e, from);
    const base =
      p !== undefined ? { ...p.status, image: e.name } : this.withoutPull(e, from, policy === 'Always');
    // A retry: a pull started after the failure, or bytes moving again since (containerd keeps
    // the earlier attempt's records, so a retry can show up as the old pull resuming).
    const retried =
      p !== undefined && (p.startedAt > e.failedAt || p.lastProgressAt > e.failedAt) && p.phase !== 'Failed';
    if (e.failed !== null && !retried && base.phase !== 'Pulled' && base.phase !== 'Cached') {
      return { ...base, phase: 'Failed', etaSeconds: null, bytesPerSecond: 0, error: e.failed };
    }
    return base;
  }

  private withoutPull(e: Expectation, from: number, always: boolean): ImagePullStatus {
    let rec = e.record ?? this.recordFromPull(e);
    // Pull policy Always: the kubelet pulls again whatever is there; only a record made or
    // changed since the pod began to wait (or the pod's own container status) says it is in.
    if (always && rec !== null && rec.updatedAt < from) rec = null;
    const phase = rec === null ? 'Resolving' : rec.createdAt >= from ? 'Pulled' : 'Cached';
    const size = rec?.size ?? 0;
    return {
      image: e.name,
      phase,
      percent: rec === null ? 0 : 100,
      bytesDone: phase === 'Pulled' ? size : 0,
      bytesTotal: phase === 'Pulled' ? size : 0,
      bytesCached: phase === 'Cached' ? size : 0,
      layersDone: 0,
      layersTotal: 0,
      bytesPerSecond: 0,
      etaSeconds: rec === null ? null : 0,
      startedAt: new Date(from).toISOString(),
      finishedAt: rec === null ? null : new Date(rec.createdAt).toISOString(),
      error: null,
    };
  }

  /**
   * The pull fetching an expected image: by image record name, then by digest (the
   * reference's own, or the tag's as the registry resolves it). A pull that ended before the
   * pod started waiting is not this pod's: the image was there for it already.
   */
  private match(e: Expectation, since: number): PullState | undefined {
    const pulls = [...this.pulls.values()].filter((p) => p.finishedAt === null || p.finishedAt >= since);
    // The digest first: a tag pushed again names the old pull too (its record), and the pull of
    // what the tag is now is the one the kubelet waits for.
    const d = e.ref.digest ?? this.registry?.digestOf(e.ref, since) ?? null;
    const byDigest =
      d === null
        ? undefined
        : pulls.find((p) => p.key === d || p.manifestDigest === d || p.indexDigest === d);
    // Never by repository alone: without the registry's answer a tag waits for its record.
    return byDigest ?? pulls.find((p) => p.names.has(e.recordName) || p.names.has(e.name));
  }

  /** A finished pull that made the image's record: the record, as far as statusOf needs it. */
  private recordFromPull(e: Expectation): ImageRecordSeen | null {
    for (const p of this.pulls.values()) {
      if (
        p.finishedAt !== null &&
        p.phase === 'Pulled' &&
        (p.names.has(e.recordName) || p.names.has(e.name))
      ) {
        return {
          createdAt: p.finishedAt,
          updatedAt: p.finishedAt,
          size: p.status.bytesTotal + p.status.bytesCached,
        };
      }
    }
    return null;
  }

  /** Expected images with no pull: looks their records up (present already: Cached). */
  async checkRecords(
    source: ContainerdSource,
    imageSize: (digest: string) => Promise<number>,
  ): Promise<void> {
    const now = this.now();
    const waiting = [...this.expected.values()].filter(
      (e) =>
        (e.record === null || (e.always && e.record.updatedAt < e.since)) &&
        this.match(e, e.since) === undefined &&
        this.recordFromPull(e) === null,
    );
    // Images/Get by name, a direct look-up: Images/List with name filters walks every record.
    for (const e of waiting) {
      const rec = await source.getImage(e.recordName);
      if (rec === null) continue;
      const createdAt = rec.createdAt?.getTime() ?? now;
      e.record = {
        createdAt,
        updatedAt: rec.updatedAt?.getTime() ?? createdAt,
        size: await imageSize(rec.target.digest),
      };
      e.failed = null;
    }
  }
}
