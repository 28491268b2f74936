// The inference worker thread: owns one ONNX Runtime session and turns model-size RGB
// frames into detections in source pixels (frame-processor.ts, the one frame path). It exists because onnxruntime-node's
// session.run blocks the thread it runs on; here that blocks nobody else.
//
// Started through worker-bootstrap.mjs (which registers tsx), never imported by the main
// thread; inference-worker.ts is its only client. Speaks worker-protocol.ts.
import { parentPort } from "node:worker_threads";
import type * as ort from "onnxruntime-node";
import { computeLetterbox } from "../core/letterbox.ts";
import type { LetterboxTransform } from "../core/types.ts";
import { FrameProcessor, type PostprocessSettings, type ProcessedFrame } from "./frame-processor.ts";
import { checkInputSpec } from "./input-tensor.ts";
import { checkSession, decoderFor } from "./model-runtime.ts";
import { createSession } from "./session.ts";
import { checkDetectSettings, type DetectSettings, type MainToWorker, type WorkerInit, type WorkerToMain } from "./worker-protocol.ts";
import { readVerifiedModel, type ResolvedModel } from "./manifest.ts";
import { releaseTensors } from "../util/release-array-buffer.ts";
import { faultTriggerName, faultTriggersFromEnv } from "../util/fault-trigger.ts";

const maybePort = parentPort;
if (maybePort === null) throw new Error("src/infer/worker.ts is an inference worker entry; start it with new Worker(), not import it");
const port = maybePort;

interface Loaded {
  init: WorkerInit;
  session: ort.InferenceSession;
  processor: FrameProcessor;
  /** `model "nanodet-u8"`, for messages */
  what: string;
}

let loaded: Loaded | undefined;
let settings: PostprocessSettings | undefined;

// ---- TEST-ONLY: injected inference stall ---------------------------------------------
// Lets the fault tests (test/daemon/faults.test.ts, scripts/fault-figures.ts) make the real
// daemon's worker hang, which no real model input does on demand. Inert unless
// PERCEPTD_TEST_INFER_STALL_MS is set; never set it in production.
//   PERCEPTD_TEST_INFER_STALL_MS     how long a stalled frame blocks this thread
//   PERCEPTD_TEST_INFER_STALL_AFTER  frames this thread runs normally first (default 0)
//   PERCEPTD_TEST_INFER_STALL_EVERY  then every Nth frame stalls again (default 0: only once)
// Counts are per worker thread, so a replacement worker (a new thread) starts counting
// afresh and stalls again after AFTER frames: the "input that always hangs" case, where
// repeated replacements end in the give-up exit. Warm-up runs are not counted.
//
// The stall is Atomics.wait before session.run, not a busy loop and not inside ORT: the
// thread is blocked exactly as in a hung native call (no messages handled, busy as the pool
// sees it), so the pool's replaceWorker detaches it rather than terminating it, the same
// path as a real hang; a sleep leaves both cores to the replacement's warm-up on a 2-core
// machine, where a busy loop would take one. Unlike a real hang it ends: the detached
// thread then takes its queued close and exits, so the process can still exit (e.g. 70).
interface InjectedStall {
  ms: number;
  after: number;
  every: number;
}

const STALL_ENV = { ms: "PERCEPTD_TEST_INFER_STALL_MS", after: "PERCEPTD_TEST_INFER_STALL_AFTER", every: "PERCEPTD_TEST_INFER_STALL_EVERY" } as const;

/** The stall asked for by the environment, or null (the normal case). Throws on a malformed value. */
function injectedStallFromEnv(env: NodeJS.ProcessEnv): InjectedStall | null {
  const read = (name: string, min: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return 0;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} (test-only stall injection) must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return v;
  };
  const ms = read(STALL_ENV.ms, 1);
  if (ms === 0) return null;
  return { ms, after: read(STALL_ENV.after, 0), every: read(STALL_ENV.every, 0) };
}

let injectedStall: InjectedStall | null = null;
let inferCount = 0;
/** `perceptd soak --faults`' inference hang, on demand (src/util/fault-trigger.ts). */
const faultTriggers = faultTriggersFromEnv();

function maybeStall(): void {
  const asked = faultTriggers?.take(faultTriggerName.inferenceHang) ?? null;
  if (asked !== null) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, asked);
  const s = injectedStall;
  if (s === null) return;
  const n = inferCount++;
  if (n < s.after) return;
  if (n > s.after && (s.every === 0 || (n - s.after) % s.every !== 0)) return;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, s.ms);
}
// ---- end of test-only stall ----------------------------------------------------------

function post(msg: WorkerToMain): void {
  port.postMessage(msg);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function applySettings(s: DetectSettings, classCount: number, where: string): void {
  checkDetectSettings(s, classCount, where);
  settings = {
    scoreThreshold: s.scoreThreshold,
    iouThreshold: s.iouThreshold,
    maxDetections: s.maxDetections,
    classFilter: s.classIds.length === 0 ? undefined : new Set(s.classIds),
  };
}

/**
 * One frame through the model: pixels are consumed (a BGR model swaps them in place).
 * `spent` (the frame's pixels and the model's outputs) is the caller's to release
 * (release-array-buffer.ts) rather than leave to V8, whose collections to reclaim them
 * landed on frames; after the result is posted, so the release is not on the frame's path.
 */
async function runFrame(m: Loaded, pixels: Uint8Array, width: number, height: number, transform: LetterboxTransform, label: string): Promise<ProcessedFrame> {
  const s = settings;
  if (s === undefined) throw new Error(`${m.what}: no detect settings (init did not complete)`);
  return m.processor.process({ width, height, data: pixels }, transform, s, { consume: true, where: `${m.what}, ${label}` });
}

async function onInit(init: WorkerInit, initial: DetectSettings): Promise<void> {
  if (loaded !== undefined) throw new Error(`${loaded.what}: init received twice`);
  const what = `model "${init.modelName}"`;
  // Test-only (see above); read here so a malformed value fails the start, naming it.
  injectedStall = injectedStallFromEnv(process.env);
  checkInputSpec(init.modelName, init.entry.input);
  const decoder = decoderFor(init.entry.decoder);
  applySettings(initial, init.entry.labels.length, `${what}: detect settings`);
  if (!(Number.isInteger(init.warmupRuns) && init.warmupRuns >= 0)) {
    throw new RangeError(`${what}: warmupRuns must be a non-negative integer, got ${String(init.warmupRuns)}`);
  }
  // Reading the bytes here and checking them against the manifest, rather than letting ORT
  // open the path, means the graph that runs is the one whose checksum was verified.
  const model: ResolvedModel = { name: init.modelName, path: init.modelPath, entry: init.entry };
  const bytes = await readVerifiedModel(model);
  const created = await createSession(bytes, {
    executionProviders: init.executionProviders,
    intraOpThreads: init.intraOpThreads,
    interOpThreads: init.interOpThreads,
    allowSpinning: init.allowSpinning,
    tuning: init.tuning,
    source: init.modelPath,
  });
  const m: Loaded = { init, session: created.session, processor: new FrameProcessor(created.session, init.entry, decoder), what };
  const warmupMs: number[] = [];
  try {
    checkSession(model, created.session, decoder);
    const { width, height } = init.entry.input;
    const identity = computeLetterbox(width, height, width, height, "stretch");
    // A close asked for during start-up (the daemon stopped while warming up) ends the
    // warm-up at the next run instead of after all of them.
    for (let i = 0; i < init.warmupRuns && !closeAsked; i++) {
      // A blank frame: first runs allocate arenas and (on TensorRT) build engines, which
      // would otherwise land on the first camera frame as a latency spike.
      const t0 = performance.now();
      const { spent } = await runFrame(m, new Uint8Array(width * height * 3), width, height, identity, `warm-up run ${i + 1}`);
      warmupMs.push(performance.now() - t0);
      releaseTensors(spent);
    }
  } catch (err) {
    await created.session.release();
    throw err;
  }
  loaded = m;
  post({ type: "ready", provider: created.provider, tried: created.tried, warnings: created.warnings, providerOptions: created.providerOptions, warmupMs });
}

async function onInfer(msg: Extract<MainToWorker, { type: "infer" }>): Promise<void> {
  const tStartNs = process.hrtime.bigint();
  const m = loaded;
  if (m === undefined) throw new Error(`infer request ${msg.id} (${msg.camera} #${msg.seq}) arrived before init completed`);
  maybeStall();
  const { spent, ...out } = await runFrame(m, new Uint8Array(msg.pixels), msg.width, msg.height, msg.transform, `camera ${msg.camera} frame ${msg.seq}`);
  post({ type: "result", id: msg.id, camera: msg.camera, seq: msg.seq, ...out, tStartNs, tEndNs: process.hrtime.bigint() });
  releaseTensors(spent);
}

async function onClose(): Promise<void> {
  const m = loaded;
  loaded = undefined;
  if (m !== undefined) await m.session.release();
  post({ type: "closed" });
  // With the port closed and the session released nothing keeps the event loop alive,
  // so the thread ends on its own with exit code 0.
  port.close();
}

async function handle(msg: MainToWorker): Promise<void> {
  try {
    switch (msg.type) {
      case "init":
        await onInit(msg.init, msg.settings);
        return;
      case "infer":
        await onInfer(msg);
        return;
      case "settings": {
        const m = loaded;
        if (m === undefined) throw new Error("settings arrived before init completed");
        applySettings(msg.settings, m.init.entry.labels.length, `${m.what}: detect settings`);
        return;
      }
      case "close":
        await onClose();
        return;
      default: {
        const unknown: { type?: unknown } = msg;
        throw new TypeError(`inference worker: unknown message type ${JSON.stringify(unknown.type)}`);
      }
    }
  } catch (err) {
    const fatal = msg.type === "init" || msg.type === "close";
    post({ type: "error", id: msg.type === "infer" ? msg.id : undefined, phase: msg.type, message: message(err), fatal });
    if (fatal) {
      const m = loaded;
      loaded = undefined;
      if (m !== undefined) await m.session.release().catch(() => undefined);
      port.close();
    }
  }
}

// The port hands messages over as they arrive, and session.run yields (setImmediate)
// inside a request; chaining makes each message wait for the one before, so a `close` or
// `settings` never lands in the middle of an inference.
let queue: Promise<void> = Promise.resolve();
/** Set as soon as a close arrives, before the queue reaches it: the warm-up loop reads it. */
let closeAsked = false;
port.on("message", (msg: MainToWorker) => {
  if (msg.type === "close") closeAsked = true;
  queue = queue.then(() => handle(msg));
});
