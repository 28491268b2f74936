// The health stage in one object, for the daemon: the state machine, every monitor built
// from config.health, the health tick (publishHz) that runs the timed checks, and the
// systemd side (READY/STOPPING/STATUS, the watchdog fed by policy). The daemon feeds it what
// it sees and acts on two callbacks: replace a worker, give up. Each monitor is usable on
// its own too (monitors.ts); this only saves every caller the same wiring.
//
// Life cycle, in the daemon's start order:
//   new HealthSupervisor(...) and start()   first thing: the watchdog is fed from here on,
//                                           through the minutes a TensorRT engine build takes
//   attachInference(...)                    once the pool is warm
//   camerasStarted()                        right after the cameras' start()
//   markReady()                             READY=1
//   markStopping()                          STOPPING=1, first thing in stop()
//   close()                                 timers off, last thing in stop()
import type { CameraEvent } from "../core/camera-event.ts";
import {
  CameraStallMonitor,
  EventLoopLagMonitor,
  FreshnessMonitor,
  InferenceHangMonitor,
  InferenceOverrunMonitor,
  PublishFailureMonitor,
  type Clock,
  type DelaySource,
  type FreshnessVerdict,
  type HangAction,
  type LagSample,
} from "./monitors.ts";
import { HealthStateMachine, statusLine, type HealthSnapshot, type HealthTransition, type ReasonChange } from "./state.ts";
import { SystemdNotifier, WatchdogFeeder } from "./systemd.ts";

/** Exit status after the monitors gave up (EX_SOFTWARE): not 78, so systemd restarts the daemon. */
export const EXIT_HEALTH_GAVE_UP = 70;

/** publish_failure stays raised this long after the last drop (see PublishFailureMonitor). */
const PUBLISH_FAILURE_HOLD_MS = 1000;

export interface SupervisedWorker {
  name: string;
}

export interface InferenceAttachment {
  /** pool lanes in order: pool.stats().workers (the name is read) */
  workers: readonly SupervisedWorker[];
  /** which lanes are inside a request now: () => pool.stats().workers.map((w) => w.busy) */
  busy: () => readonly boolean[];
  /** (i) => pool.replaceWorker(i) */
  replaceWorker: (index: number) => Promise<unknown>;
}

export type ReplacementEvent =
  | { outcome: "started"; worker: number; name: string; why: string }
  | { outcome: "succeeded"; worker: number; name: string }
  | { outcome: "failed"; worker: number; name: string; error: string };

/**
 * The thresholds the supervisor and its monitors run on: the daemon passes the `health`
 * section of its configuration (src/config/schema.ts documents each key and its bounds).
 */
export interface HealthThresholds {
  cameraStallMs: number;
  inferenceDeadlineMs: number;
  overrunWindow: number;
  overrunThreshold: number;
  inferenceHangMs: number;
  maxWorkerReplacements: number;
  replacementWindowMs: number;
  workerRestartTimeoutMs: number;
  eventLoopLagMs: number;
  eventLoopSampleMs: number;
  latencyBudgetMs: number;
  publishHz: number;
  systemdWatchdog: "auto" | "off";
}

export interface HealthSupervisorOptions {
  config: HealthThresholds;
  cameras: readonly string[];
  /**
   * The monitors gave up (workers could not be brought back): stop and exit with
   * EXIT_HEALTH_GAVE_UP so systemd restarts the process. Called once.
   */
  onGiveUp: (why: string) => void;
  /** log it, count it (perceptd_health_transitions_total{from,to}), set the state gauge */
  onTransition?: (t: HealthTransition) => void;
  /** a reason raised or cleared while the state stays (log it) */
  onReasonChange?: (c: ReasonChange) => void;
  /** at config.publishHz: publish the health message */
  onPublish?: (s: HealthSnapshot) => void;
  /** worker replacements (log, perceptd_inference_worker_replacements_total) */
  onReplacement?: (e: ReplacementEvent) => void;
  /** each event-loop sample (a gauge, if wanted) */
  onLagSample?: (s: LagSample) => void;
  /** default SystemdNotifier.fromEnv() honouring config.systemdWatchdog */
  notifier?: SystemdNotifier;
  clock?: Clock;
  wallClock?: () => number;
  /** event-loop delay source (tests) */
  lagSource?: DelaySource;
}

export class HealthSupervisor {
  readonly machine: HealthStateMachine;
  readonly cameras: CameraStallMonitor;
  readonly overrun: InferenceOverrunMonitor;
  readonly freshness: FreshnessMonitor;
  readonly lag: EventLoopLagMonitor;
  readonly publishFailures: PublishFailureMonitor;
  readonly notifier: SystemdNotifier;
  readonly watchdog: WatchdogFeeder;

  private readonly opts: HealthSupervisorOptions;
  private readonly clock: Clock;
  private inference: InferenceAttachment | null = null;
  private hangMonitor: InferenceHangMonitor | null = null;
  private timer: NodeJS.Timeout | null = null;
  private gaveUp = false;
  private closed = false;

  constructor(opts: HealthSupervisorOptions) {
    const c = opts.config;
    this.opts = opts;
    this.clock = opts.clock ?? (() => performance.now());
    this.notifier = opts.notifier ?? SystemdNotifier.fromEnv({ watchdog: c.systemdWatchdog === "auto" });
    this.watchdog = new WatchdogFeeder(this.notifier, { clock: this.clock });
    this.machine = new HealthStateMachine({
      clock: this.clock,
      wallClock: opts.wallClock,
      onReasonChange: opts.onReasonChange,
      onTransition: (t) => {
        // systemctl status shows why; the datagram is tiny and transitions are rare.
        this.notifier.status(statusLine(t.to, t.reasons));
        opts.onTransition?.(t);
      },
    });
    const sink = this.machine;
    this.cameras = new CameraStallMonitor(sink, { cameras: opts.cameras, stallMs: c.cameraStallMs, clock: this.clock });
    this.overrun = new InferenceOverrunMonitor(sink, { deadlineMs: c.inferenceDeadlineMs, window: c.overrunWindow, threshold: c.overrunThreshold });
    this.freshness = new FreshnessMonitor(sink, { budgetMs: c.latencyBudgetMs, window: c.overrunWindow, threshold: c.overrunThreshold });
    this.lag = new EventLoopLagMonitor(sink, { limitMs: c.eventLoopLagMs, sampleMs: c.eventLoopSampleMs, source: opts.lagSource, onSample: opts.onLagSample });
    this.publishFailures = new PublishFailureMonitor(sink, { holdMs: PUBLISH_FAILURE_HOLD_MS, clock: this.clock });
  }

  get state(): HealthSnapshot["state"] {
    return this.machine.state;
  }

  /** The state and its active reasons now. */
  snapshot(): HealthSnapshot {
    return this.machine.snapshot();
  }

  /** Null until attachInference(). */
  get hang(): InferenceHangMonitor | null {
    return this.hangMonitor;
  }

  /** Starts the health tick (publishHz) and the event-loop sampler; feeds the watchdog from now on. */
  start(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setInterval(() => this.tick(), 1000 / this.opts.config.publishHz);
    // The daemon's own handles keep the process alive; health must not keep a stopped one.
    this.timer.unref();
    this.lag.start();
    this.watchdog.feed(this.machine.state);
  }

  /** The pool is warm: watch its workers for hangs and deaths. */
  attachInference(a: InferenceAttachment): void {
    const c = this.opts.config;
    this.inference = a;
    this.hangMonitor = new InferenceHangMonitor(this.machine, {
      workers: a.workers.map((w) => w.name),
      hangMs: c.inferenceHangMs,
      maxReplacements: c.maxWorkerReplacements,
      replacementWindowMs: c.replacementWindowMs,
      replaceTimeoutMs: c.workerRestartTimeoutMs,
      clock: this.clock,
    });
  }

  /** The cameras' start() has been called: stalls count from now. */
  camerasStarted(): void {
    this.cameras.begin();
  }

  /** Start-up complete: leave STARTING and tell systemd (READY=1 with the status and `extra`, see READY_FIELDS). */
  markReady(extra: Readonly<Record<string, string>> = {}): void {
    this.machine.markReady();
    this.notifier.ready(statusLine(this.machine.state, this.machine.reasons()), extra);
  }

  /** Shutdown began: STOPPING, and STOPPING=1 to systemd. The tick keeps feeding the watchdog until close(). */
  markStopping(why?: string): void {
    // The cameras are about to be stopped on purpose: their silence is no stall.
    this.cameras.stopWatching();
    this.machine.markStopping();
    this.notifier.stopping(why === undefined ? "stopping" : `stopping: ${why}`);
  }

  /** Stops every timer. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.lag.stop();
  }

  // ---- feeds ---------------------------------------------------------------------------

  /** Every frame ingest hands over (daemon onFrame). */
  frame(camera: string): void {
    this.cameras.frame(camera);
  }

  /** Every camera event (daemon onCameraEvent). */
  cameraEvent(e: CameraEvent): void {
    this.cameras.event(e);
  }

  /**
   * Right before a result is encoded: whether it is fresh enough, i.e. the message's
   * valid flag (see FreshnessMonitor for why stale results are flagged, not dropped).
   */
  checkFreshness(camera: string, tIngestNs: bigint, tPublishNs: bigint): FreshnessVerdict {
    return this.freshness.check(camera, tIngestNs, tPublishNs);
  }

  /**
   * Every result (pool onResult, with the index of the worker that ran it): progress for
   * that worker, and its worker time against the deadline. Returns true when the frame
   * overran (perceptd_inference_overruns_total).
   */
  result(r: { camera: string; timings: { preprocessMs: number; inferenceMs: number; decodeMs: number } }, worker: number): boolean {
    // Before attachInference there is no monitor; a replay's camera can have several workers, so the pool names the one.
    this.hangMonitor?.progress(worker);
    return this.overrun.frame(r.camera, r.timings.preprocessMs + r.timings.inferenceMs + r.timings.decodeMs);
  }

  /** Every pool error (onError): a failed frame is progress; a fatal one means the worker is gone. */
  inferenceError(e: { worker: number; fatal: boolean; error: Error }): void {
    const hang = this.hangMonitor;
    if (hang === null) return;
    if (!e.fatal) {
      hang.progress(e.worker);
      return;
    }
    for (const a of hang.workerDied(e.worker, e.error.message)) this.act(a);
  }

  /** The bus dropped a message of a topic (BusPublisher onDrop, next to the metrics hook). */
  busDropped(topic: string): void {
    this.publishFailures.dropped(topic);
  }

  /** The health tick: timed checks, hang sampling, the watchdog, the health message. Public for tests. */
  tick(): void {
    this.cameras.tick();
    this.publishFailures.tick();
    const hang = this.hangMonitor;
    if (hang !== null && this.inference !== null) for (const a of hang.sample(this.inference.busy())) this.act(a);
    this.watchdog.feed(this.machine.state);
    this.publishNow();
  }

  /**
   * The health message now, outside the tick: for a state that must reach the bus before
   * what follows it (a camera that failed, the FAULT of giving up) replaces it.
   */
  publishNow(): void {
    this.opts.onPublish?.(this.machine.snapshot());
  }

  private act(a: HangAction): void {
    if (a.type === "give-up") {
      if (this.gaveUp) return;
      this.gaveUp = true;
      // FAULT (worker_failed) goes out before onGiveUp's stop turns the state to STOPPING,
      // so the bus says why the daemon is about to go away.
      this.publishNow();
      this.opts.onGiveUp(a.why);
      return;
    }
    const inference = this.inference;
    const hang = this.hangMonitor;
    if (inference === null || hang === null) return;
    const name = inference.workers[a.worker]?.name ?? String(a.worker);
    this.opts.onReplacement?.({ outcome: "started", worker: a.worker, name, why: a.why });
    let replacing: Promise<unknown>;
    try {
      replacing = inference.replaceWorker(a.worker);
    } catch (err) {
      replacing = Promise.reject(err);
    }
    replacing.then(
      () => {
        hang.replacementSucceeded(a.worker);
        this.opts.onReplacement?.({ outcome: "succeeded", worker: a.worker, name });
      },
      (err: unknown) => {
        const error = err instanceof Error ? err.message : String(err);
        this.opts.onReplacement?.({ outcome: "failed", worker: a.worker, name, error });
        // After close() (the pool is closing too) a failed replacement is expected: no retry.
        if (this.closed) return;
        for (const next of hang.replacementFailed(a.worker, error)) this.act(next);
      },
    );
  }
}
