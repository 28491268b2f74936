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
//
// A lane whose cameras are all queue-ahead replays may also run `replayWorkers` workers side
// by side, each on its own frames, with the cores split between them (frame parallelism
// instead of operator parallelism). Nobody waits on such a frame in real time, so only
// throughput counts, and on a CPU two one-thread sessions get more frames through the same
// cores than one two-thread session: no barrier between the threads of every operator, and
// decode, NMS and GStreamer fill one session's gaps instead of stalling both threads (README,
// pipeline bench). Results still leave in frame order per camera: a frame finished early
// waits for the ones before it, and counts as in flight until it leaves.
import { availableParallelism } from "node:os";
import { FrameScheduler, type CameraSlotStats } from "./frame-slot.ts";
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

export interface CameraInferStats extends CameraSlotStats {
  /** frames whose result was delivered */
  completed: number;
  /** frames whose inference failed */
  errors: number;
  /** indices into pool.workers of the workers that run this camera's frames */
  workers: number[];
}

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

/** One worker; `index` is its place in pool.workers and in the health supervisor's list. */
interface Lane {
  index: number;
  name: string;
  worker: InferenceWorker;
  replacing: Promise<InferenceWorker> | undefined;
  group: LaneGroup;
  /** the infer() chains in flight, so close() and settle() can wait for them */
  running: Set<Promise<void>>;
}

/** Cameras served by the same workers: one scheduler, results released in order per camera. */
interface LaneGroup {
  cameras: string[];
  lanes: Lane[];
  scheduler: FrameScheduler<Frame>;
  completed: Map<string, number>;
  errors: Map<string, number>;
  /** per camera, its frames handed out and not yet released, oldest first */
  outstanding: Map<string, Outstanding[]>;
}

interface Outstanding {
  /** set once the frame finished: hands its result or error on */
  release: (() => void) | undefined;
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
  private readonly lanes: Lane[];
  private readonly groups: LaneGroup[];
  private readonly groupOf: Map<string, LaneGroup>;
  private readonly opts: InferencePoolOptions;
  /** opts.init with the thread split applied: what every worker, replacements too, starts with */
  private readonly workerInit: WorkerInit;
  private settings: DetectSettings;
  private closing: Promise<void> | undefined;
  /** whenSlotFree() callers, by camera */
  private readonly slotWaiters = new Map<string, (() => void)[]>();

  private constructor(layout: WorkerLayout, groups: LaneGroup[], opts: InferencePoolOptions, workerInit: WorkerInit) {
    this.layout = layout;
    this.groups = groups;
    this.lanes = groups.flatMap((g) => g.lanes);
    this.groupOf = new Map(groups.flatMap((g) => g.cameras.map((c) => [c, g] as const)));
    this.opts = opts;
    this.workerInit = workerInit;
    this.settings = opts.settings;
    for (const lane of this.lanes) this.watch(lane, lane.worker);
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

    const cameraGroups = layout === "shared" ? [cameras] : cameras.map((c) => [c]);
    const replayOnly = (g: readonly string[]): boolean => g.every((c) => ahead.has(c));
    const sizeOf = (g: readonly string[]): number => (replayOnly(g) ? replayWorkers : 1);
    const total = cameraGroups.reduce((n, g) => n + sizeOf(g), 0);
    const init: WorkerInit = { ...opts.init, intraOpThreads: threadsPerSession(opts.init.intraOpThreads, total) };
    const specs = cameraGroups.flatMap((g, group) =>
      Array.from({ length: sizeOf(g) }, (_, k) => {
        const base = layout === "shared" ? "shared" : g[0];
        return { group, name: sizeOf(g) > 1 ? `${base}-${k + 1}` : base, depth: g.some((c) => ahead.has(c)) ? (2 as const) : (1 as const) };
      }),
    );
    const started = await Promise.allSettled(specs.map((w) => InferenceWorker.start(init, opts.settings, { ...opts.workerOptions, name: w.name, depth: w.depth })));
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed !== undefined) {
      await Promise.all(started.map((s) => (s.status === "fulfilled" ? s.value.close() : undefined)));
      throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    }
    const groups: LaneGroup[] = cameraGroups.map((g) => ({
      cameras: g,
      lanes: [],
      // Two per worker: the one running and the one queued behind it.
      scheduler: new FrameScheduler<Frame>(g, { maxInFlight: new Map(g.filter((c) => ahead.has(c)).map((c) => [c, 2 * sizeOf(g)])) }),
      completed: new Map(g.map((c) => [c, 0])),
      errors: new Map(g.map((c) => [c, 0])),
      outstanding: new Map(g.map((c) => [c, []])),
    }));
    specs.forEach((w, index) => {
      const s = started[index];
      if (s.status !== "fulfilled") throw new Error("unreachable: a failed start was handled above");
      const group = groups[w.group];
      group.lanes.push({ index, name: s.value.name, worker: s.value, replacing: undefined, group, running: new Set() });
    });
    return new InferencePool(layout, groups, opts, init);
  }

  /**
   * In lane order: one for "shared", one per camera (in `cameras` order) otherwise; a
   * replay-only lane contributes its replayWorkers in a row ("shared-1", "shared-2", ...).
   */
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
    const group = this.groupOf.get(frame.camera);
    if (group === undefined) {
      throw new Error(`InferencePool: frame from unknown camera ${JSON.stringify(frame.camera)}; known cameras: ${[...this.groupOf.keys()].join(", ")}`);
    }
    if (this.closing !== undefined) {
      this.drop(frame, "closed");
      return;
    }
    const { dropped } = group.scheduler.offer(frame);
    if (dropped !== undefined) this.drop(dropped, "replaced");
    this.pump(group);
  }

  /**
   * Backpressure for sources that can wait (CameraSourceOptions.whenConsumerReady): null
   * when `camera`'s waiting slot is empty, so a frame submitted now replaces nothing; else a
   * promise that resolves once its worker has taken the waiting frame (or the pool closes).
   * Keeping one frame waiting behind the one in flight means the worker never idles on a
   * decode.
   */
  whenSlotFree(camera: string): Promise<void> | null {
    const group = this.groupOf.get(camera);
    if (group === undefined || this.closing !== undefined || !group.scheduler.isWaiting(camera)) return null;
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
        this.pump(lane.group);
        return fresh;
      } finally {
        lane.replacing = undefined;
      }
    })();
    return lane.replacing;
  }

  stats(): InferencePoolStats {
    const cameras: CameraInferStats[] = [];
    for (const g of this.groups) {
      for (const s of g.scheduler.stats()) {
        cameras.push({ ...s, completed: g.completed.get(s.camera) ?? 0, errors: g.errors.get(s.camera) ?? 0, workers: g.lanes.map((l) => l.index) });
      }
    }
    return {
      layout: this.layout,
      cameras,
      workers: this.lanes.map((l) => ({
        name: l.worker.name,
        cameras: l.group.scheduler.cameras,
        provider: l.worker.provider,
        state: l.worker.state,
        busy: l.worker.busy,
        copiedFrames: l.worker.copiedFrames,
        intraOpThreads: l.worker.intraOpThreads,
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
      for (const g of this.groups) for (const f of g.scheduler.drain()) this.drop(f, "closed");
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

  /**
   * Hands the group's workers what they may take now: a frame to each idle one first, so a
   * replay's frames spread over its sessions, then a queued-ahead one behind a running frame.
   */
  private pump(group: LaneGroup): void {
    for (const ahead of [false, true]) {
      for (const lane of group.lanes) {
        const w = lane.worker;
        while (w.alive && this.closing === undefined && (ahead ? w.inFlight < w.depth : w.inFlight === 0)) {
          const frame = group.scheduler.next(w.inFlight > 0);
          // Every worker of a group sees the same scheduler: nothing for this one is nothing for the next.
          if (frame === undefined) return;
          this.dispatch(lane, frame);
        }
      }
    }
  }

  private dispatch(lane: Lane, frame: Frame): void {
    this.releaseSlotWaiters(frame.camera);
    const { group } = lane;
    const entry: Outstanding = { release: undefined };
    group.outstanding.get(frame.camera)?.push(entry);
    const chain: Promise<void> = lane.worker.infer(frame).then(
      (result) => {
        entry.release = () => {
          group.completed.set(frame.camera, (group.completed.get(frame.camera) ?? 0) + 1);
          this.opts.onResult?.(result, lane.index);
        };
        this.finish(lane, frame.camera, chain);
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        // A dead worker reports itself once through its "error" event; the frame's own failure is not news.
        const report = lane.worker.alive ? { error, fatal: false, worker: lane.index, camera: frame.camera, seq: frame.seq } : undefined;
        entry.release = () => {
          group.errors.set(frame.camera, (group.errors.get(frame.camera) ?? 0) + 1);
          if (report !== undefined) this.report(report);
        };
        this.finish(lane, frame.camera, chain);
      },
    );
    lane.running.add(chain);
  }

  /**
   * A frame of `camera` finished on `lane`. Releases the camera's finished frames that no
   * earlier frame holds back (in order), frees their slots and hands the workers their next
   * frames before calling back: the workers then run while results are handled here (hazard
   * stage, bus), and a throwing callback cannot wedge the lane.
   */
  private finish(lane: Lane, camera: string, chain: Promise<void>): void {
    const { group } = lane;
    lane.running.delete(chain);
    const queue = group.outstanding.get(camera) ?? [];
    const ready: (() => void)[] = [];
    while (queue.length > 0 && queue[0].release !== undefined) {
      ready.push(queue[0].release);
      queue.shift();
      group.scheduler.done(camera);
    }
    this.pump(group);
    let failure: { error: unknown } | undefined;
    for (const release of ready) {
      try {
        release();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure !== undefined) throw failure.error;
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
