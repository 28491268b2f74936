// Calibration methods on known distributions: MinMax gives the extremes, percentile the
// quantile, entropy a threshold that clips rare outliers but not the body of the data.
import { describe, expect, it } from "vitest";
import { CALIBRATION_METHODS, checkMethod, entropyThreshold, percentileRange, percentileThreshold, rangeFromHistogram, SignedHistogram } from "../../../src/model/quantize/calibration.ts";
import { prng } from "../prune/graphs.ts";

function gaussian(n: number, seed: number): Float32Array {
  const r = prng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

function histogramOf(values: Float32Array): { h: SignedHistogram; min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const h = new SignedHistogram(Math.max(-min, max));
  h.add(values);
  return { h, min, max };
}

describe("calibration methods on known distributions", () => {
  it("uniform on [-1, 1]: minmax is the extremes, the 99th percentile of |x| is 0.99, entropy keeps (almost) all of it", () => {
    const r = prng(11);
    const values = Float32Array.from({ length: 400_000 }, () => r() * 2 - 1);
    const { h, min, max } = histogramOf(values);
    const seen = { min, max };
    expect(rangeFromHistogram(h, seen, { method: "minmax", scheme: "int8" })).toEqual(seen);
    expect(percentileThreshold(h.folded(), h.binWidth, 99)).toBeCloseTo(0.99, 2);
    const e = rangeFromHistogram(h, seen, { method: "entropy", scheme: "int8" });
    expect(e.max).toBeGreaterThan(0.9);
    expect(e.max).toBeLessThanOrEqual(1.0001);
    expect(e.min).toBe(-e.max);
  });

  it("a Gaussian with rare large outliers: minmax takes the outlier, percentile 99.99 about 3.9 sigma, entropy clips the outliers", () => {
    const values = gaussian(400_000, 5);
    values[17] = 40;
    values[99] = -35;
    const { h, min, max } = histogramOf(values);
    const seen = { min, max };
    expect(rangeFromHistogram(h, seen, { method: "minmax", scheme: "int8" }).max).toBe(40);
    const p = rangeFromHistogram(h, seen, { method: "percentile", scheme: "int8", percentile: 99.99 });
    // P(|x| > 3.89) = 1e-4 for a standard normal; the bins are 40/2048 wide
    expect(p.max).toBeGreaterThan(3.6);
    expect(p.max).toBeLessThan(4.2);
    const e = rangeFromHistogram(h, seen, { method: "entropy", scheme: "int8" });
    expect(e.max).toBeGreaterThan(2);
    expect(e.max).toBeLessThan(10);
  });

  it("uint8 percentile ranges are asymmetric and hold zero", () => {
    const r = prng(2);
    const values = Float32Array.from({ length: 200_000 }, () => r() * 6); // [0, 6): a ReLU-like tensor
    const { h } = histogramOf(values);
    const range = percentileRange(h, 99);
    expect(range.min).toBe(0);
    expect(range.max).toBeCloseTo(5.94, 1);
  });

  it("an empty histogram gives a zero threshold", () => {
    expect(entropyThreshold(new Float64Array(2048), 0.01)).toBe(0);
    expect(percentileThreshold(new Float64Array(16), 0.1, 99)).toBe(0);
  });

  it("an unknown method is a clear error listing the known ones", () => {
    expect(() => checkMethod("kl")).toThrow(`unknown calibration method "kl"; expected one of ${CALIBRATION_METHODS.join(", ")}`);
  });
});
