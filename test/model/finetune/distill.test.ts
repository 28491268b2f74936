// Distillation on a tiny detector built here: one level with class scores (after sigmoid) and
// box-side distributions, shaped like nanodet's outputs. The student is the teacher with its
// weights disturbed; training on a small frame cache must lower the student-teacher loss, and
// the graph written back must pass the ONNX checker and run in ONNX Runtime. Skipped, with
// the reason, where no python3 with PyTorch is installed (scripts/setup.sh --training).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FrameCacheWriter } from "../../../src/model/data/frame-cache.ts";
import { findTrainingPython, parseAugment, runDistillation, DEFAULT_AUGMENT, type DistillEvent } from "../../../src/model/finetune/distill.ts";
import { checkOnnx } from "../../../src/model/onnx-checker.ts";
import { attr, type OnnxGraph } from "../../../src/model/onnx/ir.ts";
import { decodeModel, encodeModel } from "../../../src/model/onnx/serialize.ts";
import { int64Tensor } from "../../../src/model/onnx/tensor.ts";
import { pruneStructured } from "../../../src/model/prune/structured.ts";
import { GraphBuilder, prng } from "../prune/graphs.ts";

const SIZE = 32;
const CLASSES = 3;
const BINS = 5;
const CELLS = (SIZE / 4) ** 2;

/**
 * x [1,3,32,32] -> Conv 3x3 s2 -> LeakyRelu -> Conv 3x3 s2 -> LeakyRelu -> Conv 1x1 -> Split -> scores [1,64,3], boxes [1,64,20].
 * With a neck, the second stage is two parallel Convs added (as NanoDet's FPN levels are sums), and the head reads the sum.
 */
function detector(seed: number, neck = false): OnnxGraph {
  const b = new GraphBuilder("tiny-detector", [1, 3, SIZE, SIZE], seed);
  const conv = (name: string, x: string, cin: number, cout: number): string => {
    const c = b.conv(name, x, cin, cout, 3);
    b.g.nodes.at(-1)!.attrs.strides = attr.ints([2, 2]);
    return b.node("LeakyRelu", `${name}/act`, [c], { alpha: attr.float(0.1) });
  };
  const h = conv("c1", "x", 3, 8);
  const h2 = neck ? b.node("Add", "neck", [conv("c2", h, 8, 16), conv("c2b", h, 8, 16)]) : conv("c2", h, 8, 16);
  const head = b.conv("head", h2, 16, CLASSES + 4 * BINS);
  b.node("Split", "split", [head, b.splitSizes("split/sizes", [CLASSES, 4 * BINS])], { axis: attr.int(1) }, ["cls_raw", "box_raw"]);
  const sig = b.node("Sigmoid", "sigmoid", ["cls_raw"]);
  const r1 = b.node("Reshape", "r1", [sig, b.const("r1/shape", int64Tensor([3], [1, CLASSES, CELLS]))]);
  b.node("Transpose", "t1", [r1], { perm: attr.ints([0, 2, 1]) }, ["scores"]);
  const r2 = b.node("Reshape", "r2", ["box_raw", b.const("r2/shape", int64Tensor([3], [1, 4 * BINS, CELLS]))]);
  b.node("Transpose", "t2", [r2], { perm: attr.ints([0, 2, 1]) }, ["boxes"]);
  b.output("scores", [1, CELLS, CLASSES]);
  b.output("boxes", [1, CELLS, 4 * BINS]);
  return b.g;
}

/** The teacher's weights plus noise: a student that starts close but not equal. */
function disturbed(teacher: OnnxGraph, seed: number): OnnxGraph {
  const r = prng(seed);
  const g: OnnxGraph = { ...teacher, initializers: new Map(teacher.initializers) };
  for (const [name, t] of teacher.initializers) {
    if (t.dtype !== "float32") continue;
    const data = Float32Array.from(t.data as Float32Array, (v) => v + (r() * 2 - 1) * 0.3);
    g.initializers.set(name, { ...t, data });
  }
  return g;
}

async function frameCache(dir: string, count: number, seed: number): Promise<void> {
  const w = await FrameCacheWriter.create(dir, { width: SIZE, height: SIZE, resize: "stretch", set: "test-made", sources: [{ path: "made-in-test", sha256: "0".repeat(64), frames: null }], plan: "test" });
  const r = prng(seed);
  for (let i = 0; i < count; i++) {
    // smooth blobs rather than white noise, so flips and crops change what the detector sees
    const px = new Uint8Array(SIZE * SIZE * 3);
    const cx = r() * SIZE;
    const cy = r() * SIZE;
    const col = [r(), r(), r()].map((v) => 255 * v);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) {
        const k = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 60);
        for (let c = 0; c < 3; c++) px[(y * SIZE + x) * 3 + c] = Math.round(40 + k * (col[c] - 40) + 20 * r());
      }
    await w.append(px, { source: 0, frame: i, augment: null, seed: null, sourceWidth: SIZE, sourceHeight: SIZE });
  }
  await w.finish();
}

const python = findTrainingPython();
const reason = "missing" in python ? python.missing : "";
if (reason) console.warn(`test/model/finetune/distill.test.ts skipped: ${reason}`);

describe.skipIf(reason !== "")("runDistillation on a tiny detector", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "perceptd-distill-"));
    const teacher = detector(3);
    await writeFile(join(dir, "teacher.onnx"), encodeModel(teacher));
    await writeFile(join(dir, "student.onnx"), encodeModel(disturbed(teacher, 9)));
    await frameCache(join(dir, "train"), 48, 1);
    await frameCache(join(dir, "val"), 8, 2);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const input = { layout: "NCHW" as const, colorOrder: "rgb" as const, normalization: { mean: [127.5, 127.5, 127.5] as [number, number, number], std: [64, 64, 64] as [number, number, number] } };
  const run = (out: string, extra: Partial<Parameters<typeof runDistillation>[0]> = {}): ReturnType<typeof runDistillation> =>
    runDistillation({
      student: join(dir, "student.onnx"),
      teacher: join(dir, "teacher.onnx"),
      studentInput: input,
      teacherInput: input,
      heads: [{ scores: "scores", boxes: "boxes", bins: BINS }],
      train: [join(dir, "train")],
      validation: [join(dir, "val")],
      out,
      steps: 60,
      batch: 8,
      lr: 1e-2,
      seed: 1,
      evalEvery: 20,
      augment: DEFAULT_AUGMENT,
      device: "cpu",
      threads: 1,
      checkpoint: `${out}.ckpt`,
      resume: false,
      ...extra,
    });

  it("lowers the student-teacher loss and writes a graph that passes the checker and runs in ONNX Runtime", async () => {
    const out = join(dir, "trained.onnx");
    const events: DistillEvent[] = [];
    const summary = await run(out, { onEvent: (e) => events.push(e) });
    expect(summary.validationLoss.start).not.toBeNull();
    expect(summary.validationLoss.best!, "validation loss after training").toBeLessThan(0.7 * summary.validationLoss.start!);
    expect(summary.trainLoss.last!).toBeLessThan(summary.trainLoss.first!);
    const progress = events.filter((e) => e.type === "progress");
    expect(progress).toHaveLength(60);
    expect(progress.at(-1)).toMatchObject({ step: 60, steps: 60, epoch: 10, epochs: 10 });
    expect(events.filter((e) => e.type === "checkpoint").map((e) => e.step)).toEqual([20, 40, 60]);

    const [check] = await checkOnnx([out]);
    expect(check.ok, check.ok ? "" : check.error).toBe(true);
    // the same graph: same nodes and initializer names, new weight values
    const student = decodeModel(await readFile(join(dir, "student.onnx")), "student");
    const trained = decodeModel(await readFile(out), "trained");
    expect(trained.nodes.map((n) => n.name)).toEqual(student.nodes.map((n) => n.name));
    expect([...trained.initializers.keys()].sort()).toEqual([...student.initializers.keys()].sort());
    expect(Array.from(trained.initializers.get("head/w")!.data as Float32Array)).not.toEqual(Array.from(student.initializers.get("head/w")!.data as Float32Array));
    const session = await ort.InferenceSession.create(await readFile(out), { executionProviders: ["cpu"] });
    const x = new ort.Tensor("float32", new Float32Array(3 * SIZE * SIZE).fill(0.5), [1, 3, SIZE, SIZE]);
    const res = await session.run({ x });
    expect(res.scores.dims).toEqual([1, CELLS, CLASSES]);
    expect(res.boxes.dims).toEqual([1, CELLS, 4 * BINS]);
    await session.release();
  });

  it("resumes from its checkpoint and refuses one of another run", async () => {
    const out = join(dir, "resumed.onnx");
    await run(out, { steps: 20 });
    await expect(run(out, { steps: 40, resume: true })).rejects.toThrow(/checkpoint is of another run/);
    const events: DistillEvent[] = [];
    await run(out, { steps: 20, resume: true, onEvent: (e) => events.push(e) });
    expect(events[0]).toMatchObject({ type: "resumed", step: 20, steps: 20 });
  });

  it("keeps the step with the best validation recall when asked to (confidence-weighted loss, warm-up, zoom-out)", async () => {
    const out = join(dir, "by-recall.onnx");
    const events: DistillEvent[] = [];
    const summary = await run(out, { keepBy: "recall", confidenceWeight: 10, warmup: 10, augment: { ...DEFAULT_AUGMENT, zoomOut: 0.5 }, onEvent: (e) => events.push(e) });
    const validations = events.filter((e): e is Extract<DistillEvent, { type: "validation" }> => e.type === "validation");
    expect(validations.map((v) => v.step)).toEqual([0, 20, 40, 60]);
    for (const v of validations) {
      expect(v.recall, `validation recall at step ${v.step} (the teacher's tiny head has confident scores on these frames)`).not.toBeNull();
      expect(v.recall!).toBeGreaterThanOrEqual(0);
      expect(v.recall!).toBeLessThanOrEqual(1);
    }
    // the first validation with the highest recall, unless a later one ties it with a lower loss
    const bestRecall = Math.max(...validations.map((v) => v.recall!));
    const tied = validations.filter((v) => v.recall === bestRecall);
    const expected = tied.reduce((a, b) => (b.loss! < a.loss! ? b : a));
    expect(summary.keptStep, `kept step with validations ${JSON.stringify(validations)}`).toBe(expected.step);
    expect(summary.validationRecall).toBe(bestRecall);
    const [check] = await checkOnnx([out]);
    expect(check.ok, check.ok ? "" : check.error).toBe(true);
  });

  it("distils the head inputs against the teacher channels they were pruned from (feature weight)", async () => {
    // half the channels of the neck's sum pruned (both Convs feeding it), no recovery: each kept
    // channel is an exact copy of a teacher channel, which the matching must find
    const teacher = detector(5, true);
    const pruned = pruneStructured(teacher, { ratios: { c2: 0.5 }, round: 1, minChannels: 1 });
    expect(pruned.keptOutputChannels.get("c2")).toHaveLength(8);
    await writeFile(join(dir, "neck-teacher.onnx"), encodeModel(teacher));
    await writeFile(join(dir, "neck-student.onnx"), encodeModel(pruned.graph));
    const out = join(dir, "neck-trained.onnx");
    const events: DistillEvent[] = [];
    const summary = await run(out, { student: join(dir, "neck-student.onnx"), teacher: join(dir, "neck-teacher.onnx"), featureWeight: 1, onEvent: (e) => events.push(e) });
    const features = events.filter((e) => e.type === "features");
    expect(features).toEqual([{ type: "features", tensor: "neck", student: 8, teacher: 16, meanCorrelation: expect.any(Number), minCorrelation: expect.any(Number) }]);
    const f = features[0] as Extract<DistillEvent, { type: "features" }>;
    expect(f.minCorrelation, "every kept channel paired with the teacher channel it is a copy of").toBeGreaterThan(0.9999);
    const feats = events.flatMap((e) => (e.type === "progress" ? [e.feat] : []));
    expect(feats).toHaveLength(60);
    expect(Math.max(...feats), "the feature term is counted once training moves the student's features").toBeGreaterThan(0);
    expect(summary.validationLoss.best!).toBeLessThan(summary.validationLoss.start!);
    const [check] = await checkOnnx([out]);
    expect(check.ok, check.ok ? "" : check.error).toBe(true);
  });

  it("refuses feature distillation where the head reads the picture itself, naming the output", async () => {
    const flat = new GraphBuilder("flat", [1, 3, SIZE, SIZE], 1);
    const head = flat.conv("head", "x", 3, CLASSES + 4 * BINS);
    flat.node("Split", "split", [head, flat.splitSizes("split/sizes", [CLASSES, 4 * BINS])], { axis: attr.int(1) }, ["cls_raw", "box_raw"]);
    await writeFile(join(dir, "flat.onnx"), encodeModel(flat.g));
    await expect(run(join(dir, "flat-out.onnx"), { student: join(dir, "flat.onnx"), teacher: join(dir, "flat.onnx"), heads: [{ scores: "cls_raw", boxes: "box_raw", bins: BINS }], featureWeight: 1 })).rejects.toThrow(
      /feature distillation: found no head input behind output cls_raw/,
    );
  });

  it("writes the weights of the kept step, not those of the last step", async () => {
    // a learning rate far too high: every step makes the student worse, so the lowest
    // validation loss is the one before training and the written graph must be the student itself
    const out = join(dir, "kept-step-0.onnx");
    const summary = await run(out, { lr: 1, steps: 20, evalEvery: 10, keepBy: "loss", warmup: 0 });
    expect(summary.keptStep, `kept step (validation loss ${JSON.stringify(summary.validationLoss)})`).toBe(0);
    const student = decodeModel(await readFile(join(dir, "student.onnx")), "student");
    const written = decodeModel(await readFile(out), "written");
    for (const [name, t] of student.initializers) {
      if (t.dtype !== "float32") continue;
      expect(Array.from(written.initializers.get(name)!.data as Float32Array), `initializer ${name} of the written graph`).toEqual(Array.from(t.data as Float32Array));
    }
  });

  it("refuses a cache that holds no frame-cache index, naming it", async () => {
    await expect(run(join(dir, "x.onnx"), { train: [join(dir, "nowhere")] })).rejects.toThrow(/nowhere: no frame cache here/);
  });
});

describe("parseAugment", () => {
  it("overrides the named settings and keeps the others", () => {
    expect(parseAugment(["minScale=0.3", "flip=false", "zoomOut=0.5"])).toEqual({ ...DEFAULT_AUGMENT, minScale: 0.3, flip: false, zoomOut: 0.5 });
    expect(parseAugment([])).toEqual(DEFAULT_AUGMENT);
  });

  it("names an unknown setting, a value out of range and a missing value", () => {
    expect(() => parseAugment(["scale=0.5"])).toThrow(/augment scale=0.5: unknown setting "scale"; known: flip, minScale/);
    expect(() => parseAugment(["minScale=0"])).toThrow(/augment minScale=0: minScale takes a number from 0.05 to 1/);
    expect(() => parseAugment(["noise"])).toThrow(/augment noise: noise takes a number from 0 to 64/);
    expect(() => parseAugment(["flip=yes"])).toThrow(/augment flip=yes: flip takes true or false/);
  });
});
