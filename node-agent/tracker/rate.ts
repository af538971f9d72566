// Download rate over a sliding window of (time, bytes) samples of a whole image: all its
// concurrent layers together, which is what the ETA of the image depends on.

/**
 * A sliding window of (time in ms, cumulative bytes) samples and the rate over it. Pure apart
 * from its own samples: time is passed in.
 */
export class RateWindow {
  private samples: { t: number; bytes: number }[] = [];

  /** @param windowMs how far back samples count, in milliseconds (default 10 s). */
  constructor(private readonly windowMs = 10_000) {}

  /**
   * Adds a sample: `bytes` done in all at time `t` (ms). A sample at or before the last one's
   * time only raises that one's bytes (time never runs back in the window).
   */
  add(t: number, bytes: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last !== undefined && t <= last.t) {
      last.bytes = Math.max(last.bytes, bytes);
      return;
    }
    this.samples.push({ t, bytes });
    // Keep one sample older than the window so the window is always fully covered.
    while (this.samples.length > 2 && (this.samples[1]?.t ?? t) <= t - this.windowMs) this.samples.shift();
  }

  /**
   * Bytes per second over the window: the least-squares slope of all samples, which a single
   * late or early sample (offsets move in 1 MiB steps) sways far less than two end points do.
   * 0 with fewer than two samples.
   */
  rate(): number {
    const n = this.samples.length;
    const first = this.samples[0];
    if (n < 2 || first === undefined) return 0;
    let st = 0;
    let sb = 0;
    for (const x of this.samples) {
      st += x.t - first.t;
      sb += x.bytes;
    }
    const mt = st / n;
    const mb = sb / n;
    let cov = 0;
    let vt = 0;
    for (const x of this.samples) {
      const dt = x.t - first.t - mt;
      cov += dt * (x.bytes - mb);
      vt += dt * dt;
    }
    if (vt === 0) return 0;
    return Math.max(0, (cov / vt) * 1000);
  }

  /** Time span the rate is measured over, in ms. */
  span(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return first === undefined || last === undefined ? 0 : last.t - first.t;
  }
}

/**
 * Seconds to fetch `remaining` bytes at `rate`, to the nearest second but at least 1 while
 * bytes remain; null when the rate is unknown or zero.
 */
export function eta(remaining: number, rate: number): number | null {
  if (remaining <= 0) return 0;
  if (!(rate > 0)) return null;
  return Math.max(1, Math.round(remaining / rate));
}
