// The API server's validation rules the stand-in enforces, with its messages: object names,
// label keys and values, annotation keys and size, a pod's containers, and which parts of a
// pod's spec may change after creation (only images, activeDeadlineSeconds, tolerations and
// terminationGracePeriodSeconds; so `spec.readinessGates` and `spec.nodeName` are immutable).
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from './api-error.js';
import type { KubeObject, Pod } from './types.js';

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const MSG_QUALIFIED =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const MSG_LABEL_VALUE =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const MSG_SUBDOMAIN =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const MSG_LABEL =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/** Why `key` is not a valid label (or annotation) key, or null when it is. */
export function labelKeyError(key: string): string | null {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null) {
    if (prefix.length === 0) return 'prefix part must be non-empty';
    if (prefix.length > 253) return 'prefix part must be no more than 253 characters';
    if (!DNS1123_SUBDOMAIN.test(prefix)) return `prefix part ${MSG_SUBDOMAIN}`;
  }
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!QUALIFIED_NAME.test(name)) return MSG_QUALIFIED;
  return null;
}

/** Why `value` is not a valid label value, or null when it is. */
export function labelValueError(value: string): string | null {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (!LABEL_VALUE.test(value)) return MSG_LABEL_VALUE;
  return null;
}

/** Why `name` is not a valid object name (DNS subdomain, or DNS label for namespaces), or null. */
export function objectNameError(name: string, dnsLabel: boolean): string | null {
  if (dnsLabel) {
    if (name.length > 63) return 'must be no more than 63 characters';
    return DNS1123_LABEL.test(name) ? null : MSG_LABEL;
  }
  if (name.length > 253) return 'must be no more than 253 characters';
  return DNS1123_SUBDOMAIN.test(name) ? null : MSG_SUBDOMAIN;
}

const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Metadata rules every object follows: name, labels, annotations. */
export function validateMetadata(obj: KubeObject, dnsLabelName: boolean): FieldError[] {
  const errors: FieldError[] = [];
  const meta = obj.metadata ?? {};
  const name = meta.name ?? '';
  if (name === '') {
    errors.push({ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' });
  } else {
    const err = objectNameError(name, dnsLabelName);
    if (err !== null) errors.push({ type: 'Invalid', field: 'metadata.name', value: name, detail: err });
  }
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    const kErr = labelKeyError(k);
    if (kErr !== null) errors.push({ type: 'Invalid', field: 'metadata.labels', value: k, detail: kErr });
    if (typeof v !== 'string') {
      errors.push({
        type: 'Invalid',
        field: 'metadata.labels',
        value: v,
        detail: 'label values must be strings',
      });
      continue;
    }
    const vErr = labelValueError(v);
    if (vErr !== null) errors.push({ type: 'Invalid', field: 'metadata.labels', value: v, detail: vErr });
  }
  let size = 0;
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    const kErr = labelKeyError(k.toLowerCase());
    if (kErr !== null)
      errors.push({ type: 'Invalid', field: 'metadata.annotations', value: k, detail: kErr });
    if (typeof v !== 'string') {
      errors.push({
        type: 'Invalid',
        field: `metadata.annotations`,
        value: v,
        detail: 'annotation values must be strings',
      });
      continue;
    }
    size += k.length + v.length;
  }
  if (size > MAX_ANNOTATIONS_BYTES) {
    errors.push({
      type: 'TooLong',
      field: 'metadata.annotations',
      detail: `must have at most ${MAX_ANNOTATIONS_BYTES} bytes`,
    });
  }
  return errors;
}

/** A new pod's spec: at least one container, each named (unique, DNS label) with an image. */
export function validatePodSpec(pod: Pod): FieldError[] {
  const errors: FieldError[] = [];
  const spec = pod.spec;
  if (spec === undefined || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    return [{ type: 'Required', field: 'spec.containers', detail: '' }];
  }
  const seen = new Set<string>();
  const check = (list: unknown, field: string) => {
    if (list === undefined) return;
    if (!Array.isArray(list)) {
      errors.push({ type: 'Invalid', field, value: list, detail: 'must be a list' });
      return;
    }
    list.forEach((c: unknown, i) => {
      const ctr = (typeof c === 'object' && c !== null ? c : {}) as { name?: unknown; image?: unknown };
      const name = typeof ctr.name === 'string' ? ctr.name : '';
      if (name === '') errors.push({ type: 'Required', field: `${field}[${i}].name`, detail: '' });
      else if (seen.has(name))
        errors.push({ type: 'Duplicate', field: `${field}[${i}].name`, detail: JSON.stringify(name) });
      else {
        const err = objectNameError(name, true);
        if (err !== null)
          errors.push({ type: 'Invalid', field: `${field}[${i}].name`, value: name, detail: err });
      }
      seen.add(name);
      if (typeof ctr.image !== 'string' || ctr.image.trim() === '') {
        errors.push({ type: 'Required', field: `${field}[${i}].image`, detail: '' });
      }
    });
  };
  check(spec.containers, 'spec.containers');
  check(spec.initContainers, 'spec.initContainers');
  (spec.readinessGates ?? []).forEach((g, i) => {
    const err = labelKeyError(typeof g.conditionType === 'string' ? g.conditionType : '');
    if (err !== null) {
      errors.push({
        type: 'Invalid',
        field: `spec.readinessGates[${i}].conditionType`,
        value: g.conditionType,
        detail: err,
      });
    }
  });
  return errors;
}

const POD_UPDATE_FORBIDDEN =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

/** The pod spec with the fields an update may change copied from `from`, for comparison. */
function withMutableFrom(
  spec: Record<string, unknown>,
  from: Record<string, unknown>,
): Record<string, unknown> {
  const out = structuredClone(spec);
  for (const key of ['activeDeadlineSeconds', 'tolerations', 'terminationGracePeriodSeconds']) {
    if (key in from) out[key] = from[key];
    else Reflect.deleteProperty(out, key);
  }
  for (const list of ['containers', 'initContainers']) {
    const mine = out[list];
    const theirs = from[list];
    if (!Array.isArray(mine) || !Array.isArray(theirs) || mine.length !== theirs.length) continue;
    mine.forEach((c: unknown, i) => {
      const t: unknown = theirs[i];
      if (typeof c === 'object' && c !== null && typeof t === 'object' && t !== null && 'image' in t) {
        (c as Record<string, unknown>).image = (t as Record<string, unknown>).image;
      }
    });
  }
  return out;
}

/** Pod spec changes an update may not make (`spec: Forbidden: ...`). */
export function validatePodSpecUpdate(next: Pod, prev: Pod): FieldError[] {
  const a = (next.spec ?? {}) as Record<string, unknown>;
  const b = (prev.spec ?? {}) as Record<string, unknown>;
  if (isDeepStrictEqual(withMutableFrom(b, a), a)) return [];
  return [{ type: 'Forbidden', field: 'spec', detail: POD_UPDATE_FORBIDDEN }];
}

const KNOWN_METADATA = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

/**
 * Unknown fields at the top level and in metadata, for `fieldValidation=Strict` on objects
 * made of apiVersion/kind/metadata/spec/status (the stand-in has no full schemas: fields
 * deeper in spec are not checked).
 */
export function unknownFields(obj: KubeObject, topLevel: readonly string[]): string[] {
  const out: string[] = [];
  for (const k of Object.keys(obj)) if (!topLevel.includes(k)) out.push(k);
  for (const k of Object.keys(obj.metadata ?? {})) if (!KNOWN_METADATA.has(k)) out.push(`metadata.${k}`);
  return out;
}
