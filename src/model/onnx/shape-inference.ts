// Static shape inference for the ONNX ops perceptd's tools emit. FLOP counting, the
// pruner's channel bookkeeping and the importer's checks all need every tensor's shape;
// an op outside this set is an error naming the node, never a guess.
import { broadcastShapes } from "../convert/broadcast.ts";
import { intAttr, intsAttr, type OnnxGraph, type OnnxNode } from "./ir.ts";
import { dtypeFromOnnx } from "./serialize.ts";
import { toNumbers, type DType } from "./tensor.ts";

export interface TensorInfo {
  dims: number[];
  dtype: DType;
}

export class ShapeError extends Error {
  constructor(node: OnnxNode, message: string) {
    super(`node ${node.name} (${node.opType}): ${message}`);
    this.name = "ShapeError";
  }
}

type Rule = (node: OnnxNode, ins: (TensorInfo | undefined)[], constValue: (i: number) => number[] | undefined) => TensorInfo[];

const same: Rule = (_n, [x]) => [x!];

const elementwise = (outType?: DType): Rule => (n, ins) => {
  let dims: number[] = [];
  for (const [k, t] of ins.entries()) {
    if (!t) continue;
    const b = broadcastShapes(dims, t.dims);
    if (!b) throw new ShapeError(n, `input ${k} of shape [${t.dims}] does not broadcast with [${dims}]`);
    dims = b;
  }
  return [{ dims, dtype: outType ?? ins[0]!.dtype }];
};

function windowOut(n: OnnxNode, x: TensorInfo, kernel: number[], cout: number): TensorInfo {
  const strides = intsAttr(n, "strides", [1, 1]);
  const dil = intsAttr(n, "dilations", [1, 1]);
  const pads = intsAttr(n, "pads", [0, 0, 0, 0]);
  const autoPad = n.attrs.auto_pad;
  if (autoPad && autoPad.kind === "string" && autoPad.value !== "NOTSET") throw new ShapeError(n, `auto_pad ${autoPad.value} is not supported; use explicit pads`);
  if (x.dims.length !== 4) throw new ShapeError(n, `input has shape [${x.dims}], expected NCHW`);
  const out = [0, 1].map((a) => Math.floor((x.dims[2 + a] + pads[a] + pads[a + 2] - ((kernel[a] - 1) * dil[a] + 1)) / strides[a]) + 1);
  if (out.some((d) => d <= 0)) throw new ShapeError(n, `window [${kernel}] does not fit input [${x.dims}]`);
  return { dims: [x.dims[0], cout, out[0], out[1]], dtype: x.dtype };
}

const RULES: Record<string, Rule> = {
  Identity: same,
  Relu: same,
  LeakyRelu: same,
  Sigmoid: same,
  Tanh: same,
  Elu: same,
  Exp: same,
  Floor: same,
  Clip: same,
  HardSigmoid: same,
  HardSwish: same,
  Add: elementwise(),
  Sub: elementwise(),
  Mul: elementwise(),
  Div: elementwise(),
  Max: elementwise(),
  Min: elementwise(),
  Mod: elementwise(),
  Equal: elementwise("bool"),
  Greater: elementwise("bool"),
  Less: elementwise("bool"),
  // QDQ (src/model/quantize/): the output has the input's shape and the zero point's type
  // (uint8 when absent, as the spec says); dequantized values are float32.
  QuantizeLinear: (_n, [x, , zp]) => [{ dims: x!.dims, dtype: zp?.dtype ?? "uint8" }],
  DequantizeLinear: (_n, [x]) => [{ dims: x!.dims, dtype: "float32" }],
  Conv: (n, [x, w]) => {
    if (!w || w.dims.length !== 4) throw new ShapeError(n, `weight must be rank 4, got [${w?.dims}]`);
    const group = intAttr(n, "group", 1);
    if (x!.dims[1] !== w.dims[1] * group)
      throw new ShapeError(n, `input has ${x!.dims[1]} channels, weight [${w.dims}] with group ${group} expects ${w.dims[1] * group}`);
    return [windowOut(n, x!, intsAttr(n, "kernel_shape", w.dims.slice(2)), w.dims[0])];
  },
  MaxPool: (n, [x]) => [windowOut(n, x!, intsAttr(n, "kernel_shape", []), x!.dims[1])],
  AveragePool: (n, [x]) => [windowOut(n, x!, intsAttr(n, "kernel_shape", []), x!.dims[1])],
  GlobalAveragePool: (_n, [x]) => [{ dims: [x!.dims[0], x!.dims[1], 1, 1], dtype: x!.dtype }],
  Pad: (n, [x], c) => {
    const pads = c(1);
    if (!pads) throw new ShapeError(n, "pads must be a constant");
    const r = x!.dims.length;
    return [{ dims: x!.dims.map((d, i) => d + pads[i] + pads[i + r]), dtype: x!.dtype }];
  },
  Concat: (n, ins) => {
    const rank = ins[0]!.dims.length;
    let axis = intAttr(n, "axis", 0);
    if (axis < 0) axis += rank;
    const dims = [...ins[0]!.dims];
    dims[axis] = 0;
    for (const [k, t] of ins.entries()) {
      if (t!.dims.length !== rank || t!.dims.some((d, i) => i !== axis && d !== ins[0]!.dims[i]))
        throw new ShapeError(n, `input ${k} [${t!.dims}] does not concatenate with [${ins[0]!.dims}] on axis ${axis}`);
      dims[axis] += t!.dims[axis];
    }
    return [{ dims, dtype: ins[0]!.dtype }];
  },
  Split: (n, [x], c) => {
    let axis = intAttr(n, "axis", 0);
    if (axis < 0) axis += x!.dims.length;
    const split = c(1) ?? new Array<number>(n.outputs.length).fill(x!.dims[axis] / n.outputs.length);
    if (split.reduce((s, v) => s + v, 0) !== x!.dims[axis]) throw new ShapeError(n, `split [${split}] does not add up to ${x!.dims[axis]}`);
    return split.map((s) => {
      const dims = [...x!.dims];
      dims[axis] = s;
      return { dims, dtype: x!.dtype };
    });
  },
  Reshape: (n, [x], c) => {
    const target = c(1);
    if (!target) throw new ShapeError(n, "shape must be a constant");
    const count = x!.dims.reduce((p, d) => p * d, 1);
    const t = target.map((d, i) => (d === 0 ? x!.dims[i] : d));
    const known = t.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    const dims = t.map((d) => (d === -1 ? count / known : d));
    if (dims.reduce((p, d) => p * d, 1) !== count) throw new ShapeError(n, `cannot reshape [${x!.dims}] to [${target}]`);
    return [{ dims, dtype: x!.dtype }];
  },
  Resize: (n, [x], c) => {
    const sizes = c(3);
    if (sizes) return [{ dims: sizes, dtype: x!.dtype }];
    const scales = c(2);
    if (!scales) throw new ShapeError(n, "needs constant sizes or scales");
    return [{ dims: x!.dims.map((d, i) => Math.floor(d * scales[i])), dtype: x!.dtype }];
  },
  ReduceMean: (n, [x]) => {
    const r = x!.dims.length;
    const axes = intsAttr(n, "axes", x!.dims.map((_, i) => i)).map((a) => (a < 0 ? a + r : a));
    const keep = intAttr(n, "keepdims", 1) === 1;
    return [{ dims: keep ? x!.dims.map((d, i) => (axes.includes(i) ? 1 : d)) : x!.dims.filter((_, i) => !axes.includes(i)), dtype: x!.dtype }];
  },
  Cast: (n, [x]) => [{ dims: x!.dims, dtype: dtypeFromOnnx(intAttr(n, "to", 1), `node ${n.name}`) }],
  Transpose: (n, [x]) => {
    const perm = intsAttr(n, "perm", x!.dims.map((_, i) => x!.dims.length - 1 - i));
    return [{ dims: perm.map((p) => x!.dims[p]), dtype: x!.dtype }];
  },
  TopK: (n, [x], c) => {
    const k = c(1)?.[0];
    if (k === undefined) throw new ShapeError(n, "K must be a constant");
    const r = x!.dims.length;
    let axis = intAttr(n, "axis", -1);
    if (axis < 0) axis += r;
    const dims = [...x!.dims];
    dims[axis] = k;
    return [{ dims, dtype: x!.dtype }, { dims: [...dims], dtype: "int64" }];
  },
  Gather: (n, [x, idx]) => {
    let axis = intAttr(n, "axis", 0);
    if (axis < 0) axis += x!.dims.length;
    return [{ dims: [...x!.dims.slice(0, axis), ...idx!.dims, ...x!.dims.slice(axis + 1)], dtype: x!.dtype }];
  },
  Slice: (n, [x], c) => {
    const starts = c(1);
    const ends = c(2);
    if (!starts || !ends) throw new ShapeError(n, "starts and ends must be constants");
    const r = x!.dims.length;
    const axes = (c(3) ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + r : a));
    const steps = c(4) ?? starts.map(() => 1);
    const dims = [...x!.dims];
    axes.forEach((a, i) => {
      const d = x!.dims[a];
      const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      if (steps[i] !== 1) throw new ShapeError(n, "only step 1 is supported");
      dims[a] = Math.max(clamp(ends[i]) - clamp(starts[i]), 0);
    });
    return [{ dims, dtype: x!.dtype }];
  },
  Unsqueeze: (n, [x], c) => {
    const axesIn = c(1);
    if (!axesIn) throw new ShapeError(n, "axes must be a constant");
    const r = x!.dims.length + axesIn.length;
    const dims = [...x!.dims];
    for (const a of axesIn.map((v) => (v < 0 ? v + r : v)).sort((p, q) => p - q)) dims.splice(a, 0, 1);
    return [{ dims, dtype: x!.dtype }];
  },
  Squeeze: (n, [x], c) => {
    const axes = (c(1) ?? x!.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + x!.dims.length : a));
    return [{ dims: x!.dims.filter((_, i) => !axes.includes(i)), dtype: x!.dtype }];
  },
};

/** Shapes of every tensor in the graph: inputs, initializers and node outputs. */
export function inferShapes(g: OnnxGraph): Map<string, TensorInfo> {
  const info = new Map<string, TensorInfo>();
  for (const i of g.inputs) info.set(i.name, { dims: i.dims, dtype: i.dtype });
  for (const [k, t] of g.initializers) info.set(k, { dims: t.dims, dtype: t.dtype });
  for (const n of g.nodes) {
    const rule = RULES[n.opType];
    if (!rule) throw new ShapeError(n, `op ${n.opType} is not known to perceptd's shape inference`);
    const ins = n.inputs.map((i) => (i ? info.get(i) : undefined));
    ins.forEach((t, k) => {
      if (n.inputs[k] && !t) throw new ShapeError(n, `input ${n.inputs[k]} has no known shape (is the graph sorted?)`);
    });
    const constValue = (k: number): number[] | undefined => {
      const t = n.inputs[k] ? g.initializers.get(n.inputs[k]) : undefined;
      return t ? toNumbers(t) : undefined;
    };
    const outs = rule(n, ins, constValue);
    n.outputs.forEach((o, k) => {
      if (o) info.set(o, outs[k]);
    });
  }
  return info;
}

export interface GraphStats {
  parameters: number;
  macs: number;
  convLayers: number;
}

/**
 * Parameters (float initializer elements, and the quantized weights and biases a
 * DequantizeLinear reads; QDQ scales and zero points are not parameters) and
 * multiply-accumulates of Conv layers.
 */
export function graphStats(g: OnnxGraph, shapes = inferShapes(g)): GraphStats {
  const qdqConstants = new Set<string>();
  const quantizedParameters = new Set<string>();
  for (const n of g.nodes) {
    if (n.opType !== "QuantizeLinear" && n.opType !== "DequantizeLinear") continue;
    for (const i of n.inputs.slice(1)) if (i) qdqConstants.add(i);
    if (n.opType === "DequantizeLinear" && g.initializers.has(n.inputs[0])) quantizedParameters.add(n.inputs[0]);
  }
  let parameters = 0;
  for (const [name, t] of g.initializers) {
    const float = t.dtype === "float32" || t.dtype === "float16";
    if ((float && !qdqConstants.has(name)) || quantizedParameters.has(name)) parameters += t.dims.reduce((p, d) => p * d, 1);
  }
  let macs = 0;
  let convLayers = 0;
  for (const n of g.nodes) {
    if (n.opType !== "Conv") continue;
    convLayers++;
    const w = shapes.get(n.inputs[1])!.dims;
    const y = shapes.get(n.outputs[0])!.dims;
    macs += y[0] * y[1] * y[2] * y[3] * w[1] * w[2] * w[3];
  }
  return { parameters, macs, convLayers };
}
