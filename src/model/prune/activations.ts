// Intermediate activations of an ONNX graph on real frames, through ONNX Runtime. The
// graph is copied with the chosen tensors added as graph outputs, so ORT computes exactly
// what the shipped graph computes (no re-implementation of its ops here).
//
// Memory: a nanodet feature map is up to 32 x 208 x 208 floats (5.5 MB) per frame. Maps are
// reduced as each frame arrives: per-channel sums for the statistics and a few sampled
// spatial positions for recovery; no full map outlives its frame.
import * as ort from "onnxruntime-node";
import type { ModelInputData } from "../../infer/input-tensor.ts";
import { createSession } from "../../infer/session.ts";
import type { OnnxGraph, ValueInfo } from "../onnx/ir.ts";
import { encodeModel } from "../onnx/serialize.ts";
import { inferShapes } from "../onnx/shape-inference.ts";
import { fnv1a, mulberry32 } from "../../util/prng.ts";

/** One captured tensor of one frame, as float32. */
export interface Activation {
  dims: readonly number[];
  data: Float32Array;
}

/**
 * One statistic gathered over captured activations: `visit` is forEachActivation's callback,
 * `result` reads the statistic after the last frame. Several share one capture pass.
 */
export interface ActivationAccumulator<T> {
  visit: (frame: number, values: ReadonlyMap<string, Activation>) => void;
  result: () => T;
}

export interface CaptureOptions {
  /** ONNX Runtime intra-op threads; 0 or absent lets ORT decide. */
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The graph with `tensors` added as float32 outputs (those already outputs stay as they are). */
export function withOutputs(graph: OnnxGraph, tensors: readonly string[]): OnnxGraph {
  const shapes = inferShapes(graph);
  const outputs: ValueInfo[] = [...graph.outputs];
  for (const name of tensors) {
    if (outputs.some((o) => o.name === name)) continue;
    const info = shapes.get(name);
    if (info === undefined || graph.initializers.has(name) || graph.inputs.some((i) => i.name === name)) {
      throw new Error(`graph "${graph.name}": no intermediate tensor named "${name}" to capture`);
    }
    if (info.dtype !== "float32") throw new Error(`graph "${graph.name}": tensor "${name}" is ${info.dtype}; only float32 activations are captured`);
    outputs.push({ name, dtype: "float32", dims: [...info.dims] });
  }
  return { ...graph, outputs };
}

function checkInput(graph: OnnxGraph, input: ModelInputData, frame: number): ort.Tensor {
  if (graph.inputs.length !== 1) throw new Error(`graph "${graph.name}": activation capture needs one graph input, it has ${graph.inputs.length}`);
  const spec = graph.inputs[0];
  const n = spec.dims.reduce((p, d) => p * d, 1);
  if (spec.dtype !== input.dtype || input.data.length !== n) {
    throw new Error(
      `graph "${graph.name}": frame ${frame} is ${input.dtype} x ${input.data.length}, the input "${spec.name}" wants ` +
        `${spec.dtype} [${spec.dims.join(", ")}]`,
    );
  }
  // Two calls so each sees its own overload; the union does not select one.
  return input.dtype === "uint8" ? new ort.Tensor("uint8", input.data, spec.dims) : new ort.Tensor("float32", input.data, spec.dims);
}

/**
 * Runs the graph on each input and hands `visit` the captured tensors of that frame; the
 * maps are only valid during the call. Frames are run one after the other.
 */
export async function forEachActivation(
  graph: OnnxGraph,
  tensors: readonly string[],
  inputs: readonly ModelInputData[],
  visit: (frame: number, values: ReadonlyMap<string, Activation>) => void,
  opts: CaptureOptions = {},
): Promise<void> {
  if (tensors.length === 0) throw new RangeError("forEachActivation: no tensors to capture");
  const g = withOutputs(graph, tensors);
  const { session } = await createSession(encodeModel(g), {
    executionProviders: ["cpu"],
    intraOpThreads: opts.threads,
    source: `graph "${graph.name}" with captured activations`,
  });
  try {
    const inputName = g.inputs[0]?.name ?? "";
    for (let f = 0; f < inputs.length; f++) {
      const feeds = { [inputName]: checkInput(g, inputs[f], f) };
      const results = await session.run(feeds, [...tensors]);
      const values = new Map<string, Activation>();
      for (const name of tensors) {
        const t = results[name];
        if (!(t.data instanceof Float32Array)) throw new Error(`tensor "${name}" came back as ${t.type}, expected float32`);
        values.set(name, { dims: t.dims, data: t.data });
      }
      visit(f, values);
      opts.onProgress?.(f + 1, inputs.length);
    }
  } finally {
    await session.release();
  }
}

/**
 * `count` distinct positions in [0, size), ascending, chosen by `seed` (Floyd's algorithm);
 * every position when count >= size. Recovery calls it with the same seed for the dense
 * and the pruned graph, so both sample the same places.
 */
export function samplePositions(count: number, size: number, seed: number): Int32Array {
  if (count >= size) return Int32Array.from({ length: size }, (_, i) => i);
  const next = mulberry32(seed);
  const chosen = new Set<number>();
  for (let j = size - count; j < size; j++) {
    const t = Math.floor(next() * (j + 1));
    chosen.add(chosen.has(t) ? j : t);
  }
  return Int32Array.from([...chosen].sort((a, b) => a - b));
}

export interface ActivationSummary {
  tensor: string;
  /** Size of axis 1 (channels, for NCHW maps). */
  channels: number;
  /** Mean |x| per channel over every frame and spatial position. */
  meanAbs: Float64Array;
  /** Spatial positions summed per channel (frames x positions per frame). */
  positions: number;
  /** Sampled activations, one row of `channels` values per sampled position; empty when not asked for. */
  samples: Float32Array;
  /** Rows in `samples`. */
  sampleCount: number;
}

export interface SummaryOptions extends CaptureOptions {
  /** Spatial positions kept per frame and tensor for `samples`. Default 0 (statistics only). */
  samplesPerFrame?: number;
  /** Seed of the position sampler. Default 1. */
  seed?: number;
}

/** Per-channel mean |x| of each tensor over the frames, plus sampled positions if asked for. */
export async function summariseActivations(
  graph: OnnxGraph,
  tensors: readonly string[],
  inputs: readonly ModelInputData[],
  opts: SummaryOptions = {},
): Promise<Map<string, ActivationSummary>> {
  const perFrame = opts.samplesPerFrame ?? 0;
  if (!Number.isInteger(perFrame) || perFrame < 0) {
    throw new RangeError(`summariseActivations: samplesPerFrame must be a non-negative integer, got ${String(perFrame)}`);
  }
  const seed = opts.seed ?? 1;
  const acc = new Map<string, { sums: Float64Array; positions: number; rows: Float32Array[] }>();
  await forEachActivation(
    graph,
    tensors,
    inputs,
    (frame, values) => {
      for (const [name, { dims, data }] of values) {
        if (dims.length < 2) throw new Error(`tensor "${name}" has dims [${dims.join(", ")}]; per-channel statistics need [N, C, ...]`);
        const channels = dims[1];
        const spatial = data.length / (dims[0] * channels);
        let a = acc.get(name);
        if (a === undefined) {
          a = { sums: new Float64Array(channels), positions: 0, rows: [] };
          acc.set(name, a);
        }
        // Batch entries beyond the first count as more positions of the same channel.
        for (let b = 0; b < dims[0]; b++) {
          for (let c = 0; c < channels; c++) {
            const base = (b * channels + c) * spatial;
            let s = 0;
            for (let p = 0; p < spatial; p++) s += Math.abs(data[base + p]);
            a.sums[c] += s;
          }
        }
        a.positions += dims[0] * spatial;
        if (perFrame > 0) {
          const at = samplePositions(perFrame, spatial, (seed ^ fnv1a(name)) + frame * 7919);
          const rows = new Float32Array(at.length * channels);
          at.forEach((p, r) => {
            for (let c = 0; c < channels; c++) rows[r * channels + c] = data[c * spatial + p];
          });
          a.rows.push(rows);
        }
      }
    },
    opts,
  );
  const out = new Map<string, ActivationSummary>();
  for (const name of tensors) {
    const a = acc.get(name);
    if (a === undefined) continue;
    const channels = a.sums.length;
    const meanAbs = a.sums.map((s) => (a.positions > 0 ? s / a.positions : 0));
    const total = a.rows.reduce((n, r) => n + r.length, 0);
    const samples = new Float32Array(total);
    let o = 0;
    for (const r of a.rows) {
      samples.set(r, o);
      o += r.length;
    }
    out.set(name, { tensor: name, channels, meanAbs, positions: a.positions, samples, sampleCount: total / channels });
  }
  return out;
}
