// Activation capture through real ONNX Runtime sessions on nanodet and real vtest.avi frames.
import { existsSync, readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import type { ModelInputData } from "../../../src/infer/input-tensor.ts";
import { readModelFrames } from "../../../src/model/eval/frames.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../../src/infer/manifest.ts";
import type { OnnxGraph } from "../../../src/model/onnx/ir.ts";
import { decodeModel } from "../../../src/model/onnx/serialize.ts";
import { forEachActivation, samplePositions, summariseActivations, withOutputs } from "../../../src/model/prune/activations.ts";

const VIDEO = ".cache/fixtures/vtest.avi";
const STEM = "PartitionedCall/onnx_tf_prefix_LeakyRelu_1"; // 32 x 208 x 208
const HEAD = "PartitionedCall/Add_29"; // 124 x 52 x 52, pre-activation

describe("samplePositions", () => {
  it("picks distinct sorted positions, the same ones for the same seed", () => {
    const a = samplePositions(100, 2704, 42);
    expect(a).toHaveLength(100);
    expect(new Set(a).size).toBe(100);
    expect([...a].every((v, i) => v >= 0 && v < 2704 && (i === 0 || v > a[i - 1]))).toBe(true);
    expect(samplePositions(100, 2704, 42)).toEqual(a);
    expect(samplePositions(100, 2704, 43)).not.toEqual(a);
    expect(samplePositions(500, 169, 1)).toEqual(Int32Array.from({ length: 169 }, (_, i) => i));
  });
});

describe.skipIf(!existsSync(VIDEO))("activations of nanodet on vtest.avi", () => {
  let graph: OnnxGraph;
  let frames: ModelInputData[];

  beforeAll(async () => {
    const model = resolveModel(await readManifest(), DEFAULT_MANIFEST_PATH, "nanodet");
    graph = decodeModel(readFileSync(model.path), model.path);
    frames = (await readModelFrames(VIDEO, [10, 90], model.entry.input)).map((f) => f.input);
  });

  it("per-channel mean |x| and samples agree with the full maps ORT returns", async () => {
    const full = new Map<string, Float32Array[]>();
    await forEachActivation(graph, [STEM, HEAD], frames, (_, v) => {
      for (const [k, a] of v) (full.get(k) ?? full.set(k, []).get(k)!).push(Float32Array.from(a.data));
    });
    const summary = await summariseActivations(graph, [STEM, HEAD], frames, { samplesPerFrame: 50, seed: 7 });
    for (const [name, channels, spatial] of [
      [STEM, 32, 208 * 208],
      [HEAD, 124, 52 * 52],
    ] as const) {
      const s = summary.get(name)!;
      expect(s.channels).toBe(channels);
      expect(s.positions).toBe(2 * spatial);
      expect(s.sampleCount).toBe(100);
      for (const c of [0, 5, channels - 1]) {
        let sum = 0;
        for (const map of full.get(name)!) for (let p = 0; p < spatial; p++) sum += Math.abs(map[c * spatial + p]);
        expect(s.meanAbs[c]).toBeCloseTo(sum / (2 * spatial), 4);
      }
      // every sampled row is a real column of one frame's map
      const map0 = full.get(name)!;
      for (const r of [0, 49, 50, 99]) {
        const row = s.samples.subarray(r * channels, (r + 1) * channels);
        const frame = map0[r < 50 ? 0 : 1];
        let hit = false;
        for (let p = 0; p < spatial && !hit; p++) hit = row.every((v, c) => v === frame[c * spatial + p]);
        expect(hit, `${name} sample row ${r}`).toBe(true);
      }
    }
    // LeakyRelu output: negatives are scaled, not gone, so mean |x| > 0 everywhere it fires
    expect(summary.get(STEM)!.meanAbs.some((v) => v > 0)).toBe(true);
  });

  it("names a tensor the graph does not have, and a frame of the wrong size", async () => {
    expect(() => withOutputs(graph, ["no/such/tensor"])).toThrow(/no intermediate tensor named "no\/such\/tensor"/);
    await expect(
      forEachActivation(graph, [HEAD], [{ dtype: "float32", data: new Float32Array(10) }], () => undefined),
    ).rejects.toThrow(/frame 0 is float32 x 10, the input "input_1" wants float32 \[1, 3, 416, 416\]/);
  });
});
