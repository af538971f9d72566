// The three PATCH types kubectl and @kubernetes/client-node send, applied to a JSON object:
//   - application/json-patch+json (RFC 6902, fast-json-patch with validation): an operation
//     that does not apply (`add` under a missing parent, a failing `test`, `remove` of a
//     missing path) is answered 422 Invalid with the API server's generic message;
//   - application/merge-patch+json (RFC 7386): maps merge, `null` deletes, lists are replaced;
//   - application/strategic-merge-patch+json: as a merge patch, except the lists the
//     Kubernetes types declare with a merge key are merged element by element
//     (`status.conditions` by `type`, containers by `name`, ...), and the directives
//     `$patch: replace|delete`, `$retainKeys`, `$deleteFromPrimitiveList/<field>` are honoured
//     (`$setElementOrder/<field>`, which kubectl apply sends, is accepted and ignored).
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { badRequest, unprocessable, unsupportedMediaType } from './api-error.js';
import type { JsonObject } from './types.js';

const { applyPatch, JsonPatchError } = fastJsonPatch;

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

/** One of the PATCH content types the stand-in applies. */
export type PatchType = (typeof PATCH_TYPES)[keyof typeof PATCH_TYPES];

export function isPatchType(contentType: string): contentType is PatchType {
  return (Object.values(PATCH_TYPES) as string[]).includes(contentType);
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const RFC6902_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** RFC 6902. Throws 400 for a body that is not a list of operations, 422 when one does not apply. */
export function applyJsonPatch(doc: JsonObject, ops: unknown): JsonObject {
  if (!Array.isArray(ops)) {
    throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  }
  for (const op of ops) {
    if (!isObject(op) || typeof op.op !== 'string' || !RFC6902_OPS.has(op.op)) throw unprocessable();
  }
  try {
    const result = applyPatch(structuredClone(doc), ops as Operation[], true, true).newDocument;
    if (!isObject(result)) throw unprocessable();
    return result;
  } catch (err) {
    if (err instanceof JsonPatchError) throw unprocessable();
    throw err;
  }
}

/** RFC 7386 JSON merge patch. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) Reflect.deleteProperty(out, k);
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/**
 * Lists merged by key in a strategic merge patch, by the end of their field path (list
 * indices left out). `''` marks a list of scalars merged as a set. Pod paths also match a
 * pod template's (`spec.template.spec.containers`). Any list not here is replaced.
 */
const MERGE_KEYS: readonly (readonly [suffix: string, key: string])[] = [
  ['metadata.ownerReferences', 'uid'],
  ['metadata.finalizers', ''],
  ['spec.containers', 'name'],
  ['spec.initContainers', 'name'],
  ['spec.ephemeralContainers', 'name'],
  ['spec.volumes', 'name'],
  ['spec.imagePullSecrets', 'name'],
  ['spec.hostAliases', 'ip'],
  ['spec.resourceClaims', 'name'],
  ['containers.env', 'name'],
  ['containers.ports', 'containerPort'],
  ['containers.volumeMounts', 'mountPath'],
  ['containers.volumeDevices', 'devicePath'],
  ['initContainers.env', 'name'],
  ['initContainers.ports', 'containerPort'],
  ['initContainers.volumeMounts', 'mountPath'],
  ['status.conditions', 'type'],
  ['status.podIPs', 'ip'],
  ['status.hostIPs', 'ip'],
  ['webhooks', 'name'],
];

/** The merge key of the list at `path`, '' for a set of scalars, undefined for a replaced list. */
export function mergeKeyFor(path: readonly string[]): string | undefined {
  const dotted = path.join('.');
  for (const [suffix, key] of MERGE_KEYS) {
    if (dotted === suffix || dotted.endsWith(`.${suffix}`)) return key;
  }
  return undefined;
}

const DELETE = Symbol('delete');

function mergeMap(target: unknown, patch: JsonObject, path: string[]): JsonObject | typeof DELETE {
  const directive = patch.$patch;
  if (directive === 'delete') return DELETE;
  if (directive === 'replace') {
    const { $patch: _, ...rest } = patch;
    return mergeMap({}, rest, path);
  }
  if (directive !== undefined && directive !== 'merge') {
    throw badRequest(`Unknown patch type: ${JSON.stringify(directive)}`);
  }
  const out: JsonObject = isObject(target) ? structuredClone(target) : {};
  const deferred: [string, unknown][] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      deferred.push([k.slice('$deleteFromPrimitiveList/'.length), v]);
      continue;
    }
    if (v === null) {
      Reflect.deleteProperty(out, k);
    } else if (isObject(v)) {
      const merged = mergeMap(out[k], v, [...path, k]);
      if (merged === DELETE) Reflect.deleteProperty(out, k);
      else out[k] = merged;
    } else if (Array.isArray(v)) {
      out[k] = mergeList(out[k], v, [...path, k]);
    } else {
      out[k] = v;
    }
  }
  for (const [field, values] of deferred) {
    const list = out[field];
    if (Array.isArray(list) && Array.isArray(values)) {
      out[field] = list.filter((x) => !values.includes(x));
    }
  }
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    for (const k of Object.keys(out)) if (!retain.includes(k)) Reflect.deleteProperty(out, k);
  }
  return out;
}

function mergeList(target: unknown, patch: unknown[], path: string[]): unknown[] {
  const key = mergeKeyFor(path);
  const fresh = (v: unknown): unknown => {
    if (!isObject(v)) return structuredClone(v);
    const m = mergeMap({}, v, path);
    return m === DELETE ? undefined : m;
  };
  if (key === undefined) return patch.map(fresh).filter((v) => v !== undefined);
  const current = Array.isArray(target) ? structuredClone(target) : [];
  if (key === '') {
    for (const v of patch) if (!current.includes(v)) current.push(v);
    return current;
  }
  if (patch.some((e) => isObject(e) && e.$patch === 'replace')) {
    return patch.filter((e) => !(isObject(e) && e.$patch === 'replace')).map(fresh);
  }
  for (const elem of patch) {
    if (!isObject(elem) || !(key in elem)) {
      throw badRequest(`map: ${JSON.stringify(elem)} does not contain declared merge key: ${key}`);
    }
    const idx = current.findIndex((e) => isObject(e) && e[key] === elem[key]);
    if (elem.$patch === 'delete') {
      if (idx >= 0) current.splice(idx, 1);
      continue;
    }
    const merged = mergeMap(idx >= 0 ? current[idx] : {}, elem, path);
    if (merged === DELETE) continue;
    if (idx >= 0) current[idx] = merged;
    else current.push(merged);
  }
  return current;
}

/** A strategic merge patch, with the merge keys of the Kubernetes types in MERGE_KEYS. */
export function applyStrategicMergePatch(doc: JsonObject, patch: unknown): JsonObject {
  if (!isObject(patch)) throw badRequest('strategic merge patch must be a JSON object');
  const out = mergeMap(doc, patch, []);
  if (out === DELETE) throw badRequest('a strategic merge patch cannot delete the whole object');
  return out;
}

/** Applies a patch of the given content type; throws 415 for other types. */
export function applyPatchOfType(doc: JsonObject, type: string, patch: unknown): JsonObject {
  switch (type) {
    case PATCH_TYPES.json:
      return applyJsonPatch(doc, patch);
    case PATCH_TYPES.merge: {
      if (!isObject(patch)) throw badRequest('merge patch must be a JSON object');
      return applyMergePatch(doc, patch) as JsonObject;
    }
    case PATCH_TYPES.strategic:
      return applyStrategicMergePatch(doc, patch);
    default:
      throw unsupportedMediaType(type, Object.values(PATCH_TYPES).join(', '));
  }
}
