// Least-squares recovery without labels (He et al. 2017, ThiNet, AIMET's channel-pruning
// reconstruction): after structured pruning removes input channels of a Conv, its remaining
// weights and bias are refitted so that its output on calibration frames matches what the
// dense parent's Conv of the same name produced there (pre-activation).
//
// Layers are refitted in waves, in topological order: each wave captures its inputs from the
// pruned graph with every earlier wave already refitted, so a layer learns to undo the error
// upstream of it instead of inheriting a fit made on inputs it will never see.
//
// The regression is y = W x + b per sampled output position, x the im2col patch of the
// pruned input (C' x kh x kw values). Float64 normal equations with ridge on W (not b),
// solved by Cholesky. A fifth of the sampled positions is held out of the fit: it picks the
// ridge (1x, 10x, 100x the given one) and vetoes a refit that does worse there than the
// pruned weights.
//
// The ridge pulls W toward zero by default (a small one, to keep the system solvable), or
// toward W0, the original weights of the kept channels (ridgeToward "original"):
// min |Y - XZ|² + λ|W - W0|². The plain fit is free in every input direction the calibration
// frames do not excite and may forget the dense model there; the pull toward W0 keeps its
// response in those directions. Its strength is picked per layer on validation frames
// (`ridge: "auto"`, data never fitted to), from RIDGE_GRID. Too few samples per unknown make the fit memorise its samples (measured on
// nanodet at 50%: fit error 1e-3, error on the rest of the map above 1), so each layer samples
// at least `oversample` x its unknowns. Errors are relative MSE, sum (y - ŷ)² / sum y², before
// (pruned weights as they came) and after, on the fit samples and on the held-out ones.
import type { ModelInputData } from "../../infer/input-tensor.ts";
import { cloneGraph, intsAttr, stringAttr, uniqueNamer, type OnnxGraph, type OnnxNode } from "../onnx/ir.ts";
import { inferShapes } from "../onnx/shape-inference.ts";
import type { Tensor } from "../onnx/tensor.ts";
import { forEachActivation, samplePositions, type Activation, type CaptureOptions } from "./activations.ts";
import { choleskyFactorRidged, choleskySolveFactored } from "./cholesky.ts";
import { fnv1a } from "../../util/prng.ts";

export const DEFAULT_SAMPLES_PER_FRAME = 128;
/** Ridge strength relative to the mean diagonal of XᵀX (scale-free across layers). */
export const DEFAULT_RIDGE = 1e-3;
export const DEFAULT_OVERSAMPLE = 4;
/** Relative strengths tried by `ridge: "auto"` (toward W0), judged on the validation frames. */
export const RIDGE_GRID: readonly number[] = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
/** What the ridge pulls the weights toward: zero, or the original weights of the kept channels (W0). */
export type RidgeToward = "zero" | "original";

export interface RecoverOptions {
  dense: OnnxGraph;
  /** Not modified; the result holds a copy with refitted weights. */
  pruned: OnnxGraph;
  /** Conv node names to refit; default: every Conv whose input channel count differs from the dense one. */
  convNodes?: readonly string[];
  /** Model inputs of the calibration frames (the graphs' single input). */
  frames: readonly ModelInputData[];
  /** Least positions sampled per frame and layer. Default 128. */
  samplesPerFrame?: number;
  /**
   * Fit samples per unknown a layer should get: a layer samples more per frame when
   * samplesPerFrame x frames falls short (up to every position of its map). Default 4; below
   * 1 the fit memorises its samples and generalises badly.
   */
  oversample?: number;
  /**
   * Toward zero: the smallest relative ridge tried; 10x and 100x it are tried too, the best on
   * held-out samples wins. Default 1e-3. Toward W0: the relative strength, or "auto" to pick it
   * per layer from RIDGE_GRID on `validationFrames`.
   */
  ridge?: number | "auto";
  /** Default "zero". */
  ridgeToward?: RidgeToward;
  /**
   * Model inputs of validation frames (never fitted to): when given, every sampled calibration
   * position goes into the fit and the held-out samples (which pick the ridge and veto a refit)
   * come from these frames instead. Needed by `ridge: "auto"`.
   */
  validationFrames?: readonly ModelInputData[];
  /**
   * Per Conv, the dense output channel each pruned output channel came from. Absent: the
   * identity when the counts match, otherwise found by matching the weights the pruner copied.
   */
  outputChannels?: ReadonlyMap<string, readonly number[]>;
  /** ONNX Runtime intra-op threads. */
  threads?: number;
  /** Seed of the position sampler. */
  seed?: number;
  onProgress?: (event: RecoverProgress) => void;
}

export type RecoverProgress =
  | { kind: "dense"; frame: number; frames: number }
  | { kind: "wave"; wave: number; waves: number; layers: readonly string[]; frame: number; frames: number }
  | { kind: "layer"; layer: LayerRecovery };

export interface LayerRecovery {
  node: string;
  /** Input channels dense -> pruned. */
  inputChannels: [number, number];
  /** Output channels dense -> pruned. */
  outputChannels: [number, number];
  kernel: [number, number];
  /** Sampled output positions the fit used. */
  samples: number;
  /** Sampled positions held out of the fit, on which the ridge and the refit are judged. */
  heldOutSamples: number;
  /** Unknowns per output channel: C' x kh x kw weights + 1 bias. */
  unknowns: number;
  /** Wave (0-based) the layer was refitted in. */
  wave: number;
  /** On the fit samples. */
  relMseBefore: number;
  relMseAfter: number;
  /** On the held-out samples: what the refit is worth on data it did not see. */
  heldOutBefore: number;
  heldOutAfter: number;
  /** False when no refit beat the incoming weights on held-out samples; the layer is then left as it came. */
  refitted: boolean;
  /** Relative ridge of the kept solution (null when not refitted). */
  ridge: number | null;
  /** What the ridge pulled toward. */
  ridgeToward: RidgeToward;
  /** Where the held-out samples came from. */
  heldOutFrom: "calibration" | "validation";
}

export interface RecoverResult {
  graph: OnnxGraph;
  layers: LayerRecovery[];
}

interface ConvGeometry {
  node: OnnxNode;
  weight: Tensor;
  bias: Tensor | null;
  outC: number;
  inC: number;
  kh: number;
  kw: number;
  strides: number[];
  dilations: number[];
  /** top, left */
  pads: [number, number];
}

function convGeometry(g: OnnxGraph, node: OnnxNode, which: string): ConvGeometry {
  const where = `${which} graph: Conv "${node.name}"`;
  const weight = g.initializers.get(node.inputs[1]);
  if (weight === undefined || weight.dtype !== "float32" || weight.dims.length !== 4) {
    throw new Error(`${where}: weights "${node.inputs[1]}" are not a float32 [O, C, kh, kw] initializer`);
  }
  const biasName = node.inputs[2];
  const bias = biasName ? g.initializers.get(biasName) : undefined;
  if (biasName && (bias === undefined || bias.dtype !== "float32")) throw new Error(`${where}: bias "${biasName}" is not a float32 initializer`);
  const group = node.attrs.group?.kind === "int" ? node.attrs.group.value : 1;
  if (group !== 1) throw new Error(`${where}: group=${group}; least-squares recovery handles group=1 convolutions only`);
  const autoPad = stringAttr(node, "auto_pad", "NOTSET");
  if (autoPad !== "NOTSET" && autoPad !== "VALID") throw new Error(`${where}: auto_pad=${autoPad} is not supported; explicit pads only`);
  const pads = autoPad === "VALID" ? [0, 0, 0, 0] : intsAttr(node, "pads", [0, 0, 0, 0]);
  const [outC, inC, kh, kw] = weight.dims;
  return {
    node,
    weight,
    bias: bias ?? null,
    outC,
    inC,
    kh,
    kw,
    strides: intsAttr(node, "strides", [1, 1]),
    dilations: intsAttr(node, "dilations", [1, 1]),
    pads: [pads[0], pads[1]],
  };
}

function convByName(g: OnnxGraph, name: string, which: string): OnnxNode {
  const n = g.nodes.find((x) => x.name === name);
  if (n === undefined) throw new Error(`${which} graph has no node named "${name}"`);
  if (n.opType !== "Conv") throw new Error(`${which} graph: node "${name}" is a ${n.opType}, not a Conv`);
  return n;
}

/** Does dense row `o` contain the pruned row `p`'s kernels as an ordered subsequence of its input channels? */
function rowMatches(dense: ConvGeometry, o: number, pruned: ConvGeometry, p: number): boolean {
  if (dense.bias !== null && pruned.bias !== null && dense.bias.data[o] !== pruned.bias.data[p]) return false;
  const k = dense.kh * dense.kw;
  const dw = dense.weight.data as Float32Array;
  const pw = pruned.weight.data as Float32Array;
  let i = 0;
  for (let c = 0; c < pruned.inC; c++) {
    const pBase = (p * pruned.inC + c) * k;
    let found = false;
    for (; i < dense.inC && !found; i++) {
      const dBase = (o * dense.inC + i) * k;
      found = true;
      for (let t = 0; t < k; t++) {
        if (dw[dBase + t] !== pw[pBase + t]) {
          found = false;
          break;
        }
      }
    }
    if (!found) return false;
  }
  return true;
}

/** The dense output channel behind each pruned one, found from the weights the pruner copied. */
function matchOutputChannels(dense: ConvGeometry, pruned: ConvGeometry): number[] {
  if (dense.outC === pruned.outC) return Array.from({ length: dense.outC }, (_, i) => i);
  const kept: number[] = [];
  let next = 0;
  for (let p = 0; p < pruned.outC; p++) {
    let o = next;
    while (o < dense.outC && !rowMatches(dense, o, pruned, p)) o++;
    if (o === dense.outC) {
      throw new Error(
        `Conv "${pruned.node.name}": cannot tell which dense output channel pruned channel ${p} came from ` +
          `(its weights are not a copy of a dense row); pass outputChannels`,
      );
    }
    kept.push(o);
    next = o + 1;
  }
  return kept;
}

/** Waves: a target Conv goes one wave after the latest target Conv upstream of it. */
function waves(g: OnnxGraph, targets: ReadonlySet<string>): string[][] {
  const level = new Map<string, number>(); // tensor -> number of target convs on the longest path to it
  const out: string[][] = [];
  for (const n of g.nodes) {
    let lv = 0;
    for (const i of n.inputs) if (i) lv = Math.max(lv, level.get(i) ?? 0);
    if (targets.has(n.name)) {
      (out[lv] ??= []).push(n.name);
      lv++;
    }
    for (const o of n.outputs) if (o) level.set(o, lv);
  }
  return out.filter((w) => w !== undefined);
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`recoverLeastSquares: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

interface LayerPlan {
  name: string;
  dense: ConvGeometry;
  pruned: ConvGeometry;
  kept: readonly number[];
  /** Input map of the pruned conv: channels, height, width. */
  inShape: [number, number, number];
  outSpatial: [number, number];
  /** Dense targets per frame: rows of kept.length values at the sampled positions. */
  targets: Float32Array[];
  positions: Int32Array[];
  /** The same for the validation frames (empty without them). */
  valTargets: Float32Array[];
  valPositions: Int32Array[];
  valPerFrame: number;
  /** Positions sampled per frame (fit and held out). */
  perFrame: number;
  wave: number;
}

function positionSeed(seed: number, layer: string, frame: number): number {
  return (seed ^ fnv1a(layer)) + frame * 7919;
}

/** Every HOLD_OUT_EVERY-th sampled position is kept out of the fit and used to judge it. */
const HOLD_OUT_EVERY = 5;
/**
 * Samples added to XᵀX per pass over it, unrolled by hand: four rows summed in one statement
 * ran 2 to 2.5x faster than one row at a time (V8, this project's 2-core build machine, 1153
 * unknowns); a generic inner loop over a transposed batch was slower than either.
 */
const BATCH = 4;

/**
 * Normal equations of one layer, accumulated over the frames of its wave, plus the held-out
 * samples (patches kept whole) that pick the ridge and decide whether the refit is kept.
 */
class NormalEquations {
  readonly n: number;
  readonly m: number;
  /** XᵀX, upper triangle filled while accumulating. */
  readonly a: Float64Array;
  readonly b: Float64Array;
  yy = 0;
  /** sum (y - Z0ᵀx)² over the fit samples, for the weights the layer came with. */
  before = 0;
  count = 0;
  /** Held-out patches (rows of n) and targets (rows of m). */
  private heldX: Float32Array[] = [];
  private heldY: Float32Array[] = [];
  private readonly x: Float64Array;
  /** The incoming weights and bias as Z. */
  readonly z0: Float64Array;
  /** Pending fit samples (patches and targets); slots past `pending` are zero. */
  private readonly xs: Float64Array[];
  private readonly ys: Float64Array[];
  private pending = 0;

  constructor(unknowns: number, outputs: number, z0: Float64Array) {
    this.n = unknowns;
    this.m = outputs;
    this.z0 = z0;
    this.a = new Float64Array(unknowns * unknowns);
    this.b = new Float64Array(unknowns * outputs);
    this.x = new Float64Array(unknowns);
    this.xs = Array.from({ length: BATCH }, () => new Float64Array(unknowns));
    this.ys = Array.from({ length: BATCH }, () => new Float64Array(outputs));
  }

  /** Adds the pending samples to XᵀX (upper triangle), XᵀY and the before-error. */
  flush(): void {
    const k = this.pending;
    if (k === 0) return;
    const { n, m, a, b, z0 } = this;
    const [x0, x1, x2, x3] = this.xs;
    const [y0, y1, y2, y3] = this.ys;
    for (let i = 0; i < n; i++) {
      const c0 = x0[i];
      const c1 = x1[i];
      const c2 = x2[i];
      const c3 = x3[i];
      if (c0 === 0 && c1 === 0 && c2 === 0 && c3 === 0) continue;
      const row = i * n;
      for (let j = i; j < n; j++) a[row + j] += c0 * x0[j] + c1 * x1[j] + c2 * x2[j] + c3 * x3[j];
      const brow = i * m;
      for (let o = 0; o < m; o++) b[brow + o] += c0 * y0[o] + c1 * y1[o] + c2 * y2[o] + c3 * y3[o];
    }
    const yhat = new Float64Array(m);
    for (let t = 0; t < k; t++) {
      const x = this.xs[t];
      const y = this.ys[t];
      yhat.fill(0);
      for (let i = 0; i < n; i++) {
        const xi = x[i];
        if (xi === 0) continue;
        const zrow = i * m;
        for (let o = 0; o < m; o++) yhat[o] += xi * z0[zrow + o];
      }
      for (let o = 0; o < m; o++) {
        this.yy += y[o] * y[o];
        this.before += (y[o] - yhat[o]) ** 2;
      }
      x.fill(0);
      y.fill(0);
    }
    this.count += k;
    this.pending = 0;
  }

  get heldOut(): number {
    return this.heldX.length;
  }

  /**
   * Adds the patches of `plan` at its sampled positions of frame `f` from input map `data`:
   * "split" holds every HOLD_OUT_EVERY-th one out, "fit" fits them all, "held" holds them all
   * out (validation frames, whose targets and positions are the plan's val* ones).
   */
  addFrame(plan: LayerPlan, f: number, data: Float32Array, use: "split" | "fit" | "held" = "split"): void {
    const { kh, kw, strides, dilations, pads } = plan.pruned;
    const [C, H, W] = plan.inShape;
    const outW = plan.outSpatial[1];
    const { n, m, x } = this;
    const y = use === "held" ? plan.valTargets[f] : plan.targets[f];
    (use === "held" ? plan.valPositions : plan.positions)[f].forEach((p, r) => {
      const oy = Math.floor(p / outW);
      const ox = p - oy * outW;
      const iy0 = oy * strides[0] - pads[0];
      const ix0 = ox * strides[1] - pads[1];
      let k = 0;
      for (let c = 0; c < C; c++) {
        const base = c * H * W;
        for (let ky = 0; ky < kh; ky++) {
          const iy = iy0 + ky * dilations[0];
          const rowOk = iy >= 0 && iy < H;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ix0 + kx * dilations[1];
            x[k++] = rowOk && ix >= 0 && ix < W ? data[base + iy * W + ix] : 0;
          }
        }
      }
      x[n - 1] = 1;
      if (use === "held" || (use === "split" && r % HOLD_OUT_EVERY === HOLD_OUT_EVERY - 1)) {
        this.heldX.push(Float32Array.from(x));
        this.heldY.push(y.slice(r * m, (r + 1) * m));
        return;
      }
      const t = this.pending++;
      this.xs[t].set(x);
      this.ys[t].set(y.subarray(r * m, (r + 1) * m));
      if (this.pending === BATCH) this.flush();
    });
  }

  /** Mirrors the upper triangle into the lower one. */
  symmetrise(): void {
    const { n, a } = this;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[j * n + i] = a[i * n + j];
  }

  /**
   * sum (y - Zᵀx)² over the fit samples for the ridge solution Z of (A + λD) Z = B + λ D P
   * (P the prior: zero or Z0): expanding the square and using Zᵀ A Z = Zᵀ B + λ Zᵀ D (P - Z)
   * leaves yy - Zᵀ B + λ Zᵀ D (P - Z), O(n m), not O(n² m).
   */
  residualOfSolution(z: Float64Array, lambda: number, prior: Float64Array | null): number {
    const { n, m, b } = this;
    let zb = 0;
    for (let i = 0; i < n * m; i++) zb += z[i] * b[i];
    let zdpz = 0;
    for (let i = 0; i < (n - 1) * m; i++) zdpz += z[i] * ((prior === null ? 0 : prior[i]) - z[i]);
    return Math.max(0, this.yy - zb + lambda * zdpz);
  }

  /** Relative MSE of Z on the held-out samples: sum (y - Zᵀx)² / sum y². */
  heldOutError(z: Float64Array): number {
    const { n, m } = this;
    const yhat = new Float64Array(m);
    let num = 0;
    let den = 0;
    this.heldX.forEach((x, r) => {
      yhat.fill(0);
      for (let i = 0; i < n; i++) {
        const xi = x[i];
        if (xi === 0) continue;
        const row = i * m;
        for (let o = 0; o < m; o++) yhat[o] += xi * z[row + o];
      }
      const y = this.heldY[r];
      for (let o = 0; o < m; o++) {
        num += (y[o] - yhat[o]) ** 2;
        den += y[o] * y[o];
      }
    });
    return den > 0 ? num / den : 0;
  }
}

/** Current weights and bias as Z (unknowns x outputs): rows are im2col features, then the bias. */
function weightsAsZ(geo: ConvGeometry): Float64Array {
  const d = geo.inC * geo.kh * geo.kw;
  const z = new Float64Array((d + 1) * geo.outC);
  const w = geo.weight.data as Float32Array;
  for (let o = 0; o < geo.outC; o++) {
    for (let f = 0; f < d; f++) z[f * geo.outC + o] = w[o * d + f];
    z[d * geo.outC + o] = geo.bias === null ? 0 : (geo.bias.data as Float32Array)[o];
  }
  return z;
}

/**
 * The ridge solution for relative strength `ridge`, raised tenfold until the system factors:
 * (A + λD) Z = B + λ D P, D the identity on W's rows (not the bias, the last unknown), P the
 * prior (null: zero).
 */
function solveRidge(eq: NormalEquations, ridge: number, prior: Float64Array | null): { z: Float64Array; ridge: number; lambda: number } {
  const { n, m, a, b } = eq;
  const { l, ridge: r, lambda } = choleskyFactorRidged(a, n, ridge, n - 1);
  const z = Float64Array.from(b);
  if (prior !== null) for (let i = 0; i < (n - 1) * m; i++) z[i] += lambda * prior[i];
  choleskySolveFactored(l, n, z, m);
  return { z, ridge: r, lambda };
}

function writeWeights(g: OnnxGraph, geo: ConvGeometry, z: Float64Array, namer: (base: string) => string): void {
  const d = geo.inC * geo.kh * geo.kw;
  const w = new Float32Array(geo.outC * d);
  const bias = new Float32Array(geo.outC);
  for (let o = 0; o < geo.outC; o++) {
    for (let f = 0; f < d; f++) w[o * d + f] = z[f * geo.outC + o];
    bias[o] = z[d * geo.outC + o];
  }
  const node = geo.node;
  const shared = (name: string): boolean => g.nodes.some((n) => n !== node && n.inputs.includes(name));
  // A weight another node also reads gets a new name, so only this Conv changes.
  const wName = shared(node.inputs[1]) ? namer(`${node.inputs[1]}_recovered`) : node.inputs[1];
  g.initializers.set(wName, { dtype: "float32", dims: [...geo.weight.dims], data: w });
  node.inputs[1] = wName;
  const bOld = node.inputs[2];
  const bName = !bOld ? namer(`${node.name}/bias_recovered`) : shared(bOld) ? namer(`${bOld}_recovered`) : bOld;
  g.initializers.set(bName, { dtype: "float32", dims: [geo.outC], data: bias });
  node.inputs[2] = bName;
}

/** The options with their defaults, checked once before any graph is touched. */
interface RecoverSettings {
  samplesPerFrame: number;
  oversample: number;
  toward: RidgeToward;
  validation: readonly ModelInputData[];
  /** Relative ridge strengths tried per layer; the best on held-out samples wins. */
  grid: readonly number[];
  fitUse: "fit" | "split";
  seed: number;
}

function recoverSettings(opts: RecoverOptions): RecoverSettings {
  const samplesPerFrame = positiveInt("samplesPerFrame", opts.samplesPerFrame ?? DEFAULT_SAMPLES_PER_FRAME);
  const ridge = opts.ridge ?? DEFAULT_RIDGE;
  const toward: RidgeToward = opts.ridgeToward ?? "zero";
  const oversample = opts.oversample ?? DEFAULT_OVERSAMPLE;
  const validation = opts.validationFrames ?? [];
  if (!(oversample > 0 && Number.isFinite(oversample))) throw new RangeError(`recoverLeastSquares: oversample must be a positive number, got ${String(oversample)}`);
  if (ridge !== "auto" && !(ridge >= 0 && Number.isFinite(ridge))) throw new RangeError(`recoverLeastSquares: ridge must be "auto" or a finite number >= 0, got ${String(ridge)}`);
  if (ridge === "auto" && toward !== "original") throw new RangeError('recoverLeastSquares: ridge "auto" picks the pull toward the original weights; set ridgeToward "original"');
  if (ridge === "auto" && validation.length === 0) throw new RangeError('recoverLeastSquares: ridge "auto" picks its strength on validation frames; none were given');
  if (opts.frames.length === 0) throw new RangeError("recoverLeastSquares: no calibration frames");
  // Toward zero, a grid above the given floor; toward W0, the strength asked for or the grid.
  const grid: readonly number[] = ridge === "auto" ? RIDGE_GRID : toward === "original" ? [ridge] : [ridge, ridge * 10, ridge * 100];
  return { samplesPerFrame, oversample, toward, validation, grid, fitUse: validation.length > 0 ? "fit" : "split", seed: opts.seed ?? 1 };
}

/** Default targets: every Conv whose input channel count differs from the dense one. */
function changedConvs(dense: OnnxGraph, work: OnnxGraph): string[] {
  return work.nodes
    .filter((n) => n.opType === "Conv" && n.inputs[1] !== undefined && work.initializers.has(n.inputs[1]))
    .filter((n) => {
      const d = dense.nodes.find((x) => x.name === n.name);
      const dw = d ? dense.initializers.get(d.inputs[1]) : undefined;
      return dw !== undefined && dw.dims[1] !== work.initializers.get(n.inputs[1])!.dims[1];
    })
    .map((n) => n.name);
}

function planLayer(
  name: string,
  wave: number,
  graphs: { dense: OnnxGraph; work: OnnxGraph; denseShapes: ReturnType<typeof inferShapes>; prunedShapes: ReturnType<typeof inferShapes> },
  opts: RecoverOptions,
  s: RecoverSettings,
): LayerPlan {
  const { dense, work, denseShapes, prunedShapes } = graphs;
  const dGeo = convGeometry(dense, convByName(dense, name, "dense"), "dense");
  const pGeo = convGeometry(work, convByName(work, name, "pruned"), "pruned");
  if (dGeo.kh !== pGeo.kh || dGeo.kw !== pGeo.kw) throw new Error(`Conv "${name}": kernel differs between dense and pruned graphs`);
  const kept = opts.outputChannels?.get(name) ?? matchOutputChannels(dGeo, pGeo);
  if (kept.length !== pGeo.outC || kept.some((k) => !(k >= 0 && k < dGeo.outC))) {
    throw new Error(`Conv "${name}": outputChannels lists ${kept.length} channels in 0..${dGeo.outC - 1}, the pruned Conv has ${pGeo.outC}`);
  }
  const inDims = prunedShapes.get(pGeo.node.inputs[0])?.dims;
  const outDims = prunedShapes.get(pGeo.node.outputs[0])?.dims;
  const denseOut = denseShapes.get(dGeo.node.outputs[0])?.dims;
  if (!inDims || inDims.length !== 4 || inDims[0] !== 1 || !outDims || !denseOut) {
    throw new Error(`Conv "${name}": recovery needs a batch-1 NCHW input of known shape`);
  }
  if (denseOut[2] !== outDims[2] || denseOut[3] !== outDims[3]) throw new Error(`Conv "${name}": output size differs between dense and pruned graphs`);
  const { samplesPerFrame, oversample, validation } = s;
  return {
    name,
    dense: dGeo,
    pruned: pGeo,
    kept,
    inShape: [inDims[1], inDims[2], inDims[3]],
    outSpatial: [outDims[2], outDims[3]],
    targets: [],
    positions: [],
    valTargets: [],
    valPositions: [],
    // at least one held-out sample per unknown over the validation frames
    valPerFrame: validation.length === 0 ? 0 : Math.min(outDims[2] * outDims[3], Math.max(samplesPerFrame, Math.ceil((pGeo.inC * pGeo.kh * pGeo.kw + 1) / validation.length))),
    perFrame: Math.min(
      outDims[2] * outDims[3],
      Math.max(samplesPerFrame, Math.ceil((oversample * (pGeo.inC * pGeo.kh * pGeo.kw + 1) * HOLD_OUT_EVERY) / ((HOLD_OUT_EVERY - 1) * opts.frames.length))),
    ),
    wave,
  };
}

/** The target Convs grouped into waves, each with its plan. */
function planLayers(dense: OnnxGraph, work: OnnxGraph, names: readonly string[], opts: RecoverOptions, s: RecoverSettings): { order: string[][]; plans: Map<string, LayerPlan> } {
  for (const name of names) {
    convByName(dense, name, "dense");
    convByName(work, name, "pruned");
  }
  const graphs = { dense, work, denseShapes: inferShapes(dense), prunedShapes: inferShapes(work) };
  const order = waves(work, new Set(names));
  const plans = new Map<string, LayerPlan>();
  order.forEach((wave, w) => {
    for (const name of wave) plans.set(name, planLayer(name, w, graphs, opts, s));
  });
  return { order, plans };
}

/**
 * Runs the dense graph once over `frames` and keeps each plan's targets at positions sampled
 * for that frame: the fit's (calibration frames) or the held-out ones (validation frames).
 */
async function sampleDenseTargets(
  dense: OnnxGraph,
  plans: ReadonlyMap<string, LayerPlan>,
  frames: readonly ModelInputData[],
  which: "calibration" | "validation",
  seed: number,
  capture: CaptureOptions,
): Promise<void> {
  const denseTensor = new Map([...plans.values()].map((p) => [p.dense.node.outputs[0], p]));
  const validation = which === "validation";
  // a seed apart from the calibration frames' (frame numbers count from 0 in both)
  const frameSeed = validation ? seed + 104729 : seed;
  await forEachActivation(
    dense,
    [...denseTensor.keys()],
    frames,
    (f, values) => {
      for (const [tensor, plan] of denseTensor) {
        const { data } = values.get(tensor)!;
        const spatial = plan.outSpatial[0] * plan.outSpatial[1];
        const at = samplePositions(validation ? plan.valPerFrame : plan.perFrame, spatial, positionSeed(frameSeed, plan.name, f));
        const m = plan.kept.length;
        const rows = new Float32Array(at.length * m);
        at.forEach((p, r) => {
          for (let o = 0; o < m; o++) rows[r * m + o] = data[plan.kept[o] * spatial + p];
        });
        (validation ? plan.valTargets : plan.targets).push(rows);
        (validation ? plan.valPositions : plan.positions).push(at);
      }
    },
    capture,
  );
}

/** Normal equations of one wave's layers, from the pruned graph with the earlier waves refitted. */
async function accumulateWave(
  work: OnnxGraph,
  wave: readonly LayerPlan[],
  progress: { wave: number; waves: number; layers: readonly string[] },
  opts: RecoverOptions,
  s: RecoverSettings,
): Promise<Map<string, NormalEquations>> {
  const eqs = new Map(wave.map((p) => [p.name, new NormalEquations(p.pruned.inC * p.pruned.kh * p.pruned.kw + 1, p.pruned.outC, weightsAsZ(p.pruned))]));
  const inputs = [...new Set(wave.map((p) => p.pruned.node.inputs[0]))];
  if (inputs.some((i) => work.inputs.some((v) => v.name === i))) {
    throw new Error(`recoverLeastSquares: a Conv reading the graph input directly has no pruned input channels to recover from`);
  }
  const add = (use: "split" | "fit" | "held") => (f: number, values: ReadonlyMap<string, Activation>) => {
    for (const p of wave) eqs.get(p.name)!.addFrame(p, f, values.get(p.pruned.node.inputs[0])!.data, use);
  };
  await forEachActivation(work, inputs, opts.frames, add(s.fitUse), {
    threads: opts.threads,
    onProgress: (frame, frames) => opts.onProgress?.({ kind: "wave", ...progress, frame, frames }),
  });
  if (s.validation.length > 0) await forEachActivation(work, inputs, s.validation, add("held"), { threads: opts.threads });
  return eqs;
}

/** Solves one layer for each ridge of the grid, writes the best into `work` when it beats the incoming weights on held-out samples. */
function refitLayer(work: OnnxGraph, p: LayerPlan, eq: NormalEquations, s: RecoverSettings, namer: (base: string) => string): LayerRecovery {
  eq.flush();
  eq.symmetrise();
  const total = eq.yy > 0 ? eq.yy : 1;
  const before = eq.before / total;
  const heldBefore = eq.heldOutError(eq.z0);
  const prior = s.toward === "original" ? eq.z0 : null;
  let best: { z: Float64Array; ridge: number; lambda: number; held: number } | null = null;
  for (const r of s.grid) {
    const sol = solveRidge(eq, r, prior);
    const held = eq.heldOutError(sol.z);
    if (best === null || held < best.held) best = { ...sol, held };
  }
  // A refit that does worse on samples it did not see than the pruned weights is not kept.
  const keep = best !== null && (eq.heldOut === 0 || best.held < heldBefore);
  const after = keep ? eq.residualOfSolution(best!.z, best!.lambda, prior) / total : before;
  if (keep) writeWeights(work, p.pruned, best!.z, namer);
  return {
    node: p.name,
    inputChannels: [p.dense.inC, p.pruned.inC],
    outputChannels: [p.dense.outC, p.pruned.outC],
    kernel: [p.pruned.kh, p.pruned.kw],
    samples: eq.count,
    heldOutSamples: eq.heldOut,
    unknowns: eq.n,
    wave: p.wave,
    relMseBefore: before,
    relMseAfter: after,
    heldOutBefore: heldBefore,
    heldOutAfter: keep ? best!.held : heldBefore,
    refitted: keep,
    ridge: keep ? best!.ridge : null,
    ridgeToward: s.toward,
    heldOutFrom: s.validation.length > 0 ? "validation" : "calibration",
  };
}

/** Refits the chosen Convs of `pruned` to reproduce the dense graph's outputs; see the file comment. */
export async function recoverLeastSquares(opts: RecoverOptions): Promise<RecoverResult> {
  const s = recoverSettings(opts);
  const { dense } = opts;
  const work = cloneGraph(opts.pruned);
  const names = opts.convNodes ?? changedConvs(dense, work);
  if (names.length === 0) return { graph: work, layers: [] };
  const { order, plans } = planLayers(dense, work, names, opts, s);

  // Dense targets, once: the same positions are sampled again from the pruned inputs below.
  await sampleDenseTargets(dense, plans, opts.frames, "calibration", s.seed, {
    threads: opts.threads,
    onProgress: (frame, frames) => opts.onProgress?.({ kind: "dense", frame, frames }),
  });
  if (s.validation.length > 0) await sampleDenseTargets(dense, plans, s.validation, "validation", s.seed, { threads: opts.threads });

  const namer = uniqueNamer(work);
  const layers: LayerRecovery[] = [];
  for (let w = 0; w < order.length; w++) {
    const wave = order[w].map((n) => plans.get(n)!);
    const eqs = await accumulateWave(work, wave, { wave: w, waves: order.length, layers: order[w] }, opts, s);
    for (const p of wave) {
      const layer = refitLayer(work, p, eqs.get(p.name)!, s, namer);
      layers.push(layer);
      opts.onProgress?.({ kind: "layer", layer });
    }
  }
  return { graph: work, layers };
}
