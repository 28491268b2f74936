// Real sessions on the shipped models and real frames of vtest.avi (768x576, people
// walking across a car park), so preprocessing, decoding and box mapping are checked
// end to end against what the scene actually contains.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Detector } from "../../src/infer/detector.ts";
import { iou } from "../../src/infer/nms.ts";
import type { Detection } from "../../src/core/types.ts";
import { readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel, type Manifest } from "../../src/infer/manifest.ts";

const VIDEO = ".cache/fixtures/vtest.avi";
const W = 768;
const H = 576;
const MODELS = ["nanodet", "nanodet-u8", "centernet", "centernet-u8"] as const;

let manifest: Manifest;
const frames: { index: number; image: RgbImage }[] = [];
const detectors = new Map<string, Detector>();

async function detector(name: string): Promise<Detector> {
  let d = detectors.get(name);
  if (d === undefined) {
    d = await Detector.create(resolveModel(manifest, DEFAULT_MANIFEST_PATH, name), { executionProviders: ["cpu"] });
    detectors.set(name, d);
  }
  return d;
}

const persons = (dets: readonly Detection[]): Detection[] => dets.filter((d) => d.label === "person");

beforeAll(async () => {
  manifest = await readManifest(DEFAULT_MANIFEST_PATH);
  // Spread over the whole clip: the crowd changes from 2-3 to 8-10 people.
  for await (const f of readVideoFrames(VIDEO, { select: (i) => i % 100 === 0 })) {
    frames.push({ index: f.index, image: { ...f.image, data: f.image.data.slice() } });
  }
});

afterAll(async () => {
  for (const d of detectors.values()) await d.close();
});

describe.each(MODELS)("Detector(%s) on vtest.avi", (name) => {
  it("finds several people in most frames, boxed inside the frame and upright", async () => {
    const d = await detector(name);
    expect(frames.length).toBeGreaterThanOrEqual(7);
    let framesWithSeveral = 0;
    for (const f of frames) {
      const { detections, timings } = await d.detect(f.image);
      const people = persons(detections);
      if (people.length >= 2) framesWithSeveral++;
      for (const det of detections) {
        const [x1, y1, x2, y2] = det.box;
        expect(x1).toBeGreaterThanOrEqual(0);
        expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(W);
        expect(y2).toBeLessThanOrEqual(H);
        expect(x2).toBeGreaterThan(x1);
        expect(y2).toBeGreaterThan(y1);
        expect(det.score).toBeGreaterThan(d.scoreThreshold);
      }
      // Confident people are pedestrians seen from above at a distance: clearly upright.
      // (Low-scoring "person" hits include a static, squat object near (160, 250).)
      for (const p of people.filter((x) => x.score >= 0.5)) {
        expect(p.box[3] - p.box[1], `frame ${f.index} ${JSON.stringify(p.box)}`).toBeGreaterThan(p.box[2] - p.box[0]);
      }
      // Sorted best first, as nms promises.
      const scores = detections.map((x) => x.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(timings.inferenceMs).toBeGreaterThan(0);
      expect(timings.preprocessMs).toBeGreaterThanOrEqual(0);
      expect(timings.decodeMs).toBeGreaterThanOrEqual(0);
    }
    expect(framesWithSeveral / frames.length).toBeGreaterThanOrEqual(0.8);
  });
});

describe("Detector", () => {
  it("gives the same confident detections with baked (uint8) and JS (float32) preprocessing", async () => {
    for (const [float, u8] of [["nanodet", "nanodet-u8"], ["centernet", "centernet-u8"]] as const) {
      const a = await detector(float);
      const b = await detector(u8);
      for (const f of frames.slice(0, 3)) {
        const da = (await a.detect(f.image)).detections.filter((x) => x.score >= 0.5);
        const db = (await b.detect(f.image)).detections;
        expect(da.length).toBeGreaterThan(0);
        for (const x of da) {
          const match = db.find((y) => y.classId === x.classId && iou(x.box, y.box) > 0.9);
          expect(match, `${float} frame ${f.index}: ${x.label} ${JSON.stringify(x.box)} missing from ${u8}`).toBeDefined();
          expect(Math.abs((match as Detection).score - x.score)).toBeLessThan(0.03);
        }
      }
    }
  });

  it("keeps only the classes in classFilter", async () => {
    const all = await detector("nanodet");
    const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet");
    const only = await Detector.create(model, { executionProviders: ["cpu"], classFilter: ["person"] });
    try {
      let othersSeen = false;
      for (const f of frames.slice(0, 4)) {
        const filtered = (await only.detect(f.image)).detections;
        const unfiltered = (await all.detect(f.image)).detections;
        othersSeen ||= unfiltered.some((d) => d.label !== "person");
        expect(filtered.length).toBeGreaterThan(0);
        expect(new Set(filtered.map((d) => d.label))).toEqual(new Set(["person"]));
        // Class-aware NMS: other classes never suppressed a person, so the people are the same.
        expect(filtered.map((d) => d.box)).toEqual(persons(unfiltered).map((d) => d.box));
      }
      // Otherwise the filter would have had nothing to remove (the scene has a parked van and car).
      expect(othersSeen).toBe(true);
    } finally {
      await only.close();
    }
  });

  it("rejects an unknown class label, listing the valid ones", async () => {
    const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet");
    const err = await Detector.create(model, { classFilter: ["person", "persn"] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(`model "nanodet" has no class "persn"`);
    expect(msg).toMatch(/valid classes: person, bicycle, car, .*toothbrush$/);
  });

  it("rejects option values out of range, naming them", async () => {
    const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet");
    await expect(Detector.create(model, { scoreThreshold: 1.5 })).rejects.toThrow(/scoreThreshold must be a number in \[0, 1\], got 1.5/);
    await expect(Detector.create(model, { iouThreshold: -0.1 })).rejects.toThrow(/iouThreshold .* got -0.1/);
    await expect(Detector.create(model, { maxDetections: 0 })).rejects.toThrow(/maxDetections must be a positive integer, got 0/);
    await expect(Detector.create(model, { classFilter: [] })).rejects.toThrow(/classFilter is empty/);
  });

  it("caps the number of detections at maxDetections", async () => {
    const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet");
    const d = await Detector.create(model, { executionProviders: ["cpu"], maxDetections: 2, scoreThreshold: 0.2 });
    try {
      const { detections } = await d.detect(frames[frames.length - 1].image);
      expect(detections).toHaveLength(2);
    } finally {
      await d.close();
    }
  });

  it("lays out inputs per the manifest: float32 NCHW and uint8 NHWC", async () => {
    const img = frames[0].image;
    const f = (await detector("nanodet")).preprocess(img);
    expect(f.input.type).toBe("float32");
    expect(f.input.dims).toEqual([1, 3, 416, 416]);
    expect(f.transform).toMatchObject({ srcWidth: W, srcHeight: H, scaleX: 416 / W, scaleY: 416 / H, padX: 0, padY: 0 });

    const u = (await detector("nanodet-u8")).preprocess(img);
    expect(u.input.type).toBe("uint8");
    expect(u.input.dims).toEqual([1, 416, 416, 3]);
    // The float tensor is the uint8 one normalised and transposed, so they must agree.
    const norm = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet").entry.input.normalization;
    expect(norm).not.toBeNull();
    const { mean, std } = norm as { mean: number[]; std: number[] };
    const u8 = u.input.data as Uint8Array;
    const f32 = f.input.data as Float32Array;
    const plane = 416 * 416;
    for (const p of [0, 1234, 100_000, plane - 1]) {
      for (let colour = 0; colour < 3; colour++) {
        // nanodet wants BGR planes: plane 0 is blue.
        const planeIndex = 2 - colour;
        expect(f32[planeIndex * plane + p]).toBeCloseTo((u8[p * 3 + colour] - mean[colour]) / std[colour], 5);
      }
    }
  });

  it("returns every output from runRaw", async () => {
    const d = await detector("centernet");
    const raw = await d.runRaw(d.preprocess(frames[0].image).input);
    expect(Object.keys(raw).sort()).toEqual(["tower_0/detections", "tower_0/keypoints", "tower_0/wh"]);
    expect(raw["tower_0/keypoints"].dims).toEqual([1, 128, 128, 80]);
    expect(raw["tower_0/detections"].data).toBeInstanceOf(Float32Array);
  });

  it("maps letterboxed detections back to source pixels", async () => {
    // The shipped models stretch; a manifest asking for letterbox must still give boxes
    // in the source frame, the pads contributing nothing.
    const dir = await mkdtemp(join(tmpdir(), "perceptd-letterbox-"));
    try {
      const base = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet-u8");
      const entry = { ...base.entry, file: base.path, input: { ...base.entry.input, resize: "letterbox" as const } };
      const path = join(dir, "manifest.json");
      await writeFile(path, JSON.stringify({ schemaVersion: 1, default: "lb", models: { lb: entry } }));
      const d = await Detector.create(resolveModel(await readManifest(path), path, "lb"), { executionProviders: ["cpu"] });
      try {
        const { transform } = d.preprocess(frames[2].image);
        expect(transform.padY).toBeGreaterThan(0);
        expect(transform.padX).toBe(0);
        const stretched = persons((await (await detector("nanodet-u8")).detect(frames[2].image)).detections);
        const boxed = persons((await d.detect(frames[2].image)).detections);
        expect(boxed.length).toBeGreaterThanOrEqual(2);
        for (const p of boxed) {
          expect(p.box[3]).toBeLessThanOrEqual(H);
          expect(p.box[1]).toBeGreaterThanOrEqual(0);
        }
        // The same confident people, found either way.
        for (const p of boxed.filter((x) => x.score >= 0.6)) {
          expect(stretched.some((q) => iou(p.box, q.box) > 0.6), JSON.stringify(p.box)).toBe(true);
        }
      } finally {
        await d.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses to run after close", async () => {
    const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet-u8");
    const d = await Detector.create(model, { executionProviders: ["cpu"] });
    expect(d.provider).toBe("cpu");
    expect(d.model.name).toBe("nanodet-u8");
    await d.close();
    await expect(d.detect(frames[0].image)).rejects.toThrow(/Detector for model "nanodet-u8" is closed/);
  });
});
