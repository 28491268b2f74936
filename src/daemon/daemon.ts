// The daemon: wires cameras -> inference pool -> bus, with metrics watching every stage.
// A thin loop around the stages; each stage lives in its own folder and knows nothing of
// the others. Start order makes "ready" mean ready: model verified and warm, bus bound,
// metrics serving, then cameras. Stop order loses nothing already computed: cameras stop,
// the frame in flight finishes and is published, the bus is flushed.
import type { Logger } from "pino";
import { BusPublisher } from "../bus/publisher.ts";
import type { Config } from "../config/schema.ts";
import { InferencePool } from "../infer/inference-pool.ts";
import { classIdsForLabels, type InferResult } from "../infer/inference-worker.ts";
import type { DetectSettings } from "../infer/worker-protocol.ts";
import { CameraSource, type CameraEvent } from "../ingest/camera-source.ts";
import type { Frame } from "../ingest/frame.ts";
import { requiredThreadpoolSize, threadpoolSize } from "../ingest/threadpool.ts";
import { createMetrics, type Metrics } from "../metrics/metrics.ts";
import { startMetricsServer, type Health, type MetricsServer } from "../metrics/server.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel, resolveModel, type ResolvedModel } from "../model/manifest.ts";
import { LatencyWindow } from "./latency-window.ts";

export type StopReason = "signal" | "end-of-stream" | "fatal";

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
}

interface CameraState {
  source: CameraSource;
  ended: boolean;
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
  private counts = { ingested: 0, processed: 0, dropped: 0 };
  private fpsMark = { t: process.hrtime.bigint(), processed: 0 };
  private state: Health["status"] = "starting";
  private stopping: Promise<void> | undefined;
  private resolveStopped!: (r: StopReason) => void;

  private constructor(
    private readonly config: Config,
    logger: Logger,
    model: ResolvedModel,
    metrics: Metrics,
    private readonly bus: BusPublisher,
    private readonly server: MetricsServer | null,
    private pool: InferencePool | null,
  ) {
    this.log = logger;
    this.model = model;
    this.metrics = metrics;
    this.endpoints = bus.endpoints;
    this.metricsUrl = server?.url ?? null;
    this.stopped = new Promise((r) => (this.resolveStopped = r));
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const { config, logger } = opts;
    const log = logger.child({ component: "daemon" });
    const pool = threadpoolSize();
    const needed = requiredThreadpoolSize(config.cameras.length);
    if (pool < needed)
      log.warn({ UV_THREADPOOL_SIZE: pool, recommended: needed }, `UV_THREADPOOL_SIZE=${pool} is below the ${needed} recommended for ${config.cameras.length} camera(s); GStreamer may stall`);

    const manifestPath = config.model.manifest ?? DEFAULT_MANIFEST_PATH;
    const manifest = await readManifest(manifestPath);
    const model = resolveModel(manifest, manifestPath, config.model.name);
    await readVerifiedModel(model);
    const settings = detectSettings(config, model);

    const metrics = createMetrics({ defaultMetrics: opts.defaultMetrics ?? true });
    for (const c of config.cameras) metrics.initCamera(c.id);

    let daemon: Daemon | undefined;
    const server = config.metrics.enabled
      ? await startMetricsServer(metrics, {
          host: config.metrics.host,
          port: config.metrics.port,
          health: () => daemon?.health() ?? { status: "starting" },
        })
      : null;
    let bus: BusPublisher | undefined;
    try {
      bus = await BusPublisher.bind(config.bus.endpoints, {
        sendHighWaterMark: config.bus.sendHighWaterMark,
        curve: config.bus.curve,
        onAuth: (a) =>
          a.allowed
            ? log.info({ client: a.clientKey, address: a.address }, "bus: subscriber admitted")
            : log.warn({ client: a.clientKey, address: a.address, reason: a.reason, suppressed: a.suppressed }, "bus: subscriber refused"),
        ...metrics.busHooks(),
      });
      log.info({ endpoints: bus.endpoints, metrics: server?.url ?? "off", model: model.name }, "bus bound; loading model");
      const d = new Daemon(config, logger, model, metrics, bus, server, null);
      daemon = d;
      d.pool = await InferencePool.start({
        init: {
          modelPath: model.path,
          modelName: model.name,
          entry: model.entry,
          executionProviders: config.inference.executionProviders,
          intraOpThreads: config.inference.intraOpThreads,
          interOpThreads: config.inference.interOpThreads,
          trtFp16: config.inference.trtFp16,
          trtCacheDir: config.inference.trtCacheDir,
          warmupRuns: config.inference.warmupRuns,
        },
        settings,
        cameras: config.cameras.map((c) => c.id),
        workers: config.inference.workers,
        onResult: (r) => d.onResult(r),
        onDrop: (f, reason) => d.onDrop(f, reason),
        onError: (e) => d.log.error({ err: e.error, fatal: e.fatal, camera: e.camera, seq: e.seq }, "inference failed"),
      });
      const worker = d.pool.workers[0];
      metrics.setModelInfo({ model: model.name, executionProvider: worker.provider, providersTried: worker.tried.map((t) => t.provider) });
      log.info({ provider: worker.provider, tried: worker.tried, warmupMs: worker.warmupMs, workers: d.pool.layout }, "model warm");
      d.startCameras();
      d.state = "ok";
      metrics.setReady(true);
      return d;
    } catch (e) {
      await bus?.close();
      await server?.close();
      throw e;
    }
  }

  /** The live figures behind the status line. */
  status(): DaemonStatus {
    const now = process.hrtime.bigint();
    const dt = Number(now - this.fpsMark.t) / 1e9;
    const fps = dt > 0 ? (this.counts.processed - this.fpsMark.processed) / dt : 0;
    this.fpsMark = { t: now, processed: this.counts.processed };
    const objects: Record<string, number> = {};
    for (const c of this.cameras.values()) for (const [k, v] of Object.entries(c.lastObjects)) objects[k] = (objects[k] ?? 0) + v;
    return {
      uptimeS: Number(now - this.startedAt) / 1e9,
      ...this.counts,
      fps,
      e2eP50Ms: this.e2e.percentile(0.5),
      e2eP99Ms: this.e2e.percentile(0.99),
      inferenceP50Ms: this.inference.percentile(0.5),
      objects,
      cameras: [...this.cameras.entries()].map(([id, c]) => ({ id, state: c.source.stats().state, restarts: c.source.stats().restarts })),
    };
  }

  health(): Health {
    return { status: this.state, details: { model: this.model.name, cameras: this.status().cameras } };
  }

  /**
   * Stops ingest, lets the frame in flight finish and go out on the bus, flushes the bus
   * and closes everything. Bounded: the whole stop takes well under two seconds unless a
   * model run itself is longer.
   */
  stop(reason: StopReason = "signal"): Promise<void> {
    this.stopping ??= (async () => {
      this.state = "stopping";
      this.metrics.setReady(false);
      this.log.info({ reason }, "stopping");
      await Promise.all([...this.cameras.values()].map((c) => c.source.stop()));
      await this.pool?.close(1000);
      await this.bus.flush(300);
      await this.bus.close();
      await this.server?.close();
      this.log.info({ ...this.counts }, "stopped");
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
        }),
      };
      this.cameras.set(cam.id, state);
      state.source.start();
    }
  }

  private onFrame(frame: Frame): void {
    if (this.stopping) return;
    this.counts.ingested++;
    this.metrics.framesIngested.inc({ camera: frame.camera });
    this.pool?.submit(frame);
  }

  private onDrop(frame: Frame, reason: "replaced" | "closed"): void {
    this.counts.dropped++;
    this.metrics.frameDropped(frame.camera, reason === "closed" ? "shutdown" : "replaced");
  }

  private onCameraEvent(camera: string, e: CameraEvent, log: Logger): void {
    const level = e.type === "error" ? "warn" : "info";
    log[level]({ event: e }, `camera ${camera}: ${e.type}`);
    if (e.type === "restart") this.metrics.cameraRestarts.inc({ camera });
    if (e.type === "running") this.metrics.cameraUp.set({ camera }, 1);
    if (e.type === "error" || e.type === "restart" || e.type === "ended") this.metrics.cameraUp.set({ camera }, 0);
    if (e.type === "ended") {
      this.cameras.get(camera)!.ended = true;
      // A replay that has ended ends the run once every camera is done.
      if ([...this.cameras.values()].every((c) => c.ended)) void this.stop("end-of-stream");
    }
  }

  private onResult(r: InferResult): void {
    const tPublish = process.hrtime.bigint();
    const { width, height } = this.sourceSize(r.camera, r);
    // The bus stamps counter, publish time and CRC (src/bus/codec.ts).
    this.bus.publishMessage(
      "detections",
      { model: this.model.name, frameWidthPx: width, frameHeightPx: height, detections: r.detections },
      { cameraId: r.camera, frameSeq: r.seq, tIngestMonoNs: r.tIngestNs },
    );
    const tDone = process.hrtime.bigint();

    const m = this.metrics;
    const cam = r.camera;
    m.observeStage("ingest_to_worker", cam, r.timings.queueMs / 1e3);
    m.observeStage("preprocess", cam, r.timings.preprocessMs / 1e3);
    m.observeStage("inference", cam, r.timings.inferenceMs / 1e3);
    m.observeStage("decode", cam, r.timings.decodeMs / 1e3);
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
    this.e2e.add(Number(tDone - r.tIngestNs) / 1e6);
    this.inference.add(r.timings.inferenceMs);
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

/** The decode settings the config asks for, checked against the model's labels. */
export function detectSettings(config: Config, model: ResolvedModel): DetectSettings {
  return {
    scoreThreshold: config.model.scoreThreshold,
    iouThreshold: config.model.iouThreshold,
    classIds: classIdsForLabels(model.name, model.entry.labels, config.model.classes),
    maxDetections: config.model.maxDetections,
  };
}
