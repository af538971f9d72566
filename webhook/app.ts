// The webhook's HTTP application, built apart from `listen` so tests drive it with inject().
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { ERROR_CODES, type ErrorCode } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { KeyPair } from './tls.js';
import type { WebhookMetrics } from './metrics.js';
import { BadReviewError, admit, mutatePod, type MutateOptions } from './mutate.js';

/** The API server sends at most 3 MiB objects (etcd's limit is 1.5 MiB): more is not a review. */
export const BODY_LIMIT = 3 * 1024 * 1024;

export interface AppOptions {
  logger: Logger;
  metrics: WebhookMetrics;
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

export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger,
    // One log line per request would cost more than the admission itself; faults are logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Admission requests come only from the API server; keep-alive connections are reused.
    keepAliveTimeout: 30_000,
    ...(opts.tls === undefined
      ? {}
      : { https: { cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' as const } }),
  }) as unknown as FastifyInstance;
  let shuttingDown = false;
  app.addHook('onClose', (_instance, done) => {
    shuttingDown = true;
    done();
  });
  const mutator = opts.mutator ?? mutatePod;
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

  app.post('/mutate', (req, reply) => {
    const start = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
    try {
      const decision = admit(req.body, opts.mutate, mutator);
      if (decision.outcome === 'error') {
        req.log.error(
          { err: decision.error, uid: decision.review.response.uid },
          'mutation failed; pod allowed',
        );
      }
      opts.metrics.observe(decision.outcome, seconds());
      return reply.send(decision.review);
    } catch (err) {
      opts.metrics.observe('bad_request', seconds());
      if (err instanceof BadReviewError) {
        return reply.code(400).send(errorBody('PT_ADMISSION_BAD_REVIEW', err.message));
      }
      req.log.error({ err }, 'admission failed');
      return reply.code(400).send(errorBody('PT_ADMISSION_BAD_REVIEW', 'the review could not be processed'));
    }
  });

  app.get('/healthz', (_req, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/readyz', (_req, reply) =>
    shuttingDown
      ? reply.code(503).type('text/plain').send('shutting down\n')
      : reply.type('text/plain').send('ok\n'),
  );
  app.get('/metrics', async (_req, reply) =>
    reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics()),
  );
  return app;
}
