// Reconstruction-aware channel selection (ThiNet, Luo et al. 2017; He et al. 2017), for
// pruning followed by least-squares recovery. Magnitude and activation scores rank a channel
// by its own size; after recovery what a removed channel costs is the part of its
// contribution to the consumers' outputs that the kept channels cannot reproduce linearly.
// Two channels that carry the same signal are each cheap to remove, but not both.
//
// Per group, channels are removed greedily, one at a time, each time the one whose removal
// raises the consumers' least-squares residual least; the order of removal is the score (the
// pruner removes lowest scores first, so any kept count takes a prefix of the same order).
//
// The model of a consumer Conv is channel level: y = Σ_k W_k x (one 1x1 map per kernel tap,
// on shifted copies of a stationary input), regressed on the kept channels of x with the
// input covariance G measured on calibration frames. Recovery refits in im2col space, with
// more freedom than this, so the model overstates the cost of a removal, for every channel
// alike. With P = (G_RR)⁻¹ over the kept set R and M = Σ_k W_kᵀ W_k, the coefficient
// matrix of the refit is β = W G_{:R} P and dropping channel c raises the residual by
// (βᵀβ)_cc / P_cc. T = βᵀβ = P (G M G) P and P are downdated in O(C²) per removal, so a
// consumer with C input channels costs O(C³) in all. Each consumer's cost is relative to its
// output energy, so consumers of different scale count alike.
import type { ModelInputData } from "../../infer/input-tensor.ts";
import type { OnnxGraph } from "../onnx/ir.ts";
import { forEachActivation, samplePositions, type Activation, type ActivationAccumulator, type CaptureOptions } from "./activations.ts";
import { choleskyFactorRidged, choleskySolveFactored } from "./cholesky.ts";
import type { DependencyGraph } from "./dependency-graph.ts";
import { fnv1a } from "../../util/prng.ts";

/** Per tensor: the centred channel covariance (C x C, row-major) over sampled positions. */
export type ChannelCovariances = Map<string, { channels: number; cov: Float64Array }>;

/** Positions per frame and tensor the covariance is estimated from (all of a smaller map). */
export const COVARIANCE_POSITIONS_PER_FRAME = 1024;
/** Ridge on G relative to its mean diagonal: dead channels (zero variance) make it singular. */
const COVARIANCE_RIDGE = 1e-6;

export interface CovarianceOptions {
  positionsPerFrame?: number;
  seed?: number;
}

/**
 * Centred channel covariance of each tensor, accumulated frame by frame over sampled
 * positions; a visitor so the pruner can gather it in the same capture pass as other
 * statistics.
 */
export function covarianceAccumulator(opts: CovarianceOptions = {}): ActivationAccumulator<ChannelCovariances> {
  const perFrame = opts.positionsPerFrame ?? COVARIANCE_POSITIONS_PER_FRAME;
  const seed = opts.seed ?? 1;
  const acc = new Map<string, { c: number; xx: Float64Array; sum: Float64Array; n: number }>();
  const visit = (f: number, values: ReadonlyMap<string, Activation>): void => {
    for (const [name, { dims, data }] of values) {
      if (dims.length !== 4 || dims[0] !== 1) throw new Error(`tensor "${name}" has dims [${dims.join(", ")}]; channel covariances need [1, C, H, W]`);
      const c = dims[1];
      const spatial = dims[2] * dims[3];
      let a = acc.get(name);
      if (a === undefined) acc.set(name, (a = { c, xx: new Float64Array(c * c), sum: new Float64Array(c), n: 0 }));
      const at = samplePositions(Math.min(perFrame, spatial), spatial, (seed ^ fnv1a(name)) + f * 7919);
      const x = new Float64Array(c);
      for (const p of at) {
        for (let i = 0; i < c; i++) x[i] = data[i * spatial + p];
        for (let i = 0; i < c; i++) {
          const xi = x[i];
          if (xi === 0) continue;
          a.sum[i] += xi;
          const row = i * c;
          for (let j = i; j < c; j++) a.xx[row + j] += xi * x[j];
        }
      }
      a.n += at.length;
    }
  };
  const result = (): ChannelCovariances => {
    const out: ChannelCovariances = new Map();
    for (const [name, a] of acc) {
      const { c, xx, sum, n } = a;
      const cov = new Float64Array(c * c);
      for (let i = 0; i < c; i++)
        for (let j = i; j < c; j++) {
          const v = xx[i * c + j] / n - (sum[i] / n) * (sum[j] / n);
          cov[i * c + j] = v;
          cov[j * c + i] = v;
        }
      out.set(name, { channels: c, cov });
    }
    return out;
  };
  return { visit, result };
}

/** Centred channel covariance of each tensor over the frames (sampled positions). */
export async function channelCovariances(
  graph: OnnxGraph,
  tensors: readonly string[],
  frames: readonly ModelInputData[],
  opts: CaptureOptions & CovarianceOptions = {},
): Promise<ChannelCovariances> {
  const acc = covarianceAccumulator(opts);
  await forEachActivation(graph, tensors, frames, acc.visit, opts);
  return acc.result();
}

/** One consumer Conv during the greedy elimination of one group. */
class ConsumerModel {
  readonly c: number;
  /** (G_RR)⁻¹ padded with zeros outside R (C x C). */
  private readonly p: Float64Array;
  /** G M G, fixed. */
  private readonly q: Float64Array;
  /** P Q P = βᵀβ. */
  private readonly t: Float64Array;
  /** Output energy, tr(M G): what this consumer's costs are relative to. */
  readonly energy: number;
  private readonly gone: Uint8Array;

  constructor(weights: Float32Array, dims: readonly number[], cov: Float64Array) {
    const [o, c, kh, kw] = dims;
    this.c = c;
    this.gone = new Uint8Array(c);
    const k = kh * kw;
    // M = Σ_k W_kᵀ W_k: M[i][j] = Σ_{o,t} w[o,i,t] w[o,j,t]
    const m = new Float64Array(c * c);
    for (let out = 0; out < o; out++)
      for (let i = 0; i < c; i++)
        for (let j = i; j < c; j++) {
          let s = 0;
          const bi = (out * c + i) * k;
          const bj = (out * c + j) * k;
          for (let t = 0; t < k; t++) s += weights[bi + t] * weights[bj + t];
          m[i * c + j] += s;
        }
    for (let i = 0; i < c; i++) for (let j = 0; j < i; j++) m[i * c + j] = m[j * c + i];
    let energy = 0;
    for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) energy += m[i * c + j] * cov[j * c + i];
    this.energy = energy > 0 ? energy : 1;
    const gm = matmul(cov, m, c);
    this.q = matmul(gm, cov, c);
    this.p = inverse(cov, c);
    this.t = matmul(matmul(this.p, this.q, c), this.p, c);
  }

  /** Relative rise of the residual if input channel i went now. */
  cost(i: number): number {
    const pii = this.p[i * this.c + i];
    return pii > 0 ? this.t[i * this.c + i] / pii / this.energy : 0;
  }

  /** Drops input channel i from the kept set: rank-one downdates of P and T. */
  remove(i: number): void {
    const { c, p, q, t } = this;
    if (this.gone[i]) return;
    this.gone[i] = 1;
    const pii = p[i * c + i];
    const u = new Float64Array(c);
    if (pii > 0) for (let j = 0; j < c; j++) u[j] = p[j * c + i] / Math.sqrt(pii);
    const qu = new Float64Array(c);
    for (let a = 0; a < c; a++) {
      let s = 0;
      for (let b = 0; b < c; b++) s += q[a * c + b] * u[b];
      qu[a] = s;
    }
    let s = 0;
    for (let a = 0; a < c; a++) s += u[a] * qu[a];
    const v = new Float64Array(c);
    for (let a = 0; a < c; a++) {
      let acc = 0;
      for (let b = 0; b < c; b++) acc += p[a * c + b] * qu[b];
      v[a] = acc;
    }
    for (let a = 0; a < c; a++)
      for (let b = 0; b < c; b++) {
        p[a * c + b] -= u[a] * u[b];
        t[a * c + b] += -u[a] * v[b] - v[a] * u[b] + s * u[a] * u[b];
      }
    // exact zeros for the removed row and column (the downdate leaves rounding there)
    for (let j = 0; j < c; j++) {
      p[i * c + j] = p[j * c + i] = 0;
      t[i * c + j] = t[j * c + i] = 0;
    }
  }
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  return out;
}

/** (G + ridge)⁻¹ by Cholesky, the ridge raised tenfold until G factors. */
function inverse(g: Float64Array, n: number): Float64Array {
  const { l } = choleskyFactorRidged(g, n, COVARIANCE_RIDGE);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  choleskySolveFactored(l, n, inv, n);
  return inv;
}

/**
 * Score per global slot: its place in the greedy removal order of its group (0 = removed
 * first). Groups without a dense consumer keep `fallback`'s order.
 */
export function reconstructionImportance(g: OnnxGraph, dep: DependencyGraph, covariances: ChannelCovariances, fallback: Float64Array): Float64Array {
  const score = Float64Array.from(fallback);
  for (const grp of dep.groups) {
    if (!grp.prunable || grp.consumers.length === 0) continue;
    const inGroup = new Set(grp.slots);
    const models: { model: ConsumerModel; index: Map<number, number[]> }[] = [];
    for (const name of grp.consumers) {
      const conv = dep.convs.get(name);
      if (!conv?.input) continue;
      const cov = covariances.get(conv.input);
      if (!cov) throw new Error(`reconstruction importance: no covariance of tensor ${conv.input} (input of ${name})`);
      const w = g.initializers.get(conv.weight);
      if (!w || !(w.data instanceof Float32Array)) throw new Error(`reconstruction importance: Conv ${name} has no float32 weights`);
      if (w.dims[1] !== cov.channels) throw new Error(`reconstruction importance: Conv ${name} reads ${w.dims[1]} channels, covariance has ${cov.channels}`);
      const slots = dep.channels.get(conv.input)!;
      // channel indices of this consumer's input that carry each slot of the group
      const index = new Map<number, number[]>();
      slots.forEach((s, i) => {
        if (inGroup.has(s)) index.set(s, [...(index.get(s) ?? []), i]);
      });
      if (index.size > 0) models.push({ model: new ConsumerModel(w.data, w.dims, cov.cov), index });
    }
    if (models.length === 0) continue;
    const left = new Set(grp.slots);
    for (let step = 0; left.size > 0; step++) {
      let best = -1;
      let bestCost = Infinity;
      for (const s of left) {
        let cost = 0;
        for (const { model, index } of models) for (const i of index.get(s) ?? []) cost += model.cost(i);
        // ties: the later channel goes first, as the magnitude scores break them
        if (cost < bestCost || (cost === bestCost && s > best)) {
          best = s;
          bestCost = cost;
        }
      }
      score[best] = step;
      left.delete(best);
      for (const { model, index } of models) for (const i of index.get(best) ?? []) model.remove(i);
    }
  }
  return score;
}
