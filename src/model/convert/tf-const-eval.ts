// Evaluates TF nodes whose inputs are all constants, in TF semantics. TF.js exports leave
// shape arithmetic in the graph (NanoDet computes its Reshape targets with SparseToDense
// and AddV2 on int64); folding it here gives the static shapes ONNX wants.
import { fromNumbers, sizeOf, toNumbers, transposeTensor, type Tensor } from "../onnx/tensor.ts";
import { broadcastBinary, broadcastShapes } from "./broadcast.ts";
import type { TfNode } from "../tfjs/graph-model.ts";
import { ConversionError } from "./errors.ts";

type Evaluator = (node: TfNode, inputs: Tensor[]) => Tensor[];

const BINARY: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  AddV2: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  RealDiv: (x, y) => x / y,
  FloorDiv: (x, y) => Math.floor(x / y),
  FloorMod: (x, y) => x - Math.floor(x / y) * y,
  Maximum: (x, y) => Math.max(x, y),
  Minimum: (x, y) => Math.min(x, y),
};

function binary(node: TfNode, [a, b]: Tensor[]): Tensor[] {
  const dims = broadcastShapes(a.dims, b.dims);
  if (!dims) throw new ConversionError(node.name, node.op, `cannot broadcast [${a.dims}] with [${b.dims}]`);
  const f = BINARY[node.op];
  const out = broadcastBinary(toNumbers(a), a.dims, toNumbers(b), b.dims, dims, f);
  const dtype = a.dtype === "float32" || b.dtype === "float32" ? "float32" : a.dtype;
  return [fromNumbers(dtype, dims, out)];
}

function resolveShape(node: TfNode, target: number[], count: number): number[] {
  const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const unknown = target.filter((d) => d === -1).length;
  if (unknown > 1) throw new ConversionError(node.name, node.op, `shape [${target}] has more than one -1`);
  const shape = target.map((d) => (d === -1 ? count / known : d));
  if (sizeOf(shape) !== count || shape.some((d) => !Number.isInteger(d)))
    throw new ConversionError(node.name, node.op, `cannot reshape ${count} elements to [${target}]`);
  return shape;
}

export { resolveShape };

function tfDtype(node: TfNode, key: string): Tensor["dtype"] {
  const a = node.attrs[key];
  const t = a?.kind === "type" ? a.value : "DT_FLOAT";
  switch (t) {
    case "DT_FLOAT":
      return "float32";
    case "DT_INT32":
    case "DT_INT64": // TF.js runs int64 as int32; shape values fit
      return "int32";
    case "DT_BOOL":
      return "bool";
    case "DT_UINT8":
      return "uint8";
    default:
      throw new ConversionError(node.name, node.op, `dtype ${t} is not supported`);
  }
}

export { tfDtype };

const EVALUATORS: Record<string, Evaluator> = {
  Identity: (_n, [x]) => [x],
  Cast: (n, [x]) => [fromNumbers(tfDtype(n, "DstT"), x.dims, toNumbers(x))],
  ...Object.fromEntries(Object.keys(BINARY).map((op) => [op, binary])),
  SparseToDense: (n, [indices, outputShape, values, deflt]) => {
    const shape = toNumbers(outputShape);
    const dense = new Array<number>(sizeOf(shape)).fill(toNumbers(deflt)[0]);
    const idx = toNumbers(indices);
    const vals = toNumbers(values);
    const rank = shape.length;
    const count = indices.dims.length === 0 ? 1 : indices.dims[0];
    for (let k = 0; k < count; k++) {
      let off = 0;
      for (let d = 0; d < rank; d++) off = off * shape[d] + idx[k * rank + d];
      if (off < 0 || off >= dense.length) throw new ConversionError(n.name, n.op, `index out of range`);
      dense[off] = vals.length === 1 ? vals[0] : vals[k];
    }
    return [fromNumbers(values.dtype, shape, dense)];
  },
  GatherV2: (n, [params, indices, axisT]) => {
    const axis = toNumbers(axisT)[0];
    if (axis !== 0) throw new ConversionError(n.name, n.op, `constant GatherV2 only on axis 0, got ${axis}`);
    const inner = sizeOf(params.dims.slice(1));
    const src = toNumbers(params);
    const out: number[] = [];
    for (const i of toNumbers(indices)) out.push(...src.slice(i * inner, (i + 1) * inner));
    return [fromNumbers(params.dtype, [...indices.dims, ...params.dims.slice(1)], out)];
  },
  ConcatV2: (n, inputs) => {
    const axisT = inputs[inputs.length - 1];
    const parts = inputs.slice(0, -1);
    const rank = parts[0].dims.length;
    let axis = toNumbers(axisT)[0];
    if (axis < 0) axis += rank;
    if (axis !== 0) throw new ConversionError(n.name, n.op, `constant ConcatV2 only on axis 0`);
    const values = parts.flatMap((p) => toNumbers(p));
    const dims = [parts.reduce((s, p) => s + p.dims[0], 0), ...parts[0].dims.slice(1)];
    return [fromNumbers(parts[0].dtype, dims, values)];
  },
  Reshape: (n, [x, shapeT]) => [{ ...x, dims: resolveShape(n, toNumbers(shapeT), sizeOf(x.dims)) }],
  ExpandDims: (_n, [x, dimT]) => {
    let d = toNumbers(dimT)[0];
    if (d < 0) d += x.dims.length + 1;
    const dims = [...x.dims];
    dims.splice(d, 0, 1);
    return [{ ...x, dims }];
  },
  Transpose: (_n, [x, permT]) => [transposeTensor(x, toNumbers(permT))],
  Pack: (n, inputs) => {
    const axisAttr = n.attrs.axis;
    const axis = axisAttr?.kind === "i" ? axisAttr.value : 0;
    if (axis !== 0) throw new ConversionError(n.name, n.op, `constant Pack only on axis 0`);
    return [fromNumbers(inputs[0].dtype, [inputs.length, ...inputs[0].dims], inputs.flatMap((t) => toNumbers(t)))];
  },
};

export function canEvaluate(op: string): boolean {
  return op in EVALUATORS;
}

export function evaluate(node: TfNode, inputs: Tensor[]): Tensor[] {
  const f = EVALUATORS[node.op];
  if (!f) throw new ConversionError(node.name, node.op, "no constant evaluator");
  return f(node, inputs);
}
