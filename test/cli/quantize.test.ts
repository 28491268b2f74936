// `perceptd quantize` in a child process on the shipped nanodet-u8: the model and the report
// it writes, and the errors a user sees for bad input.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeModel } from "../../src/model/onnx/serialize.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../src/infer/manifest.ts";
import type { QuantizeReport } from "../../src/model/quantize/pipeline.ts";
import { findQuantizeParent } from "../../src/model/quantize/source.ts";
import { perceptd } from "./run-cli.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-quantize-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("perceptd quantize", () => {
  it("writes a QDQ model and a per-layer report; the head tail and the stem stay float", async () => {
    const out = join(dir, "n-int8.onnx");
    const r = await perceptd("quantize", "nanodet-u8", "--out", out, "--calibration-frames", "4", "--latency-runs", "2", "--threads", "1", "--no-agreement");
    expect(r.stderr + r.stdout).not.toMatch(/perceptd: /);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/30 layers int8, 4 float \(PartitionedCall\/convolution\/Conv: stem; .*convolution_29\/Conv: head tail/);
    expect(r.stdout).toMatch(/int8 dot product \(VNNI\/dotprod\): (yes|NO)/);
    const g = decodeModel(await readFile(out), out);
    expect(JSON.parse(g.metadata.quantization)).toMatchObject({ format: "QDQ", activations: "int8" });
    expect(g.nodes.filter((n) => n.opType === "QuantizeLinear").length).toBeGreaterThan(30);
    const report = JSON.parse(await readFile(join(dir, "n-int8.report.json"), "utf8")) as QuantizeReport;
    expect(report.layers).toHaveLength(30);
    expect(report.keptFloat.map((k) => k.reason).sort()).toEqual(["head tail", "head tail", "head tail", "stem"]);
    expect(report.settings.calibration).toMatchObject({ specs: ["corpus:calibration"], frames: 4 });
    expect(report.latency!.threads).toBe(1);
    // the report identifies its parent by bytes, and the table finds it from there
    const manifest = await readManifest(DEFAULT_MANIFEST_PATH);
    const parent = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet-u8");
    expect(report.model).toMatchObject({ source: "nanodet-u8", sourceSha256: parent.entry.sha256 });
    const candidates = [{ name: parent.name, path: parent.path, sha256: parent.entry.sha256 }];
    expect(findQuantizeParent(out, candidates)).toBe(candidates[0]);
    expect(await readFile(join(dir, "n-int8.report.md"), "utf8")).toMatch(/## Layers kept float/);

    const again = await perceptd("quantize", out, "--out", join(dir, "twice.onnx"), "--calibration-frames", "1");
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is quantized already .*; quantize its float parent/);
  }, 240_000);

  it("refuses an unknown method, and test data for calibration, naming them", async () => {
    const method = await perceptd("quantize", "nanodet-u8", "--out", join(dir, "x.onnx"), "--method", "kl");
    expect(method.code).toBe(2);
    expect(method.stderr).toMatch(/unknown calibration method "kl"; expected minmax, percentile, entropy/);
    const test = await perceptd("quantize", "nanodet-u8", "--out", join(dir, "y.onnx"), "--calibration", "corpus:out-of-scene", "--calibration-frames", "1");
    expect(test.code).toBe(1);
    expect(test.stderr).toMatch(/refused for calibration/);
  }, 120_000);
});
