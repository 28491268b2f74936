// The inference worker thread with the real nanodet-u8 model on real vtest.avi frames.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.ts";
import { Detector } from "../../src/infer/detector.ts";
import { classIdsForLabels, InferenceWorker } from "../../src/infer/inference-worker.ts";
import { toInputTensor } from "../../src/infer/input-tensor.ts";
import { computeLetterbox } from "../../src/core/letterbox.ts";
import { createSession } from "../../src/infer/session.ts";
import type { DetectSettings, WorkerInit } from "../../src/infer/worker-protocol.ts";
import type { Frame } from "../../src/core/frame.ts";
import { readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import { resizeToModel } from "../../src/infer/resize.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel, type ResolvedModel } from "../../src/infer/manifest.ts";

const VTEST = ".cache/fixtures/vtest.avi";
const HAVE_VTEST = existsSync(VTEST);
if (!HAVE_VTEST) console.warn(`skipping vtest.avi cases: ${VTEST} is missing (run \`npm run setup\` to fetch it)`);

const SETTINGS: DetectSettings = { scoreThreshold: 0.35, iouThreshold: 0.5, classIds: [], maxDetections: 100 };

let model: ResolvedModel;
/** vtest.avi frames 0, 100, 200 at their source size (768x576) */
let sources: RgbImage[] = [];
let dir: string;

function initFor(m: ResolvedModel, over: Partial<WorkerInit> = {}): WorkerInit {
  return {
    modelPath: m.path,
    modelName: m.name,
    entry: m.entry,
    executionProviders: ["cpu"],
    intraOpThreads: 0,
    interOpThreads: 1,
    allowSpinning: false,
    tuning: { ...ConfigSchema.shape.inference.parse({}), trtCacheDir: join(tmpdir(), "perceptd-trt-unused") },
    warmupRuns: 1,
    ...over,
  };
}

/** What ingest will hand over: the source frame stretched to the model input by GStreamer (here resizeToModel). */
function frameOf(img: RgbImage, camera: string, seq: number): Frame {
  const { width, height } = model.entry.input;
  const transform = computeLetterbox(img.width, img.height, width, height, "stretch");
  return { camera, seq, tIngestNs: process.hrtime.bigint(), ptsNs: null, pixels: resizeToModel(img, transform).data, width, height, transform };
}

beforeAll(async () => {
  model = resolveModel(await readManifest(), DEFAULT_MANIFEST_PATH, "nanodet-u8");
  dir = await mkdtemp(join(tmpdir(), "perceptd-worker-"));
  if (HAVE_VTEST) {
    for await (const f of readVideoFrames(VTEST, { select: (i) => i % 100 === 0, maxFrames: 3 })) {
      // The reader may hand out views of GStreamer's buffers; keep copies of our own.
      sources.push({ width: f.image.width, height: f.image.height, data: f.image.data.slice() });
    }
  }
});

afterAll(async () => {
  sources = [];
  await rm(dir, { recursive: true, force: true });
});

describe("InferenceWorker start and close", () => {
  it("starts, reports ready on cpu with its warm-up times, and closes cleanly", async () => {
    const w = await InferenceWorker.start(initFor(model, { warmupRuns: 2 }), SETTINGS, { name: "t1" });
    expect(w.provider).toBe("cpu");
    expect(w.tried).toEqual([{ provider: "cpu" }]);
    expect(w.warmupMs).toHaveLength(2);
    for (const ms of w.warmupMs) expect(ms).toBeGreaterThan(0);
    expect(w.alive).toBe(true);

    const exits: number[] = [];
    const errors: Error[] = [];
    w.on("exit", (code) => exits.push(code));
    w.on("error", (e) => errors.push(e));
    await w.close();
    expect(exits).toEqual([0]);
    expect(errors).toEqual([]);
    expect(w.alive).toBe(false);
    await w.close(); // idempotent
    const { width, height } = model.entry.input;
    const blank: Frame = {
      camera: "a", seq: 0, tIngestNs: 0n, ptsNs: null, pixels: new Uint8Array(width * height * 3), width, height,
      transform: computeLetterbox(width, height, width, height, "stretch"),
    };
    await expect(w.infer(blank)).rejects.toThrow(/inference worker t1: cannot infer, the worker is exited/);
  });

  it("rejects start for a model file that does not match the manifest's checksum, naming the file", async () => {
    const bytes = await readFile(model.path);
    const path = join(dir, "truncated.onnx");
    await writeFile(path, bytes.subarray(0, bytes.length >> 1));
    const start = InferenceWorker.start(initFor({ ...model, path }), SETTINGS);
    await expect(start).rejects.toThrow(path);
    await expect(start).rejects.toThrow(/failed to start: .*sha256 .*corrupt or replaced file/);
  });

  it("rejects start for a file that is not an ONNX model, naming the file", async () => {
    // The manifest's checksum matches, so it is ONNX Runtime that refuses the bytes.
    const garbage = Buffer.from("this is not an ONNX model\n".repeat(100));
    const path = join(dir, "garbage.onnx");
    await writeFile(path, garbage);
    const entry = { ...model.entry, sha256: createHash("sha256").update(garbage).digest("hex"), bytes: garbage.length };
    const start = InferenceWorker.start(initFor({ ...model, path, entry }), SETTINGS);
    await expect(start).rejects.toThrow(`${path}: not a valid ONNX model`);
  });

  it("rejects bad detect settings before starting a thread", async () => {
    await expect(InferenceWorker.start(initFor(model), { ...SETTINGS, scoreThreshold: 2 })).rejects.toThrow(
      /scoreThreshold must be a number in \[0, 1\], got 2/,
    );
    await expect(InferenceWorker.start(initFor(model), { ...SETTINGS, classIds: [80] })).rejects.toThrow(/class id 80 is not in \[0, 79\]/);
  });
});

describe.skipIf(!HAVE_VTEST)("InferenceWorker on vtest.avi", () => {
  let w: InferenceWorker;
  let detector: Detector;

  beforeAll(async () => {
    w = await InferenceWorker.start(initFor(model), SETTINGS, { name: "vtest" });
    detector = await Detector.create(model, { executionProviders: ["cpu"] });
  });

  afterAll(async () => {
    await w?.close();
    await detector?.close();
  });

  it("finds people, with boxes in source pixels equal to the offline Detector's", async () => {
    for (const [i, img] of sources.entries()) {
      const frame = frameOf(img, "cam0", i);
      const r = await w.infer(frame);
      expect(r.camera).toBe("cam0");
      expect(r.seq).toBe(i);
      expect(r.tIngestNs).toBe(frame.tIngestNs);
      const people = r.detections.filter((d) => d.label === "person");
      expect(people.length, `frame ${i * 100}: people`).toBeGreaterThan(0);
      for (const d of r.detections) {
        expect(d.box[0]).toBeGreaterThanOrEqual(0);
        expect(d.box[1]).toBeGreaterThanOrEqual(0);
        expect(d.box[2]).toBeLessThanOrEqual(768);
        expect(d.box[3]).toBeLessThanOrEqual(576);
      }
      // Source pixels, not model pixels: some box reaches past the 416-px model width.
      expect(r.detections.some((d) => d.box[2] > 416)).toBe(true);

      // Same model, same stretch and resize: the worker must agree with the in-thread Detector.
      const ref = await detector.detect(img);
      expect(r.detections.map((d) => d.classId)).toEqual(ref.detections.map((d) => d.classId));
      r.detections.forEach((d, k) => {
        expect(d.score).toBeCloseTo(ref.detections[k].score, 5);
        d.box.forEach((v, j) => expect(v).toBeCloseTo(ref.detections[k].box[j], 3));
      });

      const parts = ["queueMs", "preprocessMs", "inferenceMs", "decodeMs", "handoffMs"] as const;
      for (const key of [...parts, "totalMs"] as const) {
        expect(r.timings[key], key).toBeGreaterThanOrEqual(0);
      }
      expect(r.timings.inferenceMs).toBeGreaterThan(0);
      // The stages follow one another inside ingest -> result: together they cannot exceed it
      // (0.01 ms for the worker's durations being read from performance.now()).
      const listed = parts.map((k) => `${k} ${r.timings[k].toFixed(3)}`).join(", ");
      const sum = parts.reduce((a, k) => a + r.timings[k], 0);
      expect(sum, `stages (${listed}) add up to more than totalMs ${r.timings.totalMs.toFixed(3)}`).toBeLessThanOrEqual(r.timings.totalMs + 0.01);
    }
  });

  it("transfers the pixels: the frame's ArrayBuffer is detached, not copied", async () => {
    const frame = frameOf(sources[0], "cam0", 10);
    const buffer = frame.pixels.buffer;
    expect(buffer.byteLength).toBe(416 * 416 * 3);
    const copiedBefore = w.copiedFrames;
    const pending = w.infer(frame);
    expect(buffer.byteLength).toBe(0);
    expect(frame.pixels.length).toBe(0);
    await pending;
    expect(w.copiedFrames).toBe(copiedBefore);
  });

  it("copies a view into a larger buffer instead of detaching bytes that are not the frame's", async () => {
    const frame = frameOf(sources[0], "cam0", 11);
    const big = new Uint8Array(frame.pixels.length + 64);
    big.set(frame.pixels, 32);
    const view = big.subarray(32, 32 + frame.pixels.length);
    const r = await w.infer({ ...frame, pixels: view });
    expect(big.buffer.byteLength).toBe(frame.pixels.length + 64);
    expect(w.copiedFrames).toBe(1);
    expect(r.detections.length).toBeGreaterThan(0);
  });

  it("allows one request at a time", async () => {
    const first = w.infer(frameOf(sources[0], "cam0", 20));
    await expect(w.infer(frameOf(sources[1], "cam1", 21))).rejects.toThrow(/busy with cam0 #20; one request at a time \(camera cam1 #21 refused\)/);
    await first;
    expect(w.busy).toBe(false);
  });

  it("depth 2: holds a second request behind the running one, answers both in order, refuses a third", async () => {
    const deep = await InferenceWorker.start(initFor(model), SETTINGS, { name: "deep", depth: 2 });
    try {
      const first = deep.infer(frameOf(sources[0], "cam0", 70));
      const second = deep.infer(frameOf(sources[1], "cam0", 71));
      expect(deep.inFlight).toBe(2);
      await expect(deep.infer(frameOf(sources[0], "cam0", 72))).rejects.toThrow(/busy with cam0 #70, cam0 #71; 2 requests at a time \(camera cam0 #72 refused\)/);
      const order: number[] = [];
      const [a, b] = await Promise.all([first.then((r) => (order.push(r.seq), r)), second.then((r) => (order.push(r.seq), r))]);
      expect(order, "results in the order asked").toEqual([70, 71]);
      // Each answer belongs to its own frame: the same pixels give the same boxes as at depth 1.
      expect(a.detections).toEqual((await w.infer(frameOf(sources[0], "cam0", 73))).detections);
      expect(b.detections).toEqual((await w.infer(frameOf(sources[1], "cam0", 74))).detections);
      // The second waited in the thread's queue, not on this thread: it was taken up right after the first.
      expect(b.timings.queueMs).toBeGreaterThan(a.timings.inferenceMs * 0.5);
      expect(deep.inFlight).toBe(0);
    } finally {
      await deep.close();
    }
    await expect(InferenceWorker.start(initFor(model), SETTINGS, { name: "x", depth: 3 as 2 })).rejects.toThrow(/inference worker x .*depth must be 1 or 2, got 3/);
  });

  it("depth 2: a detached worker fails both requests it held", async () => {
    const deep = await InferenceWorker.start(initFor(model), SETTINGS, { name: "deep2", depth: 2 });
    const first = deep.infer(frameOf(sources[0], "cam0", 80));
    const second = deep.infer(frameOf(sources[1], "cam0", 81));
    expect(await deep.terminate()).toBe("detached");
    await expect(first).rejects.toThrow(/inference worker deep2: terminated while busy/);
    await expect(second).rejects.toThrow(/inference worker deep2: terminated while busy/);
    expect(await deep.whenExited()).toBe(0);
  });

  it("rejects a frame that is not at the model size, naming camera and sizes", async () => {
    const frame = frameOf(sources[0], "cam0", 30);
    await expect(w.infer({ ...frame, width: 640, height: 480 })).rejects.toThrow(
      /camera cam0 frame 30 is 640x480 .*model "nanodet-u8" takes 416x416 RGB/,
    );
    expect(w.busy).toBe(false);
  });

  it("applies new settings to the next frame (threshold, class filter, max detections)", async () => {
    const all = await w.infer(frameOf(sources[1], "cam0", 40));
    expect(all.detections.length).toBeGreaterThan(1);

    w.setSettings({ ...SETTINGS, maxDetections: 1 });
    expect((await w.infer(frameOf(sources[1], "cam0", 41))).detections).toHaveLength(1);

    w.setSettings({ ...SETTINGS, classIds: classIdsForLabels(model.name, model.entry.labels, ["car"]) });
    const cars = await w.infer(frameOf(sources[1], "cam0", 42));
    expect(cars.detections.every((d) => d.label === "car")).toBe(true);

    w.setSettings({ ...SETTINGS, scoreThreshold: 0.999 });
    expect((await w.infer(frameOf(sources[1], "cam0", 43))).detections).toEqual([]);

    expect(() => w.setSettings({ ...SETTINGS, iouThreshold: -1 })).toThrow(/iouThreshold must be a number in \[0, 1\], got -1/);
    w.setSettings(SETTINGS);
    expect((await w.infer(frameOf(sources[1], "cam0", 44))).detections).toEqual(all.detections);
  });

  it("terminate() ends an idle worker, and detaches a busy one instead of aborting the process", async () => {
    const idle = await InferenceWorker.start(initFor(model), SETTINGS, { name: "idle" });
    expect(await idle.terminate()).toBe("terminated");
    expect(idle.state).toBe("exited");

    // Worker.terminate() inside session.run aborts the whole process (this test's too);
    // detaching lets the run finish, then the thread releases its session and exits.
    const busy = await InferenceWorker.start(initFor(model), SETTINGS, { name: "busy" });
    const pending = busy.infer(frameOf(sources[0], "cam0", 50));
    expect(await busy.terminate()).toBe("detached");
    expect(busy.state).toBe("detached");
    await expect(pending).rejects.toThrow(/inference worker busy: terminated while busy/);
    expect(await busy.whenExited()).toBe(0);
    expect(busy.state).toBe("exited");
  });

  it("close() past its timeout fails the running request and detaches the worker", async () => {
    const slow = await InferenceWorker.start(initFor(model), SETTINGS, { name: "slow" });
    const errors: Error[] = [];
    slow.on("error", (e) => errors.push(e));
    const pending = slow.infer(frameOf(sources[0], "cam0", 60));
    expect(await slow.close(1)).toBe("detached");
    await expect(pending).rejects.toThrow(/close\(\) timed out after 1 ms with the request still running/);
    expect(await slow.whenExited()).toBe(0);
    expect(errors).toEqual([]);
  });

  it("names unknown class labels with the valid ones", () => {
    expect(() => classIdsForLabels("nanodet-u8", model.entry.labels, ["person", "unicorn"])).toThrow(
      /model "nanodet-u8" has no class "unicorn"; valid classes: person, bicycle/,
    );
    expect(classIdsForLabels("nanodet-u8", model.entry.labels, ["person"])).toEqual([0]);
  });

  it("measures inference in the worker against session.run on this thread (printed, not asserted)", async () => {
    // Two CPU sessions in one process interfere: ORT's intra-op threads spin for a while
    // after each run, on the cores the other session is about to use (on 2 cores each run
    // then takes about twice as long). So the two are timed in alternating blocks, and the
    // first run of each block, which overlaps the other's spinning tail, is discarded.
    const session = (await createSession(model.path, { executionProviders: ["cpu"], intraOpThreads: 0, interOpThreads: 1 })).session;
    const blocks = 4;
    const perBlock = 6;
    const direct: number[] = [];
    const inWorker: number[] = [];
    const roundTrip: number[] = [];
    const hop: number[] = [];
    try {
      for (let b = 0; b < blocks; b++) {
        for (let i = 0; i < perBlock; i++) {
          const img = sources[i % sources.length];
          const frame = frameOf(img, "bench", b * perBlock + i);
          const t0 = performance.now();
          const r = await w.infer(frame);
          const rt = performance.now() - t0;
          if (i === 0) continue;
          inWorker.push(r.timings.inferenceMs);
          roundTrip.push(rt);
          hop.push(rt - r.timings.preprocessMs - r.timings.inferenceMs - r.timings.decodeMs);
        }
        for (let i = 0; i < perBlock; i++) {
          const img = sources[i % sources.length];
          const t = computeLetterbox(img.width, img.height, model.entry.input.width, model.entry.input.height, "stretch");
          const input = toInputTensor(resizeToModel(img, t), model.entry.input);
          const t0 = performance.now();
          await session.run({ [model.entry.input.name]: input });
          if (i > 0) direct.push(performance.now() - t0);
        }
      }
    } finally {
      await session.release();
    }
    const med = (xs: number[]): string => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(2);
    console.log(
      `nanodet-u8, onnxruntime-node ${ort.env.versions?.node ?? "?"} cpu, ${inWorker.length} frames each, medians: ` +
        `session.run on the main thread ${med(direct)} ms; in the worker: session.run ${med(inWorker)} ms, ` +
        `infer() round trip ${med(roundTrip)} ms, of which the worker hop (post, transfer, answer, box mapping) ${med(hop)} ms`,
    );
    expect(direct).toHaveLength(inWorker.length);
  });
});

describe.skipIf(!HAVE_VTEST)("model-size frames -> input tensor (input-tensor.ts)", () => {
  it("gives every manifest model exactly what Detector.preprocess gives it", async () => {
    const manifest = await readManifest();
    for (const name of Object.keys(manifest.models)) {
      const m = resolveModel(manifest, DEFAULT_MANIFEST_PATH, name);
      const { width, height } = m.entry.input;
      // At the model size the detector's resize is the identity, so only the tensor step differs.
      const img = resizeToModel(sources[0], computeLetterbox(768, 576, width, height, "stretch"));
      const d = await Detector.create(m, { executionProviders: ["cpu"] });
      try {
        const ref = d.preprocess({ ...img, data: img.data.slice() }).input;
        const ours = toInputTensor(img, m.entry.input);
        expect(ours.type, name).toBe(ref.type);
        expect(ours.dims, name).toEqual(ref.dims);
        expect(ours.data, name).toEqual(ref.data);
      } finally {
        await d.close();
      }
    }
  });

  it("runs a float32 NCHW BGR model (nanodet) in the worker like the Detector does", async () => {
    const m = resolveModel(await readManifest(), DEFAULT_MANIFEST_PATH, "nanodet");
    const w = await InferenceWorker.start(initFor(m), SETTINGS, { name: "float" });
    const d = await Detector.create(m, { executionProviders: ["cpu"] });
    try {
      const img = sources[1];
      const { width, height } = m.entry.input;
      const transform = computeLetterbox(img.width, img.height, width, height, "stretch");
      const r = await w.infer({ camera: "c", seq: 0, tIngestNs: process.hrtime.bigint(), ptsNs: null, pixels: resizeToModel(img, transform).data, width, height, transform });
      const ref = await d.detect(img);
      expect(r.detections.length).toBeGreaterThan(0);
      expect(r.detections.map((x) => x.classId)).toEqual(ref.detections.map((x) => x.classId));
      r.detections.forEach((x, k) => x.box.forEach((v, j) => expect(v).toBeCloseTo(ref.detections[k].box[j], 3)));
    } finally {
      await w.close();
      await d.close();
    }
  });
});
