// Request bodies in the Kubernetes protobuf encoding (application/vnd.kubernetes.protobuf),
// turned into the JSON form the store keeps. kubectl 1.32+ sends its typed-client writes this
// way (`kubectl create deployment`, `kubectl create namespace`) and does not fall back to
// JSON on a 415. Only the kinds and fields in kube-subset.proto are decoded.
//
// Go's encoder writes every non-pointer field, zero or not, where JSON would leave it out
// (`omitempty`); so empty strings, zero numbers and false are dropped here, except for the
// pointer fields in KEEP_ZERO whose zero is a value (`replicas: 0`).
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { badRequest, unsupportedMediaType } from './api-error.js';
import type { JsonObject, KubeObject } from './types.js';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

const root = protobuf.loadSync(fileURLToPath(new URL('./kube-subset.proto', import.meta.url)));
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

const KINDS: Record<string, string> = {
  'v1/Pod': 'Pod',
  'v1/Namespace': 'Namespace',
  'apps/v1/Deployment': 'Deployment',
  'apps/v1/ReplicaSet': 'ReplicaSet',
};

const KEEP_ZERO = new Set([
  'replicas',
  'terminationGracePeriodSeconds',
  'activeDeadlineSeconds',
  'revisionHistoryLimit',
  'progressDeadlineSeconds',
  'priority',
  'enableServiceLinks',
  'controller',
  'blockOwnerDeletion',
  'tolerationSeconds',
]);

function isZero(v: unknown): boolean {
  return v === '' || v === 0 || v === false;
}

function timeToJson(v: unknown): string | undefined {
  const seconds = typeof v === 'object' && v !== null ? Number((v as { seconds?: unknown }).seconds ?? 0) : 0;
  return seconds > 0 ? new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
}

/** A decoded message (toObject form) → Kubernetes JSON, by the message type's fields. */
function toJson(type: protobuf.Type, obj: Record<string, unknown>): JsonObject {
  const out: JsonObject = {};
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (v === undefined || v === null) continue;
    const conv = (x: unknown): unknown => convert(field.resolvedType, x);
    if (field.map) {
      const m: JsonObject = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) m[k] = conv(x);
      out[field.name] = m;
    } else if (field.repeated) {
      out[field.name] = (v as unknown[]).map(conv);
    } else if (field.resolvedType === null) {
      if (!isZero(v) || KEEP_ZERO.has(field.name)) out[field.name] = v;
    } else {
      const c = conv(v);
      if (c !== undefined) out[field.name] = c;
    }
  }
  return out;
}

function convert(resolved: protobuf.Type | protobuf.Enum | null, v: unknown): unknown {
  if (!(resolved instanceof protobuf.Type)) return v;
  const o = v as Record<string, unknown>;
  switch (resolved.name) {
    case 'Time':
      return timeToJson(o);
    case 'Quantity':
      return o.string ?? '';
    case 'IntOrString':
      return Number(o.type ?? 0) === 1 ? (o.strVal ?? '') : (o.intVal ?? 0);
    default:
      return toJson(resolved, o);
  }
}

/** Decodes a protobuf request body (magic, runtime.Unknown envelope, object) to JSON. */
export function decodeKubeProtobuf(body: Buffer): KubeObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) {
    throw badRequest('protobuf body does not start with the Kubernetes magic number');
  }
  let apiVersion: string;
  let kind: string;
  let raw: Uint8Array;
  try {
    const unknownType = root.lookupType('pulltrace.kube.Unknown');
    const env = unknownType.toObject(unknownType.decode(body.subarray(4)), { defaults: false }) as {
      typeMeta?: { apiVersion?: string; kind?: string };
      raw?: Uint8Array;
    };
    apiVersion = env.typeMeta?.apiVersion ?? '';
    kind = env.typeMeta?.kind ?? '';
    raw = env.raw ?? new Uint8Array();
  } catch (err) {
    throw badRequest(
      `cannot decode the protobuf envelope: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const message = KINDS[`${apiVersion}/${kind}`];
  if (message === undefined) {
    throw unsupportedMediaType(
      `${PROTOBUF_CONTENT_TYPE} (the stand-in decodes no ${apiVersion} ${kind}; send JSON)`,
    );
  }
  const type = root.lookupType(`pulltrace.kube.${message}`);
  try {
    const decoded = type.toObject(type.decode(raw), { defaults: false, longs: Number });
    return { apiVersion, kind, ...toJson(type, decoded) };
  } catch (err) {
    throw badRequest(
      `cannot decode the protobuf ${kind}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
