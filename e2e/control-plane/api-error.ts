// Errors of the control-plane stand-in, each one a v1 Status as the API server answers it
// (same code, reason and message shape, so kubectl prints what it prints against a cluster).
import type { Status } from './types.js';

type Cause = NonNullable<Status['details']>['causes'];

/** A failed API call; `status` is the body sent to HTTP clients. */
export class ApiError extends Error {
  readonly status: Status;

  constructor(code: number, reason: string, message: string, details?: Status['details']) {
    super(message);
    this.name = 'ApiError';
    this.status = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
      ...(details === undefined ? {} : { details }),
    };
  }

  get code(): number {
    return this.status.code;
  }

  get reason(): string {
    return this.status.reason;
  }
}

/** `group` and `resource` as the API server names a resource in messages: `pods`, `deployments.apps`. */
export interface QualifiedResource {
  group: string;
  resource: string;
}

function qualified(r: QualifiedResource): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`;
}

export function notFound(r: QualifiedResource, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(r)} "${name}" not found`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

export function alreadyExists(r: QualifiedResource, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

/** A write whose resourceVersion (or uid precondition) does not match the stored object. */
export function conflict(r: QualifiedResource, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, {
    name,
    group: r.group,
    kind: r.resource,
  });
}

export const STALE_OBJECT =
  'the object has been modified; please apply your changes to the latest version and try again';

/** One field error, as in `metadata.labels: Invalid value: "x": ...`. */
export interface FieldError {
  /** `Invalid`, `Forbidden`, `Required`, `Duplicate`, `NotSupported`, `TooLong`. */
  type: 'Invalid' | 'Forbidden' | 'Required' | 'Duplicate' | 'NotSupported' | 'TooLong';
  field: string;
  /** The offending value, for `Invalid`. */
  value?: unknown;
  detail: string;
}

const FIELD_REASON: Record<FieldError['type'], string> = {
  Invalid: 'FieldValueInvalid',
  Forbidden: 'FieldValueForbidden',
  Required: 'FieldValueRequired',
  Duplicate: 'FieldValueDuplicate',
  NotSupported: 'FieldValueNotSupported',
  TooLong: 'FieldValueTooLong',
};

function fieldErrorText(e: FieldError): string {
  const label =
    e.type === 'Invalid'
      ? 'Invalid value'
      : e.type === 'TooLong'
        ? 'Too long'
        : e.type === 'NotSupported'
          ? 'Unsupported value'
          : e.type;
  const value = e.type === 'Invalid' && e.value !== undefined ? ` ${JSON.stringify(e.value)}:` : '';
  return `${e.field}: ${label}:${value} ${e.detail}`;
}

/** 422 Invalid: `Pod "x" is invalid: <field errors>`. */
export function invalid(group: string, kind: string, name: string, errors: FieldError[]): ApiError {
  const texts = errors.map(fieldErrorText);
  const list = texts.length === 1 ? (texts[0] ?? '') : `[${texts.join(', ')}]`;
  const causes: Cause = errors.map((e, i) => ({
    reason: FIELD_REASON[e.type],
    message: (texts[i] ?? '').slice(e.field.length + 2),
    field: e.field,
  }));
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${list}`, {
    name,
    group,
    kind,
    causes,
  });
}

/** 422 with the API server's generic message: how it answers a JSON patch that does not apply. */
export function unprocessable(): ApiError {
  return new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {});
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** A watch or list from a resourceVersion older than the kept history. */
export function expired(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

export function methodNotAllowed(): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
  );
}

/** A body in a format the route does not read; `accepted` lists what it does. */
export function unsupportedMediaType(
  contentType: string,
  accepted = 'application/json, application/vnd.kubernetes.protobuf',
): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted} (got ${contentType})`,
  );
}

export function notFoundPath(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function internal(message: string): ApiError {
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });
}
