// The daemon: wires cameras -> inference pool -> bus, with metrics watching every stage.
// A thin loop around the stages; each stage lives in its own folder and knows nothing of
// the others. Start order makes "ready" mean ready: model verified and warm, bus bound,
// metrics serving, then cameras. Stop order loses nothing already computed: cameras stop,
// the frame in flight finishes and is published, the bus is flushed.
import type { Logger } from "pino";
import { BusPublisher } from "../bus/publisher.ts";
import { warmUpBus } from "../bus/warmup.ts";
import { chooseModel, modelProviderMismatch, type ModelChoice } from "../config/model-choice.ts";
import type { Config } from "../config/schema.ts";
import { planReload } from "../config/reload.ts";
import { InferencePool, resolveReplayWorkers } from "../infer/inference-pool.ts";
import { classIdsForLabels, type InferResult } from "../infer/inference-worker.ts";
import { providerOptionsNotice } from "../infer/provider-options.ts";
import type { DetectSettings } from "../infer/worker-protocol.ts";
import { CameraSource } from "../ingest/camera-source.ts";
import type { CameraEvent } from "../core/camera-event.ts";
import { waitsForConsumer } from "../ingest/pipeline-description.ts";
import type { Frame } from "../core/frame.ts";
import { requiredThreadpoolSize, threadpoolSize } from "../ingest/threadpool.ts";
import { createMetrics, type Metrics } from "../metrics/metrics.ts";
import { startMetricsServer, type Health, type MetricsServer } from "../metrics/server.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel, resolveModel, type ResolvedModel } from "../infer/manifest.ts";
import { HealthSupervisor, EXIT_HEALTH_GAVE_UP } from "../health/supervisor.ts";
import { READY_FIELDS } from "../health/systemd.ts";
import { describeReason, type HealthSnapshot } from "../health/state.ts";
import { toWireHealthState, type CameraHealthState } from "../bus/codec.ts";
import { TOPIC_NAMES } from "../bus/topics.ts";
import { ALERT_KIND_NAMES, ALERT_LEVEL_NAMES } from "../perception/alerts.ts";
import { LatencyWindow, RateMeter } from "./latency-window.ts";
import { HazardStage } from "./hazard-stage.ts";
import { ViewStage } from "./view-stage.ts";
import { PHASE_LOG } from "./log-messages.ts";
import { HEALTH_STATES } from "../core/health.ts";

/** "source-failed": every camera ended and at least one ended on an error (an unreadable replay). */
export type StopReason = "signal" | "end-of-stream" | "source-failed" | "fatal";

/** Exit status when the health monitors gave up (workers could not be brought back). */
export const EXIT_FATAL = EXIT_HEALTH_GAVE_UP;

/** Exit status when a source that is not restarted failed (EX_NOINPUT): the run did not do what it was asked. */
export const EXIT_SOURCE_FAILED = 66;

export interface DaemonStatus {
  uptimeS: number;
  ingested: number;
  processed: number;
  dropped: number;
  /** processed frames per second over the last status interval */
  fps: number;
  e2eP50Ms: number;
  e2eP99Ms: number;
  inferenceP50Ms: number;
  /** objects by class in the most recent result of each camera */
  objects: Record<string, number>;
  cameras: { id: string; state: string; restarts: number }[];
}

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  /** default true; tests that run several daemons turn off the process metrics */
  defaultMetrics?: boolean;
  /**
   * Aborts the start (a SIGINT/SIGTERM during start-up): what has started is closed, a
   * STOPPING health message goes out if the bus was bound, and start() rejects with
   * StartAborted. Checked between the steps; a warm-up ends at its next run.
   */
  signal?: AbortSignal;
  /** Called once when the orderly stop begins, whatever began it. */
  onStopping?: (reason: StopReason) => void;
}

/** Daemon.start() was aborted through its signal: a clean stop during start-up, not a failure. */
export class StartAborted extends Error {
  override readonly name = "StartAborted";
}

interface CameraState {
  source: CameraSource;
  ended: false | "eos" | "error";
  lastObjects: Record<string, number>;
}

export class Daemon {
  readonly model: ResolvedModel;
  readonly metrics: Metrics;
  /** bound bus endpoints (real ports) */
  readonly endpoints: readonly string[];
  readonly metricsUrl: string | null;
  /** resolves when the daemon has stopped, with why */
  readonly stopped: Promise<StopReason>;

  private readonly log: Logger;
  private readonly cameras = new Map<string, CameraState>();
  private readonly e2e = new LatencyWindow();
  private readonly inference = new LatencyWindow();
  private readonly startedAt = process.hrtime.bigint();
  private readonly rate = new RateMeter(2000);
  private readonly processedBy = new Map<string, number>();
  private readonly rateBy = new Map<string, RateMeter>();
  private counts = { ingested: 0, processed: 0, dropped: 0 };
  private stopping: Promise<void> | undefined;
  private resolveStopped!: (r: StopReason) => void;
  /** tracking, distances and alerts per camera; publishes the alerts topic */
  private readonly hazard: HazardStage;
  /** the live view in the browser; null when view.enabled is false */
  private view: ViewStage | null = null;

  private constructor(
    private config: Config,
    logger: Logger,
    model: ResolvedModel,
    metrics: Metrics,
    private readonly bus: BusPublisher,
    private readonly server: MetricsServer | null,
    private pool: InferencePool | null,
    readonly supervisor: HealthSupervisor,
    private readonly onStopping?: (reason: StopReason) => void,
  ) {
    this.log = logger;
    this.model = model;
    this.metrics = metrics;
    this.endpoints = bus.endpoints;
    this.metricsUrl = server?.url ?? null;
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    this.hazard = new HazardStage({ config, bus, metrics, logger, health: () => supervisor.state });
  }

  /**
   * Start-up, in its steps: load and verify the model, create the metrics and the health
   * supervisor (first, so systemd's watchdog is fed while a long model load runs), serve
   * /metrics, bind the bus, start hazard assessment and the live view, start and warm the
   * inference workers, then the cameras, and report READY. An abort (SIGINT/SIGTERM) or a
   * failure on the way closes what has started.
   */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { config, logger, signal } = opts;
    const log = logger.child({ component: "daemon" });
    const checkAborted = (): void => {
      if (signal?.aborted) throw new StartAborted("stopped during start-up");
    };
    warnIfThreadpoolSmall(config, log);
    const { model, choice } = await loadModel(config);
    checkAborted();
    const settings = detectSettings(config, model);

    const metrics = createMetrics({
      labels: { topics: TOPIC_NAMES, alertKinds: ALERT_KIND_NAMES, alertLevels: ALERT_LEVEL_NAMES },
      defaultMetrics: opts.defaultMetrics ?? true,
    });
    for (const c of config.cameras) metrics.initCamera(c.id);

    let daemon: Daemon | undefined;
    const supervisor = Daemon.createSupervisor(config, log, metrics, () => daemon);
    supervisor.start();
    const server = config.metrics.enabled
      ? await startMetricsServer(metrics, {
          host: config.metrics.host,
          port: config.metrics.port,
          health: () => daemon?.health() ?? { status: "starting" },
        })
      : null;
    let bus: BusPublisher | undefined;
    try {
      checkAborted();
      const bound = await bindBus(config, log, metrics, supervisor, checkAborted);
      bus = bound.bus;
      log.info({ endpoints: bus.endpoints, metrics: server?.url ?? "off", model: model.name, busWarmupMs: Math.round(bound.warmupMs) }, PHASE_LOG.busBound);
      const d = new Daemon(config, logger, model, metrics, bus, server, null, supervisor, opts.onStopping);
      daemon = d;
      // From here on, so the alerts topic says "not valid" while the model loads rather than
      // staying silent.
      d.hazard.start();
      d.view = await ViewStage.start({ config, metrics, logger, alerts: () => d.hazard.current(supervisor.state === "ok") });
      checkAborted();
      await d.startInference(settings, signal);
      checkAborted();
      d.attachInference(choice, log);
      d.startCameras();
      supervisor.camerasStarted();
      supervisor.markReady({
        [READY_FIELDS.bus]: bus.endpoints.join(" "),
        [READY_FIELDS.metrics]: server?.url ?? "off",
        [READY_FIELDS.view]: d.view?.url ?? "off",
      });
      metrics.setReady(true);
      return d;
    } catch (e) {
      const aborted = e instanceof StartAborted || signal?.aborted === true;
      if (aborted) log.info("stopping during start-up");
      await Daemon.closeAfterFailedStart({ daemon, supervisor, bus, server, aborted });
      throw aborted && !(e instanceof StartAborted) ? new StartAborted("stopped during start-up", { cause: e }) : e;
    }
  }

  /** The health supervisor, logging and counting what it sees; `daemon` is there once the bus is bound. */
  private static createSupervisor(config: Config, log: Logger, metrics: Metrics, daemon: () => Daemon | undefined): HealthSupervisor {
    return new HealthSupervisor({
      config: config.health,
      cameras: config.cameras.map((c) => c.id),
      onGiveUp: (why) => {
        log.fatal({ why }, "health: giving up; exiting so the service manager restarts perceptd");
        void daemon()?.stop("fatal");
      },
      onTransition: (t) => {
        const level = t.to === "fault" ? "error" : t.to === "degraded" ? "warn" : "info";
        log[level]({ from: t.from, to: t.to, reasons: t.reasons.map(describeReason) }, `health: ${t.from} -> ${t.to}`);
        metrics.healthTransitions.inc({ from: t.from, to: t.to });
        for (const st of HEALTH_STATES) metrics.healthState.set({ state: st }, st === t.to ? 1 : 0);
      },
      onReasonChange: (c) => log.info({ change: c.change, state: c.state }, `health: ${c.change.kind} ${c.change.reason}`),
      onPublish: (snap) => daemon()?.publishHealth(snap),
      onReplacement: (e) => {
        log.warn({ replacement: e }, `inference worker ${e.name}: replacement ${e.outcome}`);
        metrics.workerReplacements.inc({ worker: e.name, outcome: e.outcome });
      },
    });
  }

  /** Starts and warms the inference workers (an abort ends a warm-up at its next run). */
  private async startInference(settings: DetectSettings, signal: AbortSignal | undefined): Promise<void> {
    const { config, model, supervisor } = this;
    const pool = await InferencePool.start({
      workerOptions: { signal: signal === undefined ? undefined : abortAs(signal, () => new StartAborted("stopped during start-up")) },
      init: {
        modelPath: model.path,
        modelName: model.name,
        entry: model.entry,
        executionProviders: config.inference.executionProviders,
        intraOpThreads: config.inference.intraOpThreads,
        interOpThreads: config.inference.interOpThreads,
        allowSpinning: config.inference.allowSpinning,
        tuning: config.inference,
        warmupRuns: config.inference.warmupRuns,
      },
      settings,
      cameras: config.cameras.map((c) => c.id),
      // Replays that wait for us lose nothing by queueing their next frame in the worker.
      queueAhead: config.cameras.filter((c) => waitsForConsumer(c.source)).map((c) => c.id),
      workers: config.inference.workers,
      replayWorkers: resolveReplayWorkers(config.inference.replayWorkers, config.inference.executionProviders),
      onResult: (r, worker) => this.onResult(r, worker),
      onDrop: (f, reason) => this.onDrop(f, reason),
      onError: (e) => {
        this.log.error({ err: e.error, fatal: e.fatal, camera: e.camera, seq: e.seq }, "inference failed");
        supervisor.inferenceError(e);
      },
    });
    this.pool = pool;
  }

  /**
   * The warm workers handed to the supervisor's hang watch, and what runs the model in the
   * metrics and the log: the provider, its options, and the model-warm line.
   */
  private attachInference(choice: ModelChoice, log: Logger): void {
    const pool = this.pool!;
    const workers = pool.stats().workers;
    this.supervisor.attachInference({
      workers,
      busy: () => pool.stats().workers.map((w) => w.busy),
      replaceWorker: (i) => pool.replaceWorker(i),
    });
    const worker = pool.workers[0];
    this.metrics.setModelInfo({
      model: this.model.name,
      executionProvider: worker.provider,
      providersTried: worker.tried.map((t) => t.provider),
      providerOptions: worker.providerOptions,
    });
    const notice = providerOptionsNotice(worker.providerOptions, this.config.inference.executionProviders);
    log[notice.level]({ providerOptions: worker.providerOptions }, notice.message);
    for (const w of worker.warnings) log.warn(w);
    const mismatch = modelProviderMismatch(choice, worker.provider);
    if (mismatch !== null) log.warn({ model: this.model.name, chosenFor: choice.provider, provider: worker.provider }, mismatch);
    log.info(
      {
        provider: worker.provider,
        tried: worker.tried,
        warmupMs: worker.warmupMs,
        layout: pool.layout,
        workers: workers.map((w) => ({ name: w.name, cameras: w.cameras, intraOpThreads: w.intraOpThreads })),
      },
      PHASE_LOG.modelWarm,
    );
  }

  /** Closes what a start that failed or was aborted had started, cameras first. */
  private static async closeAfterFailedStart(s: {
    daemon: Daemon | undefined;
    supervisor: HealthSupervisor;
    bus: BusPublisher | undefined;
    server: MetricsServer | null;
    aborted: boolean;
  }): Promise<void> {
    const { daemon, supervisor, bus, server, aborted } = s;
    // Subscribers that saw STARTING learn that the silence to come is intended.
    if (aborted && daemon !== undefined && bus !== undefined) {
      supervisor.markStopping("signal");
      supervisor.publishNow();
      await bus.flush(300);
    }
    // Cameras first: a camera that failed to start (its source, the threadpool) must not
    // leave the others running, and restarting, in a process whose bus is gone.
    if (daemon !== undefined) await Promise.all([...daemon.cameras.values()].map((c) => c.source.stop()));
    daemon?.hazard.dispose();
    await daemon?.pool?.close(1000);
    await daemon?.view?.close();
    supervisor.close();
    await bus?.close();
    await server?.close();
  }


  /** The live figures behind the status line and the health message. */
  status(): DaemonStatus {
    const now = process.hrtime.bigint();
    const objects: Record<string, number> = {};
    for (const c of this.cameras.values()) for (const [k, v] of Object.entries(c.lastObjects)) objects[k] = (objects[k] ?? 0) + v;
    return {
      uptimeS: Number(now - this.startedAt) / 1e9,
      ...this.counts,
      fps: this.rate.perSecond(),
      e2eP50Ms: this.e2e.percentile(0.5),
      e2eP99Ms: this.e2e.percentile(0.99),
      inferenceP50Ms: this.inference.percentile(0.5),
      objects,
      cameras: [...this.cameras.entries()].map(([id, c]) => ({ id, state: c.source.stats().state, restarts: c.source.stats().restarts })),
    };
  }

  health(): Health {
    const snap = this.supervisor.snapshot();
    return { status: snap.state, details: { reasons: snap.reasons.map(describeReason), model: this.model.name, cameras: this.status().cameras } };
  }

  /**
   * SIGHUP: takes up the changed keys the schema marks reloadable (src/config/reload.ts:
   * the model's post-processing and the log level) and reports the changed keys that need
   * a restart, which keep their running values. Throws, and changes nothing, when the new
   * settings are invalid for this model (a class it does not have).
   */
  reload(next: Config): { applied: string[]; needsRestart: string[] } {
    const plan = planReload(this.config, next);
    const settings = detectSettings(plan.next, this.model);
    this.pool?.setSettings(settings);
    this.log.level = plan.next.log.level;
    this.config = plan.next;
    return { applied: plan.applied, needsRestart: plan.needsRestart };
  }

  /** The health message, at health.publishHz, whatever the frames do. */
  publishHealth(snap: HealthSnapshot): void {
    const s = this.status();
    const finite = (v: number): number => (Number.isFinite(v) ? v : 0);
    const cameraState: Record<string, CameraHealthState> = {
      starting: "STATE_STARTING",
      running: "STATE_RUNNING",
      restarting: "STATE_RESTARTING",
      ended: "STATE_ENDED",
      stopped: "STATE_STOPPED",
    };
    try {
      const body = {
        state: toWireHealthState(snap.state),
        reasons: snap.reasons.map(describeReason),
        cameras: s.cameras.map((c) => {
          const st = this.cameras.get(c.id)!.source.stats();
          return {
            cameraId: c.id,
            state: cameraState[c.state] ?? "STATE_UNSPECIFIED",
            fps: this.rateBy.get(c.id)?.perSecond() ?? 0,
            restarts: c.restarts,
            framesIngested: BigInt(st.received),
            framesProcessed: BigInt(this.processedBy.get(c.id) ?? 0),
          };
        }),
        uptimeS: s.uptimeS,
        fps: finite(s.fps),
        latencyE2eP50Ms: finite(s.e2eP50Ms),
        latencyE2eP99Ms: finite(s.e2eP99Ms),
        latencyInferenceP50Ms: finite(s.inferenceP50Ms),
        framesIngested: BigInt(s.ingested),
        framesProcessed: BigInt(s.processed),
        framesDropped: BigInt(s.dropped),
        model: this.model.name,
        executionProvider: this.pool?.workers[0]?.provider ?? "",
      };
      this.bus.publishMessage("health", body);
      this.view?.health(body);
    } catch (e) {
      this.log.error({ err: e }, "health message could not be encoded");
    }
  }

  /**
   * Stops ingest, lets the frame in flight finish and go out on the bus, flushes the bus
   * and closes everything. Bounded: the whole stop takes well under two seconds unless a
   * model run itself is longer.
   */
  stop(reason: StopReason = "signal"): Promise<void> {
    this.stopping ??= (async () => {
      this.onStopping?.(reason);
      this.supervisor.markStopping(reason);
      this.metrics.setReady(false);
      this.log.info({ reason }, PHASE_LOG.stopping);
      await Promise.all([...this.cameras.values()].map((c) => c.source.stop()));
      // Every replay ended: its last frames are part of the run (a signal does not wait).
      if (reason === "end-of-stream") await this.pool?.settle(2000);
      await this.pool?.close(1000);
      // The last health message says STOPPING, so consumers know the silence that follows is
      // intended; its reasons are those still active (none after an orderly stop; the
      // camera_failed or worker_failed that ended the run otherwise).
      this.supervisor.publishNow();
      this.hazard.stop();
      this.supervisor.close();
      await this.bus.flush(300);
      await this.bus.close();
      await this.view?.close();
      await this.server?.close();
      this.log.info({ ...this.counts }, PHASE_LOG.stopped);
      this.resolveStopped(reason);
    })();
    return this.stopping;
  }

  private startCameras(): void {
    const { width, height, resize } = this.model.entry.input;
    for (const cam of this.config.cameras) {
      const log = this.log.child({ component: "ingest", camera: cam.id });
      const state: CameraState = {
        ended: false,
        lastObjects: {},
        source: new CameraSource(cam, { width, height, resize }, {
          onFrame: (f) => this.onFrame(f),
          onEvent: (e) => this.onCameraEvent(cam.id, e, log),
          whenConsumerReady: () => this.pool?.whenSlotFree(cam.id) ?? null,
        }),
      };
      this.cameras.set(cam.id, state);
      state.source.start();
    }
  }

  private onFrame(frame: Frame): void {
    if (this.stopping) return;
    this.counts.ingested++;
    this.supervisor.frame(frame.camera);
    this.metrics.framesIngested.inc({ camera: frame.camera });
    // Before submit: the pool takes the pixels away to the inference worker.
    this.view?.offerFrame(frame);
    this.pool?.submit(frame);
  }

  private onDrop(frame: Frame, reason: "replaced" | "closed"): void {
    this.counts.dropped++;
    this.metrics.frameDropped(frame.camera, reason === "closed" ? "shutdown" : "replaced");
    this.view?.offerDrop(frame);
  }

  private onCameraEvent(camera: string, e: CameraEvent, log: Logger): void {
    if (e.type === "truncated") {
      log.warn(
        { event: e },
        `camera ${camera}: ${e.path} ended after ${e.playedS.toFixed(1)} s (${e.frames} frames) of the ${e.declaredS.toFixed(1)} s its container declares; the file is cut short`,
      );
      this.metrics.replaysTruncated.inc({ camera });
    } else {
      const level = e.type === "error" ? "warn" : "info";
      log[level]({ event: e }, `camera ${camera}: ${e.type}`);
    }
    this.supervisor.cameraEvent(e);
    if (e.type === "restart") this.metrics.cameraRestarts.inc({ camera });
    if (e.type === "running") this.metrics.cameraUp.set({ camera }, 1);
    if (e.type === "error" || e.type === "restart" || e.type === "ended") this.metrics.cameraUp.set({ camera }, 0);
    if (e.type === "ended") {
      this.cameras.get(camera)!.ended = e.reason;
      // camera_failed (a FAULT) goes out now, before the stop below turns the state to STOPPING.
      if (e.reason === "error") this.supervisor.publishNow();
      // A replay that has ended ends the run once every camera is done.
      const all = [...this.cameras.values()];
      if (all.every((c) => c.ended !== false)) void this.stop(all.some((c) => c.ended === "error") ? "source-failed" : "end-of-stream");
    }
  }

  private onResult(r: InferResult, worker: number): void {
    const tPublish = process.hrtime.bigint();
    const { width, height } = this.sourceSize(r.camera, r);
    // Older than the latency budget: still published (the message is also the detector's
    // heartbeat, and trackers may use it) but flagged valid=false, never passed off as fresh.
    const { valid } = this.supervisor.checkFreshness(r.camera, r.tIngestNs, tPublish);
    // Tracking, distance, time to collision, corridor; alerts go out from there when they change.
    const detections = this.hazard.assess(r.camera, r.detections, { width, height }, r.tIngestNs, r.ptsNs);
    // The bus stamps counter, publish time and CRC (src/bus/codec.ts).
    this.bus.publishMessage(
      "detections",
      { model: this.model.name, frameWidthPx: width, frameHeightPx: height, detections },
      { cameraId: r.camera, frameSeq: r.seq, tIngestMonoNs: r.tIngestNs, valid },
    );
    if (!valid) this.metrics.detectionsStale.inc({ camera: r.camera });
    if (this.supervisor.result(r, worker)) this.metrics.inferenceOverruns.inc({ camera: r.camera });
    const tDone = process.hrtime.bigint();

    const m = this.metrics;
    const cam = r.camera;
    m.observeStage("ingest_to_worker", cam, r.timings.queueMs / 1e3);
    m.observeStage("preprocess", cam, r.timings.preprocessMs / 1e3);
    m.observeStage("inference", cam, r.timings.inferenceMs / 1e3);
    m.observeStage("decode", cam, r.timings.decodeMs / 1e3);
    m.observeStage("worker_to_main", cam, r.timings.handoffMs / 1e3);
    m.observeStageNs("publish", cam, tPublish, tDone);
    m.observeStageNs("end_to_end", cam, r.tIngestNs, tDone);
    m.framesProcessed.inc({ camera: cam });
    m.cameraUp.set({ camera: cam }, 1);
    const objects: Record<string, number> = {};
    for (const d of r.detections) {
      objects[d.label] = (objects[d.label] ?? 0) + 1;
      m.detections.inc({ camera: cam, class: d.label });
    }
    const state = this.cameras.get(cam);
    if (state) state.lastObjects = objects;
    this.counts.processed++;
    this.processedBy.set(cam, (this.processedBy.get(cam) ?? 0) + 1);
    this.rate.tick();
    let camRate = this.rateBy.get(cam);
    if (!camRate) this.rateBy.set(cam, (camRate = new RateMeter(2000)));
    camRate.tick();
    this.e2e.add(Number(tDone - r.tIngestNs) / 1e6);
    this.inference.add(r.timings.inferenceMs);
    this.view?.offerResult(cam, r.seq, detections, Number(tDone - r.tIngestNs) / 1e6);
  }

  /** Source frame size of a camera: boxes are in this space. */
  private sourceSize(camera: string, r: InferResult): { width: number; height: number } {
    const t = this.cameras.get(camera)?.source.transform;
    if (t) return { width: t.srcWidth, height: t.srcHeight };
    // No frame seen yet cannot happen for a result; keep the message well-formed anyway.
    void r;
    return { width: 0, height: 0 };
  }
}

/** GStreamer needs libuv threads per camera; too few stall it, which is worth a warning at start. */
function warnIfThreadpoolSmall(config: Config, log: Logger): void {
  const pool = threadpoolSize();
  const needed = requiredThreadpoolSize(config.cameras.length);
  if (pool < needed)
    log.warn({ UV_THREADPOOL_SIZE: pool, recommended: needed }, `UV_THREADPOOL_SIZE=${pool} is below the ${needed} recommended for ${config.cameras.length} camera(s); GStreamer may stall`);
}

/** The model the config chooses for its provider chain, resolved in its manifest and checked against its checksum. */
async function loadModel(config: Config): Promise<{ model: ResolvedModel; choice: ModelChoice }> {
  const manifestPath = config.model.manifest ?? DEFAULT_MANIFEST_PATH;
  const manifest = await readManifest(manifestPath);
  const choice = chooseModel(config);
  const model = resolveModel(manifest, manifestPath, choice.name);
  await readVerifiedModel(model);
  return { model, choice };
}

/** The bus, bound after a warm-up (so the first minute's messages go out as fast as later ones), its counters and drops wired. */
async function bindBus(config: Config, log: Logger, metrics: Metrics, supervisor: HealthSupervisor, checkAborted: () => void): Promise<{ bus: BusPublisher; warmupMs: number }> {
  const busWarmup = await warmUpBus();
  checkAborted();
  const bus = await BusPublisher.bind(config.bus.endpoints, {
    sendHighWaterMark: config.bus.sendHighWaterMark,
    curve: config.bus.curve,
    onAuth: (a) =>
      a.allowed
        ? log.info({ client: a.clientKey, address: a.address }, "bus: subscriber admitted")
        : log.warn({ client: a.clientKey, address: a.address, reason: a.reason, suppressed: a.suppressed }, "bus: subscriber refused"),
    onSent: metrics.busHooks().onSent,
    onDrop: (topic) => {
      metrics.busHooks().onDrop(topic);
      supervisor.busDropped(topic);
    },
  });
  return { bus, warmupMs: busWarmup.ms };
}

/** A signal that aborts with `reason()` when `signal` aborts, whatever reason that one carries. */
function abortAs(signal: AbortSignal, reason: () => Error): AbortSignal {
  const c = new AbortController();
  if (signal.aborted) c.abort(reason());
  else signal.addEventListener("abort", () => c.abort(reason()), { once: true });
  return c.signal;
}

/** The decode settings the config asks for, checked against the model's labels. */
export function detectSettings(config: Config, model: ResolvedModel): DetectSettings {
  return {
    scoreThreshold: config.model.scoreThreshold,
    iouThreshold: config.model.iouThreshold,
    classIds: classIdsForLabels(model.name, model.entry.labels, config.model.classes),
    maxDetections: config.model.maxDetections,
  };
}
