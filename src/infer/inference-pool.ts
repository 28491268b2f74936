// Inference for all cameras: latest-wins scheduling (frame-slot.ts) in front of one or more
// inference workers (inference-worker.ts). submit() never blocks and never queues more
// than one waiting frame per camera; results, drops and errors come back by callback.
//
// Worker layout (config inference.workers):
// - "shared" (the default): one worker, one session, cameras take turns. On a CPU the
//   session's intra-op threads already use every core for one frame; a second session would
//   only split the same cores, add a second copy of the weights and arenas, and make both
//   slower (oversubscription). Latency per frame is lowest with one session at full width.
// - "per-camera": one worker and session per camera. Pays off where inference does not run
//   on the CPU cores (TensorRT/CUDA on a Jetson): one camera's decode, NMS and transfers
//   then overlap another's GPU run, and a camera's frames never wait behind another's.
//   On CPU each session gets cores / cameras intra-op threads unless set explicitly.
// Measured on a 2-core x86 VM, nanodet-u8, two cameras at 30 fps: shared gave 40 results/s
// at 43 ms median ingest -> result; per-camera (1 thread each) 45/s at 60 ms; per-camera
// with 2 threads each 30/s at 84 ms (the sessions' spinning threads fight for the cores).
// Shared wins on latency, which is what the hazard logic downstream needs.
//
// Cameras in `queueAhead` (sources that wait for the consumer: an unpaced replay) may have
// their next frame queued in the worker while the current one runs (frame-slot.ts): the
// session then goes from frame to frame without waiting on the main thread, which costs a
// round trip and the result handling per frame otherwise. A live camera never does: its
// frame would age in that queue where a newer one could have replaced it.
import { availableParallelism } from "node:os";
import { FrameScheduler, type CameraSlotStats } from "./frame-slot.ts";
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  InferenceWorker,
  type InferResult,
  type InferenceWorkerOptions,
  type WorkerState,
} from "./inference-worker.ts";
import { checkDetectSettings, type DetectSettings, type WorkerInit } from "./worker-protocol.ts";
import type { ExecutionProvider } from "../config/schema.ts";
import type { Frame } from "../ingest/frame.ts";

export type WorkerLayout = "shared" | "per-camera";

/** Why a frame never ran: replaced by a newer one while waiting, or the pool shut down. */
export type DropReason = "replaced" | "closed";

export interface InferencePoolError {
  error: Error;
  /** the worker can no longer run frames (crashed, terminated, fatal error); its cameras stall */
  fatal: boolean;
  /** index into pool.workers */
  worker: number;
  /** the frame that failed, when one did */
  camera?: string;
  seq?: number;
}

export interface InferencePoolOptions {
  init: WorkerInit;
  settings: DetectSettings;
  /** every camera id the pool will see; fixes round-robin order and, per-camera, the workers */
  cameras: readonly string[];
  /** default "shared"; see the comment at the top of this file */
  workers?: WorkerLayout;
  onResult?: (result: InferResult) => void;
  onDrop?: (frame: Frame, reason: DropReason) => void;
  onError?: (e: InferencePoolError) => void;
  /** cameras whose next frame may wait in the worker's queue (see the top of this file); default none */
  queueAhead?: readonly string[];
  /** passed to each worker's start() */
  workerOptions?: Omit<InferenceWorkerOptions, "name" | "depth">;
}

export interface CameraInferStats extends CameraSlotStats {
  /** frames whose result was delivered */
  completed: number;
  /** frames whose inference failed */
  errors: number;
  worker: number;
}

export interface WorkerStats {
  name: string;
  cameras: string[];
  provider: ExecutionProvider;
  state: WorkerState;
  busy: boolean;
  /** frames copied instead of transferred (their pixels were a view into a larger buffer) */
  copiedFrames: number;
}

export interface InferencePoolStats {
  layout: WorkerLayout;
  cameras: CameraInferStats[];
  workers: WorkerStats[];
}

interface Lane {
  index: number;
  name: string;
  worker: InferenceWorker;
  replacing: Promise<InferenceWorker> | undefined;
  scheduler: FrameScheduler<Frame>;
  completed: Map<string, number>;
  errors: Map<string, number>;
  /** the infer() chains in flight, so close() and settle() can wait for them */
  running: Set<Promise<void>>;
}

export class InferencePool {
  readonly layout: WorkerLayout;
  private readonly lanes: Lane[];
  private readonly laneOf: Map<string, Lane>;
  private readonly opts: InferencePoolOptions;
  /** opts.init with the thread split applied: what every worker, replacements too, starts with */
  private readonly workerInit: WorkerInit;
  private settings: DetectSettings;
  private closing: Promise<void> | undefined;
  /** whenSlotFree() callers, by camera */
  private readonly slotWaiters = new Map<string, (() => void)[]>();

  private constructor(layout: WorkerLayout, lanes: Lane[], laneOf: Map<string, Lane>, opts: InferencePoolOptions, workerInit: WorkerInit) {
    this.layout = layout;
    this.lanes = lanes;
    this.laneOf = laneOf;
    this.opts = opts;
    this.workerInit = workerInit;
    this.settings = opts.settings;
    for (const lane of lanes) this.watch(lane, lane.worker);
  }

  /** Starts the workers (in parallel) and resolves once all are warm; if one fails, the others are closed and start rejects with its error. */
  static async start(opts: InferencePoolOptions): Promise<InferencePool> {
    const layout = opts.workers ?? "shared";
    if (layout !== "shared" && layout !== "per-camera") {
      throw new RangeError(`InferencePool: workers must be "shared" or "per-camera", got ${JSON.stringify(layout)}`);
    }
    const cameras = [...opts.cameras];
    if (cameras.length === 0) throw new RangeError("InferencePool: cameras is empty; give at least one camera id");
    const dup = cameras.find((c, i) => cameras.indexOf(c) !== i);
    if (dup !== undefined) throw new RangeError(`InferencePool: camera ${JSON.stringify(dup)} is listed twice`);
    const ahead = new Set(opts.queueAhead ?? []);
    const stranger = [...ahead].find((c) => !cameras.includes(c));
    if (stranger !== undefined) throw new RangeError(`InferencePool: queueAhead names camera ${JSON.stringify(stranger)}, which is not in cameras (${cameras.join(", ")})`);
    checkDetectSettings(opts.settings, opts.init.entry.labels.length, `InferencePool (model "${opts.init.modelName}"): detect settings`);

    const groups = layout === "shared" ? [cameras] : cameras.map((c) => [c]);
    const depthOf = (g: readonly string[]): 1 | 2 => (g.some((c) => ahead.has(c)) ? 2 : 1);
    const init: WorkerInit =
      layout === "per-camera" && opts.init.intraOpThreads === 0
        ? { ...opts.init, intraOpThreads: Math.max(1, Math.floor(availableParallelism() / groups.length)) }
        : opts.init;
    const started = await Promise.allSettled(
      groups.map((g) =>
        InferenceWorker.start(init, opts.settings, { ...opts.workerOptions, name: layout === "shared" ? "shared" : g[0], depth: depthOf(g) }),
      ),
    );
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed !== undefined) {
      await Promise.all(started.map((s) => (s.status === "fulfilled" ? s.value.close() : undefined)));
      throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    }
    const lanes: Lane[] = [];
    const laneOf = new Map<string, Lane>();
    groups.forEach((g, index) => {
      const s = started[index];
      if (s.status !== "fulfilled") throw new Error("unreachable: a failed start was handled above");
      const lane: Lane = {
        index,
        name: s.value.name,
        worker: s.value,
        replacing: undefined,
        scheduler: new FrameScheduler<Frame>(g, { maxInFlight: new Map(g.filter((c) => ahead.has(c)).map((c) => [c, 2])) }),
        completed: new Map(g.map((c) => [c, 0])),
        errors: new Map(g.map((c) => [c, 0])),
        running: new Set(),
      };
      lanes.push(lane);
      for (const c of g) laneOf.set(c, lane);
    });
    return new InferencePool(layout, lanes, laneOf, opts, init);
  }

  /** In lane order: one for "shared", one per camera (in `cameras` order) otherwise. */
  get workers(): readonly InferenceWorker[] {
    return this.lanes.map((l) => l.worker);
  }

  /** Execution provider of the first worker (all use the same chain, so normally the same). */
  get provider(): ExecutionProvider {
    return this.workers[0].provider;
  }

  /**
   * Hands a frame over; returns at once. The frame waits in its camera's slot until its
   * worker is free, unless a newer frame of the same camera replaces it first (onDrop,
   * "replaced"). After close() started, frames are dropped ("closed"). The caller gives up
   * frame.pixels (transferred to the worker). Throws for a camera not given to start().
   */
  submit(frame: Frame): void {
    const lane = this.laneOf.get(frame.camera);
    if (lane === undefined) {
      throw new Error(`InferencePool: frame from unknown camera ${JSON.stringify(frame.camera)}; known cameras: ${[...this.laneOf.keys()].join(", ")}`);
    }
    if (this.closing !== undefined) {
      this.drop(frame, "closed");
      return;
    }
    const { dropped } = lane.scheduler.offer(frame);
    if (dropped !== undefined) this.drop(dropped, "replaced");
    this.pump(lane);
  }

  /**
   * Backpressure for sources that can wait (CameraSourceOptions.whenConsumerReady): null
   * when `camera`'s waiting slot is empty, so a frame submitted now replaces nothing; else a
   * promise that resolves once its worker has taken the waiting frame (or the pool closes).
   * Keeping one frame waiting behind the one in flight means the worker never idles on a
   * decode.
   */
  whenSlotFree(camera: string): Promise<void> | null {
    const lane = this.laneOf.get(camera);
    if (lane === undefined || this.closing !== undefined || !lane.scheduler.isWaiting(camera)) return null;
    return new Promise((resolve) => {
      const list = this.slotWaiters.get(camera);
      if (list === undefined) this.slotWaiters.set(camera, [resolve]);
      else list.push(resolve);
    });
  }

  /** New decode settings for every worker, from the next frame each runs (SIGHUP). Throws RangeError on bad values, before changing any worker. */
  setSettings(s: DetectSettings): void {
    checkDetectSettings(s, this.opts.init.entry.labels.length, `InferencePool (model "${this.opts.init.modelName}"): detect settings`);
    this.settings = { ...s, classIds: [...s.classIds] };
    for (const w of this.workers) if (w.alive) w.setSettings(s);
  }

  /**
   * Replaces worker `index` (hung: the health check saw no result for too long; or dead)
   * with a fresh one on the same model and the current settings. The old one is
   * terminated, or detached when it is inside a run (see InferenceWorker.terminate); its
   * frame in flight fails (counted, not reported: the caller knows). The new one starts and
   * warms up while the lane's cameras keep latest-wins waiting frames, which it then resumes. Rejects with the start error, leaving the lane down, or when the pool
   * closes meanwhile. Concurrent calls for one lane share one replacement.
   */
  replaceWorker(index: number): Promise<InferenceWorker> {
    const lane = this.lanes[index];
    if (lane === undefined) {
      return Promise.reject(new RangeError(`InferencePool.replaceWorker: index must be an integer in [0, ${this.lanes.length - 1}], got ${String(index)}`));
    }
    if (this.closing !== undefined) return Promise.reject(new Error(`InferencePool: closing, not replacing worker ${lane.name}`));
    lane.replacing ??= (async () => {
      try {
        await lane.worker.terminate();
        await Promise.all(lane.running);
        const fresh = await InferenceWorker.start(this.workerInit, this.settings, { ...this.opts.workerOptions, name: lane.name, depth: lane.worker.depth });
        if (this.closing !== undefined) {
          await fresh.close();
          throw new Error(`InferencePool: closed while replacing worker ${lane.name}`);
        }
        lane.worker = fresh;
        this.watch(lane, fresh);
        this.pump(lane);
        return fresh;
      } finally {
        lane.replacing = undefined;
      }
    })();
    return lane.replacing;
  }

  stats(): InferencePoolStats {
    const cameras: CameraInferStats[] = [];
    for (const lane of this.lanes) {
      for (const s of lane.scheduler.stats()) {
        cameras.push({ ...s, completed: lane.completed.get(s.camera) ?? 0, errors: lane.errors.get(s.camera) ?? 0, worker: lane.index });
      }
    }
    return {
      layout: this.layout,
      cameras,
      workers: this.lanes.map((l) => ({
        name: l.worker.name,
        cameras: l.scheduler.cameras,
        provider: l.worker.provider,
        state: l.worker.state,
        busy: l.worker.busy,
        copiedFrames: l.worker.copiedFrames,
      })),
    };
  }

  /**
   * Resolves once no frame waits or runs in any lane, or after timeoutMs: the end of a
   * replay finishes its last frames before close() would drop the waiting ones. A lane
   * whose worker is down (nothing running) is not waited for.
   */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const running = this.lanes.flatMap((l) => [...l.running]);
      const left = deadline - performance.now();
      if (running.length === 0 || left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (timer = setTimeout(r, left)));
      // A finished frame's handler pumps the next waiting one synchronously, so looking
      // again right after any lane settles sees the whole pool's state.
      await Promise.race([Promise.race(running), timeout]);
      clearTimeout(timer);
    }
  }

  /**
   * Shutdown: waiting frames are dropped ("closed"), each worker finishes the frame in
   * flight (its result is delivered), then releases its session and ends. Bounded by
   * timeoutMs, workers in parallel; a worker still running a frame then is detached (see
   * InferenceWorker.terminate) and its thread ends when the run returns: the process must
   * not exit before that (whenExited()), or it aborts. A replacement still starting is
   * closed when its start completes.
   */
  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = (async () => {
      for (const lane of this.lanes) for (const f of lane.scheduler.drain()) this.drop(f, "closed");
      this.releaseSlotWaiters();
      // A replacement under way ends on its own: it sees `closing` and closes what it started.
      await Promise.all(this.lanes.map((lane) => lane.worker.close(timeoutMs)));
      // The result handlers run before a worker's close() resumes; this only waits for their finally.
      await Promise.all(this.lanes.flatMap((lane) => [...lane.running]));
    })();
    return this.closing;
  }

  private watch(lane: Lane, worker: InferenceWorker): void {
    worker.on("error", (error) => {
      // A replaced worker's last words are about a thread the lane no longer uses.
      if (lane.worker === worker) this.report({ error, fatal: true, worker: lane.index });
    });
  }

  /** Hands the lane's worker what it may take now: a frame when idle, a queued-ahead one behind a running frame. */
  private pump(lane: Lane): void {
    while (lane.worker.alive && this.closing === undefined && lane.worker.inFlight < lane.worker.depth) {
      const frame = lane.scheduler.next(lane.worker.inFlight > 0);
      if (frame === undefined) return;
      this.dispatch(lane, frame);
    }
  }

  private dispatch(lane: Lane, frame: Frame): void {
    this.releaseSlotWaiters(frame.camera);
    const chain: Promise<void> = lane.worker.infer(frame).then(
      (result) => {
        lane.completed.set(frame.camera, (lane.completed.get(frame.camera) ?? 0) + 1);
        this.finish(lane, frame, chain, () => this.opts.onResult?.(result));
      },
      (err: unknown) => {
        lane.errors.set(frame.camera, (lane.errors.get(frame.camera) ?? 0) + 1);
        const error = err instanceof Error ? err : new Error(String(err));
        // A dead worker reports itself once through its "error" event; the frame's own failure is not news.
        const report = lane.worker.alive ? { error, fatal: false, worker: lane.index, camera: frame.camera, seq: frame.seq } : undefined;
        this.finish(lane, frame, chain, () => (report === undefined ? undefined : this.report(report)));
      },
    );
    lane.running.add(chain);
  }

  /**
   * Frees the slot and hands the worker its next frame before calling back: the worker then
   * runs while the result is handled here (hazard stage, bus), and a throwing callback
   * cannot wedge the lane.
   */
  private finish(lane: Lane, frame: Frame, chain: Promise<void>, callback: () => void): void {
    lane.scheduler.done(frame.camera);
    lane.running.delete(chain);
    this.pump(lane);
    callback();
  }

  private releaseSlotWaiters(camera?: string): void {
    const cameras = camera === undefined ? [...this.slotWaiters.keys()] : [camera];
    for (const c of cameras) {
      const list = this.slotWaiters.get(c);
      this.slotWaiters.delete(c);
      for (const resolve of list ?? []) resolve();
    }
  }

  private drop(frame: Frame, reason: DropReason): void {
    this.opts.onDrop?.(frame, reason);
  }

  private report(e: InferencePoolError): void {
    this.opts.onError?.(e);
  }
}
