// The webhook's HTTP application, built apart from `listen` so tests drive it with inject().
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { ERROR_CODES, type ErrorCode } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { KeyPair } from './tls.js';
import type { WebhookMetrics } from './metrics.js';
import { BadReviewError, admit, mutatePod, type Decision, type MutateOptions } from './mutate.js';

/** The API server sends at most 3 MiB objects (etcd's limit is 1.5 MiB): more is not a review. */
export const BODY_LIMIT = 3 * 1024 * 1024;

/** What buildApp needs. */
export interface AppOptions {
  /** The root logger; fastify makes a child per request (used for faults only). */
  logger: Logger;
  /** Where each answered review is counted and timed. */
  metrics: WebhookMetrics;
  /** The admission's settings (readiness-gate namespaces). */
  mutate: MutateOptions;
  /** Serve HTTPS with this pair; plain HTTP (tests with inject) when absent. */
  tls?: KeyPair;
  /** Replaces the mutator: tests inject faults with it. */
  mutator?: typeof mutatePod;
}

interface ErrorBody {
  code: ErrorCode;
  message: string;
}

function errorBody(code: ErrorCode, detail?: string): ErrorBody {
  return { code, message: detail === undefined ? ERROR_CODES[code] : `${ERROR_CODES[code]}: ${detail}` };
}

/** Fastify's own 4xx errors (parser, size, media type) mapped to our codes. */
function clientError(err: FastifyError): ErrorBody {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errorBody('PT_ADMISSION_TOO_LARGE', `limit is ${BODY_LIMIT} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errorBody('PT_ADMISSION_BAD_CONTENT_TYPE');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errorBody('PT_ADMISSION_BAD_JSON', 'the body is empty');
    default:
      return errorBody('PT_ADMISSION_BAD_JSON', err.message);
  }
}

/**
 * The 200 answer, so fastify serialises it with fast-json-stringify instead of JSON.stringify
 * (cheaper per request: docs/benchmarks.md, "Where the webhook's time goes"). It lists every
 * field of AdmissionReviewResponse: a field missing here would be dropped silently, which
 * app.test.ts guards against by comparing the served body with admit()'s.
 */
const REVIEW_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'response'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    response: {
      type: 'object',
      required: ['uid', 'allowed'],
      properties: {
        uid: { type: 'string' },
        allowed: { type: 'boolean' },
        patchType: { type: 'string' },
        patch: { type: 'string' },
        warnings: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

/**
 * Every 4xx/5xx answer of /mutate is an ErrorBody. Nothing is required, so a body of another
 * shape (none is sent today) would lose fields rather than turn into a serialisation error.
 */
const ERROR_SCHEMA = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' } },
} as const;

/**
 * Seconds since a process.hrtime.bigint() reading; a module function, so the handler makes no
 * function object per request.
 */
function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** The fastify instance with the webhook's server settings (body limit, parsing, keep-alive, TLS). */
function createFastify(opts: AppOptions): FastifyInstance {
  return Fastify({
    loggerInstance: opts.logger,
    // One log line per request would cost more than the admission itself; faults are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Parse bodies with plain JSON.parse (still a 400 for invalid JSON) instead of also
    // scanning the text twice with secure-json-parse's __proto__/constructor regexes (their
    // cost: docs/benchmarks.md, "Where the webhook's time goes"). Those guard code that merges parsed objects into others by
    // assignment, where a "__proto__" key would replace a prototype. Nothing here does:
    // admit() only reads the review, and the one object it builds from it, the new labels, is
    // made by spread, which copies a "__proto__" key as an ordinary own property. app.test.ts
    // sends such keys and checks the answer and Object.prototype. (Kubernetes label and
    // annotation keys cannot be "__proto__" anyway.)
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // Admission requests come only from the API server; keep-alive connections are reused.
    keepAliveTimeout: 30_000,
    ...(opts.tls === undefined
      ? {}
      : { https: { cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' as const } }),
  }) as unknown as FastifyInstance;
}

/**
 * POST /mutate: 200 with admit()'s review, 400 PT_ADMISSION_BAD_REVIEW when admit() throws;
 * every answer is counted and timed in `opts.metrics`.
 */
function addMutateRoute(app: FastifyInstance, opts: AppOptions): void {
  const mutator = opts.mutator ?? mutatePod;
  app.post(
    '/mutate',
    { schema: { response: { 200: REVIEW_RESPONSE_SCHEMA, '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA } } },
    (req, reply) => {
      const start = process.hrtime.bigint();
      let decision: Decision;
      try {
        decision = admit(req.body, opts.mutate, mutator);
      } catch (err) {
        opts.metrics.observe('bad_request', secondsSince(start));
        if (err instanceof BadReviewError) {
          return reply.code(400).send(errorBody('PT_ADMISSION_BAD_REVIEW', err.message));
        }
        req.log.error({ err }, 'admission failed');
        return reply
          .code(400)
          .send(errorBody('PT_ADMISSION_BAD_REVIEW', 'the review could not be processed'));
      }
      if (decision.outcome === 'error') {
        req.log.error(
          { err: decision.error, uid: decision.review.response.uid },
          'mutation failed; pod allowed',
        );
      }
      opts.metrics.observe(decision.outcome, secondsSince(start));
      return reply.send(decision.review);
    },
  );
}

/**
 * The webhook's fastify app, not yet listening (tests call `inject()`; main.ts calls `listen`).
 * Routes: POST /mutate (an AdmissionReview in, an AdmissionReview out: 200 with the decision;
 * 400/413/415 with an ErrorBody `{ code, message }` of a PT_ADMISSION_* code for a body that is
 * not a usable review; 500 PT_ADMISSION_INTERNAL for a fault outside admit()). Health,
 * readiness and metrics are the side port's (common/metrics-server.ts). HTTPS (TLS ≥ 1.2) when
 * `tls` is given.
 */
export function buildApp(opts: AppOptions): FastifyInstance {
  const app = createFastify(opts);
  // AdmissionReviews are JSON; any other media type is refused with 415 rather than parsed.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      req.log.debug({ err }, 'bad admission request');
      opts.metrics.observe('bad_request', 0);
      return reply.code(status).send(clientError(err));
    }
    req.log.error({ err }, 'unexpected error');
    return reply.code(500).send(errorBody('PT_ADMISSION_INTERNAL'));
  });

  addMutateRoute(app, opts);
  // /metrics, /healthz and /readyz are served once, on the plain-HTTP side port
  // (common/metrics-server.ts), where the chart's probes and scrapes go.
  return app;
}
