// Small statistics for soak windows: exact percentiles of a sample, and the Theil-Sen slope,
// the median of the slopes between every pair of points: robust to the odd outlier (a
// collection, a burst of allocation) that would tilt a least-squares line.

/** Nearest-rank percentile (q in 0..1) of `values`; NaN for none. Sorts a copy. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sortedPercentile(sorted, q);
}

/** Nearest-rank percentile of values already sorted ascending. */
export function sortedPercentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function percentiles(values: readonly number[]): Percentiles | null {
  if (values.length === 0) return null;
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return { count: s.length, mean: sum / s.length, p50: sortedPercentile(s, 0.5), p90: sortedPercentile(s, 0.9), p99: sortedPercentile(s, 0.99), max: s[s.length - 1] };
}

/** Median of `values`; NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Theil-Sen line through (x, y): slope = median of pairwise slopes, intercept = median of
 * y - slope * x. Past `maxPoints` the points are thinned evenly first (the pair count grows
 * with the square). Null with fewer than two distinct x.
 */
export function theilSen(x: readonly number[], y: readonly number[], maxPoints = 600): { slope: number; intercept: number } | null {
  if (x.length !== y.length) throw new RangeError(`theilSen: ${x.length} x values but ${y.length} y values`);
  const step = Math.max(1, Math.ceil(x.length / maxPoints));
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < x.length; i += step) {
    if (Number.isFinite(x[i]) && Number.isFinite(y[i])) {
      xs.push(x[i]);
      ys.push(y[i]);
    }
  }
  const slopes: number[] = [];
  for (let i = 0; i < xs.length; i++) for (let j = i + 1; j < xs.length; j++) if (xs[j] !== xs[i]) slopes.push((ys[j] - ys[i]) / (xs[j] - xs[i]));
  if (slopes.length === 0) return null;
  const slope = median(slopes);
  return { slope, intercept: median(xs.map((xi, i) => ys[i] - slope * xi)) };
}
