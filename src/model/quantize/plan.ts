// Which nodes of a float graph become INT8 and which activations get a Quantize/Dequantize
// pair. Pure: reads the graph, returns the decision with a reason for every layer kept float.
//
// Kept float, because detectors are known to break there:
//   - the head's last convolutions, the Convs from whose output a graph output is reached
//     without another Conv (class scores and box distributions: a quantization step is a
//     large share of a logit that a sigmoid or a softmax turns into a score), and everything
//     after them (Split, Sigmoid, Reshape, Transpose, Concat of outputs);
//   - the first convolution (the stem, fed by the image), unless the caller lets it go (the
//     sensitivity sweep shows whether it is safe);
//   - whatever the caller excludes by node name or regular expression.
// Besides Conv (and Gemm/MatMul with a constant weight), the ops that ONNX Runtime runs in
// int8 between quantized layers join in (LeakyRelu, Add, Concat, MaxPool, Resize, ...) when
// every activation they read comes from a quantized node, so the chain stays int8 and the
// runtime does not dequantize and requantize around each of them.
import { consumers, producers, type OnnxGraph, type OnnxNode } from "../onnx/ir.ts";

/** Ops whose weight (input 1, a constant) is quantized per output channel. */
export const WEIGHTED_OPS = ["Conv", "Gemm", "MatMul"] as const;
/** Ops that stay int8 between quantized layers (ONNX Runtime has QLinear or pass-through kernels). */
export const CHAIN_OPS = ["LeakyRelu", "Relu", "Clip", "Add", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "Resize"] as const;

export type KeptReason = "head tail" | "after head tail" | "stem" | "excluded" | "weight not constant" | "grouped weight axis";

export interface QuantPlan {
  /** Weighted nodes (Conv, Gemm, MatMul) quantized, by name, in graph order. */
  weighted: string[];
  /** Chain ops quantized, by name. */
  chain: string[];
  /** Float activations that get a Q/DQ pair, in graph order. */
  tensors: string[];
  /** Weighted nodes kept float, with why. */
  kept: { node: string; opType: string; reason: KeptReason }[];
}

export interface PlanOptions {
  /** Node names or regular expressions (whole name) of weighted nodes to keep float. */
  exclude?: readonly string[];
  /** Quantize the stem too (default false: kept float). */
  quantizeStem?: boolean;
}

function matcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map((p) => {
    try {
      return new RegExp(`^(?:${p})$`);
    } catch (e) {
      throw new Error(`--exclude ${JSON.stringify(p)} is not a node name or a valid regular expression: ${(e as Error).message}`, { cause: e });
    }
  });
  return (name) => patterns.includes(name) || res.some((r) => r.test(name));
}

function isWeighted(g: OnnxGraph, n: OnnxNode): boolean {
  return (WEIGHTED_OPS as readonly string[]).includes(n.opType) && (n.opType !== "MatMul" || g.initializers.has(n.inputs[1]));
}

/**
 * The weighted nodes whose output reaches a graph output through no other weighted node:
 * the head's last layers. Walks back from every graph output.
 */
export function headTail(g: OnnxGraph): Set<string> {
  const prod = producers(g);
  const tail = new Set<string>();
  const seen = new Set<string>();
  const stack = g.outputs.map((o) => o.name);
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    const p = prod.get(t);
    if (p === undefined) continue;
    if (isWeighted(g, p)) {
      tail.add(p.name);
      continue;
    }
    for (const i of p.inputs) if (i && !g.initializers.has(i)) stack.push(i);
  }
  return tail;
}

/** The weighted nodes fed by a graph input through no other weighted node (the stem). */
export function stem(g: OnnxGraph): Set<string> {
  const cons = consumers(g);
  const out = new Set<string>();
  const seen = new Set<string>();
  const stack = g.inputs.map((i) => i.name);
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const c of cons.get(t) ?? []) {
      if (isWeighted(g, c)) out.add(c.name);
      else for (const o of c.outputs) if (o) stack.push(o);
    }
  }
  return out;
}

/** Nodes downstream of `from` (their outputs' consumers, transitively). */
function downstream(g: OnnxGraph, from: ReadonlySet<string>): Set<string> {
  const cons = consumers(g);
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const out = new Set<string>();
  const stack = [...from].map((n) => byName.get(n)!);
  while (stack.length > 0) {
    const n = stack.pop()!;
    for (const o of n.outputs)
      for (const c of cons.get(o) ?? [])
        if (!out.has(c.name)) {
          out.add(c.name);
          stack.push(c);
        }
  }
  return out;
}

export function planQuantization(g: OnnxGraph, opts: PlanOptions = {}): QuantPlan {
  const excluded = matcher(opts.exclude ?? []);
  const tail = headTail(g);
  const afterTail = downstream(g, tail);
  const stemNodes = stem(g);
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const kept: QuantPlan["kept"] = [];
  const weighted: string[] = [];
  for (const n of g.nodes) {
    if (!(WEIGHTED_OPS as readonly string[]).includes(n.opType)) continue;
    const reason: KeptReason | null = !g.initializers.has(n.inputs[1])
      ? "weight not constant"
      : tail.has(n.name)
        ? "head tail"
        : afterTail.has(n.name)
          ? "after head tail"
          : stemNodes.has(n.name) && opts.quantizeStem !== true
            ? "stem"
            : excluded(n.name)
              ? "excluded"
              : n.opType === "MatMul" && g.initializers.get(n.inputs[1])!.dims.length !== 2
                ? "grouped weight axis"
                : null;
    if (reason !== null) kept.push({ node: n.name, opType: n.opType, reason });
    else weighted.push(n.name);
  }
  if (weighted.length === 0) {
    const found = kept.length === 0 ? "it has no Conv, Gemm or MatMul with a constant weight" : `every one is kept float (${kept.map((k) => `${k.node}: ${k.reason}`).join("; ")})`;
    throw new Error(`graph "${g.name}": nothing to quantize: ${found}`);
  }

  // Chain ops join when every float activation they read comes from a quantized node.
  const prod = producers(g);
  const quantized = new Set(weighted);
  const chain: string[] = [];
  for (const n of g.nodes) {
    if (!(CHAIN_OPS as readonly string[]).includes(n.opType) || afterTail.has(n.name) || excluded(n.name)) continue;
    if (n.outputs.some((o) => graphOutputs.has(o))) continue;
    const acts = n.inputs.filter((i) => i && !g.initializers.has(i));
    if (acts.length > 0 && acts.every((i) => quantized.has(prod.get(i)?.name ?? ""))) {
      quantized.add(n.name);
      chain.push(n.name);
    }
  }

  // Every float activation read or written by a quantized node; weighted nodes' outputs are
  // included so ONNX Runtime sees DQ -> Conv -> Q and fuses it into one int8 kernel.
  const tensors: string[] = [];
  const seen = new Set<string>();
  const add = (t: string): void => {
    if (!t || seen.has(t) || g.initializers.has(t)) return;
    seen.add(t);
    tensors.push(t);
  };
  for (const n of g.nodes) {
    if (!quantized.has(n.name)) continue;
    if ((WEIGHTED_OPS as readonly string[]).includes(n.opType)) add(n.inputs[0]);
    else n.inputs.forEach(add);
    // A quantized node's output that is a graph output stays float (the caller reads it).
    for (const o of n.outputs) if (!graphOutputs.has(o)) add(o);
  }
  return { weighted, chain, tensors, kept };
}
