// Recovery regularised toward the original weights (ridge toward W0) against the plain
// least-squares refit, on a graph small enough to reason about: Conv "a" (1x1, 4 -> 6) feeds
// Conv "b" (1x1, 6 -> 3); pruning removes a's output channel 5 and b's matching input.
// The calibration frames vary only input channel 0, so b's pruned input moves along one
// direction (plus a constant): the refit learns nothing about any other direction. There the
// plain fit (ridge toward zero) forgets what b did; the pull toward W0 keeps it. The removed
// channel carries only a's bias (its filter is zero), so what pruning took is a constant
// that b's refitted bias restores, and a refit that keeps W0 also wins on validation frames.
import { describe, expect, it } from "vitest";
import type { ModelInputData } from "../../../src/infer/input-tensor.ts";
import type { OnnxGraph } from "../../../src/model/onnx/ir.ts";
import { recoverLeastSquares } from "../../../src/model/prune/recover.ts";
import { GraphBuilder, prng } from "./graphs.ts";

const H = 6;
const IN = 4;
const MID = 6;
const OUT = 3;
const KEEP = [0, 1, 2, 3, 4];

function denseGraph(): OnnxGraph {
  const b = new GraphBuilder("ridge", [1, IN, H, H], 11);
  const a = b.conv("a", "x", IN, MID);
  const y = b.conv("b", a, MID, OUT);
  b.output(y, [1, OUT, H, H]);
  (b.g.initializers.get("a/w")!.data as Float32Array).fill(0, 5 * IN, 6 * IN);
  return b.g;
}

/** a without output channel 5, b without input channel 5: the weights the pruner copies. */
function prunedGraph(dense: OnnxGraph): OnnxGraph {
  const g: OnnxGraph = { ...dense, initializers: new Map(dense.initializers), nodes: dense.nodes.map((n) => ({ ...n, inputs: [...n.inputs] })) };
  const aw = dense.initializers.get("a/w")!.data as Float32Array;
  const ab = dense.initializers.get("a/b")!.data as Float32Array;
  const bw = dense.initializers.get("b/w")!.data as Float32Array;
  g.initializers.set("a/w", { dtype: "float32", dims: [KEEP.length, IN, 1, 1], data: Float32Array.from(KEEP.flatMap((o) => Array.from(aw.subarray(o * IN, (o + 1) * IN)))) });
  g.initializers.set("a/b", { dtype: "float32", dims: [KEEP.length], data: Float32Array.from(KEEP.map((o) => ab[o])) });
  g.initializers.set("b/w", { dtype: "float32", dims: [OUT, KEEP.length, 1, 1], data: Float32Array.from({ length: OUT * KEEP.length }, (_, i) => bw[Math.floor(i / KEEP.length) * MID + KEEP[i % KEEP.length]]) });
  return g;
}

/** Frames whose input varies only in the listed channels (the others are zero). */
function frames(count: number, channels: readonly number[], seed: number): ModelInputData[] {
  const r = prng(seed);
  return Array.from({ length: count }, () => {
    const data = new Float32Array(IN * H * H);
    for (const c of channels) for (let p = 0; p < H * H; p++) data[c * H * H + p] = r() * 4 - 2;
    return { dtype: "float32" as const, data };
  });
}

/** b's refitted weights as OUT rows of KEEP.length. */
function bWeights(g: OnnxGraph): Float32Array {
  const node = g.nodes.find((n) => n.name === "b")!;
  return g.initializers.get(node.inputs[1])!.data as Float32Array;
}

/** A unit direction of b's pruned input that the calibration frames never move along. */
function unexcitedDirection(dense: OnnxGraph): number[] {
  const aw = dense.initializers.get("a/w")!.data as Float32Array;
  const ab = dense.initializers.get("a/b")!.data as Float32Array;
  const seen = [KEEP.map((o) => aw[o * IN + 0]), KEEP.map((o) => ab[o])]; // channel 0's column, the constant
  const r = prng(5);
  let v = KEEP.map(() => r() * 2 - 1);
  const dot = (p: number[], q: number[]): number => p.reduce((s, x, i) => s + x * q[i], 0);
  const basis: number[][] = [];
  for (const s of seen) {
    let u = [...s];
    for (const b of basis) u = u.map((x, i) => x - dot(u, b) * b[i]);
    const n = Math.sqrt(dot(u, u));
    basis.push(u.map((x) => x / n));
  }
  for (const b of basis) v = v.map((x, i) => x - dot(v, b) * b[i]);
  const n = Math.sqrt(dot(v, v));
  return v.map((x) => x / n);
}

/** |W v - W0 v| / |W0 v|: how far the refit's response along v moved from the original one. */
function responseChange(w: Float32Array, w0: Float32Array, v: readonly number[]): number {
  let num = 0;
  let den = 0;
  for (let o = 0; o < OUT; o++) {
    let a = 0;
    let b = 0;
    for (let i = 0; i < KEEP.length; i++) {
      a += w[o * KEEP.length + i] * v[i];
      b += w0[o * KEEP.length + i] * v[i];
    }
    num += (a - b) ** 2;
    den += b * b;
  }
  return Math.sqrt(num / den);
}

describe("recoverLeastSquares toward the original weights", () => {
  const dense = denseGraph();
  const pruned = prunedGraph(dense);
  const w0 = Float32Array.from(bWeights(pruned));
  const v = unexcitedDirection(dense);
  const calibration = frames(6, [0], 1);
  const validation = frames(4, [0, 1, 2, 3], 2);

  it("keeps the original response in the directions calibration does not excite; the plain refit does not", async () => {
    const plain = await recoverLeastSquares({ dense, pruned, convNodes: ["b"], frames: calibration, samplesPerFrame: 36 });
    const ridged = await recoverLeastSquares({ dense, pruned, convNodes: ["b"], frames: calibration, validationFrames: validation, ridge: "auto", ridgeToward: "original", samplesPerFrame: 36 });
    for (const r of [plain, ridged]) {
      expect(r.layers[0].refitted, JSON.stringify(r.layers[0])).toBe(true);
      expect(r.layers[0].relMseAfter, "both fit the calibration frames better than the pruned weights").toBeLessThan(r.layers[0].relMseBefore);
    }
    expect(ridged.layers[0].heldOutFrom).toBe("validation");
    expect(ridged.layers[0].ridgeToward).toBe("original");
    const plainChange = responseChange(bWeights(plain.graph), w0, v);
    const ridgeChange = responseChange(bWeights(ridged.graph), w0, v);
    expect(plainChange, "the plain refit forgets b's response along a direction it never saw").toBeGreaterThan(0.5);
    expect(ridgeChange, "the ridge toward W0 keeps it").toBeLessThan(0.02);
  });

  it("with a fixed strength and no validation frames, still keeps the unexcited response", async () => {
    const ridged = await recoverLeastSquares({ dense, pruned, convNodes: ["b"], frames: calibration, ridge: 0.1, ridgeToward: "original", samplesPerFrame: 36 });
    expect(ridged.layers[0].refitted).toBe(true);
    expect(ridged.layers[0].ridge).toBe(0.1);
    expect(ridged.layers[0].heldOutFrom).toBe("calibration");
    expect(responseChange(bWeights(ridged.graph), w0, v)).toBeLessThan(0.02);
  });

  it("refuses ridge auto without validation frames, or toward zero", async () => {
    await expect(recoverLeastSquares({ dense, pruned, convNodes: ["b"], frames: calibration, ridge: "auto", ridgeToward: "original" })).rejects.toThrow(/validation frames/);
    await expect(recoverLeastSquares({ dense, pruned, convNodes: ["b"], frames: calibration, validationFrames: validation, ridge: "auto" })).rejects.toThrow(/toward the original/);
  });
});
