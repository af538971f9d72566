// The edge between pulltrace and containerd: everything the pull tracker reads, as plain
// data. The real adapter (grpc-client.ts, over containerd's gRPC socket) and the fake used by
// unit tests (test-support/fake-containerd.ts) implement it; one conformance suite
// (test-support/containerd-conformance.ts) runs on both: conformance.test.ts (the fake) and
// ../integration/containerd-conformance.test.ts (real containerd after a real CRI pull).
// Read-only by design: no call here changes containerd's state.
// Times are containerd's clock; sizes and offsets bytes.

/** One in-flight ingest from content.v1.Content/ListStatuses. */
export interface IngestStatus {
  /** e.g. "layer-sha256:<hex>", "manifest-sha256:<hex>", "config-sha256:<hex>". */
  ref: string;
  /** Bytes written so far. */
  offset: number;
  /** Expected size in bytes (0 when unknown). */
  total: number;
  /** Expected digest; containerd 1.6 leaves it empty for CRI pulls: take it from `ref`. */
  expected: string;
  /** When the ingest opened; null when containerd did not say. */
  startedAt: Date | null;
  /** When containerd last wrote to it (the offset's time); null when it did not say. */
  updatedAt: Date | null;
}

/** A committed blob from content.v1.Content/Info or List. */
export interface ContentInfo {
  /** "sha256:<hex>". */
  digest: string;
  /** Bytes. */
  size: number;
  /** e.g. containerd.io/gc.ref.content.l.<i>, containerd.io/distribution.source.<host>. */
  labels: Record<string, string>;
  /** When the blob was committed; null when not said. */
  createdAt: Date | null;
  /** When its info (labels) last changed; null when not said. */
  updatedAt: Date | null;
}

/** An image record from images.v1.Images/List or Get. */
export interface ImageRecord {
  /** The record's name; CRI writes "repo:tag", "repo@sha256:<top digest>" and "sha256:<config digest>" (the image id). */
  name: string;
  /** The top-level descriptor: the index for a multi-platform image, else the manifest. */
  target: { mediaType: string; digest: string; size: number };
  labels: Record<string, string>;
  createdAt: Date | null;
  updatedAt: Date | null;
}

/** A snapshot from snapshots.v1.Snapshots/Stat: committed ones are unpacked layers, by chain ID. */
export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: 'view' | 'active' | 'committed' | 'unknown';
  labels: Record<string, string>;
}

/** A lease from leases.v1.Leases/List: every pull runs under one until it ends. */
export interface Lease {
  id: string;
  createdAt: Date | null;
  labels: Record<string, string>;
}

/**
 * A resource a lease holds, from leases.v1.Leases/ListResources: `type` is "content" (id: a
 * blob digest), "ingests" (id: an ingest ref such as "layer-sha256:<hex>") or
 * "snapshots/<snapshotter>" (id: a snapshot key).
 */
export interface LeaseResource {
  id: string;
  type: string;
}

/**
 * A decoded containerd event (events.v1.Events/Subscribe) the tracker uses: image records
 * changing, which is how it learns a pull ended (CRI writes the records last).
 */
export interface ContainerdEvent {
  topic: '/images/create' | '/images/update' | '/images/delete';
  namespace: string;
  at: Date;
  /** The image record's name. */
  name: string;
}

/** A running event stream. */
export interface EventSubscription {
  /** Stops the stream; idempotent. */
  close(): void;
}

/** Where a subscription delivers. */
export interface EventHandlers {
  /** One decoded event; undecodable ones are not delivered (the adapter reports them aside). */
  onEvent(event: ContainerdEvent): void;
  /** The stream ended or failed; the subscriber decides whether to resubscribe. */
  onError(err: Error): void;
}

/**
 * What the tracker reads from containerd, in one namespace (k8s.io for the kubelet). Every
 * method rejects with PulltraceError PT_CONTAINERD_UNAVAILABLE when containerd cannot be reached
 * (socket gone, deadline, cancelled) and PT_CONTAINERD_BAD_DATA for an answer it cannot use;
 * "not found" is null or [] where a method says so.
 */
export interface ContainerdSource {
  /** All in-flight ingests in the namespace (Content/ListStatuses). */
  listIngests(): Promise<IngestStatus[]>;
  /** A committed blob's info (Content/Info), or null if the content store does not have it. */
  contentInfo(digest: string): Promise<ContentInfo | null>;
  /** Blobs matching any of the filters (Content/List; containerd filter syntax, OR'ed); all with none. */
  listContent(filters?: string[]): Promise<ContentInfo[]>;
  /**
   * A committed blob's bytes (Content/Read: manifests, indexes, configs). Rejects blobs larger
   * than maxBytes, and a blob not found, with PT_CONTAINERD_BAD_DATA, so a corrupt or hostile
   * store cannot make the agent read gigabytes.
   */
  readBlob(digest: string, maxBytes: number): Promise<Buffer>;
  /**
   * Image records matching any of the filters (Images/List); all with none. containerd walks
   * every record to answer, whatever the filters: on a node with many images prefer getImage.
   */
  listImages(filters?: string[]): Promise<ImageRecord[]>;
  /** One image record by name (Images/Get: a direct look-up), or null when there is none. */
  getImage(name: string): Promise<ImageRecord | null>;
  /** A snapshot by key (Snapshots/Stat; a committed layer's key is its chain ID), or null if there is none. */
  statSnapshot(snapshotter: string, key: string): Promise<SnapshotInfo | null>;
  /** The leases in the namespace (Leases/List; a handful: one per pull or task in progress). */
  listLeases(): Promise<Lease[]>;
  /** What a lease holds (Leases/ListResources); [] when the lease is gone (its pull ended meanwhile). */
  listLeaseResources(leaseId: string): Promise<LeaseResource[]>;
  /**
   * Subscribes to image record events in the namespace (Events/Subscribe). May throw at once;
   * later failures and the stream's end come through `onError`.
   */
  subscribe(handlers: EventHandlers): EventSubscription;
  /** Releases the connection. */
  close(): void;
}
