// Dense vs pruned latency, measured side by side in one process: one ORT CPU session per
// model with the same thread settings, runs interleaved (A B A B ... on the same inputs) so
// machine noise lands on every model alike. FLOPs are an estimate; this is the measurement.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { ModelInputData } from "../../infer/input-tensor.ts";
import { createSession } from "../../infer/session.ts";
import type { OnnxGraph, OnnxNode } from "../onnx/ir.ts";
import { encodeModel } from "../onnx/serialize.ts";
import { sizeOf } from "../onnx/tensor.ts";

export interface LatencyStats {
  runs: number;
  p50Ms: number;
  p90Ms: number;
  meanMs: number;
  minMs: number;
}

function quantile(sorted: readonly number[], p: number): number {
  const rank = p * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function latencyStats(samplesMs: readonly number[]): LatencyStats {
  if (samplesMs.length === 0) throw new RangeError("latencyStats: no samples");
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    runs: sorted.length,
    p50Ms: quantile(sorted, 0.5),
    p90Ms: quantile(sorted, 0.9),
    meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    minMs: sorted[0],
  };
}

export interface LatencyOptions {
  /** Timed runs per model. Default 20. */
  runs?: number;
  /** Untimed runs per model first. Default 3. */
  warmup?: number;
  /** ORT intra-op threads, the same for every model. Default: the cores this process may use. */
  threads?: number;
  /** Inputs to cycle through; default one deterministic pseudo-random input. */
  inputs?: readonly ModelInputData[];
  onProgress?: (done: number, total: number) => void;
}

export interface LatencyRow {
  label: string;
  stats: LatencyStats;
  /** p50 of the first model / p50 of this one, from the same run */
  speedup: number;
}

export interface LatencyResult {
  threads: number;
  runs: number;
  warmup: number;
  order: "interleaved";
  rows: LatencyRow[];
}

/** A fixed pseudo-random input of the graph's single input, for when no frames are given. */
export function syntheticInput(g: OnnxGraph): ModelInputData {
  const inp = g.inputs[0];
  const n = sizeOf(inp.dims);
  let s = 12345;
  const next = (): number => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32;
  };
  if (inp.dtype === "uint8") return { dtype: "uint8", data: Uint8Array.from({ length: n }, () => Math.floor(next() * 256)) };
  if (inp.dtype === "float32") return { dtype: "float32", data: Float32Array.from({ length: n }, next) };
  throw new Error(`graph ${g.name}: input ${inp.name} is ${inp.dtype}; latency runs feed uint8 or float32`);
}

/** Measures every model (the first is the baseline) interleaved run by run. */
export async function measureSideBySide(models: readonly { label: string; graph: OnnxGraph }[], opts: LatencyOptions = {}): Promise<LatencyResult> {
  if (models.length === 0) throw new RangeError("measureSideBySide: no models");
  const runs = opts.runs ?? 20;
  const warmup = opts.warmup ?? 3;
  const threads = opts.threads ?? os.availableParallelism();
  // Without given inputs each model gets the synthetic input of its own graph, so models
  // with different input sizes (nanodet 416, centernet 512) can be timed side by side.
  const given = opts.inputs?.length ? opts.inputs : null;
  const sessions: { label: string; session: ort.InferenceSession; feed: (i: number) => Record<string, ort.Tensor> }[] = [];
  try {
    for (const m of models) {
      // Spinning off: with it on (ORT's default) each session's pool threads keep spinning
      // after its run and steal the cores from the next session's run. Measured on the
      // 2-core build machine: dense nanodet p50 39-41 ms interleaved with two pruned
      // graphs, spinning on, with the pruned ones randomly slower or faster; 19.1-19.3 ms
      // spinning off, the pruned graphs steady. The daemon runs with it off too
      // (inference.allowSpinning).
      const created = await createSession(encodeModel(m.graph), { executionProviders: ["cpu"], intraOpThreads: threads, interOpThreads: 1, allowSpinning: false, source: m.label });
      const inp = m.graph.inputs[0];
      const tensors = (given ?? [syntheticInput(m.graph)]).map((d) =>
        d.dtype === "uint8" ? new ort.Tensor("uint8", d.data, inp.dims) : new ort.Tensor("float32", d.data, inp.dims),
      );
      sessions.push({ label: m.label, session: created.session, feed: (i) => ({ [inp.name]: tensors[i % tensors.length] }) });
    }
    const samples = sessions.map(() => [] as number[]);
    const total = warmup + runs;
    for (let r = 0; r < total; r++) {
      // alternate which model goes first, so neither always runs on a cache the other warmed
      const order = r % 2 === 0 ? sessions.map((_, i) => i) : sessions.map((_, i) => sessions.length - 1 - i);
      for (const i of order) {
        const t0 = process.hrtime.bigint();
        await sessions[i].session.run(sessions[i].feed(r));
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r >= warmup) samples[i].push(ms);
      }
      opts.onProgress?.(r + 1, total);
    }
    const stats = samples.map((s) => latencyStats(s));
    return {
      threads,
      runs,
      warmup,
      order: "interleaved",
      rows: sessions.map((s, i) => ({ label: s.label, stats: stats[i], speedup: stats[0].p50Ms / stats[i].p50Ms })),
    };
  } finally {
    for (const s of sessions) await s.session.release();
  }
}

export interface ConvTimes {
  /** ms per run charged to each Conv (its fused activation included) */
  convMs: Map<string, number>;
  /** ms per run of every kernel, Convs and the rest */
  totalMs: number;
  runs: number;
}

/** Ops ORT fuses into the Conv before them; their kernel time is the Conv's. */
const FUSED_AFTER_CONV = new Set(["Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "Tanh", "Add", "Sum"]);

/**
 * Time per Conv from ONNX Runtime's own profiler, so a pruning plan can be priced in
 * milliseconds rather than FLOPs: a Conv at 52x52 with 128 channels and one at 13x13 with
 * 256 have similar FLOPs and very different costs, and what is not a Conv (reorders, Pad,
 * Resize) does not shrink at all. ORT names a fused Conv+activation kernel after the
 * activation (with an "_nchwc" suffix on x86); such kernels are charged to the Conv.
 */
export async function profileConvTimes(g: OnnxGraph, opts: { runs?: number; threads?: number; inputs?: readonly ModelInputData[] } = {}): Promise<ConvTimes> {
  const runs = opts.runs ?? 10;
  const dir = await mkdtemp(join(tmpdir(), "perceptd-profile-"));
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const producer = new Map<string, OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const convOf = (name: string): string | undefined => {
    // ORT's rewritten kernels are named after the node or after the tensor they produce
    const base = name.replace(/_nchwc$/, "");
    let n = byName.get(base) ?? producer.get(base);
    for (let hops = 0; n && hops < 3; hops++) {
      if (n.opType === "Conv") return n.name;
      if (!FUSED_AFTER_CONV.has(n.opType)) return undefined;
      n = producer.get(n.inputs[0]);
    }
    return undefined;
  };
  const inputs = opts.inputs?.length ? opts.inputs : [syntheticInput(g)];
  const inp = g.inputs[0];
  const session = await ort.InferenceSession.create(encodeModel(g), {
    executionProviders: ["cpu"],
    intraOpNumThreads: opts.threads ?? os.availableParallelism(),
    interOpNumThreads: 1,
    // as in measureSideBySide: the daemon's setting, and no pool spinning into other work
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
    enableProfiling: true,
    profileFilePrefix: join(dir, "profile"),
  });
  try {
    const feed = (i: number): Record<string, ort.Tensor> => {
      const d = inputs[i % inputs.length];
      return { [inp.name]: d.dtype === "uint8" ? new ort.Tensor("uint8", d.data, inp.dims) : new ort.Tensor("float32", d.data, inp.dims) };
    };
    // the first run (warm-up: allocations, prepacking) is profiled too, and left out below
    for (let r = 0; r <= runs; r++) await session.run(feed(r));
    session.endProfiling();
    const file = (await readdir(dir)).find((f) => f.endsWith(".json"));
    if (!file) throw new Error("ONNX Runtime wrote no profile");
    const events = JSON.parse(await readFile(join(dir, file), "utf8")) as { cat?: string; name?: string; dur?: number; ts?: number }[];
    const firstRun = events.filter((e) => e.cat === "Session" && e.name === "model_run").sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0))[0];
    const warmupEnd = firstRun ? (firstRun.ts ?? 0) + (firstRun.dur ?? 0) : -Infinity;
    const convMs = new Map<string, number>();
    let total = 0;
    for (const e of events) {
      if (e.cat !== "Node" || !e.name?.endsWith("_kernel_time") || typeof e.dur !== "number" || (e.ts ?? 0) <= warmupEnd) continue;
      const ms = e.dur / 1000 / runs;
      total += ms;
      const conv = convOf(e.name.slice(0, -"_kernel_time".length));
      if (conv) convMs.set(conv, (convMs.get(conv) ?? 0) + ms);
    }
    return { convMs, totalMs: total, runs };
  } finally {
    await session.release();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Estimated ms per run of a pruned graph: each Conv's profiled time scaled by its MACs
 * after / before, everything else unchanged. A model, not a measurement; the pruner checks
 * it against a side-by-side run.
 */
export function estimateMs(times: ConvTimes, layers: readonly { node: string; macsBefore: number; macsAfter: number }[]): number {
  let ms = times.totalMs;
  for (const l of layers) {
    const t = times.convMs.get(l.node);
    if (t !== undefined && l.macsBefore > 0) ms -= t * (1 - l.macsAfter / l.macsBefore);
  }
  return ms;
}
