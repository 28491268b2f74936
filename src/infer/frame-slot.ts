// Latest-wins frame scheduling, pure (no I/O, no timers). Each camera has one waiting
// slot and at most one frame in flight: a frame arriving while its camera's slot is full
// replaces the waiting one, which counts as dropped. Latency stays bounded under overload
// (a result is never older than two inference times) at the cost of throughput, which is
// the right trade for perception: a stale pedestrian box is worse than a skipped one.
//
// Several cameras sharing one detector take turns (round-robin over the cameras that have
// a waiting frame), so a fast camera cannot starve a slow one.
//
// A camera may be allowed more frames in flight (maxInFlight > 1): the pool uses that for
// sources that wait for the consumer (an unpaced replay), whose next frames can be queued in
// the workers while the current ones run. Nothing newer could have replaced them there, so
// latest-wins loses nothing, and a worker goes from one frame to the next without a round
// trip through the main thread.

/** More frames in flight than this per camera would only hold memory: a worker holds two at most. */
export const MAX_IN_FLIGHT = 64;

/** What the scheduler needs of a frame; the daemon's Frame has it. */
export interface CameraFrame {
  camera: string;
}

export interface CameraSlotStats {
  camera: string;
  /** frames offered */
  offered: number;
  /** frames replaced while waiting, or removed by drain() */
  dropped: number;
  /** frames handed out by next() */
  started: number;
  /** frames marked done() */
  finished: number;
  waiting: boolean;
  inFlight: boolean;
}

export interface FrameSchedulerOptions {
  /** frames a camera may have handed out and not done at once; default 1, at most MAX_IN_FLIGHT */
  maxInFlight?: ReadonlyMap<string, number>;
}

interface Slot<F> {
  camera: string;
  waiting: F | undefined;
  /** frames handed out by next() and not yet done() */
  inFlight: number;
  maxInFlight: number;
  offered: number;
  dropped: number;
  started: number;
  finished: number;
}

export class FrameScheduler<F extends CameraFrame = CameraFrame> {
  private readonly slots: Slot<F>[] = [];
  private readonly index = new Map<string, number>();
  /** slot index served last; the search for the next frame starts after it */
  private cursor = -1;
  private waitingCount = 0;
  private inFlightCount = 0;

  private readonly maxInFlight: ReadonlyMap<string, number>;

  /** `cameras` fixes the round-robin order; cameras first seen in offer() join at the end. */
  constructor(cameras: Iterable<string> = [], opts: FrameSchedulerOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? new Map();
    for (const [camera, n] of this.maxInFlight) {
      if (!(Number.isInteger(n) && n >= 1 && n <= MAX_IN_FLIGHT)) {
        throw new RangeError(`FrameScheduler: maxInFlight of camera ${JSON.stringify(camera)} must be an integer in [1, ${MAX_IN_FLIGHT}], got ${String(n)}`);
      }
    }
    for (const c of cameras) this.slot(c);
  }

  /**
   * Puts `frame` in its camera's waiting slot. Never blocks and never holds more than one
   * frame per camera: the frame it displaces, if any, is returned as dropped.
   */
  offer(frame: F): { dropped?: F } {
    const s = this.slot(frame.camera);
    s.offered++;
    const previous = s.waiting;
    s.waiting = frame;
    if (previous === undefined) {
      this.waitingCount++;
      return {};
    }
    s.dropped++;
    return { dropped: previous };
  }

  /**
   * The next frame to run, marking it in flight: the waiting frame of the first camera after
   * the one served last that has a frame waiting and fewer than its maxInFlight in flight.
   * With `aheadOnly`, only cameras allowed more than one frame in flight qualify (the worker
   * is busy: a frame given to it now waits there, which only such cameras may do).
   * undefined when no camera qualifies.
   */
  next(aheadOnly = false): F | undefined {
    const n = this.slots.length;
    for (let k = 1; k <= n; k++) {
      const i = (this.cursor + k) % n;
      const s = this.slots[i];
      if (s.waiting === undefined || s.inFlight >= s.maxInFlight || (aheadOnly && s.maxInFlight < 2)) continue;
      const frame = s.waiting;
      s.waiting = undefined;
      s.inFlight++;
      s.started++;
      this.waitingCount--;
      this.inFlightCount++;
      this.cursor = i;
      return frame;
    }
    return undefined;
  }

  /** The frame next() handed out for `camera` has finished (result or error). */
  done(camera: string): void {
    const i = this.index.get(camera);
    const s = i === undefined ? undefined : this.slots[i];
    if (s === undefined || s.inFlight === 0) {
      throw new Error(`FrameScheduler.done: camera ${JSON.stringify(camera)} has no frame in flight`);
    }
    s.inFlight--;
    s.finished++;
    this.inFlightCount--;
  }

  /** Empties every waiting slot (shutdown); the frames returned count as dropped. */
  drain(): F[] {
    const out: F[] = [];
    for (const s of this.slots) {
      if (s.waiting === undefined) continue;
      out.push(s.waiting);
      s.waiting = undefined;
      s.dropped++;
    }
    this.waitingCount = 0;
    return out;
  }

  /** Whether `camera` has a frame in its waiting slot. */
  isWaiting(camera: string): boolean {
    const i = this.index.get(camera);
    return i !== undefined && this.slots[i].waiting !== undefined;
  }

  /** Frames waiting, over all cameras. */
  get waiting(): number {
    return this.waitingCount;
  }

  /** Frames handed out and not yet done, over all cameras. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  get cameras(): string[] {
    return this.slots.map((s) => s.camera);
  }

  stats(): CameraSlotStats[] {
    return this.slots.map((s) => ({
      camera: s.camera,
      offered: s.offered,
      dropped: s.dropped,
      started: s.started,
      finished: s.finished,
      waiting: s.waiting !== undefined,
      inFlight: s.inFlight > 0,
    }));
  }

  private slot(camera: string): Slot<F> {
    const i = this.index.get(camera);
    if (i !== undefined) return this.slots[i];
    if (typeof camera !== "string" || camera === "") {
      throw new TypeError(`FrameScheduler: a frame's camera must be a non-empty string, got ${JSON.stringify(camera)}`);
    }
    const s: Slot<F> = { camera, waiting: undefined, inFlight: 0, maxInFlight: this.maxInFlight.get(camera) ?? 1, offered: 0, dropped: 0, started: 0, finished: 0 };
    this.index.set(camera, this.slots.length);
    this.slots.push(s);
    return s;
  }
}
