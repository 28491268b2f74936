// TensorFlow.js graph model -> ONNX graph. Walks the nodes the signature outputs need,
// folds constant subgraphs in TF semantics, converts each op (ops.ts), then cleans the
// result (onnx/passes.ts).
import type { OnnxGraph } from "../onnx/ir.ts";
import { optimize } from "../onnx/passes.ts";
import type { TfGraphModel, TfNode } from "../tfjs/graph-model.ts";
import { GraphBuilder, type Value } from "./builder.ts";
import { ConversionError } from "./errors.ts";
import { OP_CONVERTERS } from "./ops.ts";
import { canEvaluate, evaluate } from "./tf-const-eval.ts";

export const DEFAULT_OPSET = 13;

export interface ConvertOptions {
  /** ONNX graph name */
  name: string;
  opset?: number;
  /** skip the cleanup passes (for debugging the raw conversion) */
  raw?: boolean;
}

function parseRef(ref: string): [string, number] {
  const m = /^(.*?)(?::(\d+))?$/.exec(ref);
  return [m![1], m![2] ? Number(m![2]) : 0];
}

/** Node names reachable backwards from the outputs, in an order where inputs come first. */
function requiredNodes(model: TfGraphModel, byName: Map<string, TfNode>): TfNode[] {
  const order: TfNode[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, from: string): void => {
    const s = state.get(name);
    if (s === "done") return;
    if (s === "visiting") throw new ConversionError(name, byName.get(name)?.op ?? "?", "the graph has a cycle");
    const node = byName.get(name);
    if (!node) throw new ConversionError(from, byName.get(from)?.op ?? "?", `input ${name} is not a node of the graph`);
    state.set(name, "visiting");
    for (const i of node.inputs) visit(parseRef(i)[0], name);
    state.set(name, "done");
    order.push(node);
  };
  for (const out of model.outputs) visit(parseRef(out.name)[0], "(signature output)");
  return order;
}

export function convertTfGraph(model: TfGraphModel, opts: ConvertOptions): OnnxGraph {
  const byName = new Map(model.nodes.map((n) => [n.name, n]));
  const b = new GraphBuilder(opts.name, opts.opset ?? DEFAULT_OPSET);
  // Reserve the public tensor names so no internal tensor takes them.
  const inputNames = new Map(model.inputs.map((i) => [parseRef(i.name)[0], b.name(parseRef(i.name)[0])]));
  const outputNames = model.outputs.map((o) => b.name(parseRef(o.name)[0]));

  const values = new Map<string, Value>();
  for (const node of requiredNodes(model, byName)) {
    if (node.op === "Const") {
      values.set(`${node.name}:0`, { kind: "const", tensor: model.weights.get(node.name)! });
      continue;
    }
    if (node.op === "Placeholder") {
      const name = inputNames.get(node.name);
      if (!name) throw new ConversionError(node.name, node.op, "placeholder is not a signature input");
      const sig = model.inputs.find((i) => parseRef(i.name)[0] === node.name)!;
      const shapeAttr = node.attrs.shape;
      const shape = shapeAttr?.kind === "shape" && shapeAttr.value.length ? shapeAttr.value : sig.shape;
      if (shape.some((d) => d < 1)) throw new ConversionError(node.name, node.op, `input shape [${shape}] is not static`);
      if (sig.dtype !== "DT_FLOAT") throw new ConversionError(node.name, node.op, `input dtype ${sig.dtype} is not supported`);
      b.graph.inputs.push({ name, dtype: "float32", dims: shape });
      values.set(`${node.name}:0`, { kind: "onnx", name, layout: "tf", shape, dtype: "float32" });
      continue;
    }
    const inputs = node.inputs.map((ref) => {
      const [src, idx] = parseRef(ref);
      const v = values.get(`${src}:${idx}`);
      if (!v) throw new ConversionError(node.name, node.op, `input ${ref} has no value (output ${idx} of ${byName.get(src)?.op ?? "?"})`);
      return v;
    });
    let outs: Value[];
    if (inputs.length && inputs.every((v) => v.kind === "const") && canEvaluate(node.op)) {
      outs = evaluate(
        node,
        inputs.map((v) => (v.kind === "const" ? v.tensor : undefined!)),
      ).map((tensor) => ({ kind: "const", tensor }));
    } else {
      const convert = OP_CONVERTERS[node.op];
      if (!convert) throw new ConversionError(node.name, node.op, `op ${node.op} is not supported by the importer`);
      outs = convert({ b, node, inputs });
    }
    outs.forEach((v, i) => values.set(`${node.name}:${i}`, v));
  }

  model.outputs.forEach((o, i) => {
    const [src, idx] = parseRef(o.name);
    const v = values.get(`${src}:${idx}`)!;
    if (v.kind === "const") throw new ConversionError(src, byName.get(src)?.op ?? "?", "signature output is a constant");
    const expected = o.shape;
    if (expected.length && expected.some((d, k) => d > 0 && d !== v.shape[k]))
      throw new ConversionError(src, byName.get(src)?.op ?? "?", `converted output has shape [${v.shape}], signature says [${expected}]`);
    const name = outputNames[i];
    b.graph.nodes.push({ name: `${name}/output`, opType: "Identity", inputs: [b.asTf(v, name)], outputs: [name], attrs: {} });
    b.graph.outputs.push({ name, dtype: v.dtype, dims: v.shape });
  });

  if (!opts.raw) optimize(b.graph);
  return b.graph;
}
