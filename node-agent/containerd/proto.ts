// Loads pulltrace's hand-written .proto files (node-agent/proto/, copied beside dist by the
// build) into @grpc/grpc-js service constructors.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Where the .proto files are (node-agent/proto/, or dist/node-agent/proto/ in the image). */
export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

const LOAD_OPTIONS: protoLoader.Options = {
  keepCase: true,
  // Sizes exceed 2^31: read int64 as strings and convert with a range check (toSafeNumber).
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

type ServiceCtor = grpc.ServiceClientConstructor;

/** A service constructor from a .proto file (in PROTO_DIR unless `includeDirs` say otherwise). */
export function service(file: string, path: string[], includeDirs: string[] = [PROTO_DIR]): ServiceCtor {
  const def = grpc.loadPackageDefinition(protoLoader.loadSync(file, { ...LOAD_OPTIONS, includeDirs }));
  let node: unknown = def;
  for (const part of path) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new Error(`service ${path.join('.')} not found in ${file}`);
  return node as ServiceCtor;
}

type ServiceName = 'content' | 'images' | 'events' | 'snapshots' | 'leases';
let cache: Record<ServiceName, ServiceCtor> | null = null;

/** The five containerd services the agent calls, loaded once. */
export function services(): Record<ServiceName, ServiceCtor> {
  cache ??= {
    content: service('content.proto', ['containerd', 'services', 'content', 'v1', 'Content']),
    images: service('images.proto', ['containerd', 'services', 'images', 'v1', 'Images']),
    events: service('events.proto', ['containerd', 'services', 'events', 'v1', 'Events']),
    snapshots: service('snapshots.proto', ['containerd', 'services', 'snapshots', 'v1', 'Snapshots']),
    leases: service('leases.proto', ['containerd', 'services', 'leases', 'v1', 'Leases']),
  };
  return cache;
}

/** "unix:///run/x.sock" or "/run/x.sock" → grpc-js target "unix:///run/x.sock". */
export function grpcTarget(address: string): string {
  if (address.startsWith('unix://')) return address;
  if (address.startsWith('/')) return `unix://${address}`;
  throw new Error(`containerd address must be a unix socket path, got "${address}"`);
}

/** int64 as decoded (string) → number, refusing values a double cannot hold exactly. */
export function toSafeNumber(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${what} is not a usable size: ${String(v)}`);
  return n;
}

/** A google.protobuf.Timestamp as decoded (int64 seconds as a string). */
export interface Timestamp {
  seconds?: string | number;
  nanos?: number;
}

/** A protobuf timestamp as a Date (ms precision); null when absent or zero (containerd's "not set"). */
export function toDate(t: Timestamp | null | undefined): Date | null {
  if (t === null || t === undefined) return null;
  const s = Number(t.seconds ?? 0);
  if (s <= 0 && (t.nanos ?? 0) === 0) return null;
  return new Date(s * 1000 + Math.floor((t.nanos ?? 0) / 1e6));
}
