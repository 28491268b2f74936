// Which frame runs where, for every camera and worker of the pool, in one place. A frame
// goes: submit() puts it in its camera's waiting slot (a newer frame replaces an older one
// there) -> dispatch() hands waiting frames to the workers of the camera's lane that can
// take one -> finish() releases results in frame order, frees the slot and dispatches
// again. No I/O of its own and no timers: the workers come in through a small interface,
// so the policy can be tested without a model.
//
// Latest-wins is the default: each camera has one waiting slot and one frame in flight.
// Latency stays bounded under overload (a result is never older than two inference times)
// at the cost of throughput, which is the right trade for perception: a stale pedestrian
// box is worse than a skipped one.
//
// Backpressure is for sources that wait for the consumer (an unpaced replay, through
// whenSlotFree()): their next frames may be queued in the workers while the current ones
// run. Nothing newer could have replaced them there, so latest-wins loses nothing, and a
// worker goes from one frame to the next without a round trip through the main thread.
// A live camera never does: its frame would age in that queue where a newer one could have
// replaced it. And a lane that also serves a live camera queues nothing ahead at all: the
// live camera takes only an idle worker, and a replay that always has its next frame queued
// keeps the worker from ever being idle, so the live camera would wait for the whole replay.
// There the cameras take turns frame by frame like any others.
//
// Cameras of one lane take turns (round-robin over the cameras that have a waiting frame),
// so a fast camera cannot starve a slow one. A lane with several workers (replay workers)
// gives an idle worker a frame before queueing one behind a busy worker, so the frames
// spread over the sessions; results still leave in frame order per camera: a frame
// finished early waits for the ones before it, and counts as in flight until it leaves.

/** What a camera's frames may do on their way to a worker; one per source kind. */
export interface SchedulingPolicy {
  readonly name: "latestWins" | "backpressure";
  /** whether a frame may be handed to a busy worker, to wait in its queue behind the running one */
  readonly queueAhead: boolean;
  /** frames a camera may have handed out and not yet released, on a lane of `workers` workers */
  maxInFlight(workers: number): number;
}

/** Live sources: one frame in flight, the newest waiting; see the top of this file. */
export const latestWins: SchedulingPolicy = { name: "latestWins", queueAhead: false, maxInFlight: () => 1 };

/** Sources that wait for the consumer: two per worker, the one running and the one queued behind it. */
export const backpressure: SchedulingPolicy = { name: "backpressure", queueAhead: true, maxInFlight: (workers) => 2 * workers };

/** Why a frame never ran: replaced by a newer one while waiting, or the pool shut down. */
export type DropReason = "replaced" | "closed";

export interface SchedulerError {
  error: Error;
  /** the worker can no longer run frames (crashed, terminated, fatal error); its cameras stall */
  fatal: boolean;
  /** index of the worker over all lanes */
  worker: number;
  /** the frame that failed, when one did */
  camera?: string;
  seq?: number;
}

/** What the scheduler needs of a frame; the daemon's Frame has it. */
export interface ScheduledFrame {
  camera: string;
  seq: number;
}

/** What the scheduler needs of a worker; InferenceWorker has it. */
export interface SchedulerWorker<F, R> {
  /** takes frames */
  readonly alive: boolean;
  /** frames handed over and not yet answered */
  readonly inFlight: number;
  /** frames it holds at once */
  readonly depth: number;
  infer(frame: F): Promise<R>;
}

export interface CameraSlotStats {
  camera: string;
  /** frames submitted */
  offered: number;
  /** frames replaced while waiting, or dropped from the slot at close() */
  dropped: number;
  /** frames handed to a worker */
  started: number;
  /** frames released (result or error) */
  finished: number;
  waiting: boolean;
  inFlight: boolean;
  /** frames whose result was delivered */
  completed: number;
  /** frames whose inference failed */
  errors: number;
  /** indices of the workers that run this camera's frames */
  workers: number[];
}

export interface FrameSchedulerOptions<F, R, W> {
  /** cameras served by the same workers; a camera's order in its lane fixes its turn */
  lanes: readonly { cameras: readonly string[]; workers: readonly W[] }[];
  /** default latestWins */
  policies?: ReadonlyMap<string, SchedulingPolicy>;
  /** `worker`: index of the worker that ran the frame */
  onResult?: (result: R, worker: number) => void;
  onDrop?: (frame: F, reason: DropReason) => void;
  /** a frame failed on a worker that is still alive (a dead one is reported by its owner) */
  onError?: (e: SchedulerError) => void;
}

interface Slot<F, W> {
  camera: string;
  policy: SchedulingPolicy;
  maxInFlight: number;
  lane: Lane<F, W>;
  waiting: F | undefined;
  /** frames handed out and not yet released, oldest first; release is set once one finished */
  outstanding: { release: (() => void) | undefined }[];
  /** whenSlotFree() callers */
  waiters: (() => void)[];
  offered: number;
  dropped: number;
  started: number;
  finished: number;
  completed: number;
  errors: number;
}

interface Lane<F, W> {
  slots: Slot<F, W>[];
  workers: WorkerSlot<F, W>[];
  /** slot index served last; the search for the next frame starts after it */
  cursor: number;
  /** whether frames may queue behind a running one: only where every camera's policy allows it */
  queueAhead: boolean;
}

interface WorkerSlot<F, W> {
  index: number;
  worker: W;
  lane: Lane<F, W>;
  /** the infer() chains in flight, so close() and settle() can wait for them */
  running: Set<Promise<void>>;
}

export class FrameScheduler<F extends ScheduledFrame, R, W extends SchedulerWorker<F, R>> {
  private readonly slots = new Map<string, Slot<F, W>>();
  private readonly lanes: Lane<F, W>[];
  private readonly workerSlots: WorkerSlot<F, W>[] = [];
  private readonly opts: FrameSchedulerOptions<F, R, W>;
  private closed = false;

  constructor(opts: FrameSchedulerOptions<F, R, W>) {
    this.opts = opts;
    this.lanes = opts.lanes.map(({ cameras, workers }) => {
      const lane: Lane<F, W> = { slots: [], workers: [], cursor: -1, queueAhead: true };
      for (const worker of workers) {
        const w = { index: this.workerSlots.length, worker, lane, running: new Set<Promise<void>>() };
        this.workerSlots.push(w);
        lane.workers.push(w);
      }
      for (const camera of cameras) {
        if (typeof camera !== "string" || camera === "") throw new TypeError(`FrameScheduler: a camera id must be a non-empty string, got ${JSON.stringify(camera)}`);
        if (this.slots.has(camera)) throw new RangeError(`FrameScheduler: camera ${JSON.stringify(camera)} is listed twice`);
        const policy = opts.policies?.get(camera) ?? latestWins;
        const slot: Slot<F, W> = {
          camera,
          policy,
          maxInFlight: policy.maxInFlight(workers.length),
          lane,
          waiting: undefined,
          outstanding: [],
          waiters: [],
          offered: 0,
          dropped: 0,
          started: 0,
          finished: 0,
          completed: 0,
          errors: 0,
        };
        this.slots.set(camera, slot);
        lane.slots.push(slot);
        lane.queueAhead &&= policy.queueAhead;
      }
      return lane;
    });
  }

  /**
   * Takes a frame; returns at once. It waits in its camera's slot until a worker of its lane
   * can take it, unless a newer frame of the camera replaces it first (onDrop "replaced").
   * After close(), frames are dropped ("closed"). Throws for a camera not given at construction.
   */
  submit(frame: F): void {
    const slot = this.slots.get(frame.camera);
    if (slot === undefined) {
      throw new Error(`FrameScheduler: frame from unknown camera ${JSON.stringify(frame.camera)}; known cameras: ${[...this.slots.keys()].join(", ")}`);
    }
    if (this.closed) {
      this.opts.onDrop?.(frame, "closed");
      return;
    }
    slot.offered++;
    const replaced = slot.waiting;
    slot.waiting = frame;
    if (replaced !== undefined) {
      slot.dropped++;
      this.opts.onDrop?.(replaced, "replaced");
    }
    this.dispatch(slot.lane);
  }

  /**
   * null when `camera`'s waiting slot is empty (or the scheduler is closed), so a frame
   * submitted now replaces nothing; else a promise that resolves once a worker has taken the
   * waiting frame, or at close().
   */
  whenSlotFree(camera: string): Promise<void> | null {
    const slot = this.slots.get(camera);
    if (slot === undefined || this.closed || slot.waiting === undefined) return null;
    return new Promise((resolve) => slot.waiters.push(resolve));
  }

  /** The worker at `index` over all lanes. */
  worker(index: number): W | undefined {
    return this.workerSlots[index]?.worker;
  }

  get workers(): W[] {
    return this.workerSlots.map((w) => w.worker);
  }

  /** The cameras whose frames worker `index` runs. */
  camerasOf(index: number): string[] {
    return this.workerSlots[index]?.lane.slots.map((s) => s.camera) ?? [];
  }

  /** Puts `worker` in place of worker `index` (a replacement) and hands it the waiting frames. */
  setWorker(index: number, worker: W): void {
    const w = this.workerSlots[index];
    w.worker = worker;
    this.dispatch(w.lane);
  }

  /** The frames in flight on worker `index`, or on every worker, as promises that settle when each is released. */
  running(index?: number): Promise<void>[] {
    const ws = index === undefined ? this.workerSlots : [this.workerSlots[index]];
    return ws.flatMap((w) => [...w.running]);
  }

  /** Shutdown: drops the waiting frames ("closed"), releases whenSlotFree() callers, and dispatches nothing more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const slot of this.slots.values()) {
      if (slot.waiting === undefined) continue;
      const frame = slot.waiting;
      slot.waiting = undefined;
      slot.dropped++;
      this.opts.onDrop?.(frame, "closed");
    }
    for (const slot of this.slots.values()) this.releaseWaiters(slot);
  }

  stats(): CameraSlotStats[] {
    return this.lanes.flatMap((lane) =>
      lane.slots.map((s) => ({
        camera: s.camera,
        offered: s.offered,
        dropped: s.dropped,
        started: s.started,
        finished: s.finished,
        waiting: s.waiting !== undefined,
        inFlight: s.outstanding.length > 0,
        completed: s.completed,
        errors: s.errors,
        workers: lane.workers.map((w) => w.index),
      })),
    );
  }

  /**
   * Hands the lane's workers what they may take now: a frame to each idle one first, so a
   * replay's frames spread over its sessions, then (on a lane without a live camera) a
   * queued-ahead one behind a running frame.
   */
  private dispatch(lane: Lane<F, W>): void {
    for (const ahead of lane.queueAhead ? [false, true] : [false]) {
      for (const w of lane.workers) {
        const { worker } = w;
        while (worker.alive && !this.closed && (ahead ? worker.inFlight < worker.depth : worker.inFlight === 0)) {
          const slot = this.nextSlot(lane, worker.inFlight > 0);
          // Every worker of a lane sees the same slots: nothing for this one is nothing for the next.
          if (slot === undefined) return;
          this.run(w, slot);
        }
      }
    }
  }

  /**
   * The first slot after the one served last that has a frame waiting and room in flight;
   * for a busy worker (`queueAhead`) only a slot whose policy lets frames queue in a worker.
   */
  private nextSlot(lane: Lane<F, W>, queueAhead: boolean): Slot<F, W> | undefined {
    const n = lane.slots.length;
    for (let k = 1; k <= n; k++) {
      const i = (lane.cursor + k) % n;
      const s = lane.slots[i];
      if (s.waiting === undefined || s.outstanding.length >= s.maxInFlight || (queueAhead && !s.policy.queueAhead)) continue;
      lane.cursor = i;
      return s;
    }
    return undefined;
  }

  private run(w: WorkerSlot<F, W>, slot: Slot<F, W>): void {
    const frame = slot.waiting;
    if (frame === undefined) throw new Error("unreachable: nextSlot() returns slots with a waiting frame");
    slot.waiting = undefined;
    slot.started++;
    this.releaseWaiters(slot);
    const entry: Slot<F, W>["outstanding"][number] = { release: undefined };
    slot.outstanding.push(entry);
    const chain: Promise<void> = w.worker.infer(frame).then(
      (result) => {
        entry.release = () => {
          slot.completed++;
          this.opts.onResult?.(result, w.index);
        };
        this.finish(w, slot, chain);
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        // A dead worker reports itself once through its owner; the frame's own failure is not news.
        const report = w.worker.alive ? { error, fatal: false, worker: w.index, camera: frame.camera, seq: frame.seq } : undefined;
        entry.release = () => {
          slot.errors++;
          if (report !== undefined) this.opts.onError?.(report);
        };
        this.finish(w, slot, chain);
      },
    );
    w.running.add(chain);
  }

  /**
   * A frame of `slot` finished on `w`. Releases the camera's finished frames that no earlier
   * frame holds back (in order) and hands the workers their next frames before calling back:
   * the workers then run while results are handled (hazard stage, bus), and a throwing
   * callback cannot wedge the lane.
   */
  private finish(w: WorkerSlot<F, W>, slot: Slot<F, W>, chain: Promise<void>): void {
    w.running.delete(chain);
    const ready: (() => void)[] = [];
    while (slot.outstanding.length > 0 && slot.outstanding[0].release !== undefined) {
      const entry = slot.outstanding.shift();
      if (entry?.release !== undefined) ready.push(entry.release);
      slot.finished++;
    }
    this.dispatch(slot.lane);
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

  private releaseWaiters(slot: Slot<F, W>): void {
    const list = slot.waiters;
    slot.waiters = [];
    for (const resolve of list) resolve();
  }
}
