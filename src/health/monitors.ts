// Monitors: turn what the daemon sees (frames, camera events, results, worker activity,
// event-loop delay, bus drops) into health reasons (state.ts). Each is fed by the daemon
// and, where time alone can make a condition true (a stall is the absence of frames),
// checked on the daemon's health tick. All read time from an injected monotonic clock in
// milliseconds, so tests drive them with a fake one; only EventLoopLagMonitor.start() and
// LoopDelayProbe touch real timers.
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";
import type { CameraEvent } from "../core/camera-event.ts";
import type { ReasonSink } from "./state.ts";

/** Monotonic milliseconds. */
export type Clock = () => number;

const defaultClock: Clock = () => performance.now();

// ---------------------------------------------------------------------------------------
// Camera stall

export interface CameraStallOptions {
  cameras: readonly string[];
  /** no frame for this long raises camera_stall */
  stallMs: number;
  /**
   * time a camera gets for its first frame after begin() (default 5000 ms, at least
   * stallMs): opening a V4L2 device or an RTSP session takes longer than a frame interval,
   * and flagging every start-up as a stall would make DEGRADED mean nothing.
   */
  startGraceMs?: number;
  clock?: Clock;
}

interface CameraWatch {
  /** last frame, or when watching began (a camera that never delivered stalls too) */
  lastFrameMs: number;
  seenFrame: boolean;
  stalled: boolean;
}

const DEFAULT_START_GRACE_MS = 5000;

/**
 * camera_stall: no frame from a camera for stallMs; cleared by its next frame. This is the
 * health view (hundreds of ms: consumers treat detections as stale after 500 ms); the
 * camera source has its own, longer stall timeout after which it rebuilds the pipeline.
 * camera_restarting: between a "restart" event and the next "running". A camera that
 * "ended" (a replay that finished) is no longer watched and its reasons are cleared.
 *
 * Feed: begin() when the cameras are started, frame(camera) from the ingest callback
 * (cheap: one map lookup), event(e) from the camera's onEvent, tick() from the health timer.
 */
export class CameraStallMonitor {
  private readonly sink: ReasonSink;
  private readonly stallMs: number;
  private readonly startGraceMs: number;
  private readonly clock: Clock;
  private readonly cameras = new Map<string, CameraWatch>();
  private begun = false;

  constructor(sink: ReasonSink, opts: CameraStallOptions) {
    requirePositive("stallMs", opts.stallMs);
    this.sink = sink;
    this.stallMs = opts.stallMs;
    this.startGraceMs = Math.max(opts.stallMs, opts.startGraceMs ?? DEFAULT_START_GRACE_MS);
    this.clock = opts.clock ?? defaultClock;
    for (const c of opts.cameras) this.cameras.set(c, { lastFrameMs: 0, seenFrame: false, stalled: false });
  }

  /** The cameras have been started: from now on silence counts. Before it tick() checks nothing. */
  begin(): void {
    if (this.begun) return;
    this.begun = true;
    const now = this.clock();
    for (const w of this.cameras.values()) if (!w.seenFrame) w.lastFrameMs = now;
  }

  frame(camera: string): void {
    const w = this.cameras.get(camera);
    if (w === undefined) return; // ended, or not ours: nothing to watch
    w.lastFrameMs = this.clock();
    w.seenFrame = true;
    if (w.stalled) {
      w.stalled = false;
      this.sink.clear("camera_stall", camera);
    }
  }

  event(e: CameraEvent): void {
    switch (e.type) {
      case "restart":
        this.sink.raise("camera_restarting", e.camera, `restart attempt ${e.attempt} in ${e.delayMs} ms`);
        return;
      case "running":
        this.sink.clear("camera_restarting", e.camera);
        return;
      case "ended":
        if (this.cameras.delete(e.camera)) {
          this.sink.clear("camera_stall", e.camera);
          this.sink.clear("camera_restarting", e.camera);
          // A source that ended on an error (a replay that cannot be read) will not come back:
          // say so on the bus, where an end of file would say nothing.
          if (e.reason === "error") this.sink.raise("camera_failed", e.camera, e.detail ?? "the source ended on an error");
        }
        return;
      case "error":
      case "eos":
      case "loop":
      case "truncated":
        // error/eos are followed by restart or ended; a loop keeps frames coming; a cut file
        // is the replay's content, logged and counted, not the daemon's health.
        return;
    }
  }

  tick(): void {
    if (!this.begun) return;
    const now = this.clock();
    for (const [camera, w] of this.cameras) {
      const silentMs = now - w.lastFrameMs;
      const limit = w.seenFrame ? this.stallMs : this.startGraceMs;
      if (silentMs <= limit) continue;
      w.stalled = true;
      // Raising again only refreshes the detail: the state machine keeps the first time.
      const what = w.seenFrame ? "no frame for" : "no first frame within";
      this.sink.raise("camera_stall", camera, `${what} ${Math.round(silentMs)} ms (limit ${limit} ms)`);
    }
  }

  /**
   * Shutdown: the cameras are being stopped on purpose, so their silence from now on is no
   * stall. Clears camera_stall and camera_restarting; camera_failed stays (it says why).
   */
  stopWatching(): void {
    for (const camera of this.cameras.keys()) {
      this.sink.clear("camera_stall", camera);
      this.sink.clear("camera_restarting", camera);
    }
    this.cameras.clear();
  }

  /** Cameras currently stalled. */
  stalled(): string[] {
    return [...this.cameras].filter(([, w]) => w.stalled).map(([c]) => c);
  }
}

// ---------------------------------------------------------------------------------------
// k of the last n

/**
 * Counts hits among the last `window` observations. Trips when `threshold` are hits and
 * resets only when at most half that many remain: a rate hovering at the threshold would
 * otherwise flap the health state (and the log, and every subscriber) frame by frame.
 */
export class SustainedCounter {
  readonly window: number;
  readonly threshold: number;
  private readonly ring: Uint8Array;
  private next = 0;
  private filled = 0;
  private hitCount = 0;
  private isTripped = false;

  constructor(window: number, threshold: number) {
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`SustainedCounter: window must be an integer >= 1, got ${window}`);
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > window) {
      throw new RangeError(`SustainedCounter: threshold must be an integer in [1, window=${window}], got ${threshold}`);
    }
    this.window = window;
    this.threshold = threshold;
    this.ring = new Uint8Array(window);
  }

  /** Adds one observation; returns whether the counter is tripped afterwards. */
  push(hit: boolean): boolean {
    if (this.filled === this.window) this.hitCount -= this.ring[this.next];
    else this.filled++;
    this.ring[this.next] = hit ? 1 : 0;
    this.hitCount += hit ? 1 : 0;
    this.next = (this.next + 1) % this.window;
    if (!this.isTripped && this.hitCount >= this.threshold) this.isTripped = true;
    else if (this.isTripped && this.hitCount <= Math.floor(this.threshold / 2)) this.isTripped = false;
    return this.isTripped;
  }

  get hits(): number {
    return this.hitCount;
  }

  get tripped(): boolean {
    return this.isTripped;
  }
}

/**
 * A per-camera limit on a time (worker time, age at publish): each observation above
 * `limitMs` is a hit, counted since start; `threshold` hits among a camera's last `window`
 * raise `reason` for the camera (one SustainedCounter each) until at most half remain.
 */
class PerCameraLimit {
  private readonly counters = new Map<string, SustainedCounter>();
  private readonly totals = new Map<string, number>();

  constructor(
    private readonly sink: ReasonSink,
    private readonly reason: "inference_overrun" | "detections_stale",
    readonly limitMs: number,
    /** the option's name, for the error on a bad limit */
    limitName: string,
    private readonly window: number,
    private readonly threshold: number,
    /** the reason's detail, e.g. "5 of the last frames over 100 ms (latest 116.0 ms)" */
    private readonly describe: (hits: number, latestMs: number) => string,
  ) {
    requirePositive(limitName, limitMs);
    // Checked here so a bad config fails at construction, not at the first frame.
    new SustainedCounter(window, threshold);
  }

  /** Returns true when `valueMs` is over the limit. */
  observe(camera: string, valueMs: number): boolean {
    const hit = valueMs > this.limitMs;
    if (hit) this.totals.set(camera, (this.totals.get(camera) ?? 0) + 1);
    let c = this.counters.get(camera);
    if (c === undefined) {
      c = new SustainedCounter(this.window, this.threshold);
      this.counters.set(camera, c);
    }
    const was = c.tripped;
    const now = c.push(hit);
    if (now && (!was || hit)) this.sink.raise(this.reason, camera, this.describe(c.hits, valueMs));
    else if (!now && was) this.sink.clear(this.reason, camera);
    return hit;
  }

  /** Hits of a camera since start. */
  total(camera: string): number {
    return this.totals.get(camera) ?? 0;
  }
}

// ---------------------------------------------------------------------------------------
// Inference overrun

export interface InferenceOverrunOptions {
  /** per-frame deadline: worker time above this is an overrun */
  deadlineMs: number;
  /** frames per camera considered */
  window: number;
  /** overruns among them that raise inference_overrun */
  threshold: number;
}

/**
 * inference_overrun: `threshold` of a camera's last `window` frames took longer than the
 * deadline in the worker. Single overruns are counted (for a metric) but are not a health
 * problem: the first frame after a GC pause or a CPU frequency change is expected to be slow.
 *
 * Feed: frame(camera, workMs) for each result, with workMs = the worker's time on the frame
 * (timings.preprocessMs + inferenceMs + decodeMs): that is what bounds the frame rate the
 * worker sustains. Queueing is left out: it is the scheduler's latest-wins policy at work,
 * and end-to-end age has its own rule (FreshnessMonitor).
 */
export class InferenceOverrunMonitor {
  readonly deadlineMs: number;
  private readonly limit: PerCameraLimit;

  constructor(sink: ReasonSink, opts: InferenceOverrunOptions) {
    this.deadlineMs = opts.deadlineMs;
    this.limit = new PerCameraLimit(sink, "inference_overrun", opts.deadlineMs, "deadlineMs", opts.window, opts.threshold, (hits, latest) => `${hits} of the last frames over ${opts.deadlineMs} ms (latest ${latest.toFixed(1)} ms)`);
  }

  /** Returns true when this frame overran (count it in a metric). */
  frame(camera: string, workMs: number): boolean {
    return this.limit.observe(camera, workMs);
  }

  /** Overruns of a camera since start. */
  overruns(camera: string): number {
    return this.limit.total(camera);
  }
}

// ---------------------------------------------------------------------------------------
// Freshness of detections at publish

export interface FreshnessOptions {
  /** detections older than this (ingest -> publish) are stale */
  budgetMs: number;
  window: number;
  threshold: number;
}

export interface FreshnessVerdict {
  /** false: publish with valid=false (see below) */
  valid: boolean;
  /** ingest -> publish, ms */
  ageMs: number;
}

/**
 * The latency budget for detections. A result older than budgetMs when it is about to be
 * published is flagged, not dropped: it goes out with valid=false, as openpilot's
 * publishers do (msg.valid is false when the inputs were not fresh and valid). Why not drop:
 * - the message is also the detector's heartbeat; a dropped message is indistinguishable,
 *   for a subscriber, from a dead detector or a lost packet, and it only learns either once
 *   the topic's staleAfterMs (src/bus/topics.ts) has passed, later than it learns valid=false;
 * - a subscriber can still use the boxes for things that tolerate lateness (logging,
 *   tracking with its own motion compensation, replay); the publisher cannot know;
 * - seq stays gap-free, so gaps keep meaning "lost", and the metrics see every frame.
 * The cost is that a subscriber must honour `valid`; the bus contract makes that a rule.
 * Sustained staleness (threshold of the last window results) raises detections_stale.
 *
 * Feed: check(camera, r.tIngestNs, tPublishNs) right before encoding each result.
 */
export class FreshnessMonitor {
  readonly budgetMs: number;
  private readonly limit: PerCameraLimit;

  constructor(sink: ReasonSink, opts: FreshnessOptions) {
    this.budgetMs = opts.budgetMs;
    this.limit = new PerCameraLimit(sink, "detections_stale", opts.budgetMs, "budgetMs", opts.window, opts.threshold, (hits, latest) => `${hits} of the last results older than ${opts.budgetMs} ms at publish (latest ${latest.toFixed(1)} ms)`);
  }

  check(camera: string, tIngestNs: bigint, tPublishNs: bigint): FreshnessVerdict {
    const ageMs = Number(tPublishNs - tIngestNs) / 1e6;
    return { valid: !this.limit.observe(camera, ageMs), ageMs };
  }

  /** Results of a camera published with valid=false since start. */
  stale(camera: string): number {
    return this.limit.total(camera);
  }
}

// ---------------------------------------------------------------------------------------
// Inference hang and worker replacement

export interface InferenceHangOptions {
  /** worker names in pool lane order (pool.stats().workers[i].name) */
  workers: readonly string[];
  /** busy on one frame for longer than this is a hang */
  hangMs: number;
  /** replacements allowed within replacementWindowMs; one more needed gives up */
  maxReplacements: number;
  replacementWindowMs: number;
  /** a replacement still not warm after this has failed */
  replaceTimeoutMs: number;
  clock?: Clock;
}

export type HangAction =
  /** call pool.replaceWorker(worker) now, then replacementSucceeded/replacementFailed with its outcome */
  | { type: "replace"; worker: number; why: string }
  /** stop the daemon and exit non-zero: systemd restarts the process (Restart=on-failure) */
  | { type: "give-up"; worker: number; why: string };

interface WorkerWatch {
  name: string;
  source: string;
  /** when the current request began, as far as sampling can tell; null while idle */
  busySinceMs: number | null;
  replacingSinceMs: number | null;
}

/**
 * inference_hang (FAULT): a worker has been busy with one frame for longer than hangMs.
 * The pool cannot tell when a request starts, so this works on progress: a worker that is
 * busy and has finished nothing for hangMs is hung. Each result (or failed frame) is
 * progress; sample() polls which workers are busy.
 *
 * The answer to a hang (or a crashed worker) is a replacement: the daemon calls
 * pool.replaceWorker(i), which detaches the hung thread (terminating it inside
 * session.run would abort the process) and starts a fresh one. From the moment the
 * replacement is asked for, inference_hang gives way to worker_replaced (DEGRADED) until it
 * is warm. The budget is maxReplacements within replacementWindowMs over all workers: a
 * replacement that is needed again soon did not fix anything (a wedged GPU, a model input
 * that always hangs), so the one after the budget gives up instead: worker_failed (FAULT)
 * and a "give-up" action; the daemon then exits non-zero and systemd starts it afresh. A
 * replacement that fails to start counts against the budget and is retried within it; one
 * not warm within replaceTimeoutMs gives up at once.
 */
export class InferenceHangMonitor {
  private readonly sink: ReasonSink;
  private readonly opts: InferenceHangOptions;
  private readonly clock: Clock;
  private readonly workers: WorkerWatch[];
  /** start times of replacements within the window */
  private attempts: number[] = [];
  private gaveUpWhy: string | null = null;
  private replacementCount = 0;
  private hangCount = 0;

  constructor(sink: ReasonSink, opts: InferenceHangOptions) {
    requirePositive("hangMs", opts.hangMs);
    requirePositive("replacementWindowMs", opts.replacementWindowMs);
    requirePositive("replaceTimeoutMs", opts.replaceTimeoutMs);
    if (!Number.isInteger(opts.maxReplacements) || opts.maxReplacements < 0) {
      throw new RangeError(`InferenceHangMonitor: maxReplacements must be an integer >= 0, got ${opts.maxReplacements}`);
    }
    if (opts.workers.length === 0) throw new RangeError("InferenceHangMonitor: workers is empty");
    this.sink = sink;
    this.opts = opts;
    this.clock = opts.clock ?? defaultClock;
    this.workers = opts.workers.map((name) => ({ name, source: `worker:${name}`, busySinceMs: null, replacingSinceMs: null }));
  }

  /** Set once the monitor gave up: why. The daemon is expected to be exiting. */
  get gaveUp(): string | null {
    return this.gaveUpWhy;
  }

  /** Hangs detected since start. */
  get hangs(): number {
    return this.hangCount;
  }

  /** Replacements asked for since start. */
  get replacements(): number {
    return this.replacementCount;
  }

  /** A request of this worker finished (result or per-frame error): the next one, if any, starts now. */
  progress(worker: number): void {
    const w = this.watch(worker);
    w.busySinceMs = w.busySinceMs === null ? null : this.clock();
  }

  /** Polls the workers (pool.stats().workers.map((w) => w.busy)); returns what to do. */
  sample(busy: readonly boolean[]): HangAction[] {
    if (this.gaveUpWhy !== null) return [];
    const now = this.clock();
    const actions: HangAction[] = [];
    this.workers.forEach((w, i) => {
      if (this.gaveUpWhy !== null) return;
      if (w.replacingSinceMs !== null) {
        const waited = now - w.replacingSinceMs;
        // Not retried: the pool shares one replacement per lane, so asking again would only
        // wait on the same stuck start. Something below us (driver, GPU) is wedged.
        if (waited > this.opts.replaceTimeoutMs) actions.push(this.giveUp(i, `worker ${w.name}: replacement not warm after ${Math.round(waited)} ms (limit ${this.opts.replaceTimeoutMs} ms): giving up`));
        return;
      }
      if (busy[i] !== true) {
        w.busySinceMs = null;
        return;
      }
      w.busySinceMs ??= now;
      const inFlightMs = now - w.busySinceMs;
      if (inFlightMs <= this.opts.hangMs) return;
      this.hangCount++;
      const why = `worker ${w.name} busy on one frame for ${Math.round(inFlightMs)} ms (limit ${this.opts.hangMs} ms)`;
      this.sink.raise("inference_hang", w.source, why);
      actions.push(this.replaceOrGiveUp(i, why));
    });
    return actions;
  }

  /** The pool reported the worker dead (onError with fatal: true). */
  workerDied(worker: number, why: string): HangAction[] {
    const w = this.watch(worker);
    // A replacement under way already covers it; after giving up nothing more is done.
    if (this.gaveUpWhy !== null || w.replacingSinceMs !== null) return [];
    return [this.replaceOrGiveUp(worker, `worker ${w.name} died: ${why}`)];
  }

  replacementSucceeded(worker: number): void {
    const w = this.watch(worker);
    if (w.replacingSinceMs === null) return;
    w.replacingSinceMs = null;
    w.busySinceMs = null;
    this.sink.clear("inference_hang", w.source);
    this.sink.clear("worker_replaced", w.source);
  }

  /** pool.replaceWorker(worker) rejected: the lane has no worker. Returns a retry or give-up. */
  replacementFailed(worker: number, why: string): HangAction[] {
    const w = this.watch(worker);
    if (this.gaveUpWhy !== null || w.replacingSinceMs === null) return [];
    w.replacingSinceMs = null;
    return [this.replaceOrGiveUp(worker, `worker ${w.name}: replacement failed: ${why}`)];
  }

  private replaceOrGiveUp(worker: number, why: string): HangAction {
    const w = this.workers[worker];
    const now = this.clock();
    this.attempts = this.attempts.filter((t) => now - t < this.opts.replacementWindowMs);
    if (this.attempts.length >= this.opts.maxReplacements) {
      return this.giveUp(worker, `${why}; ${this.attempts.length} replacement(s) in the last ${this.opts.replacementWindowMs} ms already (limit ${this.opts.maxReplacements}): giving up`);
    }
    this.attempts.push(now);
    this.replacementCount++;
    w.replacingSinceMs = now;
    w.busySinceMs = null;
    // A hang (inference_hang, FAULT) stays raised until the replacement is warm: until then
    // its cameras get no detections at all, and consumers must see that as FAULT on the bus,
    // not as the milder DEGRADED of a lane that is merely restarting.
    this.sink.raise("worker_replaced", w.source, why);
    return { type: "replace", worker, why };
  }

  private giveUp(worker: number, why: string): HangAction {
    const w = this.workers[worker];
    this.gaveUpWhy = why;
    this.sink.raise("worker_failed", w.source, why);
    return { type: "give-up", worker, why };
  }

  private watch(worker: number): WorkerWatch {
    const w = this.workers[worker];
    if (w === undefined) throw new RangeError(`InferenceHangMonitor: worker must be an integer in [0, ${this.workers.length - 1}], got ${worker}`);
    return w;
  }
}

// ---------------------------------------------------------------------------------------
// Event-loop lag

/** What EventLoopLagMonitor reads; LoopDelayProbe in production, a fake in tests. */
export interface DelaySource {
  /** nanoseconds of extra delay at percentile p (0..100) since the last reset */
  percentile(p: number): number;
  /** largest delay since the last reset, ns */
  readonly max: number;
  /** samples since the last reset */
  readonly count: number;
  reset(): void;
  start(): void;
  stop(): void;
}

/**
 * Measures how late a repeating timer fires, into a perf_hooks histogram. Not
 * perf_hooks.monitorEventLoopDelay: its reset() also forgets the previous tick's time, so
 * the interval right after each reset is never measured (Node 20, measured: a 200 ms
 * block right after reset() left max at 14 ms), and a stall that always follows the sample
 * timer (another 1 s interval timer, such as the status line) would go unseen forever.
 * Here the timer's own previous time survives reset(). Values are the delay beyond the
 * interval, so an idle loop reads ~0 instead of ~resolution.
 */
export class LoopDelayProbe implements DelaySource {
  private readonly histogram: RecordableHistogram = createHistogram();
  private timer: NodeJS.Timeout | null = null;
  private prevNs = 0n;

  constructor(private readonly resolutionMs = 10) {
    requirePositive("resolutionMs", resolutionMs);
  }

  percentile(p: number): number {
    return this.histogram.count === 0 ? 0 : this.histogram.percentile(p);
  }

  get max(): number {
    return this.histogram.count === 0 ? 0 : this.histogram.max;
  }

  get count(): number {
    return this.histogram.count;
  }

  reset(): void {
    this.histogram.reset();
  }

  start(): void {
    if (this.timer !== null) return;
    const intervalNs = BigInt(Math.round(this.resolutionMs * 1e6));
    this.prevNs = process.hrtime.bigint();
    this.timer = setInterval(() => {
      const now = process.hrtime.bigint();
      const late = now - this.prevNs - intervalNs;
      this.prevNs = now;
      // The histogram takes integers >= 1; on time (or a hair early) counts as 1 ns.
      this.histogram.record(late > 0n ? late : 1n);
    }, this.resolutionMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

export interface LagSample {
  p99Ms: number;
  maxMs: number;
  samples: number;
}

export interface EventLoopLagOptions {
  /** p99 delay above this raises event_loop_lag */
  limitMs: number;
  /** how often the delay is read and reset (the window the p99 is over) */
  sampleMs: number;
  /** default: a LoopDelayProbe at 10 ms */
  source?: DelaySource;
  onSample?: (s: LagSample) => void;
}

/**
 * event_loop_lag: the main thread's event loop was late by more than limitMs at the 99th
 * percentile over a sample window. Everything time-critical runs on that thread (frame
 * hand-over, publishing, this health tick), so lag there is latency everywhere. Cleared by
 * the first window at or under the limit (windows are a second long: no flapping to fear).
 *
 * Feed: start() once (its own timer, unref'd), stop() at shutdown; or sample() yourself.
 */
export class EventLoopLagMonitor {
  private readonly sink: ReasonSink;
  private readonly opts: EventLoopLagOptions;
  private readonly source: DelaySource;
  private timer: NodeJS.Timeout | null = null;
  private last: LagSample | null = null;

  constructor(sink: ReasonSink, opts: EventLoopLagOptions) {
    requirePositive("limitMs", opts.limitMs);
    requirePositive("sampleMs", opts.sampleMs);
    this.sink = sink;
    this.opts = opts;
    this.source = opts.source ?? new LoopDelayProbe();
  }

  /** The latest window (null before the first). */
  get latest(): LagSample | null {
    return this.last;
  }

  start(): void {
    if (this.timer !== null) return;
    this.source.start();
    this.timer = setInterval(() => this.sample(), this.opts.sampleMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.source.stop();
  }

  /** Reads and resets the window; null when it holds no sample (nothing to judge). */
  sample(): LagSample | null {
    const samples = this.source.count;
    if (samples === 0) return null;
    const s: LagSample = { p99Ms: this.source.percentile(99) / 1e6, maxMs: this.source.max / 1e6, samples };
    this.source.reset();
    this.last = s;
    if (s.p99Ms > this.opts.limitMs) {
      this.sink.raise("event_loop_lag", "main", `p99 ${s.p99Ms.toFixed(1)} ms, max ${s.maxMs.toFixed(1)} ms over ${samples} samples (limit ${this.opts.limitMs} ms)`);
    } else {
      this.sink.clear("event_loop_lag", "main");
    }
    this.opts.onSample?.(s);
    return s;
  }
}

// ---------------------------------------------------------------------------------------
// Publish failures

export interface PublishFailureOptions {
  /** publish_failure stays raised until no drop was seen for this long */
  holdMs: number;
  clock?: Clock;
}

/**
 * publish_failure: the bus dropped a message of a topic (queue full, send error). Held for
 * holdMs after the last drop, because drops come in bursts between successful sends and
 * clearing on each success would flap at the frame rate.
 *
 * Feed: dropped(topic) from the bus publisher's onDrop hook (next to the metrics one),
 * tick() from the health timer.
 */
export class PublishFailureMonitor {
  private readonly lastDrop = new Map<string, number>();
  private readonly clock: Clock;

  constructor(
    private readonly sink: ReasonSink,
    private readonly opts: PublishFailureOptions,
  ) {
    requirePositive("holdMs", opts.holdMs);
    this.clock = opts.clock ?? defaultClock;
  }

  dropped(topic: string): void {
    const first = !this.lastDrop.has(topic);
    this.lastDrop.set(topic, this.clock());
    if (first) this.sink.raise("publish_failure", topic, "messages dropped before the PUB socket");
  }

  tick(): void {
    const now = this.clock();
    for (const [topic, t] of this.lastDrop) {
      if (now - t < this.opts.holdMs) continue;
      this.lastDrop.delete(topic);
      this.sink.clear("publish_failure", topic);
    }
  }
}

function requirePositive(name: string, v: number): void {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number, got ${v}`);
}
