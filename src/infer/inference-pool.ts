// Inference for all cameras: the frame scheduler (frame-scheduler.ts) in front of one or more
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
// Which frame runs on which worker, latest-wins for live cameras and backpressure with
// frames queued ahead for replays (`queueAhead`), is the scheduler's (frame-scheduler.ts);
// this file starts, replaces and closes the workers it schedules onto.
//
// A lane whose cameras are all queue-ahead replays may also run `replayWorkers` workers side
// by side, each on its own frames, with the cores split between them (frame parallelism
// instead of operator parallelism). Nobody waits on such a frame in real time, so only
// throughput counts, and on a CPU two one-thread sessions get more frames through the same
// cores than one two-thread session: no barrier between the threads of every operator, and
// decode, NMS and GStreamer fill one session's gaps instead of stalling both threads (README,
// pipeline bench).
import { availableParallelism } from "node:os";
import { FrameScheduler, backpressure, latestWins, type CameraSlotStats, type DropReason, type SchedulerError, type SchedulingPolicy } from "./frame-scheduler.ts";
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  InferenceWorker,
  type InferResult,
  type InferenceWorkerOptions,
  type WorkerState,
} from "./inference-worker.ts";
import { MAX_REPLAY_WORKERS, checkDetectSettings, type DetectSettings, type WorkerInit } from "./worker-protocol.ts";
import type { ExecutionProvider } from "../core/providers.ts";
import type { Frame } from "../core/frame.ts";

export type WorkerLayout = "shared" | "per-camera";

export type { DropReason };

export type InferencePoolError = SchedulerError;

export interface InferencePoolOptions {
  init: WorkerInit;
  settings: DetectSettings;
  /** every camera id the pool will see; fixes round-robin order and, per-camera, the workers */
  cameras: readonly string[];
  /** default "shared"; see the comment at the top of this file */
  workers?: WorkerLayout;
  /** `worker`: index into pool.workers of the worker that ran the frame */
  onResult?: (result: InferResult, worker: number) => void;
  onDrop?: (frame: Frame, reason: DropReason) => void;
  onError?: (e: InferencePoolError) => void;
  /** cameras whose next frame may wait in the worker's queue (see the top of this file); default none */
  queueAhead?: readonly string[];
  /** workers side by side for a lane that serves only queueAhead cameras (see the top of this file); default 1 */
  replayWorkers?: number;
  /** passed to each worker's start() */
  workerOptions?: Omit<InferenceWorkerOptions, "name" | "depth">;
}

export type CameraInferStats = CameraSlotStats;

export interface WorkerStats {
  name: string;
  cameras: string[];
  provider: ExecutionProvider;
  state: WorkerState;
  busy: boolean;
  /** frames copied instead of transferred (their pixels were a view into a larger buffer) */
  copiedFrames: number;
  /** ONNX Runtime intra-op threads of its session (0: ORT's default) */
  intraOpThreads: number;
}

export interface InferencePoolStats {
  layout: WorkerLayout;
  cameras: CameraInferStats[];
  workers: WorkerStats[];
}

/** What the worker at one index of pool.workers starts with, first and on replacement, and the replacement under way. */
interface WorkerSpec {
  name: string;
  depth: 1 | 2;
  replacing: Promise<InferenceWorker> | undefined;
}

/**
 * inference.replayWorkers as configured (0: automatic) to a count. Automatic is two where
 * inference runs on a CPU with two cores or more: that is where the gain was measured
 * (README, pipeline bench), and more sessions would only split the cores finer at the cost
 * of memory. Where the chain names a GPU provider it is one: a second TensorRT session
 * builds or loads its own engine, and nothing here measured what it buys.
 */
export function resolveReplayWorkers(configured: number, providers: readonly ExecutionProvider[], cores = availableParallelism()): number {
  if (configured > 0) return configured;
  return providers.some((p) => p !== "cpu") ? 1 : Math.min(2, cores);
}

/**
 * Intra-op threads for each of `sessions` sessions on one CPU: as configured, except that
 * automatic (0) splits the cores between them rather than giving each all of them.
 */
export function threadsPerSession(configured: number, sessions: number, cores = availableParallelism()): number {
  return configured !== 0 || sessions <= 1 ? configured : Math.max(1, Math.floor(cores / sessions));
}

export class InferencePool {
  readonly layout: WorkerLayout;
  /** by worker index, as in pool.workers */
  private readonly specs: WorkerSpec[];
  private readonly scheduler: FrameScheduler<Frame, InferResult, InferenceWorker>;
  private readonly opts: InferencePoolOptions;
  /** opts.init with the thread split applied: what every worker, replacements too, starts with */
  private readonly workerInit: WorkerInit;
  private settings: DetectSettings;
  private closing: Promise<void> | undefined;

  private constructor(layout: WorkerLayout, specs: WorkerSpec[], scheduler: FrameScheduler<Frame, InferResult, InferenceWorker>, opts: InferencePoolOptions, workerInit: WorkerInit) {
    this.layout = layout;
    this.specs = specs;
    this.scheduler = scheduler;
    this.opts = opts;
    this.workerInit = workerInit;
    this.settings = opts.settings;
    scheduler.workers.forEach((w, index) => this.watch(index, w));
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

    const replayWorkers = opts.replayWorkers ?? 1;
    if (!(Number.isInteger(replayWorkers) && replayWorkers >= 1 && replayWorkers <= MAX_REPLAY_WORKERS)) {
      throw new RangeError(`InferencePool: replayWorkers must be an integer in [1, ${MAX_REPLAY_WORKERS}], got ${String(replayWorkers)}`);
    }

    // Replays that wait for the consumer lose nothing by queueing; a live frame would go stale.
    const policyOf = (c: string): SchedulingPolicy => (ahead.has(c) ? backpressure : latestWins);
    const laneCameras = layout === "shared" ? [cameras] : cameras.map((c) => [c]);
    const sizeOf = (g: readonly string[]): number => (g.every((c) => policyOf(c).queueAhead) ? replayWorkers : 1);
    const total = laneCameras.reduce((n, g) => n + sizeOf(g), 0);
    const init: WorkerInit = { ...opts.init, intraOpThreads: threadsPerSession(opts.init.intraOpThreads, total) };
    const specs: (WorkerSpec & { lane: number })[] = laneCameras.flatMap((g, lane) =>
      Array.from({ length: sizeOf(g) }, (_, k) => {
        const base = layout === "shared" ? "shared" : g[0];
        const depth = g.some((c) => policyOf(c).queueAhead) ? (2 as const) : (1 as const);
        return { lane, name: sizeOf(g) > 1 ? `${base}-${k + 1}` : base, depth, replacing: undefined };
      }),
    );
    const started = await Promise.allSettled(specs.map((w) => InferenceWorker.start(init, opts.settings, { ...opts.workerOptions, name: w.name, depth: w.depth })));
    const workers: InferenceWorker[] = [];
    for (const s of started) {
      if (s.status === "rejected") {
        await Promise.all(started.map((t) => (t.status === "fulfilled" ? t.value.close() : undefined)));
        throw s.reason instanceof Error ? s.reason : new Error(String(s.reason));
      }
      workers.push(s.value);
    }
    const scheduler = new FrameScheduler<Frame, InferResult, InferenceWorker>({
      lanes: laneCameras.map((g, lane) => ({ cameras: g, workers: workers.filter((_, i) => specs[i].lane === lane) })),
      policies: new Map(cameras.map((c) => [c, policyOf(c)])),
      onResult: (result, worker) => opts.onResult?.(result, worker),
      onDrop: (frame, reason) => opts.onDrop?.(frame, reason),
      onError: (e) => opts.onError?.(e),
    });
    return new InferencePool(layout, specs, scheduler, opts, init);
  }

  /**
   * In lane order: one for "shared", one per camera (in `cameras` order) otherwise; a
   * replay-only lane contributes its replayWorkers in a row ("shared-1", "shared-2", ...).
   */
  get workers(): readonly InferenceWorker[] {
    return this.scheduler.workers;
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
    this.scheduler.submit(frame);
  }

  /**
   * Backpressure for sources that can wait (CameraSourceOptions.whenConsumerReady): null
   * when `camera`'s waiting slot is empty, so a frame submitted now replaces nothing; else a
   * promise that resolves once its worker has taken the waiting frame (or the pool closes).
   * Keeping one frame waiting behind the one in flight means the worker never idles on a
   * decode.
   */
  whenSlotFree(camera: string): Promise<void> | null {
    return this.scheduler.whenSlotFree(camera);
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
   * closes meanwhile. Concurrent calls for one worker share one replacement.
   */
  replaceWorker(index: number): Promise<InferenceWorker> {
    const old = this.scheduler.worker(index);
    if (old === undefined) {
      return Promise.reject(new RangeError(`InferencePool.replaceWorker: index must be an integer in [0, ${this.specs.length - 1}], got ${String(index)}`));
    }
    const spec = this.specs[index];
    if (this.closing !== undefined) return Promise.reject(new Error(`InferencePool: closing, not replacing worker ${spec.name}`));
    spec.replacing ??= (async () => {
      try {
        await old.terminate();
        await Promise.all(this.scheduler.running(index));
        const fresh = await InferenceWorker.start(this.workerInit, this.settings, { ...this.opts.workerOptions, name: spec.name, depth: spec.depth });
        if (this.closing !== undefined) {
          await fresh.close();
          throw new Error(`InferencePool: closed while replacing worker ${spec.name}`);
        }
        this.watch(index, fresh);
        this.scheduler.setWorker(index, fresh);
        return fresh;
      } finally {
        spec.replacing = undefined;
      }
    })();
    return spec.replacing;
  }

  stats(): InferencePoolStats {
    return {
      layout: this.layout,
      cameras: this.scheduler.stats(),
      workers: this.workers.map((w, index) => ({
        name: w.name,
        cameras: this.scheduler.camerasOf(index),
        provider: w.provider,
        state: w.state,
        busy: w.busy,
        copiedFrames: w.copiedFrames,
        intraOpThreads: w.intraOpThreads,
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
      const running = this.scheduler.running();
      const left = deadline - performance.now();
      if (running.length === 0 || left <= 0) return;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((r) => (timer = setTimeout(r, left)));
      // A finished frame's handler dispatches the next waiting one synchronously, so looking
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
      this.scheduler.close();
      // A replacement under way ends on its own: it sees `closing` and closes what it started.
      await Promise.all(this.workers.map((w) => w.close(timeoutMs)));
      // The result handlers run before a worker's close() resumes; this only waits for their finally.
      await Promise.all(this.scheduler.running());
    })();
    return this.closing;
  }

  private watch(index: number, worker: InferenceWorker): void {
    worker.on("error", (error) => {
      // A replaced worker's last words are about a thread the lane no longer uses.
      if (this.scheduler.worker(index) === worker) this.opts.onError?.({ error, fatal: true, worker: index });
    });
  }
}
