// Bakes input preprocessing into a model: the new graph takes uint8 RGB pixels, NHWC, at
// the model's size, and does the cast, channel order, normalisation and layout change
// itself. The daemon then hands GStreamer's bytes over untouched and the arithmetic runs
// wherever the model runs (on a Jetson, on the GPU).
import { attr, type OnnxGraph, type OnnxNode } from "./onnx/ir.ts";
import { optimize } from "./onnx/passes.ts";
import { dtypeToOnnx } from "./onnx/serialize.ts";
import { floatTensor, int64Tensor } from "./onnx/tensor.ts";

export interface InputNormalisation {
  /** per colour (r, g, b), whatever order the graph wants its channels in */
  mean: [number, number, number];
  std: [number, number, number];
  /** channel order the original graph expects */
  colorOrder: "rgb" | "bgr";
}

export const BAKED_INPUT_NAME = "image";

export function bakePreprocessing(src: OnnxGraph, layout: "NCHW" | "NHWC", norm: InputNormalisation): OnnxGraph {
  if (src.inputs.length !== 1) throw new Error(`graph ${src.name} has ${src.inputs.length} inputs; baking needs exactly one`);
  const input = src.inputs[0];
  const [n, a, b, c] = input.dims;
  const [h, w, ch] = layout === "NCHW" ? [b, c, a] : [a, b, c];
  if (ch !== 3) throw new Error(`graph ${src.name}: input ${input.name} has ${ch} channels, expected 3 (RGB)`);
  const g: OnnxGraph = {
    ...src,
    nodes: src.nodes.map((x) => ({ ...x, inputs: [...x.inputs], outputs: [...x.outputs], attrs: { ...x.attrs } })),
    initializers: new Map(src.initializers),
    inputs: [{ name: BAKED_INPUT_NAME, dtype: "uint8", dims: [n, h, w, 3] }],
    outputs: src.outputs.map((o) => ({ ...o, dims: [...o.dims] })),
    metadata: { ...src.metadata },
  };
  const pre: OnnxNode[] = [];
  let t = BAKED_INPUT_NAME;
  const add = (opType: string, inputs: string[], attrs: OnnxNode["attrs"] = {}): void => {
    const out = `preprocess/${opType.toLowerCase()}_${pre.length}`;
    pre.push({ name: `preprocess/${opType}_${pre.length}`, opType, inputs, outputs: [out], attrs });
    t = out;
  };
  add("Cast", [t], { to: attr.int(dtypeToOnnx("float32")) });
  if (norm.mean.some((m) => m !== 0)) {
    g.initializers.set("preprocess/mean", floatTensor([3], norm.mean));
    add("Sub", [t, "preprocess/mean"]);
  }
  if (norm.std.some((s) => s !== 1)) {
    g.initializers.set("preprocess/inv_std", floatTensor([3], norm.std.map((s) => 1 / s)));
    add("Mul", [t, "preprocess/inv_std"]);
  }
  if (norm.colorOrder === "bgr") {
    g.initializers.set("preprocess/bgr_index", int64Tensor([3], [2, 1, 0]));
    add("Gather", [t, "preprocess/bgr_index"], { axis: attr.int(3) });
  }
  if (layout === "NCHW") add("Transpose", [t], { perm: attr.ints([0, 3, 1, 2]) });
  // the original input tensor is now produced by the preprocessing chain
  pre[pre.length - 1].outputs = [input.name];
  g.nodes = [...pre, ...g.nodes];
  optimize(g);
  return g;
}
