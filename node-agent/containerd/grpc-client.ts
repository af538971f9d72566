// The real ContainerdSource: containerd's gRPC API over its unix socket. Read-only: only
// List/Info/Read/Stat/ListStatuses/ListResources/Subscribe calls, never one that changes
// containerd's state.
import * as grpc from '@grpc/grpc-js';
import { PulltraceError } from '../../common/errors.js';
import { decodeEnvelope, KNOWN_TOPICS, type Envelope } from './decode.js';
import { grpcTarget, services, toDate, toSafeNumber, type Timestamp } from './proto.js';
import type {
  ContainerdEvent,
  ContainerdSource,
  ContentInfo,
  EventHandlers,
  EventSubscription,
  ImageRecord,
  IngestStatus,
  Lease,
  LeaseResource,
  SnapshotInfo,
} from './source.js';

/** Where and how to reach containerd. */
export interface GrpcSourceOptions {
  /** containerd's socket: "/run/containerd/containerd.sock" or "unix:///…" (throws otherwise). */
  address: string;
  /** containerd namespace; default "k8s.io" (the kubelet's). */
  namespace?: string;
  /** Deadline of each call (List and Read streams included, not the event stream), ms; default 10 000. */
  callTimeoutMs?: number;
  /** Called for events whose payload could not be decoded (logged by the caller). */
  onBadEvent?: (reason: string) => void;
}

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;
type Streaming = (
  req: unknown,
  md: grpc.Metadata,
  opts?: grpc.CallOptions,
) => grpc.ClientReadableStream<unknown>;

interface RawInfo {
  digest: string;
  size: string;
  created_at?: Timestamp;
  updated_at?: Timestamp;
  labels?: Record<string, string>;
}

function wrap(err: unknown, what: string): PulltraceError {
  const code = (err as Partial<grpc.ServiceError>).code;
  if (
    code === grpc.status.UNAVAILABLE ||
    code === grpc.status.DEADLINE_EXCEEDED ||
    code === grpc.status.CANCELLED
  ) {
    return new PulltraceError('PT_CONTAINERD_UNAVAILABLE', what, { cause: err });
  }
  // containerd answered, with an error of its own (a bad filter or digest, a snapshotter not
  // loaded, …): the data it sent is not at fault.
  return new PulltraceError('PT_CONTAINERD_CALL_FAILED', what, { cause: err });
}

function info(raw: RawInfo): ContentInfo {
  return {
    digest: raw.digest,
    size: toSafeNumber(raw.size, `size of ${raw.digest}`),
    labels: raw.labels ?? {},
    createdAt: toDate(raw.created_at),
    updatedAt: toDate(raw.updated_at),
  };
}

interface RawImage {
  name: string;
  labels?: Record<string, string>;
  target?: { media_type: string; digest: string; size: string };
  created_at?: Timestamp;
  updated_at?: Timestamp;
}

function image(i: RawImage): ImageRecord {
  return {
    name: i.name,
    labels: i.labels ?? {},
    target: {
      mediaType: i.target?.media_type ?? '',
      digest: i.target?.digest ?? '',
      size: toSafeNumber(i.target?.size ?? 0, `size of ${i.name}`),
    },
    createdAt: toDate(i.created_at),
    updatedAt: toDate(i.updated_at),
  };
}

const SNAPSHOT_KINDS: Record<string, SnapshotInfo['kind']> = {
  VIEW: 'view',
  ACTIVE: 'active',
  COMMITTED: 'committed',
};

/**
 * The ContainerdSource over containerd's gRPC API (content, images, events, snapshots, leases
 * services on one channel), with the namespace in the `containerd-namespace` metadata of every
 * call. gRPC UNAVAILABLE, DEADLINE_EXCEEDED and CANCELLED become PT_CONTAINERD_UNAVAILABLE,
 * other failures PT_CONTAINERD_BAD_DATA. The constructor throws for an address that is not a
 * unix socket; the connection itself is made lazily by grpc-js.
 */
export class GrpcContainerdSource implements ContainerdSource {
  private readonly clients: Record<'content' | 'images' | 'events' | 'snapshots' | 'leases', grpc.Client>;
  private readonly namespace: string;
  private readonly timeoutMs: number;

  constructor(private readonly opts: GrpcSourceOptions) {
    const s = services();
    const target = grpcTarget(opts.address);
    const creds = grpc.credentials.createInsecure();
    // One channel for all five services: they share the socket like containerd's own client.
    const content = new s.content(target, creds);
    const channelOverride = content.getChannel();
    const shared = { channelOverride };
    this.clients = {
      content,
      images: new s.images(target, creds, shared),
      events: new s.events(target, creds, shared),
      snapshots: new s.snapshots(target, creds, shared),
      leases: new s.leases(target, creds, shared),
    };
    this.namespace = opts.namespace ?? 'k8s.io';
    this.timeoutMs = opts.callTimeoutMs ?? 10_000;
  }

  private md(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('containerd-namespace', this.namespace);
    return md;
  }

  private unary<T>(client: grpc.Client, method: string, req: unknown): Promise<T> {
    const fn = (client as unknown as Record<string, Unary>)[method];
    if (fn === undefined) return Promise.reject(new Error(`no method ${method}`));
    return new Promise((resolve, reject) => {
      fn.call(client, req, this.md(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        if (err !== null) reject(err);
        else resolve(res as T);
      });
    });
  }

  /** Reads a server stream; `onMessage` returning false cancels it. */
  private async collect(
    client: grpc.Client,
    method: string,
    req: unknown,
    onMessage: (m: unknown) => boolean | undefined,
  ): Promise<void> {
    const fn = (client as unknown as Record<string, Streaming>)[method];
    if (fn === undefined) throw new Error(`no method ${method}`);
    const stream = fn.call(client, req, this.md(), { deadline: Date.now() + this.timeoutMs });
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (m: unknown) => {
        if (onMessage(m) === false) {
          stream.cancel();
          reject(new Error('stopped'));
        }
      });
      stream.on('error', reject);
      stream.on('end', resolve);
    });
  }

  async listIngests(): Promise<IngestStatus[]> {
    try {
      const res = await this.unary<{
        statuses: {
          ref: string;
          offset: string;
          total: string;
          expected: string;
          started_at?: Timestamp;
          updated_at?: Timestamp;
        }[];
      }>(this.clients.content, 'ListStatuses', { filters: [] });
      return res.statuses.map((s) => ({
        ref: s.ref,
        offset: toSafeNumber(s.offset, `offset of ${s.ref}`),
        total: toSafeNumber(s.total, `total of ${s.ref}`),
        expected: s.expected,
        startedAt: toDate(s.started_at),
        updatedAt: toDate(s.updated_at),
      }));
    } catch (err) {
      throw wrap(err, 'Content.ListStatuses');
    }
  }

  async contentInfo(digest: string): Promise<ContentInfo | null> {
    try {
      const res = await this.unary<{ info: RawInfo }>(this.clients.content, 'Info', { digest });
      return info(res.info);
    } catch (err) {
      if ((err as Partial<grpc.ServiceError>).code === grpc.status.NOT_FOUND) return null;
      throw wrap(err, `Content.Info ${digest}`);
    }
  }

  async listContent(filters: string[] = []): Promise<ContentInfo[]> {
    const out: ContentInfo[] = [];
    try {
      await this.collect(this.clients.content, 'List', { filters }, (m) => {
        for (const i of (m as { info: RawInfo[] }).info) out.push(info(i));
        return undefined;
      });
      return out;
    } catch (err) {
      throw wrap(err, 'Content.List');
    }
  }

  async readBlob(digest: string, maxBytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    const state = { tooBig: false };
    try {
      await this.collect(this.clients.content, 'Read', { digest, offset: 0, size: 0 }, (m) => {
        const data = (m as { data: Buffer }).data;
        size += data.length;
        if (size > maxBytes) {
          state.tooBig = true;
          return false;
        }
        chunks.push(data);
        return undefined;
      });
    } catch (err) {
      if (state.tooBig)
        throw new PulltraceError('PT_CONTAINERD_BAD_DATA', `blob ${digest} is larger than ${maxBytes} bytes`);
      if ((err as Partial<grpc.ServiceError>).code === grpc.status.NOT_FOUND) {
        throw new PulltraceError('PT_CONTAINERD_BAD_DATA', `blob ${digest} not found`, { cause: err });
      }
      throw wrap(err, `Content.Read ${digest}`);
    }
    return Buffer.concat(chunks);
  }

  async listImages(filters: string[] = []): Promise<ImageRecord[]> {
    try {
      const res = await this.unary<{ images: RawImage[] }>(this.clients.images, 'List', { filters });
      return res.images.map(image);
    } catch (err) {
      throw wrap(err, 'Images.List');
    }
  }

  async getImage(name: string): Promise<ImageRecord | null> {
    try {
      const res = await this.unary<{ image: RawImage }>(this.clients.images, 'Get', { name });
      return image(res.image);
    } catch (err) {
      if ((err as Partial<grpc.ServiceError>).code === grpc.status.NOT_FOUND) return null;
      throw wrap(err, `Images.Get ${name}`);
    }
  }

  async statSnapshot(snapshotter: string, key: string): Promise<SnapshotInfo | null> {
    try {
      const res = await this.unary<{
        info: { name: string; parent: string; kind: string; labels?: Record<string, string> };
      }>(this.clients.snapshots, 'Stat', { snapshotter, key });
      return {
        name: res.info.name,
        parent: res.info.parent,
        kind: SNAPSHOT_KINDS[res.info.kind] ?? 'unknown',
        labels: res.info.labels ?? {},
      };
    } catch (err) {
      if ((err as Partial<grpc.ServiceError>).code === grpc.status.NOT_FOUND) return null;
      throw wrap(err, `Snapshots.Stat ${snapshotter} ${key}`);
    }
  }

  async listLeases(): Promise<Lease[]> {
    try {
      const res = await this.unary<{
        leases: { id: string; created_at?: Timestamp; labels?: Record<string, string> }[];
      }>(this.clients.leases, 'List', { filters: [] });
      return res.leases.map((l) => ({ id: l.id, createdAt: toDate(l.created_at), labels: l.labels ?? {} }));
    } catch (err) {
      throw wrap(err, 'Leases.List');
    }
  }

  async listLeaseResources(leaseId: string): Promise<LeaseResource[]> {
    try {
      const res = await this.unary<{ resources: LeaseResource[] }>(this.clients.leases, 'ListResources', {
        id: leaseId,
      });
      return res.resources.map((r) => ({ id: r.id, type: r.type }));
    } catch (err) {
      if ((err as Partial<grpc.ServiceError>).code === grpc.status.NOT_FOUND) return [];
      throw wrap(err, `Leases.ListResources ${leaseId}`);
    }
  }

  subscribe(handlers: EventHandlers): EventSubscription {
    const fn = (this.clients.events as unknown as Record<string, Streaming>).Subscribe;
    if (fn === undefined) throw new Error('no method Subscribe');
    const ns = this.namespace.replace(/"/g, '');
    const filters = KNOWN_TOPICS.map((t) => `topic=="${t}",namespace=="${ns}"`);
    const stream = fn.call(this.clients.events, { filters }, this.md());
    let closed = false;
    stream.on(
      'data',
      (m: { topic: string; namespace: string; timestamp?: Timestamp; event: Envelope['event'] }) => {
        const d = decodeEnvelope({
          topic: m.topic,
          namespace: m.namespace,
          at: toDate(m.timestamp) ?? new Date(),
          event: m.event,
        });
        if (d.ok) handlers.onEvent(d.event satisfies ContainerdEvent);
        else this.opts.onBadEvent?.(d.reason);
      },
    );
    // A stream ends once for its subscriber: gRPC may emit both 'error' and 'end' for one loss.
    let ended = false;
    const end = (err: Error) => {
      if (closed || ended) return;
      ended = true;
      handlers.onError(err);
    };
    stream.on('error', (err: grpc.ServiceError) => {
      end(wrap(err, 'Events.Subscribe'));
    });
    stream.on('end', () => {
      end(new PulltraceError('PT_CONTAINERD_UNAVAILABLE', 'event stream ended'));
    });
    return {
      close() {
        if (closed) return;
        closed = true;
        stream.cancel();
      },
    };
  }

  close(): void {
    for (const c of Object.values(this.clients)) c.close();
  }
}
