// ONNX protobuf <-> OnnxGraph. Writing is deterministic (no timestamps, sorted metadata),
// so building the same model twice gives the same bytes and the same sha256.
import onnxProto from "onnx-proto";
import type { AttrValue, OnnxGraph, OnnxNode, ValueInfo } from "./ir.ts";
import { bytesPerElement, sizeOf, type DType, type Tensor, type TensorData } from "./tensor.ts";

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

export const IR_VERSION = 7; // ONNX 1.7+, understood by python3-onnx 1.12 and every ORT since 1.6

const DTYPE_TO_ONNX: Record<DType, number> = {
  float32: DT.FLOAT,
  float16: DT.FLOAT16,
  int32: DT.INT32,
  int64: DT.INT64,
  uint8: DT.UINT8,
  int8: DT.INT8,
  bool: DT.BOOL,
};

export function dtypeToOnnx(d: DType): number {
  return DTYPE_TO_ONNX[d];
}

export function dtypeFromOnnx(code: number, where: string): DType {
  for (const [k, v] of Object.entries(DTYPE_TO_ONNX)) if (v === code) return k as DType;
  throw new Error(`${where}: unsupported ONNX tensor element type ${code}`);
}

function tensorToProto(name: string, t: Tensor): onnxProto.onnx.ITensorProto {
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name, dims: t.dims, dataType: DTYPE_TO_ONNX[t.dtype], rawData: Uint8Array.from(raw) };
}

function num(v: number | { toNumber(): number }): number {
  return typeof v === "number" ? v : v.toNumber();
}

function tensorFromProto(p: onnxProto.onnx.ITensorProto, where: string): Tensor {
  const dtype = dtypeFromOnnx(p.dataType ?? 0, where);
  const dims = (p.dims ?? []).map(num);
  const n = sizeOf(dims);
  if (p.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)
    throw new Error(`${where}: tensor ${p.name} uses external data, which perceptd does not read`);
  const data = allocate(dtype, n);
  if (p.rawData && p.rawData.length) {
    const expected = n * bytesPerElement(dtype);
    if (p.rawData.length !== expected)
      throw new Error(`${where}: tensor ${p.name} has ${p.rawData.length} bytes of raw data, expected ${expected} for dims [${dims}]`);
    new Uint8Array(data.buffer).set(p.rawData);
  } else {
    const src: ArrayLike<number | { toNumber(): number }> =
      dtype === "float32" ? (p.floatData ?? []) : dtype === "int64" ? (p.int64Data ?? []) : (p.int32Data ?? []);
    if (src.length !== n) throw new Error(`${where}: tensor ${p.name} has ${src.length} values, expected ${n} for dims [${dims}]`);
    for (let i = 0; i < n; i++) {
      const v = src[i];
      if (data instanceof BigInt64Array) data[i] = BigInt(num(v as number));
      else (data as Float32Array)[i] = num(v as number);
    }
  }
  return { dtype, dims, data };
}

function allocate(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case "float32":
      return new Float32Array(n);
    case "float16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "uint8":
    case "bool":
      return new Uint8Array(n);
    case "int8":
      return new Int8Array(n);
  }
}

function attrToProto(name: string, a: AttrValue): onnxProto.onnx.IAttributeProto {
  switch (a.kind) {
    case "int":
      return { name, type: AT.INT, i: a.value };
    case "ints":
      return { name, type: AT.INTS, ints: a.value };
    case "float":
      return { name, type: AT.FLOAT, f: a.value };
    case "floats":
      return { name, type: AT.FLOATS, floats: a.value };
    case "string":
      return { name, type: AT.STRING, s: new TextEncoder().encode(a.value) };
    case "tensor":
      return { name, type: AT.TENSOR, t: tensorToProto("", a.value) };
  }
}

function attrFromProto(p: onnxProto.onnx.IAttributeProto, where: string): AttrValue {
  switch (p.type) {
    case AT.INT:
      return { kind: "int", value: num(p.i ?? 0) };
    case AT.INTS:
      return { kind: "ints", value: (p.ints ?? []).map(num) };
    case AT.FLOAT:
      return { kind: "float", value: p.f ?? 0 };
    case AT.FLOATS:
      return { kind: "floats", value: [...(p.floats ?? [])] };
    case AT.STRING:
      return { kind: "string", value: new TextDecoder().decode(p.s ?? new Uint8Array()) };
    case AT.TENSOR:
      return { kind: "tensor", value: tensorFromProto(p.t ?? {}, where) };
    default:
      throw new Error(`${where}: attribute ${p.name} has type ${p.type}, which perceptd does not handle`);
  }
}

function valueInfoToProto(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: { tensorType: { elemType: DTYPE_TO_ONNX[v.dtype], shape: { dim: v.dims.map((d) => ({ dimValue: d })) } } },
  };
}

function valueInfoFromProto(p: onnxProto.onnx.IValueInfoProto, where: string): ValueInfo {
  const tt = p.type?.tensorType;
  if (!tt) throw new Error(`${where}: graph input/output ${p.name} is not a tensor`);
  const dims = (tt.shape?.dim ?? []).map((d, i) => {
    if (d.dimValue === undefined || d.dimValue === null || d.dimParam)
      throw new Error(`${where}: ${p.name} has a dynamic dimension ${i} (${d.dimParam ?? "?"}); perceptd needs static shapes`);
    return num(d.dimValue);
  });
  return { name: p.name ?? "", dtype: dtypeFromOnnx(tt.elemType ?? 0, `${where}: ${p.name}`), dims };
}

export function encodeModel(g: OnnxGraph, producer = "perceptd"): Uint8Array {
  const model: onnxProto.onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: producer,
    producerVersion: "1",
    opsetImport: [{ domain: "", version: g.opset }],
    docString: g.docString ?? "",
    metadataProps: Object.keys(g.metadata)
      .sort()
      .map((key) => ({ key, value: g.metadata[key] })),
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.keys(n.attrs)
          .sort()
          .map((k) => attrToProto(k, n.attrs[k])),
      })),
      initializer: [...g.initializers.entries()].map(([name, t]) => tensorToProto(name, t)),
      input: g.inputs.map(valueInfoToProto),
      output: g.outputs.map(valueInfoToProto),
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

export function decodeModel(bytes: Uint8Array, where: string): OnnxGraph {
  let m: onnxProto.onnx.ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${where}: not an ONNX model (${(e as Error).message})`);
  }
  const g = m.graph;
  if (!g || !g.node?.length) throw new Error(`${where}: ONNX model has no graph`);
  const opset = m.opsetImport?.find((o) => !o.domain || o.domain === "ai.onnx")?.version;
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? "", tensorFromProto(t, where));
  const nodes: OnnxNode[] = (g.node ?? []).map((n, i) => {
    if (n.domain && n.domain !== "ai.onnx")
      throw new Error(`${where}: node ${n.name || i} (${n.opType}) is in domain ${n.domain}; only the default domain is supported`);
    return {
      name: n.name || `node_${i}`,
      opType: n.opType ?? "",
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? "", attrFromProto(a, `${where}: node ${n.name}`)])),
    };
  });
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) metadata[p.key ?? ""] = p.value ?? "";
  return {
    name: g.name ?? "graph",
    nodes,
    initializers,
    inputs: (g.input ?? []).filter((i) => !initializers.has(i.name ?? "")).map((v) => valueInfoFromProto(v, where)),
    outputs: (g.output ?? []).map((v) => valueInfoFromProto(v, where)),
    opset: num(opset ?? 13),
    metadata,
    docString: m.docString ?? undefined,
  };
}
