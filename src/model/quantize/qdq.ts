// Rewrites a float graph into the QDQ format: every planned activation passes through a
// QuantizeLinear -> DequantizeLinear pair, every planned weight is stored as int8 with
// per-channel scales behind a DequantizeLinear, and biases as int32 at scale
// input scale x weight scale. The ops themselves stay float ops on dequantized values, so
// the file is valid ONNX that any runtime can run; ONNX Runtime (CPU) and TensorRT
// recognise DQ -> Conv -> Q and run the convolution in int8.
import { attr, cloneGraph, type AttrValue, consumers, producers, topoSort, uniqueNamer, type OnnxGraph, type OnnxNode } from "../onnx/ir.ts";
import type { Tensor } from "../onnx/tensor.ts";
import type { QuantPlan } from "./plan.ts";
import { activationParams, fitWeightScalesToBias, quantizeBias, quantizeWeights, REDUCED_WEIGHT_MAX, weightScales, type ActivationScheme, type QuantParams, type Range } from "./scales.ts";

export interface QdqOptions {
  scheme: ActivationScheme;
  /** one weight scale per output channel (default) or one per tensor */
  perChannel: boolean;
  /** 7-bit weights, for x86 CPUs without VNNI (scales.ts, REDUCED_WEIGHT_MAX) */
  reduceRange?: boolean;
}

export interface QuantizedLayer {
  node: string;
  opType: string;
  /** the activation the layer reads, its range and scale */
  input: string;
  inputScale: number;
  inputZeroPoint: number;
  weightChannels: number;
  /** smallest and largest weight scale over the channels */
  weightScaleMin: number;
  weightScaleMax: number;
  /** mean |w - dequantize(quantize(w))| relative to the mean |w| (the step is set by each channel's largest weight) */
  weightError: number;
  bias: boolean;
}

export interface QdqResult {
  graph: OnnxGraph;
  layers: QuantizedLayer[];
  activations: { tensor: string; min: number; max: number; scale: number; zeroPoint: number }[];
}

function scalar(dtype: "float32" | "int8" | "uint8", v: number): Tensor {
  if (dtype === "float32") return { dtype, dims: [], data: Float32Array.of(v) };
  if (dtype === "int8") return { dtype, dims: [], data: Int8Array.of(v) };
  return { dtype, dims: [], data: Uint8Array.of(v) };
}

/** Output-channel axis of a weight: Conv [Cout, ...] and Gemm with transB are 0, MatMul and plain Gemm 1. */
function channelAxis(n: OnnxNode): number {
  if (n.opType === "Conv") return 0;
  if (n.opType === "Gemm") {
    const t = n.attrs.transB;
    return t !== undefined && t.kind === "int" && t.value === 1 ? 0 : 1;
  }
  return 1;
}

export function insertQdq(source: OnnxGraph, plan: QuantPlan, ranges: ReadonlyMap<string, Range>, opts: QdqOptions): QdqResult {
  const g = cloneGraph(source);
  const name = uniqueNamer(g);
  const prod = producers(g);
  const cons = consumers(g);
  const quantized = new Set([...plan.weighted, ...plan.chain]);
  const added: OnnxNode[] = [];
  const params = new Map<string, QuantParams>();
  const dequantized = new Map<string, string>();
  const activations: QdqResult["activations"] = [];

  const zeroPointType = opts.scheme === "int8" ? "int8" : "uint8";
  for (const t of plan.tensors) {
    const r = ranges.get(t);
    if (r === undefined) throw new Error(`graph "${g.name}": no calibrated range for tensor "${t}"`);
    const p = activationParams(r, opts.scheme);
    params.set(t, p);
    const scaleName = name(`${t}_scale`);
    const zpName = name(`${t}_zero_point`);
    g.initializers.set(scaleName, scalar("float32", p.scale));
    g.initializers.set(zpName, scalar(zeroPointType, p.zeroPoint));
    const q = name(`${t}_quantized`);
    const dq = name(`${t}_dequantized`);
    added.push({ name: name(`${t}_QuantizeLinear`), opType: "QuantizeLinear", inputs: [t, scaleName, zpName], outputs: [q], attrs: {} });
    added.push({ name: name(`${t}_DequantizeLinear`), opType: "DequantizeLinear", inputs: [q, scaleName, zpName], outputs: [dq], attrs: {} });
    dequantized.set(t, dq);
    activations.push({ tensor: t, min: r.min, max: r.max, scale: p.scale, zeroPoint: p.zeroPoint });
    // The output of a quantized node is read dequantized by everyone (the runtime fuses
    // DQ -> op -> Q only when Q is the op's sole reader); an activation from a float node
    // stays exact for float readers and is dequantized for quantized ones.
    const fromQuantized = quantized.has(prod.get(t)?.name ?? "");
    for (const c of cons.get(t) ?? []) {
      if (!fromQuantized && !quantized.has(c.name)) continue;
      c.inputs = c.inputs.map((i) => (i === t ? dq : i));
    }
  }

  const layers: QuantizedLayer[] = [];
  const qmax = opts.reduceRange === true ? REDUCED_WEIGHT_MAX : undefined;
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  for (const nodeName of plan.weighted) {
    const n = byName.get(nodeName)!;
    const input = source.nodes.find((s) => s.name === nodeName)!.inputs[0];
    const p = params.get(input);
    if (p === undefined) throw new Error(`node ${nodeName} (${n.opType}): its input "${input}" has no quantization parameters`);
    const w = g.initializers.get(n.inputs[1]);
    if (w === undefined || w.dtype !== "float32") throw new Error(`node ${nodeName} (${n.opType}): weight ${n.inputs[1]} is not a float32 constant`);
    const axis = channelAxis(n);
    const biasName = n.opType === "MatMul" ? "" : (n.inputs[2] ?? "");
    const biasT = biasName ? g.initializers.get(biasName) : undefined;
    if (biasName && (biasT === undefined || biasT.dtype !== "float32" || biasT.dims.length !== 1)) {
      throw new Error(`node ${nodeName} (${n.opType}): bias ${biasName} is not a float32 vector constant`);
    }
    let scales = weightScales(w, opts.perChannel, axis, qmax);
    if (biasT !== undefined) scales = fitWeightScalesToBias(scales, biasT.data as Float32Array, p.scale);
    const q = quantizeWeights(w, scales, axis, qmax);
    layers.push({
      node: nodeName,
      opType: n.opType,
      input,
      inputScale: p.scale,
      inputZeroPoint: p.zeroPoint,
      weightChannels: w.dims[axis],
      weightScaleMin: Math.min(...scales),
      weightScaleMax: Math.max(...scales),
      weightError: weightError(w, q, scales, axis),
      bias: biasT !== undefined,
    });
    const perAxis: Record<string, AttrValue> = scales.length > 1 ? { axis: attr.int(axis) } : {};
    const wq = name(`${n.inputs[1]}_quantized`);
    const ws = name(`${n.inputs[1]}_scale`);
    const wz = name(`${n.inputs[1]}_zero_point`);
    g.initializers.set(wq, { dtype: "int8", dims: [...w.dims], data: q });
    g.initializers.set(ws, scales.length > 1 ? { dtype: "float32", dims: [scales.length], data: scales } : scalar("float32", scales[0]));
    g.initializers.set(wz, scales.length > 1 ? { dtype: "int8", dims: [scales.length], data: new Int8Array(scales.length) } : scalar("int8", 0));
    const wdq = name(`${n.inputs[1]}_dequantized`);
    added.push({ name: name(`${n.inputs[1]}_DequantizeLinear`), opType: "DequantizeLinear", inputs: [wq, ws, wz], outputs: [wdq], attrs: perAxis });
    n.inputs[1] = wdq;
    if (biasT !== undefined) {
      const b = quantizeBias(biasT.data as Float32Array, p.scale, scales);
      const bq = name(`${biasName}_quantized`);
      const bs = name(`${biasName}_scale`);
      g.initializers.set(bq, { dtype: "int32", dims: [b.values.length], data: b.values });
      g.initializers.set(bs, { dtype: "float32", dims: [b.scales.length], data: b.scales });
      const bdq = name(`${biasName}_dequantized`);
      // int32 bias: zero point 0 is implied (and must be), axis 0 is its only axis
      added.push({ name: name(`${biasName}_DequantizeLinear`), opType: "DequantizeLinear", inputs: [bq, bs], outputs: [bdq], attrs: { axis: attr.int(0) } });
      n.inputs[2] = bdq;
    }
  }
  g.nodes.push(...added);
  dropUnused(g);
  topoSort(g);
  g.metadata = { ...g.metadata, quantization: JSON.stringify({ format: "QDQ", activations: opts.scheme, weights: `int8 symmetric ${opts.perChannel ? "per channel" : "per tensor"}${opts.reduceRange === true ? ", 7-bit range" : ""}` }) };
  return { graph: g, layers, activations };
}

function weightError(w: Tensor, q: Int8Array, scales: Float32Array, axis: number): number {
  const data = w.data as Float32Array;
  const count = w.dims[axis];
  const stride = w.dims.slice(axis + 1).reduce((a, d) => a * d, 1);
  let sumAbs = 0;
  let sumErr = 0;
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / stride) % count;
    const s = scales.length === 1 ? scales[0] : scales[c];
    sumAbs += Math.abs(data[i]);
    sumErr += Math.abs(data[i] - q[i] * s);
  }
  return sumAbs > 0 ? sumErr / sumAbs : 0;
}

/** Removes initializers no node reads any more (the float weights and biases replaced). */
function dropUnused(g: OnnxGraph): void {
  const used = new Set<string>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) used.add(i);
  for (const o of g.outputs) used.add(o.name);
  for (const k of [...g.initializers.keys()]) if (!used.has(k)) g.initializers.delete(k);
}
