// The admission decision as a pure function: an AdmissionReview in, an AdmissionReview out.
// The changeable parts of the pod are mutated as a copy and the JSONPatch is the diff of the
// two (fast-json-patch `compare`), so the patch always applies to the object the API server sent.
//
// Namespace-level opt-out (`pulltrace.io/track: "false"` on a namespace) is not seen here: the
// webhook has no API access. The chart's namespaceSelector keeps such namespaces from calling it.
import { asRecord } from '../common/json.js';
import fastJsonPatch from 'fast-json-patch';
import {
  ANNOTATION_READINESS_GATE,
  CONDITION_IMAGES_PULLED,
  KEY_TRACK,
  LABEL_TRACKED,
} from '../common/contract.js';

const { compare } = fastJsonPatch;

/** A JSON object as parsed (a pod, its metadata, a view of it). */
export type JsonObject = Record<string, unknown>;

/** The `request` of an admission.k8s.io/v1 AdmissionReview, as far as the webhook reads it. */
export interface AdmissionRequest {
  /** Echoed in the response (required). */
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  namespace?: string;
  operation?: string;
  dryRun?: boolean;
  /** The object being admitted: the Pod for a pod CREATE. */
  object?: unknown;
}

/** The webhook's answer: always allowed (it never blocks a pod). */
export interface AdmissionResponse {
  uid: string;
  allowed: true;
  /** Present only with `patch`. */
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch (RFC 6902) array; absent when nothing changes. */
  patch?: string;
  /** Shown by kubectl; set only when the mutation failed and the pod was admitted untracked. */
  warnings?: string[];
}

/** The AdmissionReview sent back. */
export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** The admission's settings (the webhook's --readiness-gate-namespaces). */
export interface MutateOptions {
  /** Pods in these namespaces all get the readiness gate. */
  readinessGateNamespaces: ReadonlySet<string>;
}

/** What happened, for metrics and logs. */
export type Outcome = 'patched' | 'unchanged' | 'opted_out' | 'skipped' | 'error' | 'bad_request';

/** admit()'s answer: the review to send back and what happened. */
export interface Decision {
  review: AdmissionReviewResponse;
  /** The pulltrace_webhook_requests_total `outcome` label. */
  outcome: Outcome;
  /** The fault behind outcome 'error', for the log. */
  error?: unknown;
}

/** Thrown for requests that are not a usable AdmissionReview: answered with a 400. */
export class BadReviewError extends Error {}

function isObject(v: unknown): v is JsonObject {
  return asRecord(v) !== null;
}

/** Checks the envelope; returns the request or throws BadReviewError saying what is wrong. */
export function parseReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw new BadReviewError('body must be a JSON object');
  if (body.apiVersion !== 'admission.k8s.io/v1') {
    throw new BadReviewError(
      `apiVersion must be admission.k8s.io/v1, got ${JSON.stringify(body.apiVersion)}`,
    );
  }
  if (body.kind !== 'AdmissionReview') {
    throw new BadReviewError(`kind must be AdmissionReview, got ${JSON.stringify(body.kind)}`);
  }
  const req = body.request;
  if (!isObject(req)) throw new BadReviewError('request is missing');
  if (typeof req.uid !== 'string' || req.uid === '') throw new BadReviewError('request.uid is missing');
  return req as unknown as AdmissionRequest;
}

function labelsOf(meta: JsonObject): JsonObject {
  return isObject(meta.labels) ? meta.labels : {};
}

function annotationsOf(meta: JsonObject): JsonObject {
  return isObject(meta.annotations) ? meta.annotations : {};
}

/**
 * The parts of a pod the webhook may change (metadata.labels, spec.readinessGates), with the
 * same nesting and the same absent keys as the pod. Diffing these instead of a clone of the
 * whole pod gives the same patch at a fraction of the cost (a pod can be 100 KB).
 *
 * The containers (`view`, `view.metadata`, `view.spec`) are new objects but the labels and
 * gates are the pod's own, not copies: compare() only reads them, and mutatePod replaces them
 * with new objects instead of changing them. Copying them (structuredClone, twice a request)
 * was a measurable share of admit(): docs/benchmarks.md, "Where the webhook's time goes".
 */
export function mutableView(pod: JsonObject): JsonObject {
  const view: JsonObject = {};
  if (isObject(pod.metadata)) {
    view.metadata = 'labels' in pod.metadata ? { labels: pod.metadata.labels } : {};
  }
  if (isObject(pod.spec)) {
    view.spec = 'readinessGates' in pod.spec ? { readinessGates: pod.spec.readinessGates } : {};
  }
  return view;
}

/**
 * The pod's mutable view (see mutableView) with pulltrace's label and, where asked, its
 * readiness gate; or 'opted_out'. Neither the pod nor any object in it is changed: the
 * labels and the gates are new objects (spread), so the view never aliases a changed value.
 */
export function mutatePod(pod: JsonObject, namespace: string, opts: MutateOptions): JsonObject | 'opted_out' {
  const meta = isObject(pod.metadata) ? pod.metadata : {};
  const labels = labelsOf(meta);
  const annotations = annotationsOf(meta);
  if (labels[KEY_TRACK] === 'false' || annotations[KEY_TRACK] === 'false') return 'opted_out';

  const out = mutableView(pod);
  const outMeta: JsonObject = isObject(out.metadata) ? out.metadata : {};
  out.metadata = outMeta;
  outMeta.labels = { ...labels, [LABEL_TRACKED]: 'true' };

  const wantsGate =
    annotations[ANNOTATION_READINESS_GATE] === 'true' || opts.readinessGateNamespaces.has(namespace);
  if (wantsGate) {
    const spec: JsonObject = isObject(out.spec) ? out.spec : {};
    out.spec = spec;
    const gates = Array.isArray(spec.readinessGates) ? (spec.readinessGates as unknown[]) : [];
    const has = gates.some((g) => isObject(g) && g.conditionType === CONDITION_IMAGES_PULLED);
    if (!has) spec.readinessGates = [...gates, { conditionType: CONDITION_IMAGES_PULLED }];
  }
  return out;
}

function isPodCreate(req: AdmissionRequest): boolean {
  const group = req.resource?.group ?? '';
  return (
    req.operation === 'CREATE' &&
    group === '' &&
    req.resource?.resource === 'pods' &&
    (req.subResource ?? '') === '' &&
    (req.kind === undefined || req.kind.kind === undefined || req.kind.kind === 'Pod')
  );
}

function allow(uid: string, extra: Partial<AdmissionResponse> = {}): AdmissionReviewResponse {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed: true, ...extra },
  };
}

/**
 * Decides one admission. Throws BadReviewError for a malformed review; anything else that goes
 * wrong while mutating still allows the pod (the webhook never blocks a pod).
 */
export function admit(body: unknown, opts: MutateOptions, mutate = mutatePod): Decision {
  const req = parseReview(body);
  if (!isPodCreate(req)) return { review: allow(req.uid), outcome: 'skipped' };
  if (!isObject(req.object)) throw new BadReviewError('request.object must be the Pod being created');
  const pod = req.object;
  const podNs =
    isObject(pod.metadata) && typeof pod.metadata.namespace === 'string' ? pod.metadata.namespace : '';
  const namespace = podNs !== '' ? podNs : (req.namespace ?? '');
  let mutated: JsonObject | 'opted_out';
  try {
    mutated = mutate(pod, namespace, opts);
  } catch (err) {
    return {
      review: allow(req.uid, {
        warnings: ['pulltrace: internal error; the pod was admitted without tracking'],
      }),
      outcome: 'error',
      error: err,
    };
  }
  if (mutated === 'opted_out') return { review: allow(req.uid), outcome: 'opted_out' };
  const ops = compare(mutableView(pod), mutated);
  if (ops.length === 0) return { review: allow(req.uid), outcome: 'unchanged' };
  const patch = Buffer.from(JSON.stringify(ops)).toString('base64');
  return { review: allow(req.uid, { patchType: 'JSONPatch', patch }), outcome: 'patched' };
}
