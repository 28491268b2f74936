// One camera: a GStreamer pipeline that hands over model-sized RGB frames, kept running
// through errors, stalls and ends of stream as the camera's config asks.
//
// Lifecycle (state in brackets):
//   start() [starting] -> first frame: "running" event [running]
//   error on the bus, a pipeline that will not build, no frame for stallTimeoutMs
//     -> "error"; live sources: "restart" {attempt, delayMs} [restarting], a new pipeline
//        after nextBackoffMs [starting]; others: "ended" [ended]
//   end of stream -> file with loop: seek to the start (or rebuild when the seek fails),
//        "loop"; live camera/stream: "eos" then restart as for an error; file, testsrc with
//        numBuffers, non-live pipeline: "eos", "ended" [ended]
//   stop() [stopped] -> pipeline to NULL, no onFrame/onEvent afterwards, resolves once
//        GStreamer has given back its threadpool threads.
// The backoff attempt count resets once a pipeline has delivered frames for healthyAfterMs.
//
// Source frame size: the appsink only shows the scaled output, so the tail tees the
// converted-from stream into a fakesink with enable-last-sample=true. When a pipeline's
// first frame arrives, its last-sample caps give the source width, height and pixel aspect
// ratio; the probe is then switched off so it holds no buffer. One uniform way for every
// source type (RTSP and expert pipelines have no configured size, v4l2 may not), no second
// pipeline and no extra threadpool pull. Size changes in mid-stream are not followed.
import type { CameraSpec } from "./source-spec.ts";
import type { CameraEvent } from "../core/camera-event.ts";
import type { LetterboxTransform } from "../core/types.ts";
import { nextBackoffMs } from "./backoff.ts";
import type { Frame } from "../core/frame.ts";
import {
  ELEMENTS,
  describePipeline,
  describeSource,
  tailTransform,
  type PipelineDescription,
  type TargetSize,
} from "./pipeline-description.ts";
import type { GstElementHandle } from "./gst/binding.ts";
import { readProbe } from "./gst/probe.ts";
import { GstRunner, packRgb, parseFramerate, reserveGstThreads, type RunnerSample } from "./gst/pipeline-runner.ts";
import { THREADS_PER_CAMERA, requiredThreadpoolSize } from "./threadpool.ts";
import { faultTriggerName, faultTriggersFromEnv } from "../util/fault-trigger.ts";
import { aviDeclaredFramesOf, replayEndedEarly } from "./replay-length.ts";

export type CameraState = "starting" | "running" | "restarting" | "ended" | "stopped";

export interface CameraStats {
  /** Frames handed over by the appsink since start(), over all restarts and loops. */
  received: number;
  restarts: number;
  /** Errors reported (bus errors, pipelines that would not build, stalls). */
  errors: number;
  loops: number;
  state: CameraState;
}

export interface CameraSourceOptions {
  /** Called synchronously for each frame; the frame's pixels are the consumer's to transfer. */
  onFrame(frame: Frame): void;
  onEvent(e: CameraEvent): void;
  /** Nanosecond clock for tIngestNs and the health/stall timing (default process.hrtime.bigint). */
  clock?: () => bigint;
  /** Frames delivered for this long make a pipeline healthy: the backoff starts over (default 10 s). */
  healthyAfterMs?: number;
  /** A running pipeline that delivers no frame for this long has failed (default: the camera's restart.stallTimeoutMs; 0: never). */
  stallTimeoutMs?: number;
  /** A (re)started pipeline must deliver its first frame within this (default 20 s; 0: never). */
  startTimeoutMs?: number;
  /** Random source for the backoff jitter (default Math.random). */
  random?: () => number;
  /**
   * Backpressure for sources that deliver every frame (a replay file with realtime: false):
   * asked before each pull; null when the consumer can take a frame now, else a promise that
   * resolves when it can. Decoding then waits for inference instead of decoding frames only
   * for the consumer to drop them (measured: ~450 decoded per second for ~18 processed, the
   * decoder taking a core from inference). Not used for live or paced sources, whose clock
   * is not ours to hold back. The stall timeout does not run while waiting.
   */
  whenConsumerReady?: () => Promise<void> | null;
}

const DEFAULT_HEALTHY_AFTER_MS = 10_000;
// RTSP over UDP gives up after 5 s and retries over TCP, so a first frame can take a while.
const DEFAULT_START_TIMEOUT_MS = 20_000;
// EOS and errors are posted right after the appsink runs dry; waiting longer means
// GStreamer stopped without either.
const TERMINAL_TIMEOUT_MS = 5_000;
// The probe branch gets each buffer just after the appsink (same streaming thread), so its
// sample is there within microseconds; this bound only trips when something is broken.
const PROBE_TIMEOUT_MS = 1_000;
const PROBE_POLL_MS = 2;

class Run {
  runner: GstRunner | null = null;
  probe: GstElementHandle | undefined = undefined;
  closed = false;
  transform: LetterboxTransform | null = null;
  /** Frame index since the pipeline (re)started or looped: pts for every-frame sources. */
  indexInPass = 0;
  /** nominal frame rate of the last frame's caps */
  fps: number | null = null;
  /** when this pass's first frame came (nowMs clock); a seek to the start begins a new pass */
  passStartMs: number | null = null;
  readonly startedMs: number;
  firstFrameMs: number | null = null;
  lastFrameMs: number | null = null;
  eosSeen = false;
  drained = false;
  /** waiting on whenConsumerReady: a silence that is ours, not the source's */
  awaitingConsumer = false;
  terminalTimer: NodeJS.Timeout | null = null;
  watchdog: NodeJS.Timeout | null = null;
  released: Promise<void> = Promise.resolve();

  constructor(startedMs: number) {
    this.startedMs = startedMs;
  }
}

/** `perceptd soak --faults`' camera stall, on demand; null unless asked for by the environment. */
const cameraFaults = faultTriggersFromEnv();

function rethrowLater(err: unknown): void {
  // A throwing consumer is a bug to surface, like a throwing EventEmitter listener, but it
  // must not leave this camera's pull loop or restart logic half-done.
  setImmediate(() => {
    throw err;
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class CameraSource {
  readonly id: string;
  private readonly camera: CameraSpec;
  private readonly target: TargetSize;
  private readonly opts: CameraSourceOptions;
  private readonly clock: () => bigint;
  private readonly desc: PipelineDescription;
  /** Prefix of every message: camera id and source. */
  private readonly where: string;
  private readonly healthyAfterMs: number;
  private readonly stallTimeoutMs: number;
  private readonly startTimeoutMs: number;

  private state: CameraState = "starting";
  private started = false;
  private received = 0;
  private restarts = 0;
  private errors = 0;
  private loops = 0;
  private attempt = 0;
  private run: Run | null = null;
  /** Runs whose pipeline may still hold threadpool threads. */
  private readonly live = new Set<Run>();
  private restartTimer: NodeJS.Timeout | null = null;
  private releaseThreads: (() => void) | null = null;
  private stopping: Promise<void> | null = null;
  private lastTransform: LetterboxTransform | null = null;
  /** until when an injected camera-stall fault holds frames back (nowMs clock); see injectedStall */
  private stalledUntilMs = 0;

  /** Throws (RangeError) when the source cannot be described, e.g. a bad testsrc pattern. */
  constructor(camera: CameraSpec, target: TargetSize, opts: CameraSourceOptions) {
    this.id = camera.id;
    this.camera = camera;
    this.target = { width: target.width, height: target.height, resize: target.resize };
    this.opts = opts;
    this.clock = opts.clock ?? process.hrtime.bigint;
    this.where = `camera ${camera.id} (${describeSource(camera.source)})`;
    try {
      this.desc = describePipeline(camera.source, this.target);
    } catch (err) {
      throw new RangeError(`${this.where}: ${errorText(err)}`, { cause: err });
    }
    this.healthyAfterMs = opts.healthyAfterMs ?? DEFAULT_HEALTHY_AFTER_MS;
    this.stallTimeoutMs = opts.stallTimeoutMs ?? camera.restart.stallTimeoutMs;
    this.startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  }

  /** The launch description, for logs. */
  get description(): string {
    return this.desc.description;
  }

  /**
   * Source-to-model geometry of the latest pipeline that delivered a frame (null before
   * the first). Each Frame carries its own copy; prefer that for anything frame-specific.
   */
  get transform(): LetterboxTransform | null {
    return this.lastTransform === null ? null : { ...this.lastTransform };
  }

  stats(): CameraStats {
    return { received: this.received, restarts: this.restarts, errors: this.errors, loops: this.loops, state: this.state };
  }

  /**
   * Starts the pipeline; frames and events follow asynchronously, never from inside this
   * call. Throws when the libuv threadpool has no room for another camera: each camera
   * holds THREADS_PER_CAMERA threads while it runs, and one must stay free.
   */
  start(): void {
    if (this.started) throw new Error(`${this.where}: start() called twice`);
    if (this.stopping !== null) throw new Error(`${this.where}: start() after stop()`);
    this.releaseThreads = reserveGstThreads(THREADS_PER_CAMERA, (pool, reserved) => {
      const cameras = Math.ceil(reserved / THREADS_PER_CAMERA) + 1;
      return (
        `${this.where}: cannot start: UV_THREADPOOL_SIZE=${pool} and ${reserved} libuv threadpool thread(s) are ` +
        `already held by running GStreamer pipelines; this camera needs ${THREADS_PER_CAMERA} more (bus poll and ` +
        `appsink pull) with one left free. Set UV_THREADPOOL_SIZE=${requiredThreadpoolSize(cameras)} (2 per camera ` +
        `+ 4) in the environment before node starts; it cannot be changed once the process runs`
      );
    });
    this.started = true;
    this.launch();
  }

  /** Pipeline to NULL; resolves when no GStreamer work for this camera is left. */
  stop(): Promise<void> {
    if (this.stopping !== null) return this.stopping;
    // A source that ended by itself keeps saying so: the last health message tells a
    // finished replay (ENDED) from a camera the shutdown stopped (STOPPED).
    if (this.state !== "ended") this.state = "stopped";
    if (this.restartTimer !== null) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
    if (this.run !== null) this.closeRun(this.run);
    this.run = null;
    this.stopping = Promise.all([...this.live].map((r) => r.released)).then(() => this.maybeReleaseThreads());
    return this.stopping;
  }

  private nowMs(): number {
    return Number(this.clock() / 1_000_000n);
  }

  private emit(e: CameraEvent): void {
    try {
      this.opts.onEvent(e);
    } catch (err) {
      rethrowLater(err);
    }
  }

  private ended(): boolean {
    return this.state === "stopped" || this.state === "ended";
  }

  private launch(): void {
    const run = new Run(this.nowMs());
    this.run = run;
    this.state = "starting";
    let runner: GstRunner;
    try {
      runner = new GstRunner(this.desc.description, this.where, ELEMENTS.sink, this.desc.properties);
    } catch (err) {
      // start() promises no callbacks from inside itself.
      setImmediate(() => this.fail(run, errorText(err)));
      return;
    }
    run.runner = runner;
    run.probe = runner.findChild(ELEMENTS.probe);
    this.live.add(run);
    runner.start({
      onEos: () => this.onEos(run),
      onError: (text) => this.fail(run, `${this.where}: ${text}`),
    });
    this.armWatchdog(run);
    void this.pullLoop(run, runner);
  }

  private async pullLoop(run: Run, runner: GstRunner): Promise<void> {
    for (;;) {
      const ready = this.desc.everyFrame ? (this.opts.whenConsumerReady?.() ?? null) : null;
      if (ready !== null) {
        run.awaitingConsumer = true;
        await ready;
        run.awaitingConsumer = false;
        if (run.closed) return;
        // The stall clock restarts from the moment we ask again.
        if (run.lastFrameMs !== null) run.lastFrameMs = this.nowMs();
      }
      await this.injectedStall(run);
      if (run.closed) return;
      const sample = await runner.pull();
      if (run.closed) return;
      if (sample === null) {
        this.onDrained(run);
        return;
      }
      const tIngestNs = this.clock();
      const seq = this.received++;
      if (run.transform === null) {
        const error = await this.resolveTransform(run);
        if (run.closed) return;
        if (error !== null) {
          this.fail(run, error);
          return;
        }
      }
      let frame: Frame;
      try {
        frame = this.toFrame(run, sample, seq, tIngestNs);
      } catch (err) {
        this.fail(run, errorText(err));
        return;
      }
      this.noteFrame(run);
      if (run.closed) return;
      try {
        this.opts.onFrame(frame);
      } catch (err) {
        rethrowLater(err);
      }
      if (run.closed) return;
    }
  }

  /**
   * TEST-ONLY (src/util/fault-trigger.ts): a camera-stall fault holds this camera's frames
   * back until it ends, across pipeline restarts, as a camera that stops delivering would.
   * A no-op unless PERCEPTD_TEST_FAULT_DIR is set.
   */
  private async injectedStall(run: Run): Promise<void> {
    if (cameraFaults === null) return;
    const asked = cameraFaults.take(faultTriggerName.cameraStall(this.id));
    if (asked !== null) this.stalledUntilMs = Math.max(this.stalledUntilMs, this.nowMs() + asked);
    while (!run.closed && this.stalledUntilMs > this.nowMs()) await new Promise((r) => setTimeout(r, Math.max(1, Math.min(50, this.stalledUntilMs - this.nowMs()))));
  }

  private noteFrame(run: Run): void {
    const now = this.nowMs();
    run.lastFrameMs = now;
    if (run.firstFrameMs === null) {
      run.firstFrameMs = now;
      this.state = "running";
      const t = run.transform;
      if (t !== null) this.emit({ type: "running", camera: this.id, sourceWidth: t.srcWidth, sourceHeight: t.srcHeight });
    } else if (this.attempt > 0 && now - run.firstFrameMs >= this.healthyAfterMs) {
      this.attempt = 0;
    }
  }

  /** Reads the source size from the probe branch; returns an error message or null. */
  private async resolveTransform(run: Run): Promise<string | null> {
    const probe = run.probe;
    if (probe === undefined) return `${this.where}: GStreamer pipeline has no ${ELEMENTS.probe} element`;
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    for (;;) {
      const source = readProbe(probe);
      if (source !== null) {
        // Holding on to the sample would keep one source buffer (maybe from a camera's
        // small driver pool) referenced for the whole run.
        probe["enable-last-sample"] = false;
        try {
          run.transform = tailTransform(source, this.target);
          this.lastTransform = run.transform;
        } catch (err) {
          return `${this.where}: source frame ${source.width}x${source.height}: ${errorText(err)}`;
        }
        return null;
      }
      if (Date.now() >= deadline) {
        return `${this.where}: could not read the source frame size from ${ELEMENTS.probe} within ${PROBE_TIMEOUT_MS} ms`;
      }
      await new Promise((r) => setTimeout(r, PROBE_POLL_MS));
      if (run.closed) return null;
    }
  }

  private toFrame(run: Run, sample: RunnerSample, seq: number, tIngestNs: bigint): Frame {
    const { width, height } = this.target;
    const { caps } = sample;
    if (caps.format !== "RGB" || caps.width !== width || caps.height !== height) {
      throw new Error(`${this.where}: appsink delivered ${JSON.stringify(caps)}, expected ${width}x${height} RGB`);
    }
    // Transferred to the inference worker, so the pixels must own their ArrayBuffer.
    const pixels = packRgb(sample.buf, width, height, `${this.where}: frame ${seq}`, true);
    const fps = parseFramerate(caps.framerate);
    run.fps = fps;
    if (run.indexInPass === 0) run.passStartMs = this.nowMs();
    // Without buffer timestamps from the binding, pts is only known where no frame can be
    // dropped: index / nominal rate.
    const ptsNs = this.desc.everyFrame && fps !== null ? Math.round((run.indexInPass * 1e9) / fps) : null;
    run.indexInPass++;
    const transform = run.transform as LetterboxTransform;
    return { camera: this.id, seq, tIngestNs, ptsNs, pixels, width, height, transform: { ...transform } };
  }

  private onDrained(run: Run): void {
    run.drained = true;
    if (run.eosSeen) {
      this.onEndOfStream(run);
      return;
    }
    // An error is on its way (the runner has stopped the pipeline) or EOS is, unless
    // GStreamer misbehaves.
    run.terminalTimer = setTimeout(() => {
      run.terminalTimer = null;
      this.fail(run, `${this.where}: GStreamer stopped delivering frames without EOS or an error within ${TERMINAL_TIMEOUT_MS} ms`);
    }, TERMINAL_TIMEOUT_MS);
  }

  private onEos(run: Run): void {
    if (run.closed) return;
    run.eosSeen = true;
    if (run.drained) this.onEndOfStream(run);
  }

  /** EOS seen on the bus and the appsink has run dry. */
  private onEndOfStream(run: Run): void {
    if (run.closed) return;
    if (run.terminalTimer !== null) {
      clearTimeout(run.terminalTimer);
      run.terminalTimer = null;
    }
    const source = this.camera.source;
    if (source.type === "file" && this.loops === 0) this.checkReplayLength(run, source.path, source.realtime);
    if (source.type === "file" && source.loop) {
      if (run.indexInPass === 0) {
        // Looping a file that yields nothing would spin forever.
        this.fail(run, `${this.where}: reached the end without a single video frame; not looping`);
        return;
      }
      this.loops++;
      const runner = run.runner as GstRunner;
      if (runner.seekToStart()) {
        run.eosSeen = false;
        run.drained = false;
        run.indexInPass = 0;
        this.emit({ type: "loop", camera: this.id, loops: this.loops, method: "seek" });
        if (!run.closed) void this.pullLoop(run, runner);
        return;
      }
      this.closeRun(run);
      this.emit({ type: "loop", camera: this.id, loops: this.loops, method: "rebuild" });
      if (!this.ended()) this.launch();
      return;
    }
    this.closeRun(run);
    this.emit({ type: "eos", camera: this.id });
    if (this.ended()) return;
    if (this.desc.restartOnEos) this.scheduleRestart();
    else this.end("eos");
  }

  /** At the end of a file's first pass: a "truncated" event when it ended short of its container's length. */
  private checkReplayLength(run: Run, path: string, paced: boolean): void {
    const runner = run.runner as GstRunner;
    const early = replayEndedEarly({
      frames: run.indexInPass,
      fps: run.fps,
      pacedSpanS: paced && run.passStartMs !== null && run.lastFrameMs !== null ? (run.lastFrameMs - run.passStartMs) / 1000 : null,
      durationS: runner.durationSeconds(),
      aviFrames: aviDeclaredFramesOf(path),
    });
    if (early !== null) this.emit({ type: "truncated", camera: this.id, path, frames: run.indexInPass, ...early });
  }

  private fail(run: Run, message: string): void {
    if (run.closed || this.ended()) return;
    this.closeRun(run);
    this.errors++;
    this.emit({ type: "error", camera: this.id, message });
    if (this.ended()) return;
    if (this.desc.live) this.scheduleRestart();
    else this.end("error", message);
  }

  private scheduleRestart(): void {
    this.attempt++;
    const delayMs = nextBackoffMs(this.camera.restart, this.attempt, this.opts.random);
    this.restarts++;
    this.state = "restarting";
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state === "restarting") this.launch();
    }, delayMs);
    this.emit({ type: "restart", camera: this.id, attempt: this.attempt, delayMs });
  }

  private end(reason: "eos" | "error", detail?: string): void {
    this.state = "ended";
    this.run = null;
    void Promise.all([...this.live].map((r) => r.released)).then(() => this.maybeReleaseThreads());
    this.emit(detail === undefined ? { type: "ended", camera: this.id, reason } : { type: "ended", camera: this.id, reason, detail });
  }

  private closeRun(run: Run): void {
    if (run.closed) return;
    run.closed = true;
    if (run.terminalTimer !== null) clearTimeout(run.terminalTimer);
    if (run.watchdog !== null) clearInterval(run.watchdog);
    run.terminalTimer = null;
    run.watchdog = null;
    const runner = run.runner;
    if (runner === null) return;
    runner.stop();
    run.released = runner.released().then(() => {
      this.live.delete(run);
    });
  }

  private maybeReleaseThreads(): void {
    if (this.live.size === 0 && this.ended() && this.releaseThreads !== null) {
      this.releaseThreads();
      this.releaseThreads = null;
    }
  }

  /**
   * Checks now and then that frames keep coming. A stalled source (an RTSP server that
   * stops sending without closing) posts no error, and its pull would hold a threadpool
   * thread forever; restarting frees it.
   */
  private armWatchdog(run: Run): void {
    const limits = [this.startTimeoutMs, this.stallTimeoutMs].filter((ms) => ms > 0);
    if (limits.length === 0) return;
    const period = Math.max(10, Math.min(1_000, Math.floor(Math.min(...limits) / 4)));
    run.watchdog = setInterval(() => {
      if (this.overdue(run) === null) return;
      // Timers run before completed threadpool work is dispatched, so after an event-loop
      // pause a frame may be waiting right behind this timer; look again after it.
      setImmediate(() => {
        const overdue = this.overdue(run);
        if (overdue !== null && !run.closed) this.fail(run, overdue);
      });
    }, period);
    run.watchdog.unref();
  }

  private overdue(run: Run): string | null {
    if (run.closed || run.drained || run.eosSeen || run.awaitingConsumer) return null;
    const now = this.nowMs();
    if (run.lastFrameMs === null) {
      if (this.startTimeoutMs > 0 && now - run.startedMs > this.startTimeoutMs) {
        return `${this.where}: no frame within ${this.startTimeoutMs} ms of starting the pipeline`;
      }
    } else if (this.stallTimeoutMs > 0 && now - run.lastFrameMs > this.stallTimeoutMs) {
      return `${this.where}: no frame for ${this.stallTimeoutMs} ms`;
    }
    return null;
  }
}
