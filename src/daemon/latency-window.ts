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
