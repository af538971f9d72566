// The one back-off rule of every retry loop in pulltrace: exponential, capped. Pure.

/** How long to wait before retry number `attempt` (0 = the first retry), in ms. */
export interface Backoff {
  /** Wait before the first retry, ms. */
  baseMs: number;
  /** Longest wait, ms. */
  maxMs: number;
}

/** base · 2^attempt, at most maxMs; `attempt` below 0 counts as 0. */
export function backoffMs(attempt: number, b: Backoff): number {
  const n = Math.max(0, Math.min(30, Math.floor(attempt)));
  return Math.min(b.maxMs, b.baseMs * 2 ** n);
}
