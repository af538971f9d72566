// Download rate over a sliding window of (time, bytes) samples of a whole image: all its
// concurrent layers together, which is what the ETA of the image depends on.

export class RateWindow {
  private samples: { t: number; bytes: number }[] = [];

  constructor(private readonly windowMs = 10_000) {}

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

  /** Bytes per second over the window; 0 with fewer than two samples. */
  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.t <= first.t) return 0;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.t - first.t));
  }

  /** Time span the rate is measured over, in ms. */
  span(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return first === undefined || last === undefined ? 0 : last.t - first.t;
  }
}

/** Seconds to fetch `remaining` bytes at `rate`, or null when the rate is unknown or zero. */
export function eta(remaining: number, rate: number): number | null {
  if (remaining <= 0) return 0;
  if (!(rate > 0)) return null;
  return Math.ceil(remaining / rate);
}
