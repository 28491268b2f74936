// One converter per TensorFlow op: TF semantics in, ONNX nodes out. Each converter
// computes its output's static TF shape, so shape mistakes surface at the node that made
// them, with its name and op.
import { attr } from "../onnx/ir.ts";
import { floatTensor, sizeOf, toNumbers, transposeTensor, type DType, type Tensor } from "../onnx/tensor.ts";
import { dtypeToOnnx } from "../onnx/serialize.ts";
import type { TfAttr, TfNode } from "../tfjs/graph-model.ts";
import { broadcastShapes } from "./broadcast.ts";
import { GraphBuilder, TO_NCHW, dtypeOf, onnxAxis, shapeOf, type Layout, type Value } from "./builder.ts";
import { ConversionError } from "./errors.ts";
import { resolveShape, tfDtype } from "./tf-const-eval.ts";

export interface OpContext {
  b: GraphBuilder;
  node: TfNode;
  inputs: Value[];
}

export type OpConverter = (ctx: OpContext) => Value[];

function fail(ctx: OpContext, message: string): never {
  throw new ConversionError(ctx.node.name, ctx.node.op, message);
}

function constInput(ctx: OpContext, i: number, what: string): Tensor {
  const v = ctx.inputs[i];
  if (!v) fail(ctx, `missing input ${i} (${what})`);
  if (v.kind !== "const") fail(ctx, `${what} (input ${i}) must be a constant for a static ONNX graph`);
  return v.tensor;
}

type ValuedAttr = Exclude<TfAttr, { kind: "other" }>;
type AttrValueOf = { [A in ValuedAttr as A["kind"]]: A["value"] };

function attrOf<K extends keyof AttrValueOf>(ctx: OpContext, key: string, kind: K): AttrValueOf[K] | undefined {
  const a = ctx.node.attrs[key];
  if (!a) return undefined;
  if (a.kind !== kind) fail(ctx, `attribute ${key} is ${a.kind}, expected ${kind}`);
  return (a as { value: unknown }).value as AttrValueOf[K];
}

function onnxValue(name: string, layout: Layout, shape: number[], dtype: DType): Value {
  return { kind: "onnx", name, layout, shape, dtype };
}

/** The layout most of the rank-4 non-constant operands already have. */
function preferredLayout(values: Value[], rank: number): Layout {
  if (rank !== 4) return "tf";
  return values.some((v) => v.kind === "onnx" && v.layout === "nchw") ? "nchw" : "tf";
}

// ---- convolution and pooling ---------------------------------------------------------

interface Window {
  pads: number[]; // ONNX order: [top, left, bottom, right]
  out: [number, number];
}

function windowGeometry(
  ctx: OpContext,
  inHW: [number, number],
  kernel: [number, number],
  strides: [number, number],
  dilations: [number, number],
): Window {
  const padding = attrOf(ctx, "padding", "s") ?? "VALID";
  const pads = [0, 0, 0, 0];
  const out: [number, number] = [0, 0];
  for (let a = 0; a < 2; a++) {
    const eff = (kernel[a] - 1) * dilations[a] + 1;
    if (padding === "SAME") {
      out[a] = Math.ceil(inHW[a] / strides[a]);
      const total = Math.max((out[a] - 1) * strides[a] + eff - inHW[a], 0);
      pads[a] = Math.floor(total / 2);
      pads[a + 2] = total - pads[a];
    } else if (padding === "VALID") {
      out[a] = Math.floor((inHW[a] - eff) / strides[a]) + 1;
    } else if (padding === "EXPLICIT") {
      const ep = attrOf(ctx, "explicit_paddings", "ints") ?? [];
      if (ep.length !== 8) fail(ctx, `explicit_paddings has ${ep.length} values, expected 8 (NHWC)`);
      pads[a] = ep[2 + 2 * a];
      pads[a + 2] = ep[3 + 2 * a];
      out[a] = Math.floor((inHW[a] + pads[a] + pads[a + 2] - eff) / strides[a]) + 1;
    } else fail(ctx, `padding ${padding} is not supported`);
    if (out[a] <= 0) fail(ctx, `window ${kernel} does not fit input ${inHW}`);
  }
  return { pads, out };
}

function nhwcPair(ctx: OpContext, key: string, fallback: number): [number, number] {
  const v = attrOf(ctx, key, "ints");
  if (!v) return [fallback, fallback];
  if (v.length !== 4 || v[0] !== 1 || v[3] !== 1) fail(ctx, `${key} [${v}] must be [1, h, w, 1] (NHWC)`);
  return [v[1], v[2]];
}

function requireNhwc(ctx: OpContext): void {
  const fmt = attrOf(ctx, "data_format", "s") ?? "NHWC";
  if (fmt !== "NHWC") fail(ctx, `data_format ${fmt} is not supported (TF.js graphs use NHWC)`);
}

function activation(ctx: OpContext, name: string, op: string, shape: number[]): string {
  const b = ctx.b;
  switch (op) {
    case "Relu":
      return b.node("Relu", [name], `${ctx.node.name}/relu`)[0];
    case "Relu6":
      return b.node("Clip", [name, b.initializer(floatTensor([], [0]), "zero"), b.initializer(floatTensor([], [6]), "six")], `${ctx.node.name}/relu6`)[0];
    case "LeakyRelu":
      return b.node("LeakyRelu", [name], `${ctx.node.name}/leakyrelu`, { alpha: attr.float(attrOf(ctx, "leakyrelu_alpha", "f") ?? 0.2) })[0];
    case "Elu":
      return b.node("Elu", [name], `${ctx.node.name}/elu`)[0];
    case "Sigmoid":
      return b.node("Sigmoid", [name], `${ctx.node.name}/sigmoid`)[0];
    default:
      return fail(ctx, `fused activation ${op} is not supported (shape [${shape}])`);
  }
}

function convolution(depthwise: boolean, fused: boolean): OpConverter {
  return (ctx) => {
    requireNhwc(ctx);
    const x = ctx.inputs[0];
    const xs = shapeOf(x);
    if (xs.length !== 4) fail(ctx, `input has shape [${xs}], expected rank 4 NHWC`);
    const w = constInput(ctx, 1, "filter");
    if (w.dims.length !== 4) fail(ctx, `filter has shape [${w.dims}], expected [kh, kw, in, out]`);
    const [kh, kw, cin, mult] = w.dims;
    if (cin !== xs[3]) fail(ctx, `filter expects ${cin} input channels but the input has ${xs[3]} (input shape [${xs}], filter [${w.dims}])`);
    const strides = nhwcPair(ctx, "strides", 1);
    const dilations = nhwcPair(ctx, "dilations", 1);
    const win = windowGeometry(ctx, [xs[1], xs[2]], [kh, kw], strides, dilations);
    let weight: Tensor;
    let cout: number;
    let group = 1;
    if (depthwise) {
      // [kh, kw, C, m] -> [C*m, 1, kh, kw]; output channel c*m + k reads input channel c
      const t = transposeTensor(w, [2, 3, 0, 1]);
      cout = cin * mult;
      weight = { ...t, dims: [cout, 1, kh, kw] };
      group = cin;
    } else {
      weight = transposeTensor(w, [3, 2, 0, 1]);
      cout = mult;
    }
    const b = ctx.b;
    const inputs = [b.asNchw(x, `${ctx.node.name}/input`), b.initializer(weight, `${ctx.node.name}/weight`)];
    const fusedOps = fused ? (attrOf(ctx, "fused_ops", "strings") ?? []) : [];
    let rest = fusedOps;
    if (fusedOps[0] === "BiasAdd") {
      const bias = constInput(ctx, 2, "bias");
      if (sizeOf(bias.dims) !== cout) fail(ctx, `bias has ${sizeOf(bias.dims)} values for ${cout} output channels`);
      inputs.push(b.initializer({ ...bias, dims: [cout] }, `${ctx.node.name}/bias`));
      rest = fusedOps.slice(1);
    } else if (fusedOps.length && fusedOps[0] !== "BiasAdd") fail(ctx, `fused ops [${fusedOps}] are not supported`);
    const shape = [xs[0], win.out[0], win.out[1], cout];
    let [out] = b.node("Conv", inputs, ctx.node.name, {
      kernel_shape: attr.ints([kh, kw]),
      strides: attr.ints(strides),
      dilations: attr.ints(dilations),
      pads: attr.ints(win.pads),
      group: attr.int(group),
    });
    for (const act of rest) out = activation(ctx, out, act, shape);
    return [onnxValue(out, "nchw", shape, "float32")];
  };
}

function pooling(onnxOp: "MaxPool" | "AveragePool"): OpConverter {
  return (ctx) => {
    requireNhwc(ctx);
    const x = ctx.inputs[0];
    const xs = shapeOf(x);
    if (xs.length !== 4) fail(ctx, `input has shape [${xs}], expected rank 4 NHWC`);
    const k = nhwcPair(ctx, "ksize", 1);
    const s = nhwcPair(ctx, "strides", 1);
    const win = windowGeometry(ctx, [xs[1], xs[2]], k, s, [1, 1]);
    const attrs = { kernel_shape: attr.ints(k), strides: attr.ints(s), pads: attr.ints(win.pads) };
    // TF's SAME average pool divides by the number of real pixels, ONNX's default too.
    const [out] = ctx.b.node(onnxOp, [ctx.b.asNchw(x, ctx.node.name)], ctx.node.name, attrs);
    return [onnxValue(out, "nchw", [xs[0], win.out[0], win.out[1], xs[3]], dtypeOf(x))];
  };
}

// ---- elementwise -------------------------------------------------------------------------

function unary(onnxOp: string, attrs: (ctx: OpContext) => Record<string, ReturnType<typeof attr.float>> = () => ({})): OpConverter {
  return (ctx) => {
    const x = ctx.inputs[0];
    if (x.kind === "const") fail(ctx, "constant input reached an op with no constant evaluator");
    const [out] = ctx.b.node(onnxOp, [x.name], ctx.node.name, attrs(ctx));
    return [onnxValue(out, x.layout, x.shape, x.dtype)];
  };
}

const relu6: OpConverter = (ctx) => {
  const x = ctx.inputs[0];
  if (x.kind === "const") fail(ctx, "constant input");
  const out = activation(ctx, x.name, "Relu6", x.shape);
  return [onnxValue(out, x.layout, x.shape, x.dtype)];
};

function binaryOp(onnxOp: string, outDtype?: DType): OpConverter {
  return (ctx) => {
    const [a, c] = ctx.inputs;
    const as = shapeOf(a);
    const cs = shapeOf(c);
    const shape = broadcastShapes(as, cs);
    if (!shape) fail(ctx, `cannot broadcast [${as}] with [${cs}]`);
    const layout = preferredLayout(ctx.inputs, shape.length);
    const b = ctx.b;
    const operand = (v: Value, i: number): string => {
      const base = `${ctx.node.name}/operand${i}`;
      if (v.kind === "const") return b.broadcastConst(v.tensor, layout, base);
      if (layout === "nchw" && v.shape.length !== 4)
        fail(ctx, `operand ${i} of shape [${v.shape}] would need a layout change to broadcast against an NCHW tensor`);
      return b.asLayout(v, layout, base);
    };
    const [out] = b.node(onnxOp, [operand(a, 0), operand(c, 1)], ctx.node.name);
    return [onnxValue(out, layout, shape, outDtype ?? dtypeOf(a.kind === "const" ? c : a))];
  };
}

/** TF FloorDiv/FloorMod on integers. ONNX Div truncates, so floor needs a correction. */
const floorDiv: OpConverter = (ctx) => {
  const [a] = ctx.inputs;
  const dt = dtypeOf(a);
  if (dt === "float32") {
    const [q] = binaryOp("Div")(ctx);
    if (q.kind !== "onnx") return [q];
    const [out] = ctx.b.node("Floor", [q.name], `${ctx.node.name}/floor`);
    return [{ ...q, name: out }];
  }
  // floor(a / b) = (a - mod(a, b)) / b with ONNX Mod (fmod=0 takes the divisor's sign, as floor division does)
  const [x, y] = ctx.inputs;
  const shape = broadcastShapes(shapeOf(x), shapeOf(y));
  if (!shape) fail(ctx, `cannot broadcast [${shapeOf(x)}] with [${shapeOf(y)}]`);
  const b = ctx.b;
  const xa = b.asTf(x, `${ctx.node.name}/x`);
  const ya = b.asTf(y, `${ctx.node.name}/y`);
  const [m] = b.node("Mod", [xa, ya], `${ctx.node.name}/mod`, { fmod: attr.int(0) });
  const [d] = b.node("Sub", [xa, m], `${ctx.node.name}/sub`);
  const [out] = b.node("Div", [d, ya], ctx.node.name);
  return [onnxValue(out, "tf", shape, dt)];
};

const floorMod: OpConverter = (ctx) => {
  const [x, y] = ctx.inputs;
  if (dtypeOf(x) === "float32") fail(ctx, "FloorMod on floats is not supported");
  const shape = broadcastShapes(shapeOf(x), shapeOf(y));
  if (!shape) fail(ctx, `cannot broadcast [${shapeOf(x)}] with [${shapeOf(y)}]`);
  const b = ctx.b;
  const [out] = b.node("Mod", [b.asTf(x, `${ctx.node.name}/x`), b.asTf(y, `${ctx.node.name}/y`)], ctx.node.name, { fmod: attr.int(0) });
  return [onnxValue(out, "tf", shape, dtypeOf(x))];
};

const cast: OpConverter = (ctx) => {
  const x = ctx.inputs[0];
  if (x.kind === "const") fail(ctx, "constant input");
  const to = tfDtype(ctx.node, "DstT");
  const [out] = ctx.b.node("Cast", [x.name], ctx.node.name, { to: attr.int(dtypeToOnnx(to)) });
  return [onnxValue(out, x.layout, x.shape, to)];
};

// ---- layout and shape ----------------------------------------------------------------

const identity: OpConverter = (ctx) => [ctx.inputs[0]];

const transpose: OpConverter = (ctx) => {
  const x = ctx.inputs[0];
  const perm = toNumbers(constInput(ctx, 1, "perm"));
  if (x.kind === "const") return [{ kind: "const", tensor: transposeTensor(x.tensor, perm) }];
  const shape = perm.map((p) => x.shape[p]);
  // Which ONNX permutation R turns what we hold into the result in layout U?
  // held axis j = TF axis H[j]; result axis i (in U) = TF-result axis U[i] = input axis P[U[i]].
  const held: readonly number[] = x.layout === "nchw" ? TO_NCHW : perm.map((_, i) => i);
  const candidates: Layout[] = perm.length === 4 ? ["tf", "nchw"] : ["tf"];
  let best: { layout: Layout; r: number[] } | undefined;
  for (const layout of candidates) {
    const u = layout === "nchw" ? TO_NCHW : perm.map((_, i) => i);
    const r = u.map((ui) => held.indexOf(perm[ui]));
    if (r.every((v, i) => v === i)) return [{ ...x, layout, shape }];
    if (layout === "tf") best = { layout, r };
  }
  const [out] = ctx.b.node("Transpose", [x.name], ctx.node.name, { perm: attr.ints(best!.r) });
  return [onnxValue(out, "tf", shape, x.dtype)];
};

const reshape: OpConverter = (ctx) => {
  const x = ctx.inputs[0];
  if (x.kind === "const") fail(ctx, "constant input reached Reshape without folding");
  const target = resolveShape(ctx.node, toNumbers(constInput(ctx, 1, "shape")), sizeOf(x.shape));
  const b = ctx.b;
  const [out] = b.node("Reshape", [b.asTf(x, ctx.node.name), b.int64(target, `${ctx.node.name}/shape`)], ctx.node.name);
  return [onnxValue(out, "tf", target, x.dtype)];
};

const expandDims: OpConverter = (ctx) => {
  const x = ctx.inputs[0];
  if (x.kind === "const") fail(ctx, "constant input");
  let d = toNumbers(constInput(ctx, 1, "dim"))[0];
  if (d < 0) d += x.shape.length + 1;
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  const b = ctx.b;
  const [out] = b.node("Unsqueeze", [b.asTf(x, ctx.node.name), b.int64([d], `${ctx.node.name}/axes`)], ctx.node.name);
  return [onnxValue(out, "tf", shape, x.dtype)];
};

function padOp(withValue: boolean): OpConverter {
  return (ctx) => {
    const x = ctx.inputs[0];
    if (x.kind === "const") fail(ctx, "constant input");
    const paddings = constInput(ctx, 1, "paddings");
    const rank = x.shape.length;
    if (paddings.dims[0] !== rank || paddings.dims[1] !== 2) fail(ctx, `paddings [${paddings.dims}] do not fit input rank ${rank}`);
    const p = toNumbers(paddings);
    const begins = new Array<number>(rank);
    const ends = new Array<number>(rank);
    for (let tfAxis = 0; tfAxis < rank; tfAxis++) {
      const o = onnxAxis(tfAxis, rank, x.layout);
      begins[o] = p[2 * tfAxis];
      ends[o] = p[2 * tfAxis + 1];
    }
    const shape = x.shape.map((d, i) => d + p[2 * i] + p[2 * i + 1]);
    const b = ctx.b;
    const inputs = [x.name, b.int64([...begins, ...ends], `${ctx.node.name}/pads`)];
    if (withValue) {
      const v = constInput(ctx, 2, "constant_values");
      inputs.push(b.initializer(floatTensor([], [toNumbers(v)[0]]), `${ctx.node.name}/value`));
    }
    const [out] = b.node("Pad", inputs, ctx.node.name, { mode: attr.string("constant") });
    return [onnxValue(out, x.layout, shape, x.dtype)];
  };
}

const concat: OpConverter = (ctx) => {
  const parts = ctx.inputs.slice(0, -1);
  const rank = shapeOf(parts[0]).length;
  let axis = toNumbers(constInput(ctx, ctx.inputs.length - 1, "axis"))[0];
  if (axis < 0) axis += rank;
  const shape = [...shapeOf(parts[0])];
  shape[axis] = 0;
  for (const [i, p] of parts.entries()) {
    const ps = shapeOf(p);
    if (ps.length !== rank || ps.some((d, k) => k !== axis && d !== shapeOf(parts[0])[k]))
      fail(ctx, `input ${i} has shape [${ps}], which does not concatenate with [${shapeOf(parts[0])}] on axis ${axis}`);
    shape[axis] += ps[axis];
  }
  const layout = preferredLayout(parts, rank);
  const b = ctx.b;
  const names = parts.map((p, i) => b.asLayout(p, layout, `${ctx.node.name}/part${i}`));
  const [out] = b.node("Concat", names, ctx.node.name, { axis: attr.int(onnxAxis(axis, rank, layout)) });
  return [onnxValue(out, layout, shape, dtypeOf(parts[0]))];
};

function splitInto(ctx: OpContext, x: Value, axis: number, sizes: number[]): Value[] {
  if (x.kind === "const") fail(ctx, "constant input");
  const rank = x.shape.length;
  if (axis < 0) axis += rank;
  const total = x.shape[axis];
  const known = sizes.filter((s) => s >= 0).reduce((s, v) => s + v, 0);
  sizes = sizes.map((s) => (s < 0 ? total - known : s));
  if (sizes.reduce((s, v) => s + v, 0) !== total) fail(ctx, `split sizes [${sizes}] do not add up to ${total} (axis ${axis} of [${x.shape}])`);
  const b = ctx.b;
  const outs = b.node("Split", [x.name, b.int64(sizes, `${ctx.node.name}/split`)], ctx.node.name, { axis: attr.int(onnxAxis(axis, rank, x.layout)) }, sizes.length);
  return outs.map((name, i) => {
    const shape = [...x.shape];
    shape[axis] = sizes[i];
    return onnxValue(name, x.layout, shape, x.dtype);
  });
}

const splitV: OpConverter = (ctx) =>
  splitInto(ctx, ctx.inputs[0], toNumbers(constInput(ctx, 2, "axis"))[0], toNumbers(constInput(ctx, 1, "size_splits")));

const split: OpConverter = (ctx) => {
  const x = ctx.inputs[1];
  const axis = toNumbers(constInput(ctx, 0, "axis"))[0];
  const n = attrOf(ctx, "num_split", "i") ?? 1;
  const dim = shapeOf(x)[axis < 0 ? axis + shapeOf(x).length : axis];
  if (dim % n) fail(ctx, `cannot split ${dim} into ${n} equal parts`);
  return splitInto(ctx, x, axis, new Array<number>(n).fill(dim / n));
};

function resize(mode: "linear" | "nearest"): OpConverter {
  return (ctx) => {
    const x = ctx.inputs[0];
    const xs = shapeOf(x);
    if (xs.length !== 4) fail(ctx, `input has shape [${xs}], expected rank 4 NHWC`);
    const size = toNumbers(constInput(ctx, 1, "size"));
    if (size.length !== 2 || size.some((s) => !(s > 0))) fail(ctx, `size [${size}] must be two positive integers`);
    const alignCorners = attrOf(ctx, "align_corners", "b") ?? false;
    const halfPixel = attrOf(ctx, "half_pixel_centers", "b") ?? false;
    const ctm = alignCorners ? "align_corners" : halfPixel ? (mode === "linear" ? "half_pixel" : "tf_half_pixel_for_nn") : "asymmetric";
    const b = ctx.b;
    const attrs = { mode: attr.string(mode), coordinate_transformation_mode: attr.string(ctm) } as Record<string, ReturnType<typeof attr.string>>;
    if (mode === "nearest") attrs.nearest_mode = attr.string(alignCorners ? "round_prefer_ceil" : "floor");
    const [out] = b.node(
      "Resize",
      [b.asNchw(x, ctx.node.name), "", "", b.int64([xs[0], xs[3], size[0], size[1]], `${ctx.node.name}/sizes`)],
      ctx.node.name,
      attrs,
    );
    return [onnxValue(out, "nchw", [xs[0], size[0], size[1], xs[3]], "float32")];
  };
}

function reduce(onnxOp: string): OpConverter {
  return (ctx) => {
    const x = ctx.inputs[0];
    if (x.kind === "const") fail(ctx, "constant input");
    const rank = x.shape.length;
    const axes = toNumbers(constInput(ctx, 1, "reduction_indices")).map((a) => (a < 0 ? a + rank : a));
    const keep = attrOf(ctx, "keep_dims", "b") ?? false;
    const layout: Layout = keep ? x.layout : "tf";
    const b = ctx.b;
    const input = b.asLayout(x, layout, ctx.node.name);
    const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    const [out] = b.node(onnxOp, [input], ctx.node.name, {
      axes: attr.ints(axes.map((a) => onnxAxis(a, rank, layout)).sort((p, q) => p - q)),
      keepdims: attr.int(keep ? 1 : 0),
    });
    return [onnxValue(out, layout, shape, x.dtype)];
  };
}

const topK: OpConverter = (ctx) => {
  const x = ctx.inputs[0];
  if (x.kind === "const") fail(ctx, "constant input");
  const k = toNumbers(constInput(ctx, 1, "k"))[0];
  const shape = [...x.shape.slice(0, -1), k];
  if (k > x.shape[x.shape.length - 1]) fail(ctx, `k=${k} exceeds the last dimension of [${x.shape}]`);
  const b = ctx.b;
  const [values, indices64] = b.node("TopK", [b.asTf(x, ctx.node.name), b.int64([k], `${ctx.node.name}/k`)], ctx.node.name, { axis: attr.int(-1), largest: attr.int(1), sorted: attr.int(1) }, 2);
  // TF returns int32 indices; the graph's index arithmetic expects them.
  const [indices] = b.node("Cast", [indices64], `${ctx.node.name}:1`, { to: attr.int(dtypeToOnnx("int32")) });
  return [onnxValue(values, "tf", shape, x.dtype), onnxValue(indices, "tf", shape, "int32")];
};

const gather: OpConverter = (ctx) => {
  const [params, indices] = ctx.inputs;
  const axisRaw = toNumbers(constInput(ctx, 2, "axis"))[0];
  const ps = shapeOf(params);
  const axis = axisRaw < 0 ? axisRaw + ps.length : axisRaw;
  if ((attrOf(ctx, "batch_dims", "i") ?? 0) !== 0) fail(ctx, "batch_dims other than 0 are not supported");
  const b = ctx.b;
  const shape = [...ps.slice(0, axis), ...shapeOf(indices), ...ps.slice(axis + 1)];
  const [out] = b.node("Gather", [b.asTf(params, `${ctx.node.name}/params`), b.asTf(indices, `${ctx.node.name}/indices`)], ctx.node.name, { axis: attr.int(axis) });
  return [onnxValue(out, "tf", shape, dtypeOf(params))];
};

const stridedSlice: OpConverter = (ctx) => {
  const x = ctx.inputs[0];
  if (x.kind === "const") fail(ctx, "constant input");
  for (const m of ["ellipsis_mask", "new_axis_mask"]) if ((attrOf(ctx, m, "i") ?? 0) !== 0) fail(ctx, `${m} is not supported`);
  const begin = toNumbers(constInput(ctx, 1, "begin"));
  const end = toNumbers(constInput(ctx, 2, "end"));
  const strides = toNumbers(constInput(ctx, 3, "strides"));
  const beginMask = attrOf(ctx, "begin_mask", "i") ?? 0;
  const endMask = attrOf(ctx, "end_mask", "i") ?? 0;
  const shrink = attrOf(ctx, "shrink_axis_mask", "i") ?? 0;
  const starts: number[] = [];
  const ends: number[] = [];
  const axes: number[] = [];
  const steps: number[] = [];
  const shape: number[] = [];
  const squeeze: number[] = [];
  for (let a = 0; a < x.shape.length; a++) {
    const dim = x.shape[a];
    if (a >= begin.length) {
      shape.push(dim);
      continue;
    }
    const step = strides[a];
    if (step !== 1) fail(ctx, `stride ${step} on axis ${a} is not supported`);
    let s = beginMask & (1 << a) ? 0 : begin[a];
    let e = endMask & (1 << a) ? dim : end[a];
    if (shrink & (1 << a)) {
      e = s + 1;
      squeeze.push(a);
    }
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    starts.push(s);
    ends.push(e);
    axes.push(a);
    steps.push(1);
    if (!(shrink & (1 << a))) shape.push(Math.max(e - s, 0));
  }
  const b = ctx.b;
  const n = ctx.node.name;
  let [out] = b.node("Slice", [b.asTf(x, n), b.int64(starts, `${n}/starts`), b.int64(ends, `${n}/ends`), b.int64(axes, `${n}/axes`), b.int64(steps, `${n}/steps`)], n);
  if (squeeze.length) [out] = b.node("Squeeze", [out, b.int64(squeeze, `${n}/squeeze_axes`)], `${n}/squeeze`);
  return [onnxValue(out, "tf", shape, x.dtype)];
};

export const OP_CONVERTERS: Record<string, OpConverter> = {
  Identity: identity,
  StopGradient: identity,
  Conv2D: convolution(false, false),
  _FusedConv2D: convolution(false, true),
  DepthwiseConv2dNative: convolution(true, false),
  FusedDepthwiseConv2dNative: convolution(true, true),
  MaxPool: pooling("MaxPool"),
  AvgPool: pooling("AveragePool"),
  Relu: unary("Relu"),
  Relu6: relu6,
  LeakyRelu: unary("LeakyRelu", (ctx) => ({ alpha: attr.float(attrOf(ctx, "alpha", "f") ?? 0.2) })),
  Sigmoid: unary("Sigmoid"),
  Tanh: unary("Tanh"),
  Elu: unary("Elu"),
  Exp: unary("Exp"),
  Add: binaryOp("Add"),
  AddV2: binaryOp("Add"),
  BiasAdd: binaryOp("Add"),
  Sub: binaryOp("Sub"),
  Mul: binaryOp("Mul"),
  RealDiv: binaryOp("Div"),
  Maximum: binaryOp("Max"),
  Minimum: binaryOp("Min"),
  Equal: binaryOp("Equal", "bool"),
  Greater: binaryOp("Greater", "bool"),
  Less: binaryOp("Less", "bool"),
  FloorDiv: floorDiv,
  FloorMod: floorMod,
  Cast: cast,
  Transpose: transpose,
  Reshape: reshape,
  ExpandDims: expandDims,
  Pad: padOp(false),
  PadV2: padOp(true),
  ConcatV2: concat,
  SplitV: splitV,
  Split: split,
  ResizeBilinear: resize("linear"),
  ResizeNearestNeighbor: resize("nearest"),
  Mean: reduce("ReduceMean"),
  Max: reduce("ReduceMax"),
  Sum: reduce("ReduceSum"),
  TopKV2: topK,
  GatherV2: gather,
  StridedSlice: stridedSlice,
};
