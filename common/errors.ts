// The catalogue of error codes the binaries print and return. Each error carries a code from
// here, a human message and, where there is one, its cause.

export const ERROR_CODES = {
  // Configuration and start-up.
  PT_CONFIG_INVALID: 'invalid configuration',
  PT_TLS_LOAD: 'cannot load TLS certificate or key',
  // Admission.
  PT_ADMISSION_BAD_JSON: 'request body is not valid JSON',
  PT_ADMISSION_BAD_REVIEW: 'request body is not an admission.k8s.io/v1 AdmissionReview',
  PT_ADMISSION_TOO_LARGE: 'request body is too large',
  PT_ADMISSION_BAD_CONTENT_TYPE: 'request content type must be application/json',
  PT_ADMISSION_INTERNAL: 'internal error while handling the admission request',
  // containerd.
  PT_CONTAINERD_UNAVAILABLE: 'containerd is not reachable',
  PT_CONTAINERD_BAD_DATA: 'containerd returned data pulltrace cannot read',
  PT_CONTAINERD_CALL_FAILED: 'containerd answered the call with an error',
  // Kubernetes API.
  PT_KUBE_API: 'Kubernetes API request failed',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PulltraceError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail === undefined ? ERROR_CODES[code] : `${ERROR_CODES[code]}: ${detail}`, options);
    this.name = 'PulltraceError';
    this.code = code;
  }
}

/** The message of anything thrown, with its causes, for logs and user-facing text. */
export function errorMessage(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}
