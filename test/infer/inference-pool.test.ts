// Latest-wins inference over real workers running nanodet-u8 on a vtest.avi frame.
import { existsSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.ts";
import type { InferResult } from "../../src/infer/inference-worker.ts";
import { InferencePool, resolveReplayWorkers, threadsPerSession, type DropReason, type InferencePoolError, type InferencePoolOptions } from "../../src/infer/inference-pool.ts";
import { computeLetterbox } from "../../src/core/letterbox.ts";
import type { DetectSettings, WorkerInit } from "../../src/infer/worker-protocol.ts";
import type { Frame } from "../../src/core/frame.ts";
import { readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import { resizeToModel } from "../../src/infer/resize.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel, type ResolvedModel } from "../../src/infer/manifest.ts";

const VTEST = ".cache/fixtures/vtest.avi";
const HAVE_VTEST = existsSync(VTEST);
if (!HAVE_VTEST) console.warn(`skipping inference pool cases: ${VTEST} is missing (run \`npm run setup\` to fetch it)`);

const SETTINGS: DetectSettings = { scoreThreshold: 0.35, iouThreshold: 0.5, classIds: [], maxDetections: 100 };

let model: ResolvedModel;
/** vtest.avi frame 0 stretched to the model input, as ingest would deliver it */
let modelPixels: Uint8Array;
let source: RgbImage;

beforeAll(async () => {
  model = resolveModel(await readManifest(), DEFAULT_MANIFEST_PATH, "nanodet-u8");
  if (!HAVE_VTEST) return;
  for await (const f of readVideoFrames(VTEST, { maxFrames: 1 })) source = { ...f.image, data: f.image.data.slice() };
  const { width, height } = model.entry.input;
  modelPixels = resizeToModel(source, computeLetterbox(source.width, source.height, width, height, "stretch")).data;
});

function init(over: Partial<WorkerInit> = {}): WorkerInit {
  return {
    modelPath: model.path,
    modelName: model.name,
    entry: model.entry,
    executionProviders: ["cpu"],
    intraOpThreads: 0,
    interOpThreads: 1,
    allowSpinning: false,
    tuning: { ...ConfigSchema.shape.inference.parse({}), trtCacheDir: join(tmpdir(), "perceptd-trt-unused") },
    warmupRuns: 1,
    ...over,
  };
}

/** A fresh frame each call: its pixels are given away on submit. */
function frame(camera: string, seq: number): Frame {
  const { width, height } = model.entry.input;
  return {
    camera,
    seq,
    tIngestNs: process.hrtime.bigint(),
    ptsNs: null,
    pixels: modelPixels.slice(),
    width,
    height,
    transform: computeLetterbox(source.width, source.height, width, height, "stretch"),
  };
}

interface Recorder {
  results: InferResult[];
  drops: { camera: string; seq: number; reason: DropReason }[];
  errors: InferencePoolError[];
  /** largest number of frames in flight seen at any callback or submit */
  maxInFlight: number;
}

let pools: InferencePool[] = [];

async function startPool(opts: Partial<InferencePoolOptions> & { cameras: string[] }): Promise<{ pool: InferencePool; rec: Recorder }> {
  const rec: Recorder = { results: [], drops: [], errors: [], maxInFlight: 0 };
  const pool = await InferencePool.start({
    init: init(),
    settings: SETTINGS,
    onResult: (r) => rec.results.push(r),
    onDrop: (f, reason) => rec.drops.push({ camera: f.camera, seq: f.seq, reason }),
    onError: (e) => rec.errors.push(e),
    ...opts,
  });
  pools.push(pool);
  return { pool, rec };
}

function noteInFlight(pool: InferencePool, rec: Recorder): void {
  const inFlight = pool.stats().cameras.filter((c) => c.inFlight).length;
  rec.maxInFlight = Math.max(rec.maxInFlight, inFlight);
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  pools = [];
});

describe.skipIf(!HAVE_VTEST)("InferencePool, shared worker", () => {
  it("runs the first frame of a burst and the last, dropping the ones between", async () => {
    const { pool, rec } = await startPool({ cameras: ["a"] });
    for (let seq = 0; seq < 10; seq++) pool.submit(frame("a", seq));
    await waitFor("two results", () => rec.results.length === 2);
    expect(rec.results.map((r) => r.seq)).toEqual([0, 9]);
    expect(rec.drops).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((seq) => ({ camera: "a", seq, reason: "replaced" })));
    expect(rec.errors).toEqual([]);
    expect(rec.results[1].detections.some((d) => d.label === "person")).toBe(true);
    // One session runs one frame at a time: frame 9 started only once frame 0 had ended.
    const [first, last] = rec.results;
    const startMs = (r: typeof first): number => Number(r.tIngestNs) / 1e6 + r.timings.queueMs;
    const endMs = (r: typeof first): number => startMs(r) + r.timings.preprocessMs + r.timings.inferenceMs + r.timings.decodeMs;
    expect(startMs(last), "frame 9 waited for frame 0").toBeGreaterThanOrEqual(endMs(first) - 0.5);
    expect(pool.stats().cameras).toEqual([
      { camera: "a", offered: 10, dropped: 8, started: 2, finished: 2, waiting: false, inFlight: false, completed: 2, errors: 0, workers: [0] },
    ]);
  });

  it("whenSlotFree: a producer that waits for it loses no frame, and the worker always has the next one waiting", async () => {
    const { pool, rec } = await startPool({ cameras: ["a"] });
    expect(pool.whenSlotFree("a"), "empty slot: ready now").toBeNull();
    let waits = 0;
    for (let seq = 0; seq < 12; seq++) {
      const ready = pool.whenSlotFree("a");
      if (ready !== null) {
        waits++;
        await ready;
      }
      pool.submit(frame("a", seq));
    }
    await waitFor("12 results", () => rec.results.length === 12);
    expect(rec.drops, "frames replaced").toEqual([]);
    expect(rec.results.map((r) => r.seq)).toEqual([...Array(12).keys()]);
    // Frame 0 goes straight to the worker and frame 1 waits behind it; from then on every
    // submit waits for the worker to take the frame before it.
    expect(waits).toBe(10);
    pool.submit(frame("a", 12));
    pool.submit(frame("a", 13));
    const pending = pool.whenSlotFree("a");
    expect(pending, "a frame is waiting behind the one in flight").not.toBeNull();
    await pool.close();
    await pending; // close() releases waiters
  });

  it("queueAhead: a waiting producer's next frame is queued in the worker while the current one runs", async () => {
    const { pool, rec } = await startPool({ cameras: ["a"], queueAhead: ["a"] });
    let sawTwo = false;
    for (let seq = 0; seq < 12; seq++) {
      const ready = pool.whenSlotFree("a");
      if (ready !== null) await ready;
      pool.submit(frame("a", seq));
      sawTwo ||= pool.workers[0].inFlight === 2;
    }
    await waitFor("12 results", () => rec.results.length === 12);
    expect(rec.drops, "frames replaced").toEqual([]);
    expect(rec.errors).toEqual([]);
    expect(rec.results.map((r) => r.seq), "results in order").toEqual([...Array(12).keys()]);
    expect(sawTwo, "a second frame went to the worker while one ran").toBe(true);
  });

  it("replayWorkers: a replay-only lane runs its frames on two sessions side by side, results still in frame order", async () => {
    const workersSeen: number[] = [];
    const { pool, rec } = await startPool({
      cameras: ["a"],
      queueAhead: ["a"],
      replayWorkers: 2,
      onResult: (r, worker) => {
        rec.results.push(r);
        workersSeen.push(worker);
      },
    });
    expect(pool.stats().workers.map((w) => ({ name: w.name, cameras: w.cameras, intraOpThreads: w.intraOpThreads }))).toEqual([
      { name: "shared-1", cameras: ["a"], intraOpThreads: Math.max(1, Math.floor(availableParallelism() / 2)) },
      { name: "shared-2", cameras: ["a"], intraOpThreads: Math.max(1, Math.floor(availableParallelism() / 2)) },
    ]);
    let busyTogether = false;
    for (let seq = 0; seq < 16; seq++) {
      const ready = pool.whenSlotFree("a");
      if (ready !== null) await ready;
      pool.submit(frame("a", seq));
      busyTogether ||= pool.workers.every((w) => w.inFlight > 0);
    }
    await waitFor("16 results", () => rec.results.length === 16);
    expect(rec.drops, "frames replaced").toEqual([]);
    expect(rec.errors).toEqual([]);
    expect(rec.results.map((r) => r.seq), "results leave in frame order though two sessions finish them").toEqual([...Array(16).keys()]);
    expect(busyTogether, "both workers held a frame at once").toBe(true);
    expect(new Set(workersSeen), "results came from both workers").toEqual(new Set([0, 1]));
    expect(pool.stats().cameras[0]).toMatchObject({ camera: "a", completed: 16, errors: 0, workers: [0, 1] });
    // The same boxes whichever session ran the frame (every frame has the same pixels).
    const boxes = (r: InferResult): string => JSON.stringify(r.detections.map((d) => [d.classId, d.box.map((v) => Math.round(v))]));
    expect(new Set(rec.results.map(boxes)).size, "one answer for one picture").toBe(1);
  });

  it("replayWorkers: a lane with a live camera keeps one worker at full width", async () => {
    const { pool } = await startPool({ cameras: ["replay", "live"], queueAhead: ["replay"], replayWorkers: 2 });
    expect(pool.stats().workers.map((w) => ({ name: w.name, intraOpThreads: w.intraOpThreads }))).toEqual([{ name: "shared", intraOpThreads: 0 }]);
  });

  it("replayWorkers: per camera, only the replay's lane gets more workers", async () => {
    const { pool } = await startPool({ cameras: ["replay", "live"], workers: "per-camera", queueAhead: ["replay"], replayWorkers: 2 });
    expect(pool.stats().workers.map((w) => ({ name: w.name, cameras: w.cameras }))).toEqual([
      { name: "replay-1", cameras: ["replay"] },
      { name: "replay-2", cameras: ["replay"] },
      { name: "live", cameras: ["live"] },
    ]);
    expect(pool.stats().cameras.map((c) => ({ camera: c.camera, workers: c.workers }))).toEqual([
      { camera: "replay", workers: [0, 1] },
      { camera: "live", workers: [2] },
    ]);
  });

  it("replayWorkers: refuses a count outside [1, 16] before starting any worker", async () => {
    await expect(startPool({ cameras: ["a"], replayWorkers: 0 })).rejects.toThrow(/replayWorkers must be an integer in \[1, 16\], got 0/);
    await expect(startPool({ cameras: ["a"], replayWorkers: 17 })).rejects.toThrow(/got 17/);
    await expect(startPool({ cameras: ["a"], replayWorkers: 1.5 })).rejects.toThrow(/got 1.5/);
  });

  it("queueAhead: refuses a camera the pool does not have", async () => {
    await expect(startPool({ cameras: ["a"], queueAhead: ["b"] })).rejects.toThrow(/queueAhead names camera "b", which is not in cameras \(a\)/);
  });

  it("keeps up with a producer faster than inference by dropping waiting frames: results in order, one in flight", async () => {
    const { pool, rec } = await startPool({ cameras: ["a"] });
    const submitted = 60;
    for (let seq = 0; seq < submitted; seq++) {
      pool.submit(frame("a", seq));
      noteInFlight(pool, rec);
      await sleep(5);
    }
    // Latest wins: the last frame always runs.
    await waitFor("the last frame's result", () => rec.results.at(-1)?.seq === submitted - 1);
    const ran = rec.results.map((r) => r.seq);
    const dropped = rec.drops.map((d) => d.seq);
    expect(rec.errors).toEqual([]);
    expect(rec.drops.every((d) => d.reason === "replaced")).toBe(true);
    expect(dropped.length).toBeGreaterThan(0);
    expect(ran.length + dropped.length).toBe(submitted);
    expect(new Set([...ran, ...dropped]).size).toBe(submitted); // each frame ran or was dropped, never both
    for (let i = 1; i < ran.length; i++) expect(ran[i]).toBeGreaterThan(ran[i - 1]);
    expect(rec.maxInFlight).toBe(1);
    const st = pool.stats().cameras[0];
    expect(st).toMatchObject({ offered: submitted, dropped: dropped.length, completed: ran.length, inFlight: false, waiting: false });
    console.log(`shared worker, 1 camera at 200 fps offered: ${ran.length} of ${submitted} frames ran, ${dropped.length} dropped`);
  });

  it("shares one worker fairly between a fast and a slow camera", async () => {
    const { pool, rec } = await startPool({ cameras: ["fast", "slow"] });
    const seq = { fast: 0, slow: 0 };
    const until = Date.now() + 1500;
    for (let tick = 0; Date.now() < until; tick++) {
      pool.submit(frame("fast", seq.fast++));
      // The slow camera offers a third as often, still faster than inference.
      if (tick % 3 === 0) pool.submit(frame("slow", seq.slow++));
      noteInFlight(pool, rec);
      await sleep(5);
    }
    await pool.close();
    const order = rec.results.map((r) => r.camera);
    const fast = order.filter((c) => c === "fast").length;
    const slow = order.filter((c) => c === "slow").length;
    console.log(`shared worker, 2 cameras: ${order.length} results (fast ${fast}, slow ${slow}) of ${seq.fast + seq.slow} frames offered`);
    expect(slow).toBeGreaterThan(2);
    expect(Math.abs(fast - slow)).toBeLessThanOrEqual(1);
    // Round-robin: with both cameras always waiting, no camera runs twice in a row.
    for (let i = 1; i < order.length; i++) expect(order[i], `result ${i}`).not.toBe(order[i - 1]);
    expect(rec.maxInFlight).toBe(1);
    for (const cam of ["fast", "slow"] as const) {
      const seqs = rec.results.filter((r) => r.camera === cam).map((r) => r.seq);
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
    }
  });

  it("close() finishes the frame in flight, drops the waiting ones, and is quick", async () => {
    const { pool, rec } = await startPool({ cameras: ["a", "b"] });
    const exits: number[] = [];
    pool.workers[0].on("exit", (code) => exits.push(code));
    pool.submit(frame("a", 0)); // goes to the worker at once
    pool.submit(frame("a", 1));
    pool.submit(frame("b", 0));
    await pool.close();
    expect(rec.results.map((r) => `${r.camera}#${r.seq}`)).toEqual(["a#0"]);
    expect(rec.drops).toEqual([
      { camera: "a", seq: 1, reason: "closed" },
      { camera: "b", seq: 0, reason: "closed" },
    ]);
    expect(exits).toEqual([0]);
    pool.submit(frame("a", 2));
    expect(rec.drops.at(-1)).toEqual({ camera: "a", seq: 2, reason: "closed" });
    expect(rec.errors).toEqual([]);
  });

  it("reports a failed frame with its camera and goes on with the next", async () => {
    const { pool, rec } = await startPool({ cameras: ["a"] });
    pool.submit({ ...frame("a", 0), width: 320 });
    pool.submit(frame("a", 1));
    await waitFor("a result", () => rec.results.length === 1);
    expect(rec.errors).toHaveLength(1);
    expect(rec.errors[0]).toMatchObject({ fatal: false, worker: 0, camera: "a", seq: 0 });
    expect(rec.errors[0].error.message).toMatch(/camera a frame 0 is 320x416/);
    expect(rec.results[0].seq).toBe(1);
    expect(pool.stats().cameras[0]).toMatchObject({ errors: 1, completed: 1 });
  });

  it("applies new settings to every worker, and refuses an unknown camera", async () => {
    const { pool, rec } = await startPool({ cameras: ["a"] });
    pool.setSettings({ ...SETTINGS, scoreThreshold: 0.999 });
    pool.submit(frame("a", 0));
    await waitFor("a result", () => rec.results.length === 1);
    expect(rec.results[0].detections).toEqual([]);
    expect(() => pool.submit(frame("nope", 0))).toThrow(/unknown camera "nope"; known cameras: a/);
    expect(() => pool.setSettings({ ...SETTINGS, maxDetections: 0 })).toThrow(/maxDetections must be a positive integer/);
  });
});

describe.skipIf(!HAVE_VTEST)("InferencePool.replaceWorker", () => {
  it("terminates a busy worker, starts a fresh one and resumes the waiting frame", async () => {
    const { pool, rec } = await startPool({ cameras: ["a"] });
    const old = pool.workers[0];
    pool.submit(frame("a", 0)); // in flight: fails when the thread is terminated
    pool.submit(frame("a", 1)); // waits, survives the replacement
    const fresh = await pool.replaceWorker(0);
    expect(fresh).not.toBe(old);
    expect(old.alive).toBe(false);
    expect(await old.whenExited()).toBe(0); // detached mid-run, then ended by itself
    expect(pool.workers[0]).toBe(fresh);
    await waitFor("the waiting frame's result", () => rec.results.length === 1);
    expect(rec.results[0].seq).toBe(1);
    // The caller asked for the termination, so the lost frame is counted but not reported.
    expect(rec.errors).toEqual([]);
    expect(pool.stats().cameras[0]).toMatchObject({ errors: 1, completed: 1, dropped: 0 });
    await expect(pool.replaceWorker(3)).rejects.toThrow(/index must be an integer in \[0, 0\], got 3/);
  });
});

describe.skipIf(!HAVE_VTEST)("InferencePool, a worker per camera", () => {
  it("starts one worker per camera, splitting the cores between them", async () => {
    const { pool, rec } = await startPool({ cameras: ["a", "b"], workers: "per-camera" });
    expect(pool.workers).toHaveLength(2);
    expect(pool.stats().workers.map((w) => ({ name: w.name, cameras: w.cameras, provider: w.provider }))).toEqual([
      { name: "a", cameras: ["a"], provider: "cpu" },
      { name: "b", cameras: ["b"], provider: "cpu" },
    ]);
    pool.submit(frame("a", 0));
    pool.submit(frame("b", 0));
    // Each worker runs its own camera's frame at the same time.
    noteInFlight(pool, rec);
    expect(rec.maxInFlight).toBe(2);
    await waitFor("both results", () => rec.results.length === 2);
    expect(rec.results.map((r) => r.camera).sort()).toEqual(["a", "b"]);
    expect(rec.errors).toEqual([]);
  });
});

describe("InferencePool.start", () => {
  it("rejects a bad camera list before starting any worker", async () => {
    await expect(InferencePool.start({ init: init(), settings: SETTINGS, cameras: [] })).rejects.toThrow(/cameras is empty/);
    await expect(InferencePool.start({ init: init(), settings: SETTINGS, cameras: ["a", "a"] })).rejects.toThrow(/camera "a" is listed twice/);
  });

  it("rejects with the worker's error when the model cannot be loaded", async () => {
    const path = join(tmpdir(), "perceptd-missing-model.onnx");
    await expect(InferencePool.start({ init: init({ modelPath: path }), settings: SETTINGS, cameras: ["a"] })).rejects.toThrow(path);
  });
});

describe("replay workers and their threads", () => {
  it("resolveReplayWorkers: 0 means two on a multi-core CPU, one on a single core or with a GPU provider; a set count stays", () => {
    expect(resolveReplayWorkers(0, ["cpu"], 2)).toBe(2);
    expect(resolveReplayWorkers(0, ["cpu"], 8)).toBe(2);
    expect(resolveReplayWorkers(0, ["cpu"], 1)).toBe(1);
    expect(resolveReplayWorkers(0, ["tensorrt", "cuda", "cpu"], 8)).toBe(1);
    expect(resolveReplayWorkers(0, ["cuda"], 8)).toBe(1);
    expect(resolveReplayWorkers(3, ["cpu"], 2)).toBe(3);
    expect(resolveReplayWorkers(2, ["tensorrt", "cpu"], 8)).toBe(2);
  });

  it("threadsPerSession: automatic threads split the cores between sessions, at least one each; set threads stay", () => {
    expect(threadsPerSession(0, 1, 8)).toBe(0);
    expect(threadsPerSession(0, 2, 8)).toBe(4);
    expect(threadsPerSession(0, 3, 8)).toBe(2);
    expect(threadsPerSession(0, 4, 2)).toBe(1);
    expect(threadsPerSession(3, 2, 8)).toBe(3);
  });
});
