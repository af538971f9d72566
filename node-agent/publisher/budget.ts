// The write scheduler: decides, per pod, whether progress is worth an API write now, so the
// agent's writes stay bounded whatever the number and length of the pulls:
// - only a meaningful change is written: a new phase, a percent step of at least `percentStep`
//   points, an ETA off by more than a threshold from where the last written one has counted
//   down to (a steady pull's ETA needs no rewrite), or the ETA appearing or disappearing;
// - at most one write per pod per --min-patch-interval;
// - a per-node token bucket (--api-qps, --api-burst) shared by all pods, served in turn: a pod
//   told to wait for tokens keeps its place, so no pod starves while others keep writing;
// - at most --max-writes-per-pull writes per pod and pull, one of them kept for the final state;
//   the percent step widens when a pull has used more of its writes than planned (stalls),
//   so progress keeps showing until the end;
// - the final state (every image in, or Failed) is never dropped: it does not wait out the
//   per-pod interval (`kubectl wait` returns on it), may wait for a token, and goes ahead of
//   every non-final write waiting for one.
// Pure apart from its own bookkeeping; time is passed in (milliseconds), never read.
import { isFinal, type Phase } from '../../common/contract.js';

/** The write budget's limits (the agent's --min-patch-interval, --api-qps, --api-burst, --max-writes-per-pull). */
export interface BudgetOptions {
  /** Least time between two writes to one pod, in milliseconds (≥ 0). */
  minPatchIntervalMs: number;
  /** Tokens per second of the node's bucket (> 0); a token is one API request. */
  apiQps: number;
  /** Size of the node's bucket in tokens (≥ 1; it starts full). */
  apiBurst: number;
  /** Most writes to one pod for one pull, final write included (≥ 2); a write is one request (the pods/status patch). */
  maxWritesPerPull: number;
  /** An ETA change smaller than this many seconds is not worth a write (default 10). */
  etaMinChangeSeconds?: number;
  /** ... nor one smaller than this share of the expected ETA (default 0.25). */
  etaChangeRatio?: number;
}

/** What the scheduler looks at in a pod's state (PodProgress has these fields). */
export interface BudgetState {
  phase: Phase;
  percent: number;
  etaSeconds: number | null;
  /** The pod's images (PodProgress.images): a final state for other images is a new one. */
  images?: readonly { image: string }[];
  /** The pod's metadata.generation the state is written for: a final state for a newer one is new. */
  generation?: number;
}

/** The same images, in the same order (absent lists compare equal). */
function sameImages(a: BudgetState, b: BudgetState): boolean {
  const x = (a.images ?? []).map((i) => i.image).join('\n');
  const y = (b.images ?? []).map((i) => i.image).join('\n');
  return x === y;
}

/**
 * Why a write is worth making: the pod's first, a new phase, a percent step, an ETA change, or
 * the final state (every image in, or Failed).
 */
export type WriteReason = 'first' | 'phase' | 'percent' | 'eta' | 'final';

/** The scheduler's answer to offer(). */
export type Offer =
  /** Write now: a token was taken for it. Call written() once it succeeded. */
  | { decision: 'write'; reason: WriteReason }
  /** Worth writing, but not before `at` (ms): offer again then, with the state of that time. */
  | { decision: 'later'; reason: WriteReason; at: number }
  /** Nothing to write: no meaningful change, or the pull's budget is kept for its final state. */
  | { decision: 'skip'; why: 'unchanged' | 'budget' };

/** Writes kept aside from percent steps: first, Downloading, Unpacking, final, one spare. */
const RESERVED_WRITES = 5;
/** Phase changes the ETA pacing leaves room for (Downloading, Unpacking). */
const PHASE_WRITES = 2;

/**
 * The percent step that lets a whole pull's percent writes fit the budget with the reserved
 * writes: 5 points for 25 writes, 100 (only first and final) for tiny budgets.
 */
export function percentStepFor(maxWritesPerPull: number): number {
  return Math.max(1, Math.ceil(100 / Math.max(1, maxWritesPerPull - RESERVED_WRITES)));
}

/** A write told to wait for tokens: its place in the line. */
interface Waiter {
  ticket: number;
  cost: number;
  final: boolean;
  /** When it was told to come back; a waiter that does not come back loses its place. */
  at: number;
}

/** A waiter this long past the time it was given is taken as gone. */
const WAITER_GRACE_MS = 10_000;

interface PodRecord {
  last: BudgetState;
  lastAt: number;
  /** Writes in the current pull. */
  writes: number;
}

/** A token bucket that starts full and refills continuously. */
class TokenBucket {
  private tokens: number;
  private at = -Infinity;

  constructor(
    private readonly perSecond: number,
    readonly capacity: number,
  ) {
    this.tokens = capacity;
  }

  available(now: number): number {
    if (now > this.at) {
      this.tokens =
        this.at === -Infinity
          ? this.capacity
          : Math.min(this.capacity, this.tokens + ((now - this.at) * this.perSecond) / 1000);
      this.at = now;
    }
    return this.tokens;
  }

  take(n: number): void {
    this.tokens -= n;
  }

  /** When `need` tokens will be there (ms), given none is taken meanwhile. */
  when(need: number, now: number): number {
    const missing = need - this.available(now);
    return missing <= 0 ? now : now + Math.ceil((missing * 1000) / this.perSecond);
  }
}

/**
 * The node's write scheduler (see the file header for its rules). One per agent, shared by all
 * the pods of the node; pure apart from its own bookkeeping, with time passed in as ms. The
 * constructor throws RangeError for an option out of range; offer() and acquire() throw
 * RangeError for a cost outside 1…apiBurst.
 */
export class WriteBudget {
  /** Percent points a non-final write needs (when nothing else changed). */
  readonly percentStep: number;
  private readonly o: Required<BudgetOptions>;
  private readonly bucket: TokenBucket;
  private readonly pods = new Map<string, PodRecord>();
  /** Writes waiting for tokens, by pod key (or the key given to acquire()). */
  private readonly waiters = new Map<string, Waiter>();
  private nextTicket = 0;

  constructor(opts: BudgetOptions) {
    const atLeast = (name: string, v: number, min: number): void => {
      if (!Number.isFinite(v) || v < min) throw new RangeError(`${name} must be a number ≥ ${min}, got ${v}`);
    };
    atLeast('minPatchIntervalMs', opts.minPatchIntervalMs, 0);
    atLeast('apiQps', opts.apiQps, Number.MIN_VALUE);
    atLeast('apiBurst', opts.apiBurst, 1);
    atLeast('maxWritesPerPull', opts.maxWritesPerPull, 2);
    this.o = { etaMinChangeSeconds: 10, etaChangeRatio: 0.25, ...opts };
    this.bucket = new TokenBucket(opts.apiQps, opts.apiBurst);
    this.percentStep = percentStepFor(opts.maxWritesPerPull);
  }

  /**
   * Should `podKey`'s state `desired` be written at `now` (ms)? `cost` is the number of API
   * requests the write takes (the agent's is 1: one pods/status patch). On 'write' the tokens are
   * taken; the caller writes, then calls written().
   */
  offer(podKey: string, desired: BudgetState, now: number, cost = 1): Offer {
    this.checkCost(cost);
    const rec = this.pods.get(podKey);
    const final = isFinal(desired.phase);
    let reason: WriteReason;
    if (final) {
      // The same final state again is nothing to write; one for other images is (the pod's
      // image was changed with `kubectl set image` and is in).
      if (
        rec !== undefined &&
        rec.last.phase === desired.phase &&
        rec.last.generation === desired.generation &&
        sameImages(rec.last, desired)
      )
        return this.skip(podKey, 'unchanged');
      reason = 'final';
    } else {
      const used = rec === undefined || isFinal(rec.last.phase) ? 0 : rec.writes;
      const change = rec === undefined ? 'first' : this.change(rec, used, desired, now);
      if (change === null) return this.skip(podKey, 'unchanged');
      if (!this.affordable(used, desired, change)) return this.skip(podKey, 'budget');
      reason = change;
    }
    // The final state does not wait out the per-pod interval: `kubectl wait` returns on it.
    const intervalAt = rec === undefined || final ? now : rec.lastAt + this.o.minPatchIntervalMs;
    const tokensAt = this.tokensAt(podKey, final, cost, now);
    const at = Math.max(intervalAt, tokensAt);
    if (tokensAt > now) this.wait(podKey, final, cost, at);
    if (at > now) return { decision: 'later', reason, at };
    this.bucket.take(cost);
    this.waiters.delete(podKey);
    return { decision: 'write', reason };
  }

  /** `state` was written to `podKey` at `now`. */
  written(podKey: string, state: BudgetState, now: number): void {
    const rec = this.pods.get(podKey);
    // A non-final state after a final one is a new pull (the kubelet retrying, a new image).
    const newPull = rec === undefined || (isFinal(rec.last.phase) && !isFinal(state.phase));
    this.pods.set(podKey, {
      last: { ...state },
      lastAt: now,
      writes: (newPull ? 0 : rec.writes) + 1,
    });
  }

  /** The pod is gone, or no longer followed. */
  forget(podKey: string): void {
    this.pods.delete(podKey);
    this.waiters.delete(podKey);
  }

  /** Writes recorded for the pod's current pull. */
  writes(podKey: string): number {
    return this.pods.get(podKey)?.writes ?? 0;
  }

  /**
   * Takes `cost` tokens for another API write of the node (an event), in turn behind the writes
   * already waiting; or says when to ask again (with the same `key`, to keep its place).
   */
  acquire(key: string, now: number, cost = 1): { ok: true } | { ok: false; at: number } {
    this.checkCost(cost);
    const at = this.tokensAt(key, false, cost, now);
    if (at > now) {
      this.wait(key, false, cost, at);
      return { ok: false, at };
    }
    this.bucket.take(cost);
    this.waiters.delete(key);
    return { ok: true };
  }

  private checkCost(cost: number): void {
    if (!(cost >= 1 && cost <= this.bucket.capacity)) {
      throw new RangeError(`a write costs 1 to ${this.bucket.capacity} tokens, got ${cost}`);
    }
  }

  private skip(key: string, why: 'unchanged' | 'budget'): Offer {
    this.waiters.delete(key);
    return { decision: 'skip', why };
  }

  private wait(key: string, final: boolean, cost: number, at: number): void {
    const w = this.waiters.get(key);
    if (w !== undefined && w.final === final) {
      w.cost = cost;
      w.at = at;
    } else {
      this.waiters.set(key, { ticket: this.nextTicket++, cost, final, at });
    }
  }

  /**
   * When the bucket has tokens for this write and for every write ahead of it: final writes
   * first, then by the time they started waiting. Waiters that did not come back are dropped.
   */
  private tokensAt(key: string, final: boolean, cost: number, now: number): number {
    const mine = this.waiters.get(key);
    const ticket = mine !== undefined && mine.final === final ? mine.ticket : Infinity;
    let ahead = 0;
    for (const [k, w] of this.waiters) {
      if (k === key) continue;
      if (now > w.at + WAITER_GRACE_MS) {
        this.waiters.delete(k);
        continue;
      }
      if ((w.final && !final) || (w.final === final && w.ticket < ticket)) ahead += w.cost;
    }
    return this.bucket.when(cost + ahead, now);
  }

  /**
   * The percent step for the rest of a pull that has used `used` writes: the planned step, or
   * wider when stalls and phase changes took writes, so the steps still reach 100.
   */
  stepAfter(used: number, percent: number): number {
    const left = this.o.maxWritesPerPull - 1 - used - PHASE_WRITES;
    return Math.max(this.percentStep, Math.ceil(Math.max(0, 100 - percent) / Math.max(1, left)));
  }

  private change(rec: PodRecord, used: number, s: BudgetState, now: number): WriteReason | null {
    const last = rec.last;
    if (isFinal(last.phase)) return 'first';
    if (last.phase !== s.phase) return 'phase';
    if (s.percent - last.percent >= this.stepAfter(used, last.percent)) return 'percent';
    if ((last.etaSeconds === null) !== (s.etaSeconds === null)) return 'eta';
    if (last.etaSeconds !== null && s.etaSeconds !== null) {
      const expected = Math.max(0, last.etaSeconds - (now - rec.lastAt) / 1000);
      const threshold = Math.max(this.o.etaMinChangeSeconds, this.o.etaChangeRatio * expected);
      if (Math.abs(s.etaSeconds - expected) >= threshold) return 'eta';
    }
    return null;
  }

  /**
   * A non-final write must leave the final one its place. An ETA-only write must also leave
   * room for the percent steps still to come and two phase changes, so ETA jitter never uses
   * up the writes that show progress.
   */
  private affordable(used: number, s: BudgetState, change: WriteReason): boolean {
    const max = this.o.maxWritesPerPull;
    if (used + 1 > max - 1) return false;
    if (change !== 'eta') return true;
    const steps = Math.ceil(Math.max(0, 100 - s.percent) / this.percentStep);
    return used + 1 + steps + PHASE_WRITES + 1 <= max;
  }
}
