// Reads a TensorFlow.js graph model (model.json + weight shards) into plain data: the
// GraphDef nodes with decoded attributes and every weight as a Tensor. Our own reader
// (TF.js itself is only used to verify), so conversion does not depend on its runtime.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { halfToFloat, sizeOf, type DType, type Tensor } from "../onnx/tensor.ts";

/** A decoded GraphDef attribute value. */
export type TfAttr =
  | { kind: "i"; value: number }
  | { kind: "f"; value: number }
  | { kind: "b"; value: boolean }
  | { kind: "s"; value: string }
  | { kind: "type"; value: string }
  | { kind: "ints"; value: number[] }
  | { kind: "floats"; value: number[] }
  | { kind: "strings"; value: string[] }
  | { kind: "shape"; value: number[] }
  | { kind: "tensor"; value: Tensor }
  | { kind: "other" };

export interface TfNode {
  name: string;
  op: string;
  /** inputs as written in the GraphDef: "node", "node:1"; control inputs ("^node") removed */
  inputs: string[];
  attrs: Record<string, TfAttr>;
}

export interface TfSignatureEntry {
  name: string;
  dtype: string;
  shape: number[];
}

export interface TfGraphModel {
  path: string;
  nodes: TfNode[];
  weights: Map<string, Tensor>;
  inputs: TfSignatureEntry[];
  outputs: TfSignatureEntry[];
  generatedBy?: string;
  convertedBy?: string;
}

interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number; original_dtype?: string };
}

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  modelTopology?: { node?: RawNode[] };
  weightsManifest?: { paths: string[]; weights: WeightEntry[] }[];
  signature?: {
    inputs?: Record<string, RawSigEntry>;
    outputs?: Record<string, RawSigEntry>;
  };
}

interface RawNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, RawAttr>;
}

interface RawSigEntry {
  name: string;
  dtype?: string;
  tensorShape?: { dim?: { size?: string }[] };
}

interface RawAttr {
  i?: string;
  f?: number;
  b?: boolean;
  s?: string;
  type?: string;
  shape?: { dim?: { size?: string }[]; unknownRank?: boolean };
  list?: { i?: string[]; f?: number[]; s?: string[]; type?: string[] };
  tensor?: unknown;
}

export class TfModelError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "TfModelError";
  }
}

function decodeAttr(a: RawAttr): TfAttr {
  if (a.i !== undefined) return { kind: "i", value: Number(a.i) };
  if (a.f !== undefined) return { kind: "f", value: a.f };
  if (a.b !== undefined) return { kind: "b", value: a.b };
  if (a.s !== undefined) return { kind: "s", value: Buffer.from(a.s, "base64").toString("utf8") };
  if (a.type !== undefined) return { kind: "type", value: a.type };
  if (a.shape !== undefined) return { kind: "shape", value: (a.shape.dim ?? []).map((d) => Number(d.size ?? -1)) };
  if (a.list !== undefined) {
    if (a.list.i) return { kind: "ints", value: a.list.i.map(Number) };
    if (a.list.f) return { kind: "floats", value: a.list.f };
    if (a.list.s) return { kind: "strings", value: a.list.s.map((s) => Buffer.from(s, "base64").toString("utf8")) };
    return { kind: "ints", value: [] };
  }
  return { kind: "other" };
}

const TF_INT_TYPES = new Set(["int32", "int64"]);

/** Decodes one weight from the concatenated shard bytes; returns the tensor and bytes used. */
function decodeWeight(file: string, w: WeightEntry, buf: Buffer, offset: number): [Tensor, number] {
  const n = sizeOf(w.shape);
  const q = w.quantization;
  const need = (bytes: number): void => {
    if (offset + bytes > buf.length)
      throw new TfModelError(
        file,
        `weight ${w.name} needs bytes ${offset}..${offset + bytes} but the weight data is only ${buf.length} bytes long (truncated .bin?)`,
      );
  };
  if (q) {
    if (q.dtype === "float16") {
      need(2 * n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(buf.readUInt16LE(offset + 2 * i));
      return [{ dtype: "float32", dims: [...w.shape], data: out }, 2 * n];
    }
    if (q.dtype === "uint8" || q.dtype === "uint16") {
      const size = q.dtype === "uint8" ? 1 : 2;
      need(size * n);
      const scale = q.scale ?? 1;
      const min = q.min ?? 0;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const v = size === 1 ? buf[offset + i] : buf.readUInt16LE(offset + 2 * i);
        out[i] = v * scale + min;
      }
      if (TF_INT_TYPES.has(w.dtype)) return [{ dtype: "int32", dims: [...w.shape], data: Int32Array.from(out, Math.round) }, size * n];
      return [{ dtype: "float32", dims: [...w.shape], data: out }, size * n];
    }
    throw new TfModelError(file, `weight ${w.name} uses quantization ${q.dtype}, which the importer does not handle`);
  }
  need(4 * n);
  const slice = buf.subarray(offset, offset + 4 * n);
  const copy = new Uint8Array(slice); // aligned copy for typed-array views
  let dtype: DType;
  let data: Float32Array | Int32Array | Uint8Array;
  switch (w.dtype) {
    case "float32":
      dtype = "float32";
      data = new Float32Array(copy.buffer);
      break;
    case "int32":
    case "int64": // TF.js stores int64 weights as int32
      dtype = "int32";
      data = new Int32Array(copy.buffer);
      break;
    case "bool":
      need(n);
      return [{ dtype: "bool", dims: [...w.shape], data: new Uint8Array(buf.subarray(offset, offset + n)) }, n];
    default:
      throw new TfModelError(file, `weight ${w.name} has dtype ${w.dtype}, which the importer does not handle`);
  }
  return [{ dtype, dims: [...w.shape], data }, 4 * n];
}

function sigEntries(file: string, entries: Record<string, RawSigEntry> | undefined, what: string): TfSignatureEntry[] {
  if (!entries || !Object.keys(entries).length) throw new TfModelError(file, `model.json has no signature ${what}`);
  return Object.values(entries)
    .map((e) => ({
      name: e.name.replace(/:0$/, ""),
      dtype: e.dtype ?? "DT_FLOAT",
      shape: (e.tensorShape?.dim ?? []).map((d) => Number(d.size ?? -1)),
    }))
    .sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
}

export async function loadTfGraphModel(modelJsonPath: string): Promise<TfGraphModel> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(modelJsonPath, "utf8")) as ModelJson;
  } catch (e) {
    throw new TfModelError(modelJsonPath, `cannot read model.json: ${(e as Error).message}`);
  }
  if (json.format !== "graph-model")
    throw new TfModelError(modelJsonPath, `format is ${JSON.stringify(json.format)}, expected "graph-model"`);
  const rawNodes = json.modelTopology?.node;
  if (!Array.isArray(rawNodes) || !rawNodes.length) throw new TfModelError(modelJsonPath, "modelTopology has no nodes");
  if (!json.weightsManifest?.length) throw new TfModelError(modelJsonPath, "weightsManifest is missing");

  const weights = new Map<string, Tensor>();
  for (const group of json.weightsManifest) {
    const shards = await Promise.all(
      group.paths.map(async (p) => {
        const f = join(dirname(modelJsonPath), p);
        try {
          return await readFile(f);
        } catch (e) {
          throw new TfModelError(f, `cannot read weight shard: ${(e as Error).message}`);
        }
      }),
    );
    const buf = Buffer.concat(shards);
    const shardName = join(dirname(modelJsonPath), group.paths.join("+"));
    let offset = 0;
    for (const w of group.weights) {
      const [t, used] = decodeWeight(shardName, w, buf, offset);
      weights.set(w.name, t);
      offset += used;
    }
    if (offset !== buf.length)
      throw new TfModelError(shardName, `weight data is ${buf.length} bytes but the manifest describes ${offset}`);
  }

  const nodes: TfNode[] = rawNodes.map((n) => {
    if (typeof n.name !== "string" || typeof n.op !== "string") throw new TfModelError(modelJsonPath, `a node has no name or op: ${JSON.stringify(n).slice(0, 120)}`);
    return {
      name: n.name,
      op: n.op,
      inputs: (n.input ?? []).filter((i) => !i.startsWith("^")),
      attrs: Object.fromEntries(Object.entries(n.attr ?? {}).map(([k, v]) => [k, decodeAttr(v)])),
    };
  });
  for (const n of nodes)
    if (n.op === "Const" && !weights.has(n.name))
      throw new TfModelError(modelJsonPath, `Const node ${n.name} has no weight in the manifest`);

  return {
    path: modelJsonPath,
    nodes,
    weights,
    inputs: sigEntries(modelJsonPath, json.signature?.inputs, "inputs"),
    outputs: sigEntries(modelJsonPath, json.signature?.outputs, "outputs"),
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  };
}
