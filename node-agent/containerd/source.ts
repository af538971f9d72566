// The edge between pulltrace and containerd: everything the pull tracker reads, as plain
// data. The real adapter (grpc-client.ts, over containerd's gRPC socket) and the fake used by
// unit tests (fake-source.ts) implement it; the fake's filter semantics were checked against
// a real containerd, and the tracker's integration tests run the real adapter.
// Read-only by design: no call here changes containerd's state.

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
  startedAt: Date | null;
  updatedAt: Date | null;
}

/** A committed blob from content.v1.Content/Info or List. */
export interface ContentInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
  createdAt: Date | null;
  updatedAt: Date | null;
}

/** An image record from images.v1.Images/List or Get. */
export interface ImageRecord {
  name: string;
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

export interface EventSubscription {
  /** Stops the stream; idempotent. */
  close(): void;
}

export interface EventHandlers {
  onEvent(event: ContainerdEvent): void;
  /** The stream ended or failed; the subscriber decides whether to resubscribe. */
  onError(err: Error): void;
}

export interface ContainerdSource {
  /** All in-flight ingests in the namespace. */
  listIngests(): Promise<IngestStatus[]>;
  /** A committed blob's info, or null if the content store does not have it. */
  contentInfo(digest: string): Promise<ContentInfo | null>;
  /** Blobs matching any of the filters (containerd filter syntax, OR'ed); all with none. */
  listContent(filters?: string[]): Promise<ContentInfo[]>;
  /**
   * A committed blob's bytes (manifests, indexes, configs). Rejects blobs larger than
   * maxBytes so a corrupt or hostile store cannot make the agent read gigabytes.
   */
  readBlob(digest: string, maxBytes: number): Promise<Buffer>;
  /** Image records matching any of the filters; all with none. */
  listImages(filters?: string[]): Promise<ImageRecord[]>;
  /** A snapshot by key (a committed layer's key is its chain ID), or null if there is none. */
  statSnapshot(snapshotter: string, key: string): Promise<SnapshotInfo | null>;
  /** The leases in the namespace (a handful: one per pull or task in progress). */
  listLeases(): Promise<Lease[]>;
  /** What a lease holds; [] when the lease is gone (its pull ended meanwhile). */
  listLeaseResources(leaseId: string): Promise<LeaseResource[]>;
  /** Subscribes to image record events in the namespace. */
  subscribe(handlers: EventHandlers): EventSubscription;
  /** Releases the connection. */
  close(): void;
}
