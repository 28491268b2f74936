// Rolling percentiles for the status line and the bench: the last N samples, sorted on read.
export class LatencyWindow {
  private readonly samples: number[] = [];
  private next = 0;

  constructor(private readonly capacity = 256) {}

  add(ms: number): void {
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else {
      this.samples[this.next] = ms;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  get size(): number {
    return this.samples.length;
  }

  /** q in [0, 1]; nearest-rank on the current window; NaN when empty */
  percentile(q: number): number {
    if (!this.samples.length) return NaN;
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  }
}

/** Events per second over a sliding time window (monotonic clock). */
export class RateMeter {
  private readonly times: number[] = [];

  constructor(
    private readonly windowMs = 2000,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  tick(): void {
    this.times.push(this.clock());
    this.trim();
  }

  perSecond(): number {
    this.trim();
    if (this.times.length < 2) return 0;
    const span = this.clock() - this.times[0];
    return span > 0 ? ((this.times.length - 1) * 1000) / Math.max(span, 1) : 0;
  }

  private trim(): void {
    const cutoff = this.clock() - this.windowMs;
    while (this.times.length && this.times[0] < cutoff) this.times.shift();
  }
}
