// perceptd decodes CenterNet's heads itself; on real frames that must give exactly what
// the graph's own built-in decode (tower_0/detections) gives.
import * as ort from "onnxruntime-node";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COCO_LABELS } from "../../../src/infer/coco-labels.ts";
import { decodeCenterNetDetections, decodeCenterNetHeads } from "../../../src/infer/decode/centernet.ts";
import { computeLetterbox } from "../../../src/core/letterbox.ts";
import type { RawTensor } from "../../../src/core/types.ts";
import { readVideoFrames } from "../../../src/ingest/gst/video-file.ts";
import { resizeToModel } from "../../../src/infer/resize.ts";
import { MODELS_DIR } from "../../../src/infer/manifest.ts";

const VIDEO = ".cache/fixtures/vtest.avi";

describe.skipIf(!existsSync(VIDEO))("CenterNet head decode on vtest.avi", () => {
  it("equals the graph's built-in top-100 decode above the threshold", async () => {
    const session = await ort.InferenceSession.create(join(MODELS_DIR, "centernet-u8.onnx"));
    let compared = 0;
    for await (const f of readVideoFrames(VIDEO, { select: (i) => i % 150 === 0, maxFrames: 5 })) {
      const img = resizeToModel(f.image, computeLetterbox(f.image.width, f.image.height, 512, 512, "stretch"));
      const out = await session.run({ image: new ort.Tensor("uint8", img.data, [1, 512, 512, 3]) });
      const raw = (k: string): RawTensor => ({ dims: out[k].dims, data: out[k].data as Float32Array });
      const opts = { inputWidth: 512, inputHeight: 512, scoreThreshold: 0.2, labels: COCO_LABELS };
      const ours = decodeCenterNetHeads(raw("tower_0/keypoints"), raw("tower_0/wh"), opts);
      const builtIn = decodeCenterNetDetections(raw("tower_0/detections"), opts);
      expect(ours.length, `frame ${f.index}: number of detections`).toBe(builtIn.length);
      expect(ours.length, `frame ${f.index}: some detections`).toBeGreaterThan(0);
      ours.forEach((d, i) => {
        expect(d.classId, `frame ${f.index} detection ${i} class`).toBe(builtIn[i].classId);
        expect(d.score).toBeCloseTo(builtIn[i].score, 5);
        d.box.forEach((v, k) => expect(v, `frame ${f.index} detection ${i} box[${k}]`).toBeCloseTo(builtIn[i].box[k], 2));
      });
      compared += ours.length;
    }
    expect(compared).toBeGreaterThan(20);
    await session.release();
  });
});
