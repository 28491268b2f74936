// The calibration/evaluation split and the frames it hands to models, on the real vtest.avi.
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../../src/infer/manifest.ts";
import { readFramesAt, readModelFrames, splitFrames, splitVideoFrames } from "../../../src/model/eval/frames.ts";

const VIDEO = ".cache/fixtures/vtest.avi";

describe("splitFrames", () => {
  it("never puts a frame in both sets, and keeps calibration before the boundary", () => {
    for (const total of [2, 3, 10, 100, 795, 10_000]) {
      for (const [c, e] of [
        [16, 100],
        [1000, 1000],
        [1, 1],
        [0, 5],
      ]) {
        const s = splitFrames(total, { calibrationFrames: c, evaluationFrames: e });
        const cal = new Set(s.calibration);
        expect(s.evaluation.some((i) => cal.has(i)), `total ${total}`).toBe(false);
        expect(s.calibration.every((i) => i >= 0 && i < s.boundary)).toBe(true);
        expect(s.evaluation.every((i) => i >= s.boundary && i < total)).toBe(true);
        expect(new Set(s.evaluation).size).toBe(s.evaluation.length);
        expect(new Set(s.calibration).size).toBe(s.calibration.length);
        expect(s.calibration.length).toBe(Math.min(c, s.boundary));
        expect(s.evaluation.length).toBe(Math.min(e, total - s.boundary));
      }
    }
  });

  it("is deterministic and spreads evaluation over the rest of the clip", () => {
    const a = splitFrames(795);
    expect(splitFrames(795)).toEqual(a);
    expect(a.boundary).toBe(198);
    expect(a.calibration).toHaveLength(16);
    expect(a.evaluation).toHaveLength(100);
    expect(a.evaluation[0]).toBe(198);
    expect(a.evaluation[99]).toBeGreaterThan(780);
  });

  it("names bad options", () => {
    expect(() => splitFrames(1)).toThrow(/at least 2 frames/);
    expect(() => splitFrames(100, { calibrationShare: 1 })).toThrow(/calibrationShare must be in \(0, 1\)/);
    expect(() => splitFrames(100, { evaluationFrames: -1 })).toThrow(/evaluationFrames must be a non-negative integer/);
  });
});

describe.skipIf(!existsSync(VIDEO))("frames of vtest.avi", () => {
  it("splits the real clip by its length", async () => {
    const s = await splitVideoFrames(VIDEO);
    expect(s.total).toBe(795);
    expect(s.calibration.every((i) => i < s.boundary)).toBe(true);
  });

  it("fits frames to the model input by the daemon's pipeline: nanodet stretches 768x576 into 416x416 BGR float", async () => {
    const manifest = await readManifest();
    const nanodet = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet").entry.input;
    const u8 = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet-u8").entry.input;
    const [f] = await readModelFrames(VIDEO, [120], nanodet);
    expect(f.index).toBe(120);
    expect(f.transform).toMatchObject({ srcWidth: 768, srcHeight: 576, dstWidth: 416, dstHeight: 416, padX: 0, padY: 0 });
    expect(f.input.dtype).toBe("float32");
    expect(f.input.data).toHaveLength(3 * 416 * 416);
    const [g] = await readModelFrames(VIDEO, [120], u8);
    expect(g.input.dtype).toBe("uint8");
    expect(g.input.data).toHaveLength(416 * 416 * 3);
    // The float input is the uint8 pixels normalised: channel 0 of NCHW BGR is blue, (v - mean_b) / std_b.
    const { mean, std } = nanodet.normalization!;
    expect(f.input.data[0]).toBeCloseTo((g.input.data[2] - mean[2]) / std[2], 4);

    const frames = await readModelFrames(VIDEO, [5, 1], u8);
    expect(frames.map((x) => x.index)).toEqual([1, 5]);
  });

  it("says which frame the clip does not have", async () => {
    await expect(readFramesAt(VIDEO, [10, 5000])).rejects.toThrow(/has no frame 5000/);
  });
});
