// An in-memory ONNX graph that the converter builds and the passes rewrite. Kept apart
// from the protobuf classes so passes work on plain data and serialisation is one step.
import type { DType, Tensor } from "./tensor.ts";

export type AttrValue =
  | { kind: "int"; value: number }
  | { kind: "ints"; value: number[] }
  | { kind: "float"; value: number }
  | { kind: "floats"; value: number[] }
  | { kind: "string"; value: string }
  | { kind: "tensor"; value: Tensor };

export interface OnnxNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface ValueInfo {
  name: string;
  dtype: DType;
  dims: number[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: Map<string, Tensor>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opset: number;
  /** model-level metadata_props, written sorted so files are reproducible */
  metadata: Record<string, string>;
  docString?: string;
}

export const attr = {
  int: (value: number): AttrValue => ({ kind: "int", value }),
  ints: (value: number[]): AttrValue => ({ kind: "ints", value }),
  float: (value: number): AttrValue => ({ kind: "float", value }),
  floats: (value: number[]): AttrValue => ({ kind: "floats", value }),
  string: (value: string): AttrValue => ({ kind: "string", value }),
};

export function intAttr(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== "int") throw new TypeError(`node ${node.name} (${node.opType}): attribute ${name} is ${a.kind}, expected int`);
  return a.value;
}

export function intsAttr(node: OnnxNode, name: string, fallback: number[]): number[] {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== "ints") throw new TypeError(`node ${node.name} (${node.opType}): attribute ${name} is ${a.kind}, expected ints`);
  return a.value;
}

export function floatAttr(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== "float") throw new TypeError(`node ${node.name} (${node.opType}): attribute ${name} is ${a.kind}, expected float`);
  return a.value;
}

export function stringAttr(node: OnnxNode, name: string, fallback: string): string {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.kind !== "string") throw new TypeError(`node ${node.name} (${node.opType}): attribute ${name} is ${a.kind}, expected string`);
  return a.value;
}

/** Map from tensor name to the node that produces it. */
/**
 * A copy a pass can rewrite without touching the original: nodes, value infos and metadata
 * are new objects; initializer tensors are shared (passes replace them, never write into them).
 */
export function cloneGraph(g: OnnxGraph): OnnxGraph {
  return {
    ...g,
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    initializers: new Map(g.initializers),
    inputs: g.inputs.map((v) => ({ ...v, dims: [...v.dims] })),
    outputs: g.outputs.map((v) => ({ ...v, dims: [...v.dims] })),
    metadata: { ...g.metadata },
  };
}

export function producers(g: OnnxGraph): Map<string, OnnxNode> {
  const m = new Map<string, OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/** Map from tensor name to the nodes that read it. */
export function consumers(g: OnnxGraph): Map<string, OnnxNode[]> {
  const m = new Map<string, OnnxNode[]>();
  for (const n of g.nodes)
    for (const i of n.inputs) {
      if (!i) continue;
      const list = m.get(i);
      if (list) list.push(n);
      else m.set(i, [n]);
    }
  return m;
}

/** Replaces every use of tensor `from` (node inputs and graph outputs) with `to`. */
export function renameUses(g: OnnxGraph, from: string, to: string): void {
  for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === from ? to : i));
  for (const o of g.outputs) if (o.name === from) o.name = to;
}

/** Orders nodes so each comes after the producers of its inputs (Kahn, stable). */
export function topoSort(g: OnnxGraph): void {
  const prod = producers(g);
  const done = new Set<OnnxNode>();
  const out: OnnxNode[] = [];
  const visiting = new Set<OnnxNode>();
  const visit = (n: OnnxNode): void => {
    if (done.has(n)) return;
    if (visiting.has(n)) throw new Error(`graph has a cycle through node ${n.name} (${n.opType})`);
    visiting.add(n);
    for (const i of n.inputs) {
      const p = i ? prod.get(i) : undefined;
      if (p) visit(p);
    }
    visiting.delete(n);
    done.add(n);
    out.push(n);
  };
  for (const n of g.nodes) visit(n);
  g.nodes = out;
}

/** Returns a name not used by any tensor, node or initializer in the graph. */
export function uniqueNamer(g: OnnxGraph): (base: string) => string {
  const used = new Set<string>();
  for (const n of g.nodes) {
    used.add(n.name);
    for (const t of [...n.inputs, ...n.outputs]) used.add(t);
  }
  for (const k of g.initializers.keys()) used.add(k);
  for (const v of [...g.inputs, ...g.outputs]) used.add(v.name);
  return (base: string) => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };
}
