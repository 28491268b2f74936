// What was checked by eye on annotated frames of vtest.avi (README, docs/vtest-frame120.png),
// pinned: the people a person sees are found, where they are, and nothing else is called a
// confident person. Centres in source pixels, read off the pictures.
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Detector } from "../../src/infer/detector.ts";
import { readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../src/infer/manifest.ts";

const VIDEO = ".cache/fixtures/vtest.avi";

const PEOPLE_BY_EYE: Record<number, [number, number][]> = {
  // frame 120: seven people walking; a traffic cone and a sign that look person-like stay below 0.5
  120: [
    [525, 255],
    [388, 222],
    [573, 161],
    [598, 166],
    [662, 167],
    [174, 87],
    [708, 261],
  ],
  // frame 400: three people
  400: [
    [716, 355],
    [603, 172],
    [287, 241],
  ],
};

describe.skipIf(!existsSync(VIDEO))("people in vtest.avi, as checked by eye", () => {
  const frames = new Map<number, RgbImage>();
  let detector: Detector;

  beforeAll(async () => {
    for await (const f of readVideoFrames(VIDEO, { select: (i) => i in PEOPLE_BY_EYE })) frames.set(f.index, f.image);
    const manifest = await readManifest();
    // The imported dense model, as the README's picture shows it; the pruned default is held
    // to the dense model's people by test/model/pruned-variants.test.ts and perceptd eval.
    detector = await Detector.create(resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet-u8"), { scoreThreshold: 0.5, classFilter: ["person"], executionProviders: ["cpu"] });
  });
  afterAll(async () => detector?.close());

  for (const [frame, people] of Object.entries(PEOPLE_BY_EYE)) {
    it(`frame ${frame}: finds the ${people.length} people, each within 15 px of where they are`, async () => {
      const { detections } = await detector.detect(frames.get(Number(frame))!);
      const centres = detections.map((d) => [(d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2]);
      expect(detections.length, `people at score >= 0.5 in frame ${frame}: ${JSON.stringify(centres.map((c) => c.map(Math.round)))}`).toBe(people.length);
      for (const [x, y] of people) {
        const near = centres.some(([cx, cy]) => Math.hypot(cx - x, cy - y) <= 15);
        expect(near, `frame ${frame}: nobody found near (${x}, ${y}); found ${JSON.stringify(centres.map((c) => c.map(Math.round)))}`).toBe(true);
      }
    });
  }
});
