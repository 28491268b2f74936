// Main-thread handle on one inference worker thread (worker.ts): starts it, sends it frames
// by transfer with their letterbox transform, takes back detections in source pixels, and
// shuts it down. One request at a time, or
// two when the pool queues one ahead (options.depth); which frame goes next is the
// scheduler's business (frame-scheduler.ts).
import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import type { Detection } from "../core/types.ts";
import {
  checkDetectSettings,
  type DetectSettings,
  type MainToWorker,
  type ProviderTried,
  type WorkerInit,
  type WorkerToMain,
} from "./worker-protocol.ts";
import type { ExecutionProvider } from "../core/providers.ts";
import type { ProviderOptionSupport } from "./provider-options.ts";
import type { Frame } from "../core/frame.ts";

/** The worker's entry: a .mjs that registers tsx, then imports worker.ts (see that file for why). */
export const WORKER_ENTRY = new URL("./worker-bootstrap.mjs", import.meta.url);

/** Budget for close(): the frame in flight plus releasing the session, within SIGTERM's 2 s. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 1500;

export type WorkerState = "ready" | "closing" | "detached" | "exited";

export interface InferTimings {
  /** ingest (frame.tIngestNs) -> the worker taking the request up: waiting + transfer */
  queueMs: number;
  /** pixels -> input tensor in the worker (zero-copy for uint8 NHWC RGB models) */
  preprocessMs: number;
  /** session.run */
  inferenceMs: number;
  /** decoder + NMS in the worker */
  decodeMs: number;
  /**
   * the worker posting its result -> this thread taking it up: the hop back, which waits
   * for the main thread to be scheduled and to finish whatever it was doing
   */
  handoffMs: number;
  /** ingest -> the result back on the main thread, boxes mapped */
  totalMs: number;
}

export interface InferResult {
  camera: string;
  seq: number;
  tIngestNs: bigint;
  /** the frame's media time (Frame.ptsNs): known for sources that deliver every frame, else null */
  ptsNs: number | null;
  /** in source-frame pixels, best score first, after NMS; boxes that lay wholly in the letterbox pad are gone */
  detections: Detection[];
  timings: InferTimings;
}

export interface InferenceWorkerOptions {
  /** Names this worker in errors and logs, e.g. "shared" or a camera id. Default: the model name. */
  name?: string;
  /** Session creation + warm-up; TensorRT engine builds can take minutes. Default 600 s. */
  startTimeoutMs?: number;
  /**
   * Requests held at once: 1 (default), or 2 so the next frame already waits in the
   * thread's queue while one runs and the session never idles on a round trip through the
   * main thread. Only for frames that cannot go stale meanwhile (see frame-scheduler.ts).
   */
  depth?: 1 | 2;
  /**
   * Aborts the start: the worker is asked to close (it ends its warm-up at the next run;
   * session creation, native code, runs to its end first) and start() rejects with the
   * signal's reason.
   */
  signal?: AbortSignal;
}

interface Pending {
  id: number;
  frame: Pick<Frame, "camera" | "seq" | "tIngestNs" | "ptsNs">;
  resolve: (r: InferResult) => void;
  reject: (e: Error) => void;
  settled: Promise<void>;
}

const NS_PER_MS = 1_000_000n;

function msBetween(a: bigint, b: bigint): number {
  // Integer part in bigint and fraction in float keeps sub-millisecond precision without overflow.
  const d = b - a;
  return Number(d / NS_PER_MS) + Number(d % NS_PER_MS) / 1e6;
}

/**
 * Class labels -> class ids for DetectSettings.classIds, with every index for a label that
 * occurs twice. Throws naming the model and listing the valid labels on a miss.
 */
export function classIdsForLabels(modelName: string, labels: readonly string[], wanted: readonly string[]): number[] {
  const ids: number[] = [];
  const unknown = wanted.filter((w) => !labels.includes(w));
  if (unknown.length > 0) {
    throw new Error(
      `model "${modelName}" has no class ${unknown.map((u) => JSON.stringify(u)).join(", ")}; valid classes: ${[...new Set(labels)].join(", ")}`,
    );
  }
  labels.forEach((l, i) => {
    if (wanted.includes(l)) ids.push(i);
  });
  return ids;
}

/** The one place where pixels leave this thread: transferred, or copied when they cannot be. */
function transferable(pixels: Uint8Array): { buffer: ArrayBuffer; copied: boolean } {
  const buf = pixels.buffer;
  // A view into a larger buffer (a GStreamer sample, Node's Buffer pool) must not detach
  // bytes that are not ours to give, and a SharedArrayBuffer cannot be transferred.
  if (buf instanceof ArrayBuffer && pixels.byteOffset === 0 && pixels.byteLength === buf.byteLength) {
    return { buffer: buf, copied: false };
  }
  return { buffer: pixels.slice().buffer, copied: true };
}

export class InferenceWorker {
  /** Execution provider running the session. */
  readonly provider: ExecutionProvider;
  /** Every provider tried, in order, with why each failed; the last one is in use. */
  readonly tried: readonly ProviderTried[];
  /** Session options accepted but not applied. */
  readonly warnings: readonly string[];
  /** Whether the loaded binding hands GPU providers their options. */
  readonly providerOptions: ProviderOptionSupport;
  /** Wall time of each warm-up inference, ms. */
  readonly warmupMs: readonly number[];
  readonly name: string;
  readonly modelName: string;
  /** Requests it holds at once (InferenceWorkerOptions.depth). */
  readonly depth: 1 | 2;

  private readonly worker: Worker;
  private readonly init: WorkerInit;
  private settings: DetectSettings;
  private nextId = 1;
  private copied = 0;
  /** requests sent and not answered, oldest (the one running) first */
  private pending: Pending[] = [];
  private stateNow: WorkerState = "ready";
  private closing: Promise<"closed" | "detached"> | undefined;
  private readonly exited: Promise<number>;
  private exitCode: number | undefined;
  /** an "error" event already told the owner this worker is done for */
  private faulted = false;
  private readonly events = new EventEmitter();

  private constructor(
    worker: Worker,
    init: WorkerInit,
    settings: DetectSettings,
    name: string,
    ready: Extract<WorkerToMain, { type: "ready" }>,
    exited: Promise<number>,
    depth: 1 | 2,
  ) {
    this.worker = worker;
    this.depth = depth;
    this.init = init;
    this.settings = settings;
    this.name = name;
    this.modelName = init.modelName;
    this.provider = ready.provider;
    this.tried = ready.tried;
    this.warnings = ready.warnings;
    this.providerOptions = ready.providerOptions;
    this.warmupMs = ready.warmupMs;
    this.exited = exited;
    worker.on("message", (msg: WorkerToMain) => this.onMessage(msg));
    worker.on("error", (err: Error) => this.fail(new Error(`inference worker ${this.name}: crashed: ${err.message}`, { cause: err })));
    void exited.then((code) => this.onExit(code));
  }

  /**
   * Starts a worker thread, creates its session (the provider chain), warms it up and
   * resolves once it is ready; rejects with the worker's own error (corrupt or mismatched
   * model, no provider, bad settings). A worker that failed ends itself; one that timed out
   * (still inside session creation or warm-up, native code) is asked to close once it is
   * done, for the reason given at terminate().
   */
  static async start(init: WorkerInit, settings: DetectSettings, opts: InferenceWorkerOptions = {}): Promise<InferenceWorker> {
    const name = opts.name ?? init.modelName;
    const where = `inference worker ${name} (model "${init.modelName}")`;
    checkDetectSettings(settings, init.entry.labels.length, `${where}: detect settings`);
    const depth = opts.depth ?? 1;
    if (depth !== 1 && depth !== 2) throw new RangeError(`${where}: depth must be 1 or 2, got ${String(depth)}`);
    const worker = new Worker(WORKER_ENTRY, { name: `perceptd-infer-${name}` });
    const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
    const timeoutMs = opts.startTimeoutMs ?? 600_000;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const cleanup: (() => void)[] = [];
    try {
      const ready = await new Promise<Extract<WorkerToMain, { type: "ready" }>>((resolve, reject) => {
        const onMessage = (msg: WorkerToMain): void => {
          if (msg.type === "ready") resolve(msg);
          else if (msg.type === "error") reject(new Error(`${where} failed to start: ${msg.message}`));
        };
        const onError = (err: Error): void => reject(new Error(`${where} failed to start: ${err.message}`, { cause: err }));
        const onExit = (code: number): void => reject(new Error(`${where} exited with code ${code} before it was ready`));
        worker.on("message", onMessage);
        worker.on("error", onError);
        void exited.then(onExit);
        cleanup.push(() => worker.off("message", onMessage), () => worker.off("error", onError));
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error(`${where} not ready after ${timeoutMs} ms (session creation or warm-up hangs)`));
        }, timeoutMs);
        const signal = opts.signal;
        if (signal !== undefined) {
          const onAbort = (): void => {
            // Like a timeout: native code may be running, so the worker is asked, not killed.
            timedOut = true;
            reject(signal.reason instanceof Error ? signal.reason : new Error(`${where}: start aborted`));
          };
          if (signal.aborted) onAbort();
          signal.addEventListener("abort", onAbort, { once: true });
          cleanup.push(() => signal.removeEventListener("abort", onAbort));
        }
        const msg: MainToWorker = { type: "init", init, settings };
        worker.postMessage(msg);
      });
      return new InferenceWorker(worker, init, settings, name, ready, exited, depth);
    } catch (err) {
      // Already reported through the rejection; an unheard "error" event would throw.
      worker.on("error", () => undefined);
      if (timedOut) {
        const close: MainToWorker = { type: "close" };
        worker.postMessage(close);
      } else {
        // It reported an error or died: no native call is running, so ending it is safe.
        await worker.terminate();
      }
      throw err;
    } finally {
      clearTimeout(timer);
      for (const c of cleanup) c();
    }
  }

  /** The worker thread ended (code), whether by close(), terminate() or a crash. */
  on(event: "exit", listener: (code: number) => void): this;
  /** The worker failed beyond one request: it crashed, reported a fatal error, or exited unasked. */
  on(event: "error", listener: (err: Error) => void): this;
  on(event: "exit" | "error", listener: ((code: number) => void) | ((err: Error) => void)): this {
    this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off(event: "exit" | "error", listener: ((code: number) => void) | ((err: Error) => void)): this {
    this.events.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Frames whose pixels had to be copied because they were a view into a larger buffer. */
  /** ONNX Runtime intra-op threads its session was asked for (0: ORT's default). */
  get intraOpThreads(): number {
    return this.init.intraOpThreads;
  }

  get copiedFrames(): number {
    return this.copied;
  }

  /** True while a request is in flight. */
  get busy(): boolean {
    return this.pending.length > 0;
  }

  /** Requests sent and not yet answered: the one running and, with depth 2, the one queued behind it. */
  get inFlight(): number {
    return this.pending.length;
  }

  /** False once close() or terminate() started, or the thread died. */
  get alive(): boolean {
    return this.stateNow === "ready";
  }

  /**
   * ready: takes frames. closing: close() under way. detached: given up while inside a
   * native call (see terminate()); the thread ends by itself once that call returns.
   * exited: the thread is gone.
   */
  get state(): WorkerState {
    return this.stateNow;
  }

  /** Resolves with the thread's exit code once it has ended, however that came about. */
  whenExited(): Promise<number> {
    return this.exited;
  }

  get currentSettings(): DetectSettings {
    return { ...this.settings, classIds: [...this.settings.classIds] };
  }

  /**
   * Runs one frame. The caller gives up frame.pixels: its buffer is transferred (detached
   * here) when the view covers all of it, copied otherwise. At most `depth` requests at a
   * time: a call beyond that rejects, since queueing more here would defeat latest-wins
   * scheduling.
   */
  infer(frame: Frame): Promise<InferResult> {
    const where = `inference worker ${this.name}`;
    if (this.stateNow !== "ready") return Promise.reject(new Error(`${where}: cannot infer, the worker is ${this.stateNow}`));
    if (this.pending.length >= this.depth) {
      const held = this.pending.map((p) => `${p.frame.camera} #${p.frame.seq}`).join(", ");
      const limit = this.depth === 1 ? "one request at a time" : `${this.depth} requests at a time`;
      return Promise.reject(new Error(`${where}: busy with ${held}; ${limit} (camera ${frame.camera} #${frame.seq} refused)`));
    }
    const { width, height } = this.init.entry.input;
    if (frame.width !== width || frame.height !== height || frame.pixels.length !== width * height * 3) {
      return Promise.reject(
        new RangeError(
          `${where}: camera ${frame.camera} frame ${frame.seq} is ${frame.width}x${frame.height} with ${frame.pixels.length} bytes; ` +
            `model "${this.modelName}" takes ${width}x${height} RGB (${width * height * 3} bytes)`,
        ),
      );
    }
    const id = this.nextId++;
    let resolve!: (r: InferResult) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<InferResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    const { buffer, copied } = transferable(frame.pixels);
    if (copied) this.copied++;
    const msg: MainToWorker = { type: "infer", id, camera: frame.camera, seq: frame.seq, pixels: buffer, width, height, transform: frame.transform };
    this.pending.push({ id, frame: { camera: frame.camera, seq: frame.seq, tIngestNs: frame.tIngestNs, ptsNs: frame.ptsNs }, resolve, reject, settled });
    this.worker.postMessage(msg, [buffer]);
    return promise;
  }

  /** New decode settings for the frames after the one in flight (SIGHUP reload). Throws RangeError on bad values. */
  setSettings(s: DetectSettings): void {
    const where = `inference worker ${this.name}: detect settings`;
    checkDetectSettings(s, this.init.entry.labels.length, where);
    if (this.stateNow !== "ready") throw new Error(`inference worker ${this.name}: cannot change settings, the worker is ${this.stateNow}`);
    this.settings = { ...s, classIds: [...s.classIds] };
    const msg: MainToWorker = { type: "settings", settings: this.currentSettings };
    this.worker.postMessage(msg);
  }

  /**
   * Lets the request in flight finish (its promise resolves as usual), then releases the
   * session and ends the thread. Bounded by timeoutMs: a request still running then is
   * failed and the worker detached (see terminate()), so shutdown never waits longer.
   * Resolves "closed" when the thread has ended, "detached" when it is still finishing a
   * native call; exiting the process before it has ended aborts it (see terminate()).
   */
  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<"closed" | "detached"> {
    if (this.closing !== undefined) return this.closing;
    if (this.stateNow === "exited") return Promise.resolve("closed");
    if (this.stateNow === "detached") return Promise.resolve("detached");
    this.stateNow = "closing";
    this.closing = (async () => {
      const deadline = performance.now() + timeoutMs;
      const inFlight = this.pending.map((p) => p.settled);
      if (inFlight.length > 0 && (await withTimeout(Promise.all(inFlight).then(() => true), timeoutMs)) === undefined) {
        this.detach(`close() timed out after ${timeoutMs} ms with the request still running`);
        return "detached";
      }
      // A crash while waiting has already ended the thread.
      if (this.exitCode !== undefined) return "closed";
      const msg: MainToWorker = { type: "close" };
      this.worker.postMessage(msg);
      if ((await withTimeout(this.exited, Math.max(0, deadline - performance.now()))) !== undefined) return "closed";
      // Still releasing the session (native): let it finish rather than kill it inside.
      this.stateNow = "detached";
      return "detached";
    })();
    return this.closing;
  }

  /**
   * For a hung worker. An idle thread is ended at once ("terminated"). A thread inside
   * session.run cannot be: Worker.terminate() there lets the native call finish into a
   * torn-down environment, and onnxruntime-node then throws a C++ exception that aborts the
   * whole process (measured with 1.30: SIGABRT, "terminate called after throwing an instance
   * of 'Napi::Error'"; other native addons fail the same way, e.g. mmomtchev/pymport#193). So a
   * busy worker is detached instead ("detached"): its request fails now, it takes no more
   * frames, and it is told to release its session and end once the call returns. A run
   * that never returns can only be ended with the process (systemd's watchdog).
   */
  async terminate(): Promise<"terminated" | "detached"> {
    if (this.stateNow === "exited") return "terminated";
    if (this.stateNow === "detached") return "detached";
    if (this.pending.length > 0 || this.stateNow === "closing") {
      this.detach("terminated while busy");
      return "detached";
    }
    this.stateNow = "closing";
    await this.worker.terminate();
    await this.exited;
    return "terminated";
  }

  private detach(why: string): void {
    this.rejectPending(new Error(`inference worker ${this.name}: ${why}`));
    if (this.stateNow === "exited") return;
    this.stateNow = "detached";
    // Queued behind the running request: the worker handles one message at a time.
    const msg: MainToWorker = { type: "close" };
    this.worker.postMessage(msg);
  }

  private onMessage(msg: WorkerToMain): void {
    switch (msg.type) {
      case "result": {
        // The answer to a request that detach() already failed.
        if (this.stateNow === "detached") return;
        // The thread answers in the order it was asked.
        const p = this.pending[0];
        if (p === undefined || p.id !== msg.id) {
          this.emitError(new Error(`inference worker ${this.name}: result for request ${msg.id}, which is not the oldest in flight`));
          return;
        }
        this.pending.shift();
        const tNow = process.hrtime.bigint();
        const { tIngestNs } = p.frame;
        p.resolve({
          camera: p.frame.camera,
          seq: p.frame.seq,
          tIngestNs,
          ptsNs: p.frame.ptsNs,
          detections: msg.detections,
          timings: {
            queueMs: msBetween(tIngestNs, msg.tStartNs),
            preprocessMs: msg.preprocessMs,
            inferenceMs: msg.inferenceMs,
            decodeMs: msg.decodeMs,
            handoffMs: msBetween(msg.tEndNs, tNow),
            totalMs: msBetween(tIngestNs, tNow),
          },
        });
        return;
      }
      case "error": {
        const err = new Error(`inference worker ${this.name}: ${msg.message}`);
        const at = msg.id === undefined ? -1 : this.pending.findIndex((q) => q.id === msg.id);
        if (at >= 0) {
          const [p] = this.pending.splice(at, 1);
          p.reject(new Error(`inference worker ${this.name}: camera ${p.frame.camera} frame ${p.frame.seq}: ${msg.message}`));
        }
        if (msg.fatal) this.fail(err);
        else if (msg.id === undefined) this.emitError(err);
        return;
      }
      case "ready":
      case "closed":
        return;
    }
  }

  private fail(err: Error): void {
    this.rejectPending(err);
    if (this.faulted) return;
    this.faulted = true;
    this.emitError(err);
  }

  private emitError(err: Error): void {
    // An EventEmitter throws on "error" without a listener; a worker fault must not take the
    // daemon down from inside a message handler, so unobserved errors are only dropped here
    // and the exit event still tells the owner the worker is gone.
    if (this.events.listenerCount("error") > 0) this.events.emit("error", err);
  }

  private rejectPending(err: Error): void {
    const all = this.pending;
    this.pending = [];
    for (const p of all) p.reject(err);
  }

  private onExit(code: number): void {
    this.exitCode = code;
    const expected = this.stateNow === "closing" || this.stateNow === "detached";
    this.stateNow = "exited";
    this.rejectPending(new Error(`inference worker ${this.name}: thread exited with code ${code} during the request`));
    if (!expected) this.fail(new Error(`inference worker ${this.name}: thread exited unexpectedly with code ${code}`));
    this.events.emit("exit", code);
  }
}

/** Resolves with the value, or undefined once ms have passed. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
