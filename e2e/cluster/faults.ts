// The fault rules of the API proxy (api-proxy.ts): answer chosen requests with an error for a
// while, as an overloaded or failing API server does (429 with Retry-After from API priority and
// fairness, a 500 from a broken etcd, a 409 from a conflicting writer, a 503 during a restart),
// so tests can check how clients back off and what they lose.
//
//   proxy.faults.set({ match: (r) => r.method === 'PATCH' && r.query.get('fieldManager') === 'pulltrace',
//                      status: 429, retryAfterSeconds: 1, forMs: 5000 });
//   ...;  proxy.faults.answered();  // the requests the fault answered, with their times
//   proxy.faults.clear();
//
// A matching request is answered by the proxy with the API server's v1 Status body for that code
// (429 and 503 also with a `Retry-After` header), and never reaches the API server. One rule at a
// time; set() replaces the rule in force.
import type { IncomingHttpHeaders } from 'node:http';
import type { V1Status } from '@kubernetes/client-node';

const STALE_OBJECT =
  'the object has been modified; please apply your changes to the latest version and try again';

/** A faulted answer: the HTTP status code and the v1 Status body the API server would send. */
export interface FaultAnswer {
  code: number;
  status: V1Status & { code: number; details?: { retryAfterSeconds?: number } };
}

function answer(code: number, reason: string, message: string, details: V1Status['details']): FaultAnswer {
  return {
    code,
    status: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
      details,
    },
  };
}

/** What a rule sees of a request (the body is not read: a faulted request is not routed). */
export interface FaultRequest {
  method: string;
  /** The URL path, e.g. `/api/v1/namespaces/ns/pods/web/status`. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Parsed from `path` for resource paths: `pods`, `web`, `status`; undefined elsewhere. */
  resource?: string;
  name?: string;
  subresource?: string;
}

/** Status codes a rule can answer with, each with the API server's reason and message. */
export type FaultStatus = 409 | 429 | 500 | 503 | 504;

export interface FaultRule {
  /** Which requests to answer with the fault (default: every request). */
  match?: (req: FaultRequest) => boolean;
  status: FaultStatus;
  /** Seconds for `Retry-After` and `details.retryAfterSeconds` (429 and 503; default 1). */
  retryAfterSeconds?: number;
  /** Answer at most this many requests, then let them through (default: no limit). */
  count?: number;
  /** The rule ends this many milliseconds after set() (default: at clear()). */
  forMs?: number;
  /** Overrides the message of the Status body. */
  message?: string;
}

/** One request the fault answered. */
export interface FaultHit {
  /** Date.now() when it was answered. */
  at: number;
  method: string;
  path: string;
  status: FaultStatus;
}

/** The hook, as `proxy.faults`. */
export interface Faults {
  /** Puts `rule` in force from now (replacing any other), and starts a new answered() list. */
  set(rule: FaultRule): void;
  /** Ends the rule in force; answered() keeps its list. */
  clear(): void;
  /** Whether a rule is in force (set, not cleared, its count and time not used up). */
  active(): boolean;
  /** The requests answered by the rule set last, oldest first. */
  answered(): readonly FaultHit[];
}

/** The part the HTTP handler calls on every request. */
export interface FaultInjector extends Faults {
  /** The error to answer `req` with, or null to serve it. Counts the answer. */
  check(req: FaultRequest): FaultAnswer | null;
}

const RESOURCE_PATH =
  /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)\/(?:watch\/)?(?:namespaces\/[^/]+\/)?([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?\/?$/;

/** `resource`, `name`, `subresource` of a REST path (a namespace itself is a `namespaces` name). */
export function parseFaultPath(path: string): Pick<FaultRequest, 'resource' | 'name' | 'subresource'> {
  const m = RESOURCE_PATH.exec(path);
  if (m === null) return {};
  const [, resource, name, subresource] = m;
  return {
    ...(resource === undefined ? {} : { resource }),
    ...(name === undefined ? {} : { name }),
    ...(subresource === undefined ? {} : { subresource }),
  };
}

/** The v1 Status the API server answers with for `status`, about `req`. */
export function faultError(rule: FaultRule, req: FaultRequest): FaultAnswer {
  const retry = Math.max(0, Math.round(rule.retryAfterSeconds ?? 1));
  const details = {
    ...(req.name === undefined ? {} : { name: req.name }),
    ...(req.resource === undefined ? {} : { kind: req.resource }),
  };
  const msg = (fallback: string) => rule.message ?? fallback;
  switch (rule.status) {
    case 429:
      return answer(429, 'TooManyRequests', msg('Too many requests, please try again later.'), {
        ...details,
        retryAfterSeconds: retry,
      });
    case 409:
      return answer(
        409,
        'Conflict',
        msg(
          `Operation cannot be fulfilled on ${req.resource ?? 'resource'} "${req.name ?? ''}": ${STALE_OBJECT}`,
        ),
        details,
      );
    case 500:
      return answer(500, 'InternalError', msg('Internal error occurred: injected fault'), {
        ...details,
        causes: [{ message: 'injected fault' }],
      });
    case 503:
      return answer(503, 'ServiceUnavailable', msg('the server is currently unable to handle the request'), {
        ...details,
        retryAfterSeconds: retry,
      });
    case 504:
      return answer(
        504,
        'Timeout',
        msg('Timeout: request did not complete within the allotted timeout'),
        details,
      );
  }
}

/** A fault hook with no rule in force. `now` is injectable for tests of the hook itself. */
export function createFaults(now: () => number = Date.now): FaultInjector {
  let rule: FaultRule | null = null;
  let until = Infinity;
  let left = Infinity;
  let hits: FaultHit[] = [];
  const active = (): boolean => rule !== null && left > 0 && now() < until;
  return {
    set(r) {
      const valid: readonly number[] = [409, 429, 500, 503, 504];
      if (!valid.includes(r.status)) throw new RangeError(`fault status must be one of ${valid.join(', ')}`);
      if (r.count !== undefined && !(r.count >= 0)) throw new RangeError(`count must be ≥ 0, got ${r.count}`);
      if (r.forMs !== undefined && !(r.forMs >= 0)) throw new RangeError(`forMs must be ≥ 0, got ${r.forMs}`);
      rule = r;
      left = r.count ?? Infinity;
      until = r.forMs === undefined ? Infinity : now() + r.forMs;
      hits = [];
    },
    clear() {
      rule = null;
    },
    active,
    answered: () => hits,
    check(req) {
      if (rule === null || !active()) return null;
      if (rule.match !== undefined && !rule.match(req)) return null;
      left--;
      hits.push({ at: now(), method: req.method, path: req.path, status: rule.status });
      return faultError(rule, req);
    },
  };
}
