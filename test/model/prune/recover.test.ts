// Least-squares recovery on the real nanodet graph and real vtest.avi frames. The pruned
// graph is built here by hand, so the test does not depend on the pruning core: the head
// Conv convolution_28 (3x3, 128 -> 128) keeps its 64 largest-L1 output channels and the
// 1x1 head output convolution_29 reading it loses the matching input channels.
import { existsSync, readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../../src/infer/manifest.ts";
import { readModelFrames, splitFrames } from "../../../src/model/eval/frames.ts";
import type { OnnxGraph } from "../../../src/model/onnx/ir.ts";
import { decodeModel } from "../../../src/model/onnx/serialize.ts";
import type { Tensor } from "../../../src/model/onnx/tensor.ts";
import { choleskyFactorRidged, choleskySolve, NotPositiveDefiniteError } from "../../../src/model/prune/cholesky.ts";
import { recoverLeastSquares } from "../../../src/model/prune/recover.ts";
import { forEachActivation } from "../../../src/model/prune/activations.ts";
import type { ModelInputData } from "../../../src/infer/input-tensor.ts";

const VIDEO = ".cache/fixtures/vtest.avi";
const PRODUCER = "PartitionedCall/convolution_28/Conv";
const CONSUMER = "PartitionedCall/convolution_29/Conv";

describe("choleskySolve", () => {
  it("solves a known 3x3 system with two right-hand sides", () => {
    // A = L Lᵀ with L = [[2,0,0],[1,3,0],[-1,2,1]]; X chosen, B = A X.
    const a = Float64Array.from([4, 2, -2, 2, 10, 5, -2, 5, 6]);
    const x = [1, -2, 0.5, 3, -1, 4];
    const b = new Float64Array(6);
    for (let i = 0; i < 3; i++) for (let c = 0; c < 2; c++) for (let k = 0; k < 3; k++) b[i * 2 + c] += a[i * 3 + k] * x[k * 2 + c];
    const got = choleskySolve(a, 3, b, 2);
    got.forEach((v, i) => expect(v).toBeCloseTo(x[i], 12));
  });

  it("refuses a matrix that is not positive definite", () => {
    expect(() => choleskySolve(Float64Array.from([1, 2, 2, 1]), 2, Float64Array.from([1, 1]), 1)).toThrow(NotPositiveDefiniteError);
  });
});

describe("choleskyFactorRidged", () => {
  it("factors a positive definite matrix with the ridge asked for, leaving the input alone", () => {
    const a = Float64Array.from([4, 2, 2, 10]);
    const { l, ridge, lambda } = choleskyFactorRidged(a, 2, 1e-3);
    expect(ridge).toBe(1e-3);
    expect(lambda).toBeCloseTo(1e-3 * 7, 15); // mean diagonal 7
    expect(Array.from(a)).toEqual([4, 2, 2, 10]);
    expect(l[0] * l[0]).toBeCloseTo(4 + lambda, 12);
  });

  it("raises the ridge tenfold until a singular matrix (a dead channel) factors, only on the ridged diagonal", () => {
    // Channel 1 is dead (all zero); the last unknown (a bias) has its own positive diagonal.
    const a = Float64Array.from([2, 0, 0, 0, 0, 0, 0, 0, 3]);
    const { ridge, lambda, l } = choleskyFactorRidged(a, 3, 0, 2);
    expect(ridge).toBe(1e-8);
    expect(lambda).toBeCloseTo(1e-8, 20); // mean of the two ridged diagonal entries: 1
    expect(l[8], "the bias entry got no ridge").toBeCloseTo(Math.sqrt(3), 12);
  });

  it("gives up past a ridge of 1 with NotPositiveDefiniteError", () => {
    expect(() => choleskyFactorRidged(Float64Array.from([1, 30, 30, 1]), 2, 1e-6)).toThrow(NotPositiveDefiniteError);
  });
});

function slice(t: Tensor, axis: 0 | 1, keep: readonly number[]): Tensor {
  const src = t.data as Float32Array;
  const dims = [...t.dims];
  const inner = dims.slice(axis + 1).reduce((p, d) => p * d, 1);
  const outer = dims.slice(0, axis).reduce((p, d) => p * d, 1);
  const out = new Float32Array(outer * keep.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++)
    for (const k of keep) {
      out.set(src.subarray((a * dims[axis] + k) * inner, (a * dims[axis] + k + 1) * inner), o);
      o += inner;
    }
  dims[axis] = keep.length;
  return { dtype: "float32", dims, data: out };
}

function prunedByHand(dense: OnnxGraph, keep: readonly number[]): OnnxGraph {
  const g: OnnxGraph = { ...dense, initializers: new Map(dense.initializers), nodes: dense.nodes.map((n) => ({ ...n, inputs: [...n.inputs] })) };
  const prod = g.nodes.find((n) => n.name === PRODUCER)!;
  const cons = g.nodes.find((n) => n.name === CONSUMER)!;
  g.initializers.set(prod.inputs[1], slice(g.initializers.get(prod.inputs[1])!, 0, keep));
  g.initializers.set(prod.inputs[2], slice(g.initializers.get(prod.inputs[2])!, 0, keep));
  g.initializers.set(cons.inputs[1], slice(g.initializers.get(cons.inputs[1])!, 1, keep));
  return g;
}

/** Relative MSE of graph outputs `name` between two graphs on the frames. */
async function outputError(a: OnnxGraph, b: OnnxGraph, name: string, frames: readonly ModelInputData[]): Promise<number> {
  const ref: Float32Array[] = [];
  await forEachActivation(a, [name], frames, (_, v) => ref.push(Float32Array.from(v.get(name)!.data)));
  let num = 0;
  let den = 0;
  await forEachActivation(b, [name], frames, (f, v) => {
    const y = v.get(name)!.data;
    ref[f].forEach((r, i) => {
      num += (r - y[i]) ** 2;
      den += r * r;
    });
  });
  return num / den;
}

describe.skipIf(!existsSync(VIDEO))("recoverLeastSquares on nanodet", () => {
  let dense: OnnxGraph;
  let calibration: ModelInputData[];
  let evaluation: ModelInputData[];

  beforeAll(async () => {
    const manifest = await readManifest();
    const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet");
    dense = decodeModel(readFileSync(model.path), model.path);
    const split = splitFrames(795, { calibrationFrames: 4, evaluationFrames: 3 });
    calibration = (await readModelFrames(VIDEO, split.calibration, model.entry.input)).map((f) => f.input);
    evaluation = (await readModelFrames(VIDEO, split.evaluation, model.entry.input)).map((f) => f.input);
  });

  it("lowers the reconstruction error of the Conv whose input channels were pruned, on calibration and held-out frames", async () => {
    const prod = dense.nodes.find((n) => n.name === PRODUCER)!;
    const w = dense.initializers.get(prod.inputs[1])!;
    const per = (w.dims[1] * w.dims[2] * w.dims[3]);
    const l1 = Array.from({ length: w.dims[0] }, (_, o) => (w.data as Float32Array).subarray(o * per, (o + 1) * per).reduce((s, v) => s + Math.abs(v), 0));
    const keep = l1.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 64).map(([, i]) => i).sort((a, b) => a - b);
    const pruned = prunedByHand(dense, keep);

    const events: string[] = [];
    const { graph, layers } = await recoverLeastSquares({ dense, pruned, frames: calibration, samplesPerFrame: 256, onProgress: (e) => events.push(e.kind) });
    expect(layers.map((l) => l.node)).toEqual([CONSUMER]);
    const [layer] = layers;
    expect(layer.inputChannels).toEqual([128, 64]);
    expect(layer.outputChannels).toEqual([124, 124]);
    // every 5th sampled position is held out of the fit to judge it
    expect(layer.samples + layer.heldOutSamples).toBe(4 * 256);
    expect(layer.heldOutSamples).toBe(4 * 51);
    expect(layer.relMseBefore).toBeGreaterThan(0.01);
    expect(layer.relMseAfter).toBeLessThan(layer.relMseBefore * 0.8);
    expect(layer.refitted).toBe(true);
    expect(layer.heldOutAfter).toBeLessThan(layer.heldOutBefore * 0.8);
    expect(events).toContain("dense");
    expect(events).toContain("layer");
    // the input was not modified
    expect(pruned.initializers.get(pruned.nodes.find((n) => n.name === CONSUMER)!.inputs[1])).not.toBe(
      graph.initializers.get(graph.nodes.find((n) => n.name === CONSUMER)!.inputs[1]),
    );

    // On frames it never saw, the pre-activation output of the refitted Conv is closer to the dense one.
    const out = pruned.nodes.find((n) => n.name === CONSUMER)!.outputs[0];
    const errPruned = await outputError(dense, pruned, out, evaluation);
    const errRecovered = await outputError(dense, graph, out, evaluation);
    expect(errRecovered).toBeLessThan(errPruned);
  });

  it("reproduces an unpruned 3x3 Conv from its own activations (im2col, pads and strides agree with ORT)", async () => {
    // convolution_11 is 3x3 with stride 2: its patches must line up with ORT's exactly,
    // or the error of the unchanged weights would not be ~0.
    const name = "PartitionedCall/convolution_11/Conv";
    const { layers } = await recoverLeastSquares({ dense, pruned: dense, convNodes: [name], frames: calibration.slice(0, 2), samplesPerFrame: 64, oversample: 0.1, ridge: 1e-9 });
    expect(layers).toHaveLength(1);
    expect(layers[0].kernel).toEqual([3, 3]);
    expect(layers[0].relMseBefore).toBeLessThan(1e-9);
    expect(layers[0].relMseAfter).toBeLessThan(1e-4);
  });

  it("names what is wrong with a bad request", async () => {
    await expect(recoverLeastSquares({ dense, pruned: dense, convNodes: ["nope"], frames: calibration })).rejects.toThrow(/no node named "nope"/);
    await expect(recoverLeastSquares({ dense, pruned: dense, convNodes: [CONSUMER], frames: [] })).rejects.toThrow(/no calibration frames/);
  });
});
