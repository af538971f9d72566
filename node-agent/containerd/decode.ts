// containerd event envelopes → pulltrace's ContainerdEvent: a pure function that accepts only
// the event types the tracker uses and says so for anything else.
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import type { ContainerdEvent } from './source.js';

const root = protobuf.loadSync(fileURLToPath(new URL('../proto/event-types.proto', import.meta.url)));

const TOPIC_TYPES = {
  '/images/create': 'ImageCreate',
  '/images/update': 'ImageUpdate',
  '/images/delete': 'ImageDelete',
} as const;

/** The event topics the tracker uses: image records made, changed, deleted. */
export type KnownTopic = keyof typeof TOPIC_TYPES;
/** KnownTopic's values, for the subscription's filters. */
export const KNOWN_TOPICS = Object.keys(TOPIC_TYPES) as KnownTopic[];

/** An events.v1 Envelope as grpc-js decodes it. */
export interface Envelope {
  topic: string;
  namespace: string;
  /** The envelope's timestamp (containerd's clock). */
  at: Date;
  /** google.protobuf.Any */
  event: { type_url?: string; value?: Uint8Array } | null;
}

/** An event, or why an envelope is not one the tracker uses. */
export type Decoded = { ok: true; event: ContainerdEvent } | { ok: false; reason: string };

/**
 * Pure: the event an envelope carries, for the known topics only; an unknown topic, a payload
 * of another type, or bytes that do not decode give `{ ok: false, reason }`. Never throws.
 */
export function decodeEnvelope(env: Envelope): Decoded {
  const typeName = (TOPIC_TYPES as Record<string, string | undefined>)[env.topic];
  if (typeName === undefined) return { ok: false, reason: `unknown topic ${env.topic}` };
  const typeUrl = env.event?.type_url ?? '';
  // containerd 1.x names image payloads containerd.services.images.v1.ImageCreate, 2.x
  // containerd.events.ImageCreate (same fields); a URL may carry a host prefix.
  const urlName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  const accepted = [`containerd.events.${typeName}`, `containerd.services.images.v1.${typeName}`];
  if (!accepted.includes(urlName)) {
    return {
      ok: false,
      reason: `topic ${env.topic} carries ${typeUrl || 'no payload'}, expected containerd.events.${typeName}`,
    };
  }
  let msg: Record<string, unknown>;
  try {
    msg = root
      .lookupType(`containerd.events.${typeName}`)
      .toObject(
        root.lookupType(`containerd.events.${typeName}`).decode(env.event?.value ?? new Uint8Array()),
        { defaults: true },
      );
  } catch (err) {
    return {
      ok: false,
      reason: `cannot decode ${typeUrl}: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  const name = typeof msg.name === 'string' ? msg.name : '';
  return {
    ok: true,
    event: { namespace: env.namespace, at: env.at, topic: env.topic as KnownTopic, name },
  };
}

/** Encodes a payload as containerd does; for tests and the fake source. */
export function encodePayload(
  typeName: string,
  fields: Record<string, unknown>,
): { type_url: string; value: Uint8Array } {
  const t = root.lookupType(`containerd.events.${typeName}`);
  return { type_url: `containerd.events.${typeName}`, value: t.encode(t.fromObject(fields)).finish() };
}
