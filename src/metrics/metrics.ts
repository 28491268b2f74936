// Every Prometheus metric perceptd exports, declared in this one module: a new metric is
// added here, never created ad hoc elsewhere, so names, labels and buckets stay consistent
// and reviewable in one place.
//
// Each createMetrics() call builds its own Registry instead of using prom-client's global
// one: two daemons in one process (tests) must not collide on metric names, and nothing a
// dependency registers globally leaks into our /metrics.
//
// Conventions (https://prometheus.io/docs/practices/naming/): prefix perceptd_, base units
// (seconds, bytes), counters end in _total, label values come from small closed sets or
// from configuration (camera ids, model labels), never from data such as sequence numbers.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { HEALTH_STATES } from "../core/health.ts";

/** Pipeline stages timed by perceptd_stage_latency_seconds. */
export const STAGES = [
  /** ingest handed the frame over -> the inference worker picked it up (queueing) */
  "ingest_to_worker",
  "preprocess",
  "inference",
  /** raw tensors -> boxes, NMS included */
  "decode",
  /** the worker posted its result -> the main thread took it up (the thread hop back) */
  "worker_to_main",
  /** encode + hand-over to the bus publisher */
  "publish",
  /** ingest handed the frame over -> its detections were handed to the bus */
  "end_to_end",
] as const;
export type Stage = (typeof STAGES)[number];

/** Why a frame never reached the detector's output. */
export const FRAME_DROP_REASONS = [
  /** a newer frame from the same camera replaced it before the worker was free */
  "replaced",
  /** the worker failed on it (the error is logged) */
  "inference_error",
  /** still in flight when the daemon stopped */
  "shutdown",
] as const;
export type FrameDropReason = (typeof FRAME_DROP_REASONS)[number];

// Dense below 100 ms, where the per-frame budget of a 10-30 fps camera lies (0.033 is one
// frame at 30 fps); sparse up to 2 s so a stalled stage still lands in a finite bucket.
// 5 ms steps between 10 and 40 ms, where CPU inference of the default model lies, so a p99
// read from the buckets is off by a few ms at most rather than by a 13 ms bucket; 1 ms
// steps below 5 ms, where the hand-overs between threads lie (a p50 of 0.2 ms, a tail of
// a few ms when a core is busy), so their tail can be told from their median.
export const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.033, 0.035, 0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1, 2,
];

export interface ModelInfo {
  /** manifest name */
  model: string;
  /** the provider that actually runs the model */
  executionProvider: string;
  /** providers tried in order, including ones that failed to load */
  providersTried: readonly string[];
  /**
   * What the loaded onnxruntime-node binding does with TensorRT/CUDA provider options:
   * honoured (built with our patch), ignored (stock, GPU providers drop them),
   * no-gpu-providers (stock CPU-only build). See src/infer/provider-options.ts.
   */
  providerOptions: string;
}

/**
 * The closed label sets whose series are created at 0 up front (so rate() and absent() work
 * before the first event). They are other modules' tables (the bus topics, the alert kinds
 * and levels), so the composition root passes them in rather than metrics importing them.
 */
export interface MetricLabelSets {
  topics: readonly string[];
  alertKinds: readonly string[];
  alertLevels: readonly string[];
}

export interface CreateMetricsOptions {
  labels: MetricLabelSets;
  /** process_* and nodejs_* metrics from prom-client (default true) */
  defaultMetrics?: boolean;
}

/** The publisher's hooks as the metrics see them: a topic name sent or dropped. */
export interface BusCounterHooks {
  onSent(topic: string): void;
  onDrop(topic: string): void;
}

export interface Metrics {
  readonly registry: Registry;
  readonly stageLatency: Histogram<"stage" | "camera">;
  readonly framesIngested: Counter<"camera">;
  readonly framesProcessed: Counter<"camera">;
  readonly framesDropped: Counter<"camera" | "reason">;
  readonly detections: Counter<"camera" | "class">;
  readonly cameraRestarts: Counter<"camera">;
  readonly replaysTruncated: Counter<"camera">;
  readonly cameraUp: Gauge<"camera">;
  readonly modelInfo: Gauge<"model" | "execution_provider" | "providers_tried" | "provider_options">;
  readonly busMessagesSent: Counter<"topic">;
  readonly busMessagesDropped: Counter<"topic">;
  readonly ready: Gauge;
  readonly healthState: Gauge<"state">;
  readonly healthTransitions: Counter<"from" | "to">;
  readonly inferenceOverruns: Counter<"camera">;
  readonly detectionsStale: Counter<"camera">;
  readonly workerReplacements: Counter<"worker" | "outcome">;
  readonly alertsRaised: Counter<"camera" | "kind" | "level">;
  readonly alertsCleared: Counter<"camera" | "kind" | "level">;
  readonly alertLatency: Histogram<"camera" | "kind">;
  readonly viewFramesEncoded: Counter<"camera">;
  readonly viewFramesSkipped: Counter<"camera">;
  readonly viewClients: Gauge<"camera">;

  /** Creates every per-camera series at 0, so rate() and absent() work before the first event. */
  initCamera(camera: string): void;
  observeStage(stage: Stage, camera: string, seconds: number): void;
  /** Observes the time between two process.hrtime.bigint() readings. */
  observeStageNs(stage: Stage, camera: string, startNs: bigint, endNs: bigint): void;
  frameDropped(camera: string, reason: FrameDropReason): void;
  /** Replaces the model_info series (there is one model per daemon). */
  setModelInfo(info: ModelInfo): void;
  setReady(ready: boolean): void;
  /** onSent/onDrop for BusPublisher.bind(), feeding the bus counters. */
  busHooks(): BusCounterHooks;
  /** Hooks for the live view (src/view/live-view.ts ViewHooks), feeding the view metrics. */
  viewHooks(): { onEncoded(camera: string): void; onSkipped(camera: string): void; onClients(camera: string, clients: number): void };
}

export function createMetrics(opts: CreateMetricsOptions): Metrics {
  const { topics, alertKinds, alertLevels } = opts.labels;
  const registry = new Registry();
  const registers = [registry];
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  // One line per metric: name, help, labels (and buckets). The label lists are literal
  // tuples so each metric's type names its labels.
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Gauge<L>({ name, help, labelNames, registers });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>({ name, help, labelNames, buckets, registers });

  const stageLatency = histogram("perceptd_stage_latency_seconds", "Time a frame spent in each pipeline stage, per camera", ["stage", "camera"], LATENCY_BUCKETS_SECONDS);
  const framesIngested = counter("perceptd_frames_ingested_total", "Frames handed over by ingest, per camera", ["camera"]);
  const framesProcessed = counter("perceptd_frames_processed_total", "Frames that went through the detector and were published, per camera", ["camera"]);
  const framesDropped = counter("perceptd_frames_dropped_total", `Frames ingested but never processed, per camera and reason (${FRAME_DROP_REASONS.join(", ")})`, ["camera", "reason"]);
  const detections = counter("perceptd_detections_total", "Detections published, per camera and class label", ["camera", "class"]);
  const cameraRestarts = counter("perceptd_camera_restarts_total", "Restarts of a camera's source pipeline after an error or end of stream", ["camera"]);
  const replaysTruncated = counter("perceptd_replay_truncated_total", "Replayed files whose first pass ended well before the length their container declares (a file cut short)", ["camera"]);
  const cameraUp = gauge("perceptd_camera_up", "1 while the camera's source pipeline is delivering frames, 0 while it is starting or backing off", ["camera"]);
  const modelInfo = gauge("perceptd_model_info", "The loaded model and the execution provider that runs it (value always 1)", ["model", "execution_provider", "providers_tried", "provider_options"]);
  const busMessagesSent = counter("perceptd_bus_messages_sent_total", "Messages accepted by the ZeroMQ PUB socket, per topic (ZeroMQ's own per-subscriber drops beyond the high-water mark are invisible here)", ["topic"]);
  const busMessagesDropped = counter("perceptd_bus_messages_dropped_total", "Messages perceptd dropped before the PUB socket (queue full, send error, shutdown), per topic", ["topic"]);
  const ready = gauge("perceptd_ready", "1 once the model is warmed up and the bus is bound, 0 while starting or stopping", []);

  const healthState = gauge("perceptd_health_state", "1 for the daemon's current health state (starting, ok, degraded, fault, stopping), 0 for the others", ["state"]);
  const healthTransitions = counter("perceptd_health_transitions_total", "health state transitions", ["from", "to"]);
  const inferenceOverruns = counter("perceptd_inference_overruns_total", "frames whose preprocess + inference + decode missed health.inferenceDeadlineMs", ["camera"]);
  const detectionsStale = counter("perceptd_detections_stale_total", "detections published with valid=false because they were older than health.latencyBudgetMs", ["camera"]);
  const alertsRaised = counter("perceptd_alerts_raised_total", "hazard alerts raised or stepped up to a level, per camera, kind (pedestrian, cyclist, vehicle, obstacle) and level (info, warning, critical)", ["camera", "kind", "level"]);
  const alertsCleared = counter("perceptd_alerts_cleared_total", "hazard alerts cleared or stepped down from a level, per camera, kind and the level left", ["camera", "kind", "level"]);
  // Frames to seconds: confirmation and persistence take a few frames at 5-30 fps.
  const alertLatency = histogram("perceptd_alert_latency_seconds", "ingest of the first frame an object was detected in -> the first alerts message carrying its alert (tracking confirmation and alert persistence included)", ["camera", "kind"], [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10]);
  const workerReplacements = counter("perceptd_inference_worker_replacements_total", "inference worker replacements after a hang or crash, by outcome (started, succeeded, failed)", ["worker", "outcome"]);
  // Live view (src/view/): frames are encoded only while someone watches, so an idle view
  // shows encoded frames staying at 0.
  const viewFramesEncoded = counter("perceptd_view_frames_encoded_total", "annotated JPEG frames the live view encoded, per camera (0 while no client watches)", ["camera"]);
  const viewFramesSkipped = counter("perceptd_view_frames_skipped_total", "live view frames not sent to a client because it was still receiving the previous one (a slow client), per camera", ["camera"]);
  const viewClients = gauge("perceptd_view_clients", "MJPEG streams of the live view open now, per camera", ["camera"]);
  for (const st of HEALTH_STATES) healthState.set({ state: st }, st === "starting" ? 1 : 0);

  for (const topic of topics) {
    busMessagesSent.inc({ topic }, 0);
    busMessagesDropped.inc({ topic }, 0);
  }
  ready.set(0);

  return {
    registry,
    stageLatency,
    framesIngested,
    framesProcessed,
    framesDropped,
    detections,
    cameraRestarts,
    replaysTruncated,
    cameraUp,
    modelInfo,
    busMessagesSent,
    healthState,
    healthTransitions,
    inferenceOverruns,
    detectionsStale,
    workerReplacements,
    alertsRaised,
    alertsCleared,
    alertLatency,
    viewFramesEncoded,
    viewFramesSkipped,
    viewClients,
    busMessagesDropped,
    ready,
    initCamera(camera) {
      framesIngested.inc({ camera }, 0);
      framesProcessed.inc({ camera }, 0);
      for (const reason of FRAME_DROP_REASONS) framesDropped.inc({ camera, reason }, 0);
      cameraRestarts.inc({ camera }, 0);
      replaysTruncated.inc({ camera }, 0);
      cameraUp.set({ camera }, 0);
      inferenceOverruns.inc({ camera }, 0);
      detectionsStale.inc({ camera }, 0);
      for (const kind of alertKinds)
        for (const level of alertLevels) {
          alertsRaised.inc({ camera, kind, level }, 0);
          alertsCleared.inc({ camera, kind, level }, 0);
        }
      for (const stage of STAGES) stageLatency.zero({ stage, camera });
      viewFramesEncoded.inc({ camera }, 0);
      viewFramesSkipped.inc({ camera }, 0);
      viewClients.set({ camera }, 0);
    },
    observeStage(stage, camera, seconds) {
      stageLatency.observe({ stage, camera }, seconds);
    },
    observeStageNs(stage, camera, startNs, endNs) {
      stageLatency.observe({ stage, camera }, Number(endNs - startNs) / 1e9);
    },
    frameDropped(camera, reason) {
      framesDropped.inc({ camera, reason });
    },
    setModelInfo(info) {
      modelInfo.reset();
      modelInfo.set(
        { model: info.model, execution_provider: info.executionProvider, providers_tried: info.providersTried.join(","), provider_options: info.providerOptions },
        1,
      );
    },
    setReady(r) {
      ready.set(r ? 1 : 0);
    },
    busHooks() {
      return {
        onSent: (topic) => busMessagesSent.inc({ topic }),
        onDrop: (topic) => busMessagesDropped.inc({ topic }),
      };
    },
    viewHooks() {
      return {
        onEncoded: (camera) => viewFramesEncoded.inc({ camera }),
        onSkipped: (camera) => viewFramesSkipped.inc({ camera }),
        onClients: (camera, clients) => viewClients.set({ camera }, clients),
      };
    },
  };
}
