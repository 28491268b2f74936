// Rolling percentiles for the status line and the bench: the last N samples, sorted on read.
//
// The samples live in a typed ring and are sorted into a typed scratch buffer, once per
// change however many percentiles are read: the status behind each health message reads
// three, and sorting a copied number[] with a comparator for each of them was the largest
// single source of garbage on the daemon's main thread (a sampling allocation profile of
// the demo: 4.2 of 25 MB allocated in 10 s).
export class LatencyWindow {
  private readonly ring: Float64Array;
  private readonly scratch: Float64Array;
  private count = 0;
  private next = 0;
  /** scratch[0, count) holds the window sorted */
  private sorted = true;

  constructor(private readonly capacity = 256) {
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new RangeError(`LatencyWindow capacity must be a positive integer, got ${capacity}`);
    this.ring = new Float64Array(capacity);
    this.scratch = new Float64Array(capacity);
  }

  add(ms: number): void {
    this.ring[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    this.sorted = false;
  }

  get size(): number {
    return this.count;
  }

  /** q in [0, 1]; nearest-rank on the current window; NaN when empty */
  percentile(q: number): number {
    const n = this.count;
    if (n === 0) return NaN;
    if (!this.sorted) {
      // Typed-array sort is numeric and needs no comparator; NaN samples sort last.
      this.scratch.set(n === this.capacity ? this.ring : this.ring.subarray(0, n));
      this.scratch.subarray(0, n).sort();
      this.sorted = true;
    }
    return this.scratch[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
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
