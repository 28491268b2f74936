// `perceptd prune` in a child process on the shipped nanodet and vtest.avi: the model and the
// report it writes, and the errors a user sees for bad input.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRatios } from "../../src/cli/commands/prune.ts";
import { decodeModel } from "../../src/model/onnx/serialize.ts";
import type { PruneReport } from "../../src/model/prune/report.ts";
import { perceptd } from "./run-cli.ts";

const VIDEO = ".cache/fixtures/vtest.avi";



let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-prune-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("perceptd prune", () => {
  it("structured: writes a loadable model and a JSON + Markdown report with latency side by side", async () => {
    const out = join(dir, "n25.onnx");
    const r = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.25", "--latency-runs", "2", "--threads", "1");
    expect(r.stderr).toMatch(/ONNX checker passed/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/FLOPs 4\.180G -> \d\.\d{3}G/);
    const g = decodeModel(await readFile(out), out);
    expect(g.metadata["perceptd.prune.method"]).toBe("structured");
    const report = JSON.parse(await readFile(join(dir, "n25.report.json"), "utf8")) as PruneReport;
    expect(report.flops.after).toBeLessThan(report.flops.before);
    expect(report.latency!.rows.map((x) => x.label)).toEqual(["dense", "pruned"]);
    expect(report.latency!.threads).toBe(1);
    expect(report.layers).toHaveLength(34);
    expect(report.skipped!.length).toBeGreaterThan(0);
    expect(report.notes.join(" ")).toMatch(/agreement with the dense parent not measured: pass --calibration/);
    const md = await readFile(join(dir, "n25.report.md"), "utf8");
    expect(md).toMatch(/## Left untouched, and why/);
    expect(md).toMatch(/\| dense \| [\d.]+ \|/);
  });

  it("activation importance, least-squares recovery and agreement on frames of vtest.avi", async () => {
    const out = join(dir, "n-head.onnx");
    const r = await perceptd(
      "prune", "nanodet", "--out", out, "--ratios", "PartitionedCall/convolution_28/Conv=0.5", "--importance", "activation",
      "--recover", "--calibration", VIDEO, "--calibration-frames", "2", "--eval-frames", "3", "--latency-runs", "2", "--report", join(dir, "head"),
      "--samples-per-frame", "200", "--oversample", "2",
    );
    expect(r.stderr).toMatch(/decoding 2 calibration frames/);
    expect(r.code).toBe(0);
    const report = JSON.parse(await readFile(join(dir, "head.json"), "utf8")) as PruneReport;
    expect(report.groups!.find((x) => x.name === "PartitionedCall/convolution_28/Conv")!.after).toBe(64);
    expect(report.changedConvs).toEqual(["PartitionedCall/convolution_29/Conv"]);
    expect(report.settings.compensate).toBe(true);
    const rec = report.recovery!;
    if ("skipped" in rec) throw new Error(rec.skipped);
    expect(rec.layers).toHaveLength(1);
    expect(rec.layers[0].relMseAfter).toBeLessThan(rec.layers[0].relMseBefore);
    expect(rec.layers[0].heldOutAfter).toBeLessThan(rec.layers[0].heldOutBefore!);
    expect(report.settings).toMatchObject({ samplesPerFrame: 200, oversample: 2 });
    // convolution_29 reads 64 channels (1x1): 65 unknowns x 2 per sample kept out of a fifth,
    // below 200 per frame, so each of the 2 frames gives 200 positions, 40 of them held out
    expect(rec.layers[0].samples).toBe(2 * 160);
    expect(report.agreement!.frames).toBe(3);
    // evaluation frames never overlap calibration frames
    expect(Math.min(...report.agreement!.frameIndices)).toBeGreaterThanOrEqual(198);
    expect(await readFile(join(dir, "head.md"), "utf8")).toMatch(/## Agreement with the dense parent/);
  });

  it("reconstruction importance and --recover-layers all go through to the report", async () => {
    const out = join(dir, "n-rec.onnx");
    const r = await perceptd(
      "prune", "nanodet", "--out", out, "--ratios", "PartitionedCall/convolution_28/Conv=0.5", "--importance", "reconstruction",
      "--recover", "--recover-layers", "all", "--calibration", VIDEO, "--calibration-frames", "2", "--eval-frames", "0", "--latency-runs", "1",
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/channel covariances of \d+ tensors over 2 frames/);
    const report = JSON.parse(await readFile(join(dir, "n-rec.report.json"), "utf8")) as PruneReport;
    expect(report.settings).toMatchObject({ importance: "reconstruction", recoverLayers: "all", samplesPerFrame: 128, oversample: 4 });
    expect(report.groups!.find((x) => x.name === "PartitionedCall/convolution_28/Conv")!.after).toBe(64);
    const rec = report.recovery!;
    if ("skipped" in rec) throw new Error(rec.skipped);
    // convolution_29 reads the pruned group; nothing but graph outputs lies downstream of it
    expect(rec.layers.map((l) => l.node)).toEqual(["PartitionedCall/convolution_29/Conv"]);
  });

  it("unstructured: sparsity reached, and the report says it buys no speed", async () => {
    const out = join(dir, "sparse.onnx");
    const r = await perceptd("prune", "nanodet", "--out", out, "--method", "unstructured", "--ratio", "0.6", "--latency-runs", "2");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no speed-up on dense CPUs and GPUs/);
    const report = JSON.parse(await readFile(join(dir, "sparse.report.json"), "utf8")) as PruneReport;
    expect(report.unstructured!.sparsity).toBeGreaterThanOrEqual(0.6);
    expect(report.compressedBytes.after).toBeLessThan(report.compressedBytes.before);
    expect(await readFile(join(dir, "sparse.report.md"), "utf8")).toMatch(/\*\*Unstructured sparsity gives no speed-up/);
  });

  it("bad input: clear errors, nothing written", { timeout: 300_000 }, async () => {
    const out = join(dir, "bad.onnx");
    const ratio = await perceptd("prune", "nanodet", "--out", out, "--ratio", "1.5");
    expect(ratio.code).toBe(2);
    expect(ratio.stderr).toMatch(/--ratio must be a number in \[0, 1\), got "1.5"/);
    const calib = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--importance", "activation");
    expect(calib.code).toBe(1);
    expect(calib.stderr).toMatch(/^perceptd: --importance activation needs calibration frames: pass --calibration <video>/);
    const missingVideo = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--recover", "--calibration", join(dir, "nope.avi"));
    expect(missingVideo.stderr).toMatch(/--calibration .*nope\.avi: no such file/);
    const testData = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--recover", "--calibration", "corpus:calibration", "--calibration", "corpus:out-of-scene");
    expect(testData.code).toBe(1);
    expect(testData.stderr).toMatch(/face-api\/demo\/sample1\.jpg: refused for calibration: this file is in the corpus:out-of-scene set/);
    const missingFolder = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--recover", "--calibration", join(dir, "no-such-folder/"));
    expect(missingFolder.stderr).toMatch(/data spec ".*no-such-folder\/": .*no-such-folder\/ does not exist/);
    const noRecover = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--oversample", "8");
    expect(noRecover.code).toBe(1);
    expect(noRecover.stderr).toMatch(/--recover-layers, --samples-per-frame, --oversample and --ridge tune least-squares recovery; they need --recover/);
    const ridgeNoRecover = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--ridge", "auto");
    expect(ridgeNoRecover.code).toBe(1);
    expect(ridgeNoRecover.stderr).toMatch(/and --ridge tune least-squares recovery; they need --recover/);
    const badRidge = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--recover", "--ridge", "strong");
    expect(badRidge.code).toBe(2);
    expect(badRidge.stderr).toMatch(/expected auto or a number > 0, got "strong"/);
    const validationNoRidge = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--recover", "--calibration", "corpus:calibration", "--validation", "corpus:validation");
    expect(validationNoRidge.code).toBe(1);
    expect(validationNoRidge.stderr).toMatch(/--validation and --validation-frames pick the ridge strength; they need --ridge/);
    const reconstruction = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--importance", "reconstruction");
    expect(reconstruction.code).toBe(1);
    expect(reconstruction.stderr).toMatch(/--importance reconstruction needs calibration frames: pass --calibration <video>/);
    const badLayers = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--recover", "--recover-layers", "some");
    expect(badLayers.code).toBe(2);
    expect(badLayers.stderr).toMatch(/expected consumers or all, got "some"/);
    const badOversample = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--recover", "--oversample", "0");
    expect(badOversample.code).toBe(2);
    expect(badOversample.stderr).toMatch(/expected a number > 0, got "0"/);
    const garbage = join(dir, "garbage.onnx");
    await writeFile(garbage, "not a model");
    const unreadable = await perceptd("prune", garbage, "--out", out, "--ratio", "0.3");
    expect(unreadable.code).toBe(1);
    expect(unreadable.stderr).toMatch(/garbage\.onnx is not a readable ONNX model/);
    const unknown = await perceptd("prune", "nanodet", "--out", out, "--ratio", "0.3", "--ignore", "no_such_conv");
    expect(unknown.stderr).toMatch(/--ignore: unknown node "no_such_conv"/);
    const noName = await perceptd("prune", "nosuchmodel", "--out", out, "--ratio", "0.3");
    expect(noName.stderr).toMatch(/"nosuchmodel" is neither an ONNX file nor a model in/);
    expect(existsSync(out)).toBe(false);
  });

  it("parses --ratios lists", () => {
    expect(parseRatios("a=0.5, b/c=0.25")).toEqual({ a: 0.5, "b/c": 0.25 });
    expect(() => parseRatios("a")).toThrow(/not NAME=RATIO/);
    expect(() => parseRatios("a=2")).toThrow(/must be a number in \[0, 1\)/);
  });
});
