// Agreement on real vtest.avi frames with the real shipped models, the COCO JSON labels
// path on a labels file written here, and `perceptd eval` as a user runs it.
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Detector } from "../../../src/infer/detector.ts";
import type { Detection } from "../../../src/core/types.ts";
import { writePng } from "../../../src/ingest/image-file.ts";
import { agreementMetrics, evaluateAgainstLabels, evaluateAgreement } from "../../../src/model/eval/agreement.ts";
import { readCocoLabels } from "../../../src/model/eval/coco-json.ts";
import { readFramesAt } from "../../../src/model/eval/frames.ts";
import { resolveModelArg } from "../../../src/model/eval/model-arg.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel, type Manifest } from "../../../src/infer/manifest.ts";
import { perceptd } from "../../cli/run-cli.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const VIDEO = join(ROOT, ".cache/fixtures/vtest.avi");
const FRAMES = [200, 320, 440, 560, 680];


describe("agreementMetrics", () => {
  const person = (score: number, x: number): Detection => ({ classId: 0, label: "person", score, box: [x, 0, x + 10, 20] });
  it("counts only detections above the operating threshold for person recall, and ignores other classes", () => {
    const m = agreementMetrics([
      {
        reference: [person(0.9, 0), person(0.9, 100), { classId: 9, label: "traffic light", score: 0.9, box: [0, 0, 5, 5] }],
        predicted: [person(0.8, 0), person(0.35, 100)],
      },
    ]);
    expect(m.perClass.map((c) => c.label)).toEqual(["person", "bicycle", "car", "motorcycle", "bus", "truck"]);
    expect(m.perClass[0].ap50).toBe(1);
    expect(m.personRecall).toBe(0.5);
    expect(m.perClass[2].references).toBe(0);
    expect(Number.isNaN(m.perClass[2].ap50)).toBe(true);
  });
});

describe.skipIf(!existsSync(VIDEO))("agreement on vtest.avi", () => {
  let manifest: Manifest;
  let dir: string;

  beforeAll(async () => {
    manifest = await readManifest();
    dir = await mkdtemp(join(tmpdir(), "perceptd-eval-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a model agrees with itself completely", async () => {
    const nanodet = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet");
    // Reference threshold = operating threshold, so every reference person is also above it.
    const r = await evaluateAgreement({ model: nanodet, reference: nanodet, video: VIDEO, frames: FRAMES, referenceThreshold: 0.35 });
    expect(r.frameIndices).toEqual(FRAMES);
    expect(r.perClass[0].references).toBeGreaterThan(10);
    expect(r.perClass[0].ap50).toBe(1);
    expect(r.map50).toBe(1);
    expect(r.map50_95).toBe(1);
    expect(r.personRecall).toBe(1);
  });

  it("a clearly different model (centernet against nanodet) agrees less", async () => {
    const r = await evaluateAgreement({
      model: resolveModel(manifest, DEFAULT_MANIFEST_PATH, "centernet"),
      reference: resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet"),
      video: VIDEO,
      frames: FRAMES,
    });
    expect(r.perClass[0].references).toBeGreaterThan(10);
    expect(r.perClass[0].ap50).toBeLessThan(0.97);
    expect(r.perClass[0].ap50).toBeGreaterThan(0.3);
    expect(r.map50_95).toBeLessThan(r.map50);
    expect(r.personRecall).toBeLessThan(1);
  });

  it("takes COCO JSON labels: image files next to the labels and frames of the video by number", async () => {
    // Labels = nanodet's own confident detections, so nanodet scores 1 on them and centernet less.
    const nanodet = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet");
    const frames = await readFramesAt(VIDEO, FRAMES.slice(0, 3));
    const det = await Detector.create(nanodet, { scoreThreshold: 0.3, executionProviders: ["cpu"] });
    const images: unknown[] = [];
    const annotations: unknown[] = [];
    const categories = ["person", "car", "truck", "bus"].map((name, i) => ({ id: 10 + i, name }));
    try {
      for (const [k, f] of frames.entries()) {
        // the first as a PNG next to the labels; the others by frame number in the name
        const fileName = k === 0 ? "still.png" : `frame_${String(f.index).padStart(6, "0")}.jpg`;
        if (k === 0) await writePng(join(dir, fileName), f.image);
        images.push({ id: k + 1, file_name: fileName, width: 768, height: 576 });
        for (const d of (await det.detect(f.image)).detections) {
          const cat = categories.find((c) => c.name === d.label);
          if (cat === undefined) continue;
          annotations.push({ image_id: k + 1, category_id: cat.id, bbox: [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]], iscrowd: 0 });
        }
      }
    } finally {
      await det.close();
    }
    annotations.push({ image_id: 2, category_id: 10, bbox: [0, 0, 700, 500], iscrowd: 1 });
    const path = join(dir, "labels.json");
    await writeFile(path, JSON.stringify({ images, annotations, categories }));

    const labels = await readCocoLabels(path);
    expect(labels.crowd).toBe(1);
    expect(labels.images.map((i) => i.source)).toEqual([
      { kind: "image", path: join(dir, "still.png") },
      { kind: "frame", index: FRAMES[1] },
      { kind: "frame", index: FRAMES[2] },
    ]);
    const self = await evaluateAgainstLabels({ model: nanodet, labels, video: VIDEO });
    expect(self.referenceKind).toBe("labels");
    expect(self.frames).toBe(3);
    expect(self.perClass[0].references).toBe(annotations.length - 1 - self.perClass.slice(1).reduce((s, c) => s + c.references, 0));
    expect(self.perClass[0].ap50).toBe(1);
    const other = await evaluateAgainstLabels({ model: resolveModel(manifest, DEFAULT_MANIFEST_PATH, "centernet"), labels, video: VIDEO });
    expect(other.perClass[0].ap50).toBeLessThan(1);

    // the same file through the CLI, as JSON
    const run = await perceptd("eval", "--model", "nanodet", "--labels", path, "--json");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { perClass: { label: string; ap50: number }[]; referenceKind: string };
    expect(report.referenceKind).toBe("labels");
    expect(report.perClass[0]).toMatchObject({ label: "person", ap50: 1 });
  });

  it("names what is wrong with labels", async () => {
    const bad = join(dir, "bad.json");
    await writeFile(bad, "{ not json");
    await expect(readCocoLabels(bad)).rejects.toThrow(/cannot read COCO labels .*bad\.json/);
    await writeFile(bad, JSON.stringify({ images: [{ id: 1, file_name: "x.jpg", frame_index: 3 }], annotations: [{ image_id: 7, category_id: 1, bbox: [0, 0, 1, 1] }], categories: [{ id: 1, name: "person" }] }));
    await expect(readCocoLabels(bad)).rejects.toThrow(/annotations\[0\] names image_id 7/);
    await writeFile(bad, JSON.stringify({ images: [{ id: 1, file_name: "still.jpg" }], annotations: [], categories: [{ id: 1, name: "person" }] }));
    await expect(readCocoLabels(bad)).rejects.toThrow(/neither a file next to the labels nor a video frame/);
    await writeFile(bad, JSON.stringify({ images: [], annotations: [{}] }));
    await expect(readCocoLabels(bad)).rejects.toThrow(/annotations\.0\.image_id/);
  });

  it("runs an ONNX file that is not in the manifest like the manifest model with the same input and outputs", async () => {
    const copy = join(dir, "nanodet-copy.onnx");
    await copyFile(resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet").path, copy);
    const m = await resolveModelArg(copy, manifest, DEFAULT_MANIFEST_PATH);
    expect(m.entry.parent).toBe("nanodet");
    expect(m.path).toBe(copy);
    // a uint8-input file runs like nanodet-u8, not like one of its pruned or INT8 variants with the same input
    const u8 = join(dir, "nanodet-u8-copy.onnx");
    await copyFile(resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet-u8").path, u8);
    expect((await resolveModelArg(u8, manifest, DEFAULT_MANIFEST_PATH)).entry.parent).toBe("nanodet-u8");
    const junk = join(dir, "junk.onnx");
    await writeFile(junk, "this is not a model");
    await expect(resolveModelArg(junk, manifest, DEFAULT_MANIFEST_PATH)).rejects.toThrow(/junk\.onnx is not a readable ONNX model/);
    await expect(resolveModelArg(join(dir, "missing.onnx"), manifest, DEFAULT_MANIFEST_PATH)).rejects.toThrow(/neither a model in .* nor an ONNX file/);

    const run = await perceptd("eval", "--model", copy, "--reference", "nanodet", "--frames", "300,500");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\| person +\| +1\.0000 \| +1\.0000 \|/);
    // against itself: every reference person scoring above 0.35 is found; those between the
    // reference threshold (0.3) and 0.35 are not, by definition of the operating threshold
    expect(run.stdout).toMatch(/person recall at the operating threshold \(score > 0\.35, IoU >= 0\.5\): (0\.9\d{3}|1\.0000)/);

    const broken = await perceptd("eval", "--model", junk, "--reference", "nanodet");
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/^perceptd: model file .*junk\.onnx is not a readable ONNX model/);
  });
});
