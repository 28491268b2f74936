// Activation ranges from calibration frames. The float graph runs in ONNX Runtime with every
// tensor to be quantized added as an output (src/model/prune/activations.ts); each map is
// reduced as its frame arrives, so memory does not grow with the number of frames.
//
//   minmax      the extremes seen: no value clips, but one outlier spends the 8 bits on
//               a range the other values never use;
//   percentile  |x| below which p % of the values lie (default 99.99): clips the outliers;
//   entropy     TensorRT's KL calibration: the threshold whose 128-level quantized
//               histogram of |x| loses the least information (KL divergence) against the
//               clipped float histogram.
// Percentile and entropy need a histogram over the range, hence a second pass over the frames.
import type { ModelInputData } from "../../infer/input-tensor.ts";
import type { OnnxGraph } from "../onnx/ir.ts";
import { forEachActivation } from "../prune/activations.ts";
import type { ActivationScheme, Range } from "./scales.ts";

export const CALIBRATION_METHODS = ["minmax", "percentile", "entropy"] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];
export const DEFAULT_PERCENTILE = 99.99;
/** Bins of the |x| histogram (TensorRT and ONNX Runtime use 2048 for entropy calibration). */
export const HISTOGRAM_BINS = 2048;
/** Levels of one sign of an int8 tensor, what the KL search quantizes the histogram into. */
const QUANTIZED_BINS = 128;

export function checkMethod(method: string): CalibrationMethod {
  if (!(CALIBRATION_METHODS as readonly string[]).includes(method)) {
    throw new RangeError(`unknown calibration method "${method}"; expected one of ${CALIBRATION_METHODS.join(", ")}`);
  }
  return method as CalibrationMethod;
}

/**
 * A histogram of x over [-limit, limit], 2 x bins wide: |x| is the two halves folded, the
 * signed form gives an asymmetric percentile. Values beyond the limit land in the end bins
 * (the limit is the min/max pass's, so none do on the same frames).
 */
export class SignedHistogram {
  readonly counts: Float64Array;
  readonly limit: number;
  readonly bins: number;
  total = 0;

  constructor(limit: number, bins = HISTOGRAM_BINS) {
    this.limit = limit > 0 ? limit : 1;
    this.bins = bins;
    this.counts = new Float64Array(2 * bins);
  }

  add(values: ArrayLike<number>): void {
    const n = 2 * this.bins;
    const k = this.bins / this.limit;
    const c = this.counts;
    for (let i = 0; i < values.length; i++) {
      let b = Math.floor((values[i] + this.limit) * k);
      if (b < 0) b = 0;
      else if (b >= n) b = n - 1;
      c[b]++;
    }
    this.total += values.length;
  }

  /** Counts of |x| in `bins` bins over [0, limit]. */
  folded(): Float64Array {
    const out = new Float64Array(this.bins);
    for (let b = 0; b < this.bins; b++) out[b] = this.counts[this.bins + b] + this.counts[this.bins - 1 - b];
    return out;
  }

  get binWidth(): number {
    return this.limit / this.bins;
  }
}

/** The smallest t with at least `percent` % of the values at |x| <= t (bin upper edges). */
export function percentileThreshold(absCounts: Float64Array, binWidth: number, percent: number): number {
  const total = absCounts.reduce((s, v) => s + v, 0);
  if (total === 0) return 0;
  const want = (percent / 100) * total;
  let acc = 0;
  for (let b = 0; b < absCounts.length; b++) {
    acc += absCounts[b];
    if (acc >= want) return (b + 1) * binWidth;
  }
  return absCounts.length * binWidth;
}

/** Signed percentile range: the (100 - p) % and p % quantiles, each tail of the same share. */
export function percentileRange(h: SignedHistogram, percent: number): Range {
  const tail = ((100 - percent) / 100) * h.total;
  const edge = (b: number): number => -h.limit + b * h.binWidth;
  let acc = 0;
  let lo = 0;
  for (let b = 0; b < h.counts.length; b++) {
    acc += h.counts[b];
    if (acc > tail) {
      lo = edge(b);
      break;
    }
  }
  acc = 0;
  let hi = 0;
  for (let b = h.counts.length - 1; b >= 0; b--) {
    acc += h.counts[b];
    if (acc > tail) {
      hi = edge(b + 1);
      break;
    }
  }
  return { min: Math.min(lo, 0), max: Math.max(hi, 0) };
}

/**
 * TensorRT's entropy calibration on a histogram of |x|: for each candidate threshold i (in
 * bins), P is the histogram clipped at i with the outliers added to its last bin, Q the first
 * i bins merged into 128 levels and spread back over the bins that were not empty; the
 * threshold minimising KL(P || Q) wins.
 */
export function entropyThreshold(absCounts: Float64Array, binWidth: number, quantBins = QUANTIZED_BINS): number {
  const n = absCounts.length;
  let last = n;
  while (last > 0 && absCounts[last - 1] === 0) last--;
  if (last === 0) return 0;
  if (last <= quantBins) return last * binWidth;
  // suffix sums: the outliers beyond each candidate threshold
  const beyond = new Float64Array(n + 1);
  for (let b = n - 1; b >= 0; b--) beyond[b] = beyond[b + 1] + absCounts[b];
  let best = Infinity;
  let bestI = last;
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  for (let i = quantBins; i <= last; i++) {
    let pSum = 0;
    for (let b = 0; b < i; b++) p[b] = absCounts[b];
    p[i - 1] += beyond[i];
    for (let b = 0; b < i; b++) pSum += p[b];
    // merge the first i bins into quantBins levels; each level spreads its count over its non-empty bins
    const per = i / quantBins;
    let qSum = 0;
    for (let k = 0; k < quantBins; k++) {
      const start = Math.floor(k * per);
      const end = k === quantBins - 1 ? i : Math.floor((k + 1) * per);
      let sum = 0;
      let nonEmpty = 0;
      for (let b = start; b < end; b++) {
        sum += absCounts[b];
        if (absCounts[b] !== 0) nonEmpty++;
      }
      const v = nonEmpty > 0 ? sum / nonEmpty : 0;
      for (let b = start; b < end; b++) q[b] = absCounts[b] !== 0 ? v : 0;
      qSum += sum;
    }
    let kl = 0;
    for (let b = 0; b < i; b++) {
      if (p[b] === 0) continue;
      const pp = p[b] / pSum;
      // P has mass where Q has none only in the last bin (the outliers): a large, finite penalty
      const qq = qSum > 0 && q[b] > 0 ? q[b] / qSum : 1e-12;
      kl += pp * Math.log(pp / qq);
    }
    if (kl < best) {
      best = kl;
      bestI = i;
    }
  }
  return bestI * binWidth;
}

export interface CalibrateOptions {
  method: CalibrationMethod;
  scheme: ActivationScheme;
  /** percentile method: share of |x| kept unclipped, in (0, 100] (default DEFAULT_PERCENTILE) */
  percentile?: number;
  threads?: number;
  onProgress?: (pass: string, done: number, total: number) => void;
}

export interface TensorRange extends Range {
  /** the extremes seen, whatever the method picked */
  seenMin: number;
  seenMax: number;
}

/** The range each method picks from a histogram (and the extremes of the first pass). */
export function rangeFromHistogram(h: SignedHistogram, seen: Range, opts: Pick<CalibrateOptions, "method" | "scheme" | "percentile">): Range {
  const percent = opts.percentile ?? DEFAULT_PERCENTILE;
  switch (opts.method) {
    case "minmax":
      return seen;
    case "percentile": {
      if (opts.scheme === "uint8") return percentileRange(h, percent);
      const t = percentileThreshold(h.folded(), h.binWidth, percent);
      return { min: -t, max: t };
    }
    case "entropy": {
      const t = entropyThreshold(h.folded(), h.binWidth);
      // symmetric threshold; an asymmetric scheme keeps only the part of [-t, t] that was seen
      return opts.scheme === "uint8" ? { min: Math.max(seen.min, -t), max: Math.min(seen.max, t) } : { min: -t, max: t };
    }
  }
}

/** Calibrated ranges of `tensors` of the float graph over the calibration inputs. */
export async function calibrateRanges(graph: OnnxGraph, tensors: readonly string[], inputs: readonly ModelInputData[], opts: CalibrateOptions): Promise<Map<string, TensorRange>> {
  checkMethod(opts.method);
  if (inputs.length === 0) throw new RangeError("calibration: no calibration frames (the calibration data is empty)");
  if (tensors.length === 0) throw new RangeError("calibration: no tensors to calibrate");
  const percent = opts.percentile ?? DEFAULT_PERCENTILE;
  if (!(percent > 0 && percent <= 100)) throw new RangeError(`calibration: percentile must be in (0, 100], got ${percent}`);
  // A graph input (a float model's image, when its first conv is quantized) is read from the
  // frames themselves; ONNX Runtime can only hand back what the graph computes.
  const graphInput = graph.inputs.find((i) => tensors.includes(i.name))?.name;
  const computed = tensors.filter((t) => t !== graphInput);
  const valuesOf = (frame: number, values: ReadonlyMap<string, { data: Float32Array }>): [string, Float32Array][] => {
    const out: [string, Float32Array][] = [...values].map(([name, a]) => [name, a.data]);
    if (graphInput !== undefined) {
      const d = inputs[frame];
      if (d.dtype !== "float32") throw new Error(`calibration: graph input "${graphInput}" is ${d.dtype}; only float32 inputs are quantized`);
      out.push([graphInput, d.data]);
    }
    return out;
  };
  const capture = computed.length > 0 ? computed : [graph.outputs[0].name];
  const seen = new Map<string, Range>();
  await forEachActivation(
    graph,
    capture,
    inputs,
    (_f, all) => {
      const values = valuesOf(_f, new Map([...all].filter(([k]) => tensors.includes(k))));
      for (const [name, data] of values) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let i = 0; i < data.length; i++) {
          const v = data[i];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error(`calibration: tensor "${name}" holds a non-finite value on frame ${_f}`);
        const r = seen.get(name);
        seen.set(name, r === undefined ? { min: lo, max: hi } : { min: Math.min(r.min, lo), max: Math.max(r.max, hi) });
      }
    },
    { threads: opts.threads, onProgress: (d, t) => opts.onProgress?.("ranges", d, t) },
  );
  const out = new Map<string, TensorRange>();
  if (opts.method === "minmax") {
    for (const [name, r] of seen) out.set(name, { ...r, seenMin: r.min, seenMax: r.max });
    return out;
  }
  const hists = new Map<string, SignedHistogram>();
  for (const [name, r] of seen) hists.set(name, new SignedHistogram(Math.max(Math.abs(r.min), Math.abs(r.max))));
  await forEachActivation(
    graph,
    capture,
    inputs,
    (_f, all) => {
      for (const [name, data] of valuesOf(_f, new Map([...all].filter(([k]) => tensors.includes(k))))) hists.get(name)!.add(data);
    },
    { threads: opts.threads, onProgress: (d, t) => opts.onProgress?.("histograms", d, t) },
  );
  for (const [name, r] of seen) {
    const picked = rangeFromHistogram(hists.get(name)!, r, opts);
    out.set(name, { ...picked, seenMin: r.min, seenMax: r.max });
  }
  return out;
}
