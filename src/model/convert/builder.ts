// Builds the ONNX graph while the converter walks the TensorFlow graph, and keeps track
// of layout. TF.js graphs compute in NHWC; ONNX Runtime's convolutions want NCHW. Each
// rank-4 activation is held in whichever layout its producer made it in ("nchw" means the
// ONNX tensor is the TF tensor transposed by [0,3,1,2]); a Transpose is inserted only
// where a consumer needs the other layout, so NanoDet's own NHWC<->NCHW round trips cancel
// at conversion time instead of running on every frame.
import { attr, uniqueNamer, type AttrValue, type OnnxGraph, type OnnxNode } from "../onnx/ir.ts";
import { int64Tensor, transposeTensor, type DType, type Tensor } from "../onnx/tensor.ts";

export type Layout = "tf" | "nchw";

/** TF axis order held by each ONNX axis of an "nchw" tensor. */
export const TO_NCHW = [0, 3, 1, 2] as const;
export const TO_NHWC = [0, 2, 3, 1] as const;

/** A converted TF tensor: a constant (in TF layout) or a tensor of the ONNX graph. */
export type Value =
  | { kind: "const"; tensor: Tensor }
  | { kind: "onnx"; name: string; layout: Layout; shape: number[]; dtype: DType };

export function shapeOf(v: Value): number[] {
  return v.kind === "const" ? v.tensor.dims : v.shape;
}

export function dtypeOf(v: Value): DType {
  return v.kind === "const" ? v.tensor.dtype : v.dtype;
}

/** ONNX axis that holds TF axis `tfAxis` in the given layout (negative axes allowed). */
export function onnxAxis(tfAxis: number, rank: number, layout: Layout): number {
  const a = tfAxis < 0 ? tfAxis + rank : tfAxis;
  return layout === "nchw" ? TO_NCHW.indexOf(a as 0 | 1 | 2 | 3) : a;
}

export class GraphBuilder {
  readonly graph: OnnxGraph;
  private readonly fresh: (base: string) => string;
  private readonly layoutCache = new Map<string, string>();
  private readonly constCache = new Map<Tensor, Map<string, string>>();

  constructor(name: string, opset: number) {
    this.graph = { name, nodes: [], initializers: new Map(), inputs: [], outputs: [], opset, metadata: {} };
    this.fresh = uniqueNamer(this.graph);
  }

  name(base: string): string {
    return this.fresh(base);
  }

  /** Adds a node; returns its output names (made from `base`). */
  node(opType: string, inputs: string[], base: string, attrs: Record<string, AttrValue> = {}, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, (_, i) => this.fresh(i === 0 ? base : `${base}:${i}`));
    const n: OnnxNode = { name: this.fresh(`${base}/${opType}`), opType, inputs, outputs: outs, attrs };
    this.graph.nodes.push(n);
    return outs;
  }

  initializer(t: Tensor, base: string): string {
    const name = this.fresh(base);
    this.graph.initializers.set(name, t);
    return name;
  }

  int64(values: number[], base: string): string {
    return this.initializer(int64Tensor([values.length], values), base);
  }

  /** The value as an ONNX tensor name in TF layout. */
  asTf(v: Value, base: string): string {
    if (v.kind === "const") return this.constAs(v.tensor, "tf", base);
    if (v.layout === "tf") return v.name;
    return this.transposed(v.name, TO_NHWC, "nhwc");
  }

  /** The value as an ONNX tensor name in NCHW layout (rank 4 only). */
  asNchw(v: Value, base: string): string {
    if (v.kind === "const") return this.constAs(v.tensor, "nchw", base);
    if (v.layout === "nchw") return v.name;
    return this.transposed(v.name, TO_NCHW, "nchw");
  }

  asLayout(v: Value, layout: Layout, base: string): string {
    return layout === "nchw" ? this.asNchw(v, base) : this.asTf(v, base);
  }

  /**
   * A constant operand of a broadcasting op whose other operand is rank 4 in `layout`:
   * TF broadcasts from the right (a [C] bias applies to NHWC's last axis), so the
   * constant is first widened to rank 4 and then permuted like the activation.
   */
  broadcastConst(t: Tensor, layout: Layout, base: string): string {
    if (layout === "tf" || t.dims.length === 0) return this.constAs(t, "tf", base);
    const widened: Tensor = { ...t, dims: [...new Array<number>(4 - t.dims.length).fill(1), ...t.dims] };
    return this.constAs(widened, "nchw", base, t);
  }

  private constAs(t: Tensor, layout: Layout, base: string, cacheKey: Tensor = t): string {
    let byLayout = this.constCache.get(cacheKey);
    if (!byLayout) this.constCache.set(cacheKey, (byLayout = new Map()));
    const hit = byLayout.get(layout);
    if (hit) return hit;
    let value = t;
    if (layout === "nchw") {
      if (t.dims.length !== 4) throw new Error(`constant ${base} of rank ${t.dims.length} cannot be laid out as NCHW`);
      value = transposeTensor(t, TO_NCHW);
    }
    const name = this.initializer(value, base);
    byLayout.set(layout, name);
    return name;
  }

  private transposed(name: string, perm: readonly number[], suffix: string): string {
    const key = `${name}|${perm.join(",")}`;
    const hit = this.layoutCache.get(key);
    if (hit) return hit;
    const [out] = this.node("Transpose", [name], `${name}/${suffix}`, { perm: attr.ints([...perm]) });
    this.layoutCache.set(key, out);
    return out;
  }
}
