// Unstructured (magnitude) pruning: the smallest weights of Conv layers are set to zero, the
// shapes stay. Dense kernels on CPUs and GPUs multiply zeros as fast as any other number, so
// this buys no speed at all; what it buys is a file that compresses better (zeros deflate to
// almost nothing) and a starting point for sparse kernels. Reports say so in words.
import { deflateRawSync } from "node:zlib";
import type { OnnxGraph } from "../onnx/ir.ts";
import { encodeModel } from "../onnx/serialize.ts";
import type { Tensor } from "../onnx/tensor.ts";
import { matchNodes } from "./dependency-graph.ts";

export const NO_SPEEDUP_NOTE =
  "Unstructured sparsity gives no speed-up on dense CPUs and GPUs: the zeros are still multiplied. " +
  "It only makes the file compress better (compressed sizes below) and needs sparse kernels to run faster.";

export interface UnstructuredOptions {
  /** Fraction of the prunable weights to zero, in [0, 1). */
  sparsity: number;
  /** "global": one magnitude threshold over all layers; "layer": each layer to the same sparsity. Default global. */
  scope?: "global" | "layer";
  /** Node names or regular expressions whose weights stay. */
  ignore?: readonly string[];
  /** Leave the first conv (reads the model input) dense. Default true. */
  protectStem?: boolean;
}

export interface UnstructuredLayer {
  node: string;
  weights: number;
  zerosBefore: number;
  zerosAfter: number;
  sparsity: number;
}

export interface UnstructuredResult {
  graph: OnnxGraph;
  layers: UnstructuredLayer[];
  /** zeros / weights over the layers that were pruned */
  sparsity: number;
  /** names of Conv layers left dense, with why */
  skipped: { node: string; reason: string }[];
}

/** Deflate (level 9) size of bytes: what a zip or a gzip'd download of the file would take. */
export function compressedSize(bytes: Uint8Array): number {
  return deflateRawSync(bytes, { level: 9 }).length;
}

export interface SizeReport {
  bytes: number;
  compressedBytes: number;
}

export function fileSizes(g: OnnxGraph): SizeReport {
  const bytes = encodeModel(g);
  return { bytes: bytes.length, compressedBytes: compressedSize(bytes) };
}

export function pruneUnstructured(src: OnnxGraph, opts: UnstructuredOptions): UnstructuredResult {
  const { sparsity } = opts;
  if (!(Number.isFinite(sparsity) && sparsity >= 0 && sparsity < 1)) throw new RangeError(`--sparsity must be in [0, 1), got ${String(sparsity)}`);
  const scope = opts.scope ?? "global";
  const ignored = new Set([...matchNodes(src, opts.ignore ?? [], "--ignore").values()].flat());
  const inputs = new Set(src.inputs.map((i) => i.name));
  const produced = new Map<string, string>();
  for (const n of src.nodes) for (const o of n.outputs) produced.set(o, n.opType);

  // The stem: a Conv fed by the model input, possibly through baked preprocessing (no Conv before it).
  const convBefore = new Set<string>();
  for (const n of src.nodes) {
    const afterConv = n.opType === "Conv" || n.inputs.some((i) => convBefore.has(i));
    if (afterConv) for (const o of n.outputs) convBefore.add(o);
  }
  const skipped: { node: string; reason: string }[] = [];
  const targets: { node: string; weight: string; t: Tensor }[] = [];
  for (const n of src.nodes) {
    if (n.opType !== "Conv") continue;
    const t = src.initializers.get(n.inputs[1]);
    if (!t || t.dtype !== "float32") skipped.push({ node: n.name, reason: "weight is not a float32 constant" });
    else if (ignored.has(n.name)) skipped.push({ node: n.name, reason: "protected by --ignore" });
    else if ((opts.protectStem ?? true) && !convBefore.has(n.inputs[0]) && (inputs.has(n.inputs[0]) || produced.has(n.inputs[0])))
      skipped.push({ node: n.name, reason: "first conv (reads the model input), protected by default" });
    else targets.push({ node: n.name, weight: n.inputs[1], t });
  }

  // Everything below the cut goes, then weights exactly at the cut until the count is reached,
  // so ties (many equal magnitudes, e.g. existing zeros) never overshoot the target.
  const plan = (arrays: Float32Array[]): { cut: number; ties: number } => {
    const total = arrays.reduce((s, a) => s + a.length, 0);
    const k = Math.ceil(sparsity * total);
    if (k === 0) return { cut: -1, ties: 0 };
    const all = new Float32Array(total);
    let off = 0;
    for (const a of arrays) {
      for (let i = 0; i < a.length; i++) all[off + i] = Math.abs(a[i]);
      off += a.length;
    }
    all.sort();
    const cut = all[k - 1];
    let below = 0;
    while (below < k && all[below] < cut) below++;
    return { cut, ties: k - below };
  };
  const unique = targets.filter((x, i) => targets.findIndex((y) => y.weight === x.weight) === i);
  const globalPlan = scope === "global" ? plan(unique.map((x) => x.t.data as Float32Array)) : undefined;

  const g: OnnxGraph = { ...src, initializers: new Map(src.initializers), metadata: { ...src.metadata } };
  const layers: UnstructuredLayer[] = [];
  let zeros = 0;
  let count = 0;
  for (const x of unique) {
    const d = x.t.data as Float32Array;
    const p = globalPlan ?? plan([d]);
    const out = Float32Array.from(d);
    let z0 = 0;
    for (let i = 0; i < d.length; i++) {
      const a = Math.abs(d[i]);
      if (d[i] === 0) z0++;
      if (a < p.cut) out[i] = 0;
      else if (a === p.cut && p.ties > 0) {
        out[i] = 0;
        p.ties--;
      }
    }
    let z1 = 0;
    for (let i = 0; i < out.length; i++) if (out[i] === 0) z1++;
    g.initializers.set(x.weight, { dtype: "float32", dims: [...x.t.dims], data: out });
    layers.push({ node: x.node, weights: d.length, zerosBefore: z0, zerosAfter: z1, sparsity: z1 / d.length });
    zeros += z1;
    count += d.length;
  }
  return { graph: g, layers, sparsity: count ? zeros / count : 0, skipped };
}
