// The per-layer sensitivity sweep: which layers must stay float for the quantized model to
// agree with its float parent. Two stages, so it takes minutes, not hours:
//   1. screen: each candidate layer quantized alone (its input activation and weights), the
//      graph run on a few calibration frames, the error it causes in the graph outputs
//      (||y_q - y||^2 / ||y||^2 over every output) recorded; cheap, one session per layer;
//   2. confirm: the whole model quantized with the worst 0, 1, 2, ... layers kept float, its
//      detections compared with the float parent's on validation frames (never test data),
//      until the agreement target holds or the allowance of float layers is spent.
// The stem is a candidate like any other layer: if it is not among the layers kept float,
// the sweep has shown it is safe to quantize.
import * as ort from "onnxruntime-node";
import type { ModelInputData } from "../../infer/input-tensor.ts";
import { createSession } from "../../infer/session.ts";
import type { OnnxGraph } from "../onnx/ir.ts";
import { encodeModel } from "../onnx/serialize.ts";
import { planQuantization, type QuantPlan } from "./plan.ts";
import { insertQdq, type QdqOptions } from "./qdq.ts";
import type { Range } from "./scales.ts";

export interface LayerSensitivity {
  node: string;
  /** relative squared error of the graph outputs with only this layer quantized */
  outputError: number;
}

async function runAll(g: OnnxGraph, inputs: readonly ModelInputData[], threads?: number): Promise<Float32Array[][]> {
  const { session } = await createSession(encodeModel(g), { executionProviders: ["cpu"], intraOpThreads: threads, source: `graph "${g.name}" (sensitivity sweep)` });
  try {
    const inp = g.inputs[0];
    const out: Float32Array[][] = [];
    for (const d of inputs) {
      const t = d.dtype === "uint8" ? new ort.Tensor("uint8", d.data, inp.dims) : new ort.Tensor("float32", d.data, inp.dims);
      const res = await session.run({ [inp.name]: t });
      out.push(g.outputs.map((o) => Float32Array.from(res[o.name].data as Float32Array)));
    }
    return out;
  } finally {
    await session.release();
  }
}

function relativeError(ref: Float32Array[][], got: Float32Array[][]): number {
  let num = 0;
  let den = 0;
  for (let f = 0; f < ref.length; f++)
    for (let o = 0; o < ref[f].length; o++) {
      const a = ref[f][o];
      const b = got[f][o];
      for (let i = 0; i < a.length; i++) {
        num += (a[i] - b[i]) ** 2;
        den += a[i] ** 2;
      }
    }
  return den > 0 ? num / den : num;
}

export interface ScreenOptions extends QdqOptions {
  /** the candidates: the weighted nodes of the full plan */
  plan: QuantPlan;
  ranges: ReadonlyMap<string, Range>;
  /** nodes the user excluded: never candidates, always float */
  exclude?: readonly string[];
  threads?: number;
  onProgress?: (done: number, total: number, node: string) => void;
}

/** Stage 1: every candidate layer alone, worst first. */
export async function screenLayers(graph: OnnxGraph, inputs: readonly ModelInputData[], opts: ScreenOptions): Promise<LayerSensitivity[]> {
  if (inputs.length === 0) throw new RangeError("sensitivity sweep: no frames to screen on");
  const reference = await runAll(graph, inputs, opts.threads);
  const out: LayerSensitivity[] = [];
  for (const [k, node] of opts.plan.weighted.entries()) {
    const others = opts.plan.weighted.filter((n) => n !== node).map(escapeRegExp);
    const alone = planQuantization(graph, { quantizeStem: true, exclude: [...(opts.exclude ?? []), ...others] });
    const { graph: q } = insertQdq(graph, alone, opts.ranges, opts);
    out.push({ node, outputError: relativeError(reference, await runAll(q, inputs, opts.threads)) });
    opts.onProgress?.(k + 1, opts.plan.weighted.length, node);
  }
  return out.sort((a, b) => b.outputError - a.outputError);
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export interface SweepStep {
  /** layers kept float in this step (the worst of the screen) */
  keptFloat: string[];
  /** the agreement figure the target is checked on */
  agreement: number;
  detail: string;
}

export interface SweepResult {
  screen: LayerSensitivity[];
  steps: SweepStep[];
  /** the chosen layers to keep float (besides the head tail and user exclusions) */
  keepFloat: string[];
  target: number;
  reached: boolean;
}

/**
 * Stage 2: keeps the worst layers float one more at a time until `agreementOf` (the caller
 * measures it on validation data) reaches the target, at most `maxFloat` layers.
 */
export async function confirmSweep(
  screen: readonly LayerSensitivity[],
  target: number,
  maxFloat: number,
  agreementOf: (keptFloat: string[]) => Promise<{ agreement: number; detail: string }>,
  onStep?: (step: SweepStep) => void,
): Promise<SweepResult> {
  const steps: SweepStep[] = [];
  for (let k = 0; k <= Math.min(maxFloat, screen.length - 1); k++) {
    const keptFloat = screen.slice(0, k).map((s) => s.node);
    const { agreement, detail } = await agreementOf(keptFloat);
    const step = { keptFloat, agreement, detail };
    steps.push(step);
    onStep?.(step);
    if (agreement >= target) return { screen: [...screen], steps, keepFloat: keptFloat, target, reached: true };
  }
  const best = steps.reduce((a, b) => (b.agreement > a.agreement ? b : a));
  return { screen: [...screen], steps, keepFloat: best.keptFloat, target, reached: false };
}
