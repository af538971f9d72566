// The catalogue of error codes the binaries print and return. Each error carries a code from
// here, a human message and, where there is one, its cause.

export const ERROR_CODES = {
  // Configuration and start-up.
  PT_CONFIG_INVALID: 'invalid configuration',
  PT_TLS_LOAD: 'cannot load TLS certificate or key',
  PT_KUBECONFIG: 'cannot use the kubeconfig',
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
  // Container registries (node-agent/registry: read-only, anonymous manifest look-ups).
  PT_REGISTRY_BAD_REFERENCE: 'not an image reference the registry client can look up',
  PT_REGISTRY_CONFIG: 'cannot read the registry host configuration',
  PT_REGISTRY_UNAVAILABLE: 'registry is not reachable or not serving',
  PT_REGISTRY_TIMEOUT: 'registry did not answer in time',
  PT_REGISTRY_DENIED: 'registry refused anonymous access',
  PT_REGISTRY_NOT_FOUND: 'registry has no such manifest',
  PT_REGISTRY_BAD_RESPONSE: 'registry returned a response pulltrace cannot read',
  PT_REGISTRY_NO_PLATFORM: 'image has no manifest for the platform',
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

/** True when `err` is a PulltraceError with `code` (an instanceof check, not a structural cast). */
export function isCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof PulltraceError && err.code === code;
}
