// Static post-training quantization of a float graph to QDQ INT8, without I/O: plan which
// layers become int8, calibrate the activations they read and write on the given frames,
// rewrite the graph. `perceptd quantize` (pipeline.ts) adds reading, checking and writing.
import type { ModelInputData } from "../../infer/input-tensor.ts";
import type { OnnxGraph } from "../onnx/ir.ts";
import { calibrateRanges, checkMethod, type CalibrationMethod, type TensorRange } from "./calibration.ts";
import { planQuantization, type QuantPlan } from "./plan.ts";
import { insertQdq, type QdqResult } from "./qdq.ts";
import { ACTIVATION_SCHEMES, type ActivationScheme } from "./scales.ts";

export interface QuantizeOptions {
  method: CalibrationMethod;
  /** activations: symmetric int8 (default; TensorRT needs it) or asymmetric uint8 */
  scheme?: ActivationScheme;
  /** per-channel weight scales (default true) */
  perChannel?: boolean;
  /** 7-bit weights, for x86 CPUs without VNNI (default false) */
  reduceRange?: boolean;
  percentile?: number;
  exclude?: readonly string[];
  quantizeStem?: boolean;
  threads?: number;
  onProgress?: (pass: string, done: number, total: number) => void;
}

export interface QuantizeResult extends QdqResult {
  plan: QuantPlan;
  ranges: Map<string, TensorRange>;
  scheme: ActivationScheme;
  perChannel: boolean;
}

export function checkScheme(scheme: string): ActivationScheme {
  if (!(ACTIVATION_SCHEMES as readonly string[]).includes(scheme)) {
    throw new RangeError(`unknown activation type "${scheme}"; expected one of ${ACTIVATION_SCHEMES.join(", ")}`);
  }
  return scheme as ActivationScheme;
}

/** The plan's ranges, calibrated once, can serve several plans over the same tensors (the sweep). */
export async function quantizeGraph(graph: OnnxGraph, inputs: readonly ModelInputData[], opts: QuantizeOptions): Promise<QuantizeResult> {
  const method = checkMethod(opts.method);
  const scheme = checkScheme(opts.scheme ?? "int8");
  if (inputs.length === 0) throw new RangeError(`graph "${graph.name}": the calibration set is empty; quantization needs calibration frames`);
  const plan = planQuantization(graph, { exclude: opts.exclude, quantizeStem: opts.quantizeStem });
  const ranges = await calibrateRanges(graph, plan.tensors, inputs, { method, scheme, percentile: opts.percentile, threads: opts.threads, onProgress: opts.onProgress });
  const perChannel = opts.perChannel ?? true;
  return { ...insertQdq(graph, plan, ranges, { scheme, perChannel, reduceRange: opts.reduceRange ?? false }), plan, ranges, scheme, perChannel };
}
