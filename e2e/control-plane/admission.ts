// Mutating admission webhooks for the control-plane stand-in: an AdmitHook for the store that
// does what the API server's MutatingAdmissionWebhook plugin does with the
// MutatingWebhookConfigurations stored in it, so a webhook is exercised as in a cluster:
//   - configurations sorted by name, their webhooks in order, read afresh on every admission;
//   - a webhook is called when its `rules` (operations, apiGroups, apiVersions, resources
//     with `*` and subresources, scope), `namespaceSelector` and `objectSelector` match;
//   - an admission.k8s.io/v1 AdmissionReview is POSTed to `clientConfig.url` (with
//     `?timeout=Ns`, as the API server's client adds) over HTTPS, the server certificate
//     verified against `clientConfig.caBundle` (the system roots when there is none);
//   - `timeoutSeconds` (default 10) bounds the whole call; a failed call or an invalid answer
//     denies with 500 `Internal error occurred: failed calling webhook "NAME": ...` under
//     `failurePolicy: Fail` (the default) and is logged and skipped under `Ignore`;
//   - `allowed: false` denies with the webhook's status (`admission webhook "NAME" denied the
//     request: ...`); a JSONPatch that does not apply is a 500 whatever the failurePolicy;
//   - each webhook sees the object as patched (and defaulted) by the ones before it, and
//     `reinvocationPolicy: IfNeeded` calls a webhook once more when a later one changed the
//     object after it ran (one reinvocation round, as in the API server).
// What the stand-in cannot do is refused with a clear 500 whatever the failurePolicy, instead
// of being skipped quietly: `clientConfig.service` (nothing resolves Services here; use `url`),
// `matchConditions` (no CEL), and webhooks that accept no `v1` AdmissionReview. A rule for
// another version of a served resource does not match (`matchPolicy: Equivalent` would need
// conversion, and the stand-in serves one version per resource).
//
//   let cp: ControlPlane;
//   cp = await startControlPlane({ admit: webhookAdmission(() => cp.store) });
import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { isDeepStrictEqual } from 'node:util';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { silentLogger, type Logger } from '../../common/logging.js';
import { isObject } from './patch.js';
import { MUTATING_WEBHOOK_CONFIGURATIONS, NAMESPACES, sameResource } from './resources.js';
import { labelSelectorFromObject, matchLabels } from './selectors.js';
import type { AdmissionInput, AdmissionResult, AdmitHook, Store } from './store.js';
import type { KubeObject } from './types.js';

const { applyPatch, compare, JsonPatchError } = fastJsonPatch;

/** The API server's default `timeoutSeconds`. */
export const DEFAULT_TIMEOUT_SECONDS = 10;
/** Largest webhook answer read (an AdmissionReview carries a patch, not the object). */
const MAX_RESPONSE_BYTES = 3 * 1024 * 1024;

/** The requesting user sent in every AdmissionReview (the stand-in has no authentication). */
export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface WebhookAdmissionOptions {
  logger?: Logger;
  /** Default: `system:admin` in `system:masters` and `system:authenticated`. */
  userInfo?: UserInfo;
}

/** One rule of a webhook (admissionregistration.k8s.io/v1 RuleWithOperations). */
export interface WebhookRule {
  operations?: string[];
  apiGroups?: string[];
  apiVersions?: string[];
  /** `pods`, `*`, `pods/status`, `pods/*`, `*\/status`, `*\/*`. */
  resources?: string[];
  /** `Cluster`, `Namespaced` or `*` (the default). */
  scope?: string;
}

interface SelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** The fields of a MutatingWebhook the stand-in reads (as stored: nothing defaulted). */
export interface MutatingWebhook {
  name: string;
  clientConfig?: { url?: string; caBundle?: string; service?: unknown };
  rules?: WebhookRule[];
  failurePolicy?: string;
  matchPolicy?: string;
  namespaceSelector?: SelectorSpec;
  objectSelector?: SelectorSpec;
  sideEffects?: string;
  timeoutSeconds?: number;
  admissionReviewVersions?: string[];
  reinvocationPolicy?: string;
  matchConditions?: unknown[];
}

/** A webhook with its place in the ordering, `config/index` identifying it across rounds. */
interface OrderedWebhook {
  id: string;
  config: string;
  hook: MutatingWebhook;
}

type Denial = Extract<AdmissionResult, { allowed: false }>;

/** A failed call or an unusable answer (the API server's ErrCallingWebhook): failurePolicy decides. */
class WebhookCallError extends Error {}

/** An outcome that denies whatever the failurePolicy (rejection, bad patch, stand-in limit). */
class WebhookDenial extends Error {
  constructor(readonly denial: Denial) {
    super(denial.message);
  }
}

function internalError(message: string): WebhookDenial {
  return new WebhookDenial({
    allowed: false,
    code: 500,
    reason: 'InternalError',
    message: `Internal error occurred: ${message}`,
  });
}

function callFailed(hook: MutatingWebhook, reason: string): string {
  return `failed calling webhook "${hook.name}": ${reason}`;
}

// ---- matching (pure) ----

function exactOrWildcard(items: readonly string[] | undefined, requested: string): boolean {
  return (items ?? []).some((i) => i === '*' || i === requested);
}

function isNamespaceResource(input: Pick<AdmissionInput, 'resource'>): boolean {
  return sameResource(input.resource, NAMESPACES);
}

/** The request's namespace as the API server sets it: a Namespace's own name for namespaces. */
export function requestNamespace(input: Pick<AdmissionInput, 'resource' | 'name' | 'namespace'>): string {
  if (isNamespaceResource(input)) return input.name;
  return input.namespace ?? '';
}

/** Whether one rule matches the request, as the API server's rules.Matcher decides. */
export function ruleMatches(
  rule: WebhookRule,
  input: Pick<AdmissionInput, 'operation' | 'resource' | 'subResource' | 'name' | 'namespace'>,
): boolean {
  const namespace = requestNamespace(input);
  const scope = rule.scope ?? '*';
  // A Namespace is cluster-scoped although its requests carry a namespace (its own name).
  const scopeOk =
    scope === '*' ||
    (scope === 'Namespaced' && !isNamespaceResource(input) && namespace !== '') ||
    (scope === 'Cluster' && (isNamespaceResource(input) || namespace === ''));
  if (!scopeOk) return false;
  if (!exactOrWildcard(rule.operations, input.operation)) return false;
  if (!exactOrWildcard(rule.apiGroups, input.resource.group)) return false;
  if (!exactOrWildcard(rule.apiVersions, input.resource.version)) return false;
  const sub = input.subResource ?? '';
  return (rule.resources ?? []).some((entry) => {
    const slash = entry.indexOf('/');
    const res = slash < 0 ? entry : entry.slice(0, slash);
    const entrySub = slash < 0 ? '' : entry.slice(slash + 1);
    return (res === '*' || res === input.resource.resource) && (entrySub === '*' || entrySub === sub);
  });
}

function selectorMatches(
  spec: SelectorSpec | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  return matchLabels(labelSelectorFromObject(spec ?? {}), labels);
}

function isEmptySelector(spec: SelectorSpec | undefined): boolean {
  return Object.keys(spec?.matchLabels ?? {}).length === 0 && (spec?.matchExpressions ?? []).length === 0;
}

// ---- the call ----

/** Go's wording for the transport errors a webhook call commonly meets, so messages read as a cluster's. */
function transportMessage(err: unknown, url: URL): string {
  if (err instanceof DeadlineError) return 'context deadline exceeded';
  const e = err as NodeJS.ErrnoException & { reason?: string };
  switch (e.code) {
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
      return 'tls: failed to verify certificate: x509: certificate has expired or is not yet valid';
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `tls: failed to verify certificate: x509: certificate is not valid for ${url.hostname} (${e.reason ?? e.message})`;
    case 'ECONNREFUSED':
      return `dial tcp ${url.host}: connect: connection refused`;
    case 'ECONNRESET':
      return `read tcp ${url.host}: connection reset by peer`;
    default:
      return e.message;
  }
}

class DeadlineError extends Error {}

interface HttpAnswer {
  status: number;
  body: string;
}

/** POSTs `body`; the whole exchange (connect, TLS, answer) must end within `timeoutMs`. */
function post(url: URL, ca: string | undefined, body: string, timeoutMs: number): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      // A connection per call: the CA can change between calls, and reuse buys nothing here.
      agent: false,
      ...(ca === undefined ? {} : { ca }),
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, */*',
        'content-length': Buffer.byteLength(body),
      },
    });
    const timer = setTimeout(() => req.destroy(new DeadlineError()), timeoutMs);
    const fail = (err: unknown) => {
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) {
          req.destroy(new Error(`the response is larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(body);
  });
}

/** `clientConfig` checked as the API server validates it, and the CA to verify against. */
function target(hook: MutatingWebhook, timeoutSeconds: number): { url: URL; ca: string | undefined } {
  const cc = hook.clientConfig ?? {};
  if (cc.service !== undefined) {
    throw internalError(
      callFailed(
        hook,
        'clientConfig.service is not supported by the control-plane stand-in (nothing resolves Services here): use clientConfig.url, e.g. https://127.0.0.1:PORT/mutate',
      ),
    );
  }
  if (cc.url === undefined || cc.url === '') {
    throw internalError(callFailed(hook, 'clientConfig has neither url nor service'));
  }
  let url: URL;
  try {
    url = new URL(cc.url);
  } catch {
    throw internalError(callFailed(hook, `clientConfig.url ${JSON.stringify(cc.url)} is not a URL`));
  }
  if (url.protocol !== 'https:') {
    throw internalError(callFailed(hook, "clientConfig.url: 'https' is the only allowed URL scheme"));
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '') {
    throw internalError(
      callFailed(
        hook,
        'clientConfig.url: query parameters, fragments and user information are not permitted',
      ),
    );
  }
  url.searchParams.set('timeout', `${timeoutSeconds}s`);
  let ca: string | undefined;
  if (cc.caBundle !== undefined && cc.caBundle !== '') {
    ca = Buffer.from(cc.caBundle, 'base64').toString('utf8');
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new WebhookCallError(
        'could not get REST client: unable to load root certificates: unable to parse bytes as PEM block',
      );
    }
  }
  return { url, ca };
}

interface ReviewResponse {
  allowed: boolean;
  patch?: string;
  patchType?: string;
  status?: { code?: number; reason?: string; message?: string };
  warnings?: string[];
}

/** Checks the answer as the API server's VerifyAdmissionResponse does. */
function verifyResponse(uid: string, answer: HttpAnswer): ReviewResponse {
  if (answer.status < 200 || answer.status > 299) {
    const text = answer.body.trim().slice(0, 500);
    throw new WebhookCallError(
      text === ''
        ? `failed to call webhook: the server responded with the status code ${answer.status} but did not return more information`
        : `failed to call webhook: an error on the server (${JSON.stringify(text)}) has prevented the request from succeeding (status ${answer.status})`,
    );
  }
  let review: unknown;
  try {
    review = JSON.parse(answer.body);
  } catch (err) {
    throw new WebhookCallError(
      `failed to call webhook: the answer is not JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const invalid = (why: string) => new WebhookCallError(`received invalid webhook response: ${why}`);
  if (!isObject(review)) throw invalid('the answer is not a JSON object');
  const response = review.response;
  if (!isObject(response)) throw invalid('webhook response was absent');
  if (response.uid !== uid) {
    throw invalid(`expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(response.uid ?? '')}`);
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const gvk = `${str(review.apiVersion)}, Kind=${str(review.kind)}`;
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    throw invalid(`expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${gvk}`);
  }
  const patch = typeof response.patch === 'string' ? response.patch : '';
  const patchType = typeof response.patchType === 'string' ? response.patchType : '';
  if (patch !== '' && patchType === '')
    throw invalid('webhook returned response.patch but not response.patchType');
  if (patchType !== '' && patch === '')
    throw invalid('webhook returned response.patchType but not response.patch');
  if (patch !== '' && !/^[A-Za-z0-9+/]*={0,2}$/.test(patch)) {
    throw new WebhookCallError('failed to call webhook: illegal base64 data in response.patch');
  }
  const status = isObject(response.status) ? response.status : undefined;
  return {
    allowed: response.allowed === true,
    ...(patch === '' ? {} : { patch, patchType }),
    ...(status === undefined
      ? {}
      : {
          status: {
            ...(typeof status.code === 'number' ? { code: status.code } : {}),
            ...(typeof status.reason === 'string' ? { reason: status.reason } : {}),
            ...(typeof status.message === 'string' ? { message: status.message } : {}),
          },
        }),
    ...(Array.isArray(response.warnings)
      ? { warnings: response.warnings.filter((w): w is string => typeof w === 'string') }
      : {}),
  };
}

/** `allowed: false` as the API server reports it (webhookerrors.ToStatusErr). */
function rejection(hook: MutatingWebhook, status: ReviewResponse['status']): Denial {
  const deniedBy = `admission webhook "${hook.name}" denied the request`;
  const message =
    status?.message !== undefined && status.message !== ''
      ? `${deniedBy}: ${status.message}`
      : status?.reason !== undefined && status.reason !== ''
        ? `${deniedBy}: ${status.reason}`
        : `${deniedBy} without explanation`;
  const code = status?.code !== undefined && status.code >= 400 ? status.code : 400;
  return { allowed: false, code, reason: status?.reason ?? '', message };
}

/** evanphx/json-patch's wording for an operation that does not apply (never the document itself). */
function patchErrorMessage(err: InstanceType<typeof JsonPatchError>): string {
  const op = err.operation as Partial<Operation> | undefined;
  const kind = op?.op ?? 'unknown';
  const path = op?.path ?? '';
  switch (err.name) {
    case 'OPERATION_PATH_CANNOT_ADD':
    case 'OPERATION_PATH_UNRESOLVABLE':
    case 'OPERATION_FROM_UNRESOLVABLE':
      return `${kind} operation does not apply: doc is missing path: "${path}": missing value`;
    case 'TEST_OPERATION_FAILED':
      return `testing value ${path} failed: test failed`;
    case 'OPERATION_OP_INVALID':
      return `Unexpected kind: ${kind}`;
    default:
      return `${kind} operation does not apply: ${path}: ${err.name}`;
  }
}

/** The webhook's JSONPatch applied to `object` (a copy); a patch that does not apply is a 500. */
function applyWebhookPatch(object: KubeObject, base64: string): KubeObject {
  let ops: unknown;
  try {
    ops = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch (err) {
    throw internalError(err instanceof Error ? err.message : String(err));
  }
  if (!Array.isArray(ops)) {
    throw internalError('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  }
  try {
    const out: unknown = applyPatch(structuredClone(object), ops as Operation[], true, true).newDocument;
    if (!isObject(out)) throw internalError('the patched object is not a JSON object');
    return out;
  } catch (err) {
    if (err instanceof JsonPatchError) throw internalError(patchErrorMessage(err));
    throw err;
  }
}

// ---- the hook ----

/** The stored MutatingWebhookConfigurations' webhooks in the API server's order. */
function orderedWebhooks(store: Store): OrderedWebhook[] {
  const configs = store.list(MUTATING_WEBHOOK_CONFIGURATIONS).items;
  const named = configs.map((c) => ({ name: c.metadata?.name ?? '', config: c }));
  // Go compares names byte by byte; localeCompare would not.
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return named.flatMap(({ name, config }) => {
    const hooks = Array.isArray(config.webhooks) ? (config.webhooks as unknown[]) : [];
    return hooks
      .filter((h): h is MutatingWebhook => isObject(h) && typeof h.name === 'string')
      .map((hook, i) => ({ id: `${name}/${i}`, config: name, hook }));
  });
}

/**
 * An AdmitHook calling the webhooks of the MutatingWebhookConfigurations in `store` (or in the
 * store `store()` returns, for a hook made before its control plane exists).
 */
export function webhookAdmission(
  store: Store | (() => Store),
  opts: WebhookAdmissionOptions = {},
): AdmitHook {
  const logger = (opts.logger ?? silentLogger()).child({ component: 'webhook-admission' });
  const userInfo: UserInfo = opts.userInfo ?? {
    username: 'system:admin',
    groups: ['system:masters', 'system:authenticated'],
  };
  const storeOf = typeof store === 'function' ? store : () => store;

  /** Labels the namespaceSelector is matched against, or null when it does not apply. */
  const namespaceLabels = (s: Store, input: AdmissionInput, object: KubeObject) => {
    const ns = requestNamespace(input);
    if (ns === '') return null;
    if (isNamespaceResource(input) && input.subResource === undefined) return object.metadata?.labels ?? {};
    const found = s.namespaces.tryGet({ name: ns });
    if (found === undefined) {
      throw new WebhookDenial({
        allowed: false,
        code: 404,
        reason: 'NotFound',
        message: `namespaces "${ns}" not found`,
      });
    }
    return found.metadata?.labels ?? {};
  };

  const shouldCall = (s: Store, w: OrderedWebhook, input: AdmissionInput, object: KubeObject): boolean => {
    const hook = w.hook;
    if (!(hook.rules ?? []).some((r) => ruleMatches(r, input))) return false;
    try {
      if (!isEmptySelector(hook.namespaceSelector)) {
        const labels = namespaceLabels(s, input, object);
        if (labels !== null && !selectorMatches(hook.namespaceSelector, labels)) return false;
      }
      if (!isEmptySelector(hook.objectSelector)) {
        const now = selectorMatches(hook.objectSelector, object.metadata?.labels);
        const old =
          input.oldObject !== undefined &&
          selectorMatches(hook.objectSelector, input.oldObject.metadata?.labels);
        if (!now && !old) return false;
      }
    } catch (err) {
      if (err instanceof WebhookDenial) throw err;
      throw internalError(
        `webhook "${hook.name}" of MutatingWebhookConfiguration "${w.config}" has an invalid selector: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return true;
  };

  /** One call; resolves to the patched object, throws WebhookCallError or WebhookDenial. */
  const invoke = async (
    s: Store,
    w: OrderedWebhook,
    input: AdmissionInput,
    object: KubeObject,
  ): Promise<KubeObject> => {
    const hook = w.hook;
    if ((hook.matchConditions ?? []).length > 0) {
      throw internalError(
        callFailed(hook, 'matchConditions are not supported by the control-plane stand-in'),
      );
    }
    if (!(hook.admissionReviewVersions ?? []).includes('v1')) {
      throw internalError(
        callFailed(
          hook,
          'the control-plane stand-in sends only admission.k8s.io/v1 AdmissionReviews: list v1 in admissionReviewVersions',
        ),
      );
    }
    if (input.dryRun && hook.sideEffects !== 'None' && hook.sideEffects !== 'NoneOnDryRun') {
      throw new WebhookDenial({
        allowed: false,
        code: 400,
        reason: 'BadRequest',
        message: `admission webhook "${hook.name}" does not support dry run`,
      });
    }
    const timeoutSeconds = hook.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    const { url, ca } = target(hook, timeoutSeconds);
    const uid = randomUUID();
    const namespace = requestNamespace(input);
    const sub = input.subResource ?? '';
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: input.kind,
        resource: input.resource,
        ...(sub === '' ? {} : { subResource: sub }),
        requestKind: input.kind,
        requestResource: input.resource,
        ...(sub === '' ? {} : { requestSubResource: sub }),
        ...(input.name === '' ? {} : { name: input.name }),
        ...(namespace === '' ? {} : { namespace }),
        operation: input.operation,
        userInfo,
        object,
        oldObject: input.oldObject ?? null,
        dryRun: input.dryRun,
        options: {
          apiVersion: 'meta.k8s.io/v1',
          kind: input.operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions',
          ...(input.dryRun ? { dryRun: ['All'] } : {}),
        },
      },
    };
    let answer: HttpAnswer;
    try {
      answer = await post(url, ca, JSON.stringify(review), timeoutSeconds * 1000);
    } catch (err) {
      throw new WebhookCallError(`failed to call webhook: Post "${url.href}": ${transportMessage(err, url)}`);
    }
    const response = verifyResponse(uid, answer);
    for (const warning of response.warnings ?? [])
      logger.warn({ webhook: hook.name, warning }, 'webhook warning');
    if (!response.allowed) throw new WebhookDenial(rejection(hook, response.status));
    if (response.patch === undefined) return object;
    if (response.patchType !== 'JSONPatch') {
      throw new WebhookCallError(`unsupported patch type ${JSON.stringify(response.patchType)}`);
    }
    const patched = applyWebhookPatch(object, response.patch);
    // The API server decodes the patched object into its type, which applies the defaults.
    s.type(input.resource).defaults?.(patched);
    return patched;
  };

  return async (input) => {
    const s = storeOf();
    const webhooks = orderedWebhooks(s);
    let object = structuredClone(input.object);
    // The API server's webhookReinvokeContext: IfNeeded webhooks called since the last change,
    // and those a later change has marked for the reinvocation round.
    const invokedSinceChange = new Set<string>();
    const reinvoke = new Set<string>();
    const log = logger.child({
      operation: input.operation,
      resource: input.resource.resource,
      namespace: input.namespace,
      name: input.name,
    });

    const round = async (reinvoking: boolean): Promise<Denial | null> => {
      for (const w of webhooks) {
        const hook = w.hook;
        try {
          if (!shouldCall(s, w, input, object)) continue;
          // A webhook not called in the first round is not called in the second either.
          if (reinvoking && !reinvoke.has(w.id)) continue;
          let next = object;
          let failure: WebhookCallError | null = null;
          try {
            next = await invoke(s, w, input, object);
          } catch (err) {
            if (!(err instanceof WebhookCallError)) throw err;
            failure = err;
          }
          if (!isDeepStrictEqual(next, object)) {
            for (const id of invokedSinceChange) reinvoke.add(id);
            invokedSinceChange.clear();
            object = next;
          }
          if (hook.reinvocationPolicy === 'IfNeeded') invokedSinceChange.add(w.id);
          log.debug({ webhook: hook.name, reinvoking, failed: failure !== null }, 'webhook called');
          if (failure === null) continue;
          if (hook.failurePolicy === 'Ignore') {
            log.warn({ webhook: hook.name, err: failure }, 'failed calling webhook, failing open');
            continue;
          }
          return {
            allowed: false,
            code: 500,
            reason: 'InternalError',
            message: `Internal error occurred: ${callFailed(hook, failure.message)}`,
          };
        } catch (err) {
          if (err instanceof WebhookDenial) return err.denial;
          throw err;
        }
      }
      return null;
    };

    const denied = (await round(false)) ?? (reinvoke.size > 0 ? await round(true) : null);
    if (denied !== null) return denied;
    const patch = compare(input.object, object);
    return patch.length === 0 ? { allowed: true } : { allowed: true, patch };
  };
}
