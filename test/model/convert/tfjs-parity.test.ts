// The converted ONNX models must compute what the original TF.js graphs compute: every
// head, on real frames of vtest.avi, ONNX Runtime CPU against TF.js (wasm backend).
import * as ort from "onnxruntime-node";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeLetterbox } from "../../../src/core/letterbox.ts";
import { readVideoFrames } from "../../../src/ingest/gst/video-file.ts";
import { resizeToModel, toNchwFloat, toNhwcFloat } from "../../../src/infer/resize.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel, type ModelEntry } from "../../../src/infer/manifest.ts";
import { TfjsReference } from "../../../src/model/tfjs/reference.ts";
import type { RgbImage } from "../../../src/core/rgb-image.ts";

const VIDEO = ".cache/fixtures/vtest.avi";
const VENDOR = ".cache/vendor/human-models-3.0.4";
const FRAMES = 20;

// 1e-3 absolute on what the network computes. CenterNet's graph multiplies its wh
// convolution by 16 (node tower_0/mul) to get pixels, and its built-in decode builds boxes
// from those pixels, so on those two outputs the same 1e-3 reads 16e-3 px. Measured worst
// case there: 0.0064 px, from float32 sums taken in another order (ONNX Runtime's NCHW
// kernels vs TF.js's NHWC ones); the heatmap agrees to about 1e-6.
const ABS = 1e-3;
const TOLERANCE: Record<string, number> = { "tower_0/wh": 16 * ABS, "tower_0/detections": 16 * ABS };

function floatInput(img: RgbImage, entry: ModelEntry): Float32Array {
  const { input } = entry;
  const t = computeLetterbox(img.width, img.height, input.width, input.height, input.resize);
  const resized = resizeToModel(img, t);
  const { mean, std } = input.normalization!;
  return input.layout === "NCHW" ? toNchwFloat(resized, mean, std, input.colorOrder) : toNhwcFloat(resized, mean, std, input.colorOrder);
}

describe.skipIf(!existsSync(VIDEO) || !existsSync(`${VENDOR}/nanodet.json`))("ONNX vs TF.js on vtest.avi", () => {
  const frames: RgbImage[] = [];

  beforeAll(async () => {
    for await (const f of readVideoFrames(VIDEO, { select: (i) => i % 37 === 0, maxFrames: FRAMES })) frames.push(f.image);
  });

  for (const name of ["nanodet", "centernet"]) {
    describe(name, () => {
      let session: ort.InferenceSession;
      let reference: TfjsReference;
      let entry: ModelEntry;

      beforeAll(async () => {
        const manifest = await readManifest();
        const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, name);
        entry = model.entry;
        session = await ort.InferenceSession.create(model.path);
        reference = await TfjsReference.load(`${VENDOR}/${name}.json`, { backend: "wasm" });
      });
      afterAll(async () => {
        await session?.release();
        reference?.dispose();
      });

      it(`matches every head within ${ABS} (x16 on CenterNet's pixel-scaled outputs) on ${FRAMES} frames`, async () => {
        expect(frames.length, "frames decoded from vtest.avi").toBe(FRAMES);
        const worst: Record<string, { abs: number; excess: number }> = {};
        for (const img of frames) {
          const input = floatInput(img, entry);
          const ref = await reference.run(input);
          const got = await session.run({ [entry.input.name]: new ort.Tensor("float32", input, entry.input.shape) });
          for (const out of entry.outputs) {
            const r = ref[out.name];
            const g = got[out.name];
            expect(r, `TF.js output ${out.name}`).toBeDefined();
            expect([...g.dims], `dims of ${out.name}`).toEqual(r.dims);
            const a = g.data as Float32Array;
            const w = (worst[out.name] ??= { abs: 0, excess: -Infinity });
            for (let i = 0; i < a.length; i++) {
              const d = Math.abs(a[i] - r.data[i]);
              w.abs = Math.max(w.abs, d);
              w.excess = Math.max(w.excess, d - (TOLERANCE[out.name] ?? ABS));
            }
          }
        }
        for (const [out, w] of Object.entries(worst))
          expect(w.excess, `${name} output ${out}: max |onnx - tfjs| = ${w.abs}, beyond tolerance by ${w.excess}`).toBeLessThanOrEqual(0);
      });
    });
  }
});
