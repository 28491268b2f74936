// Small ONNX graphs for the pruning tests, built with the IR: deterministic pseudo-random
// weights, and a way to make chosen channels worthless (their producing filters and biases
// zero, and every consumer's weights that read them zero), so pruning exactly those must
// leave the graph's outputs unchanged.
import * as ort from "onnxruntime-node";
import { attr, type OnnxGraph, type OnnxNode } from "../../../src/model/onnx/ir.ts";
import { encodeModel } from "../../../src/model/onnx/serialize.ts";
import { floatTensor, int64Tensor, sizeOf, type Tensor } from "../../../src/model/onnx/tensor.ts";
import { mulberry32 as prng } from "../../../src/util/prng.ts";

/** The toolchain's own generator (mulberry32), for the tests' pseudo-random weights. */
export { prng };

export class GraphBuilder {
  readonly g: OnnxGraph;
  private readonly rand: () => number;

  constructor(name: string, input: number[], seed = 1) {
    this.rand = prng(seed);
    this.g = { name, nodes: [], initializers: new Map(), inputs: [{ name: "x", dtype: "float32", dims: input }], outputs: [], opset: 13, metadata: {} };
  }

  private random(dims: number[], scale = 0.5): Tensor {
    return floatTensor(dims, Array.from({ length: sizeOf(dims) }, () => (this.rand() * 2 - 1) * scale));
  }

  node(opType: string, name: string, inputs: string[], attrs: OnnxNode["attrs"] = {}, outputs = [name]): string {
    this.g.nodes.push({ name, opType, inputs, outputs, attrs });
    return outputs[0];
  }

  const(name: string, t: Tensor): string {
    this.g.initializers.set(name, t);
    return name;
  }

  conv(name: string, x: string, cin: number, cout: number, k = 1, group = 1, bias = true): string {
    const w = this.const(`${name}/w`, this.random([cout, cin / group, k, k]));
    const inputs = [x, w];
    if (bias) inputs.push(this.const(`${name}/b`, this.random([cout], 0.1)));
    const p = (k - 1) / 2;
    return this.node("Conv", name, inputs, { kernel_shape: attr.ints([k, k]), pads: attr.ints([p, p, p, p]), strides: attr.ints([1, 1]), group: attr.int(group) });
  }

  output(name: string, dims: number[]): void {
    this.g.outputs.push({ name, dtype: "float32", dims });
  }

  /** Zeroes output channels `chans` of a Conv (filters and bias). */
  zeroOut(conv: string, chans: readonly number[]): void {
    const n = this.g.nodes.find((x) => x.name === conv)!;
    const w = this.g.initializers.get(n.inputs[1])!;
    const per = sizeOf(w.dims.slice(1));
    for (const c of chans) (w.data as Float32Array).fill(0, c * per, (c + 1) * per);
    const b = n.inputs[2] ? this.g.initializers.get(n.inputs[2]) : undefined;
    if (b) for (const c of chans) (b.data as Float32Array)[c] = 0;
  }

  /** Zeroes the weights of a dense Conv that read input channels `chans`. */
  zeroIn(conv: string, chans: readonly number[]): void {
    const n = this.g.nodes.find((x) => x.name === conv)!;
    const w = this.g.initializers.get(n.inputs[1])!;
    const [co, ci, kh, kw] = w.dims;
    for (let o = 0; o < co; o++) for (const c of chans) (w.data as Float32Array).fill(0, (o * ci + c) * kh * kw, (o * ci + c + 1) * kh * kw);
  }

  splitSizes(name: string, sizes: number[]): string {
    return this.const(name, int64Tensor([sizes.length], sizes));
  }
}

export function randomInput(dims: number[], seed = 7): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: sizeOf(dims) }, () => r() * 2 - 1);
}

/** Runs the graph in ONNX Runtime (CPU) and returns every output by name. */
export async function runOrt(g: OnnxGraph, input: Float32Array): Promise<Record<string, { dims: readonly number[]; data: Float32Array }>> {
  const session = await ort.InferenceSession.create(encodeModel(g), { executionProviders: ["cpu"], intraOpNumThreads: 1 });
  try {
    const res = await session.run({ [g.inputs[0].name]: new ort.Tensor("float32", input, g.inputs[0].dims) });
    const out: Record<string, { dims: readonly number[]; data: Float32Array }> = {};
    for (const o of g.outputs) out[o.name] = { dims: res[o.name].dims, data: Float32Array.from(res[o.name].data as Float32Array) };
    return out;
  } finally {
    await session.release();
  }
}

/** Largest |a - b| relative to the largest |a|. */
export function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return diff / scale;
}
