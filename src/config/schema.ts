// The daemon's configuration: every key, its default, its bounds and its meaning, declared
// once. YAML files in config/ are checked against this; unknown keys are errors (a typo
// must not silently fall back to a default).
//
// Section defaults use .prefault({}) rather than .default({...}): zod 4 returns a .default()
// value as is, so a spelled-out section default would be a second, drift-prone copy of the
// field defaults; .prefault({}) parses {} and so takes every default from the fields.
import { z } from "zod";
import { parseBindEndpoint } from "../bus/endpoint.ts";
import { TOPICS, fixedRateHz, minFreshHz } from "../bus/topics.ts";
import { Z85_KEY_PATTERN } from "../bus/z85.ts";
import { AlertsSchema, CorridorSchema, GeometrySchema, TrackingSchema } from "./hazard-schema.ts";
import { CUDA_ARENA_EXTEND_STRATEGY, CUDA_CONV_ALGO_SEARCH } from "../infer/provider-options.ts";
import { DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD } from "../core/postprocess.ts";
import { EXECUTION_PROVIDERS } from "../core/providers.ts";
import { LOG_FORMATS, LOG_LEVELS } from "../util/logger.ts";
import { MAX_REPLAY_WORKERS } from "../infer/worker-protocol.ts";

/**
 * Most cameras one daemon runs: a Jetson AGX Orin takes up to 16 CSI cameras (virtual
 * channels). bin/perceptd.js sizes the libuv threadpool for this many before node's pool
 * starts (src/ingest/threadpool.ts), so any valid config has the threads it needs.
 */
export const MAX_CAMERAS = 16;

/** Keys whose value is a filesystem path; a relative one is resolved against the folder of the config file it came from (see load.ts). */
export const filePathKeys = z.registry();

/**
 * What SIGHUP does with a key (src/config/reload.ts): "apply" takes effect in the running
 * daemon; "ignore" is a key the daemon does not use (the soak section). A key with no mark
 * needs a restart: SIGHUP reports it changed and leaves it as it was.
 */
export const reloadKeys = z.registry<{ onReload: "apply" | "ignore" }>();

/** Marks a field the running daemon applies on SIGHUP (the daemon's reload() must then apply it). */
const reloadable = <T extends z.ZodType>(field: T): T => {
  reloadKeys.add(field, { onReload: "apply" });
  return field;
};

/** Marks a section the daemon does not read: SIGHUP neither applies nor reports it. */
const ignoredByDaemon = <T extends z.ZodType>(field: T): T => {
  reloadKeys.add(field, { onReload: "ignore" });
  return field;
};

const filePath = (what: string) => {
  const s = z.string().min(1).describe(what);
  filePathKeys.add(s);
  return s;
};

// Absent means software: a Jetson-only element named in a config for any other machine
// would fail at the first frame, so hardware decoding is asked for, never guessed.
const decoder = z
  .enum(["software", "jetson"])
  .optional()
  .describe("software (default): GStreamer's decodebin on the CPU; jetson: H.264/H.265 decoded by nvv4l2decoder (NVDEC) and converted and scaled by nvvidconv (VIC)");

const ms = (def: number, min: number, max: number, what: string) => z.number().int().min(min).max(max).default(def).describe(`${what} (milliseconds)`);

export const RestartSchema = z
  .object({
    initialBackoffMs: ms(500, 10, 600_000, "first delay before restarting a failed live source"),
    maxBackoffMs: ms(30_000, 100, 3_600_000, "ceiling of the exponential backoff"),
    jitter: z.number().min(0).max(1).default(0.2).describe("random spread added to each delay, as a fraction of it"),
    stallTimeoutMs: ms(
      5000,
      100,
      600_000,
      "a running pipeline that delivers no frame for this long has failed: it is torn down and, for a live source, rebuilt after the backoff (camera_restarting); health.cameraStallMs flags the silence much sooner",
    ),
  })
  .strict()
  .superRefine(backoffWithinCeiling)
  .describe("when a silent source counts as failed, and the backoff before a live source (v4l2, csi, rtsp, live pipeline) is rebuilt after an error or end of stream");

// A named check on the restart block itself, so it still runs (and is reported) when some
// other part of the camera is invalid.
function backoffWithinCeiling(r: { initialBackoffMs: number; maxBackoffMs: number }, ctx: z.RefinementCtx): void {
  if (r.initialBackoffMs > r.maxBackoffMs)
    ctx.addIssue({ code: "custom", path: ["initialBackoffMs"], message: `initialBackoffMs (${r.initialBackoffMs}) exceeds maxBackoffMs (${r.maxBackoffMs})` });
}

const size = {
  width: z.number().int().min(16).max(8192).optional().describe("capture width in pixels (source default if absent)"),
  height: z.number().int().min(16).max(8192).optional().describe("capture height in pixels"),
  framerate: z.number().positive().max(1000).optional().describe("capture frame rate (frames per second)"),
};

export const SourceSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("file"),
      path: filePath("video file GStreamer can decode (AVI, MP4, MKV, ...)"),
      loop: z.boolean().default(false).describe("start again at the end instead of ending the run"),
      realtime: z.boolean().default(true).describe("pace frames at the file's own frame rate (false: as fast as they decode)"),
      decoder,
    })
    .strict(),
  z
    .object({ type: z.literal("v4l2"), device: z.string().default("/dev/video0").describe("V4L2 device node of a USB camera"), ...size })
    .strict(),
  z
    .object({ type: z.literal("csi"), sensorId: z.number().int().min(0).max(15).default(0).describe("nvarguscamerasrc sensor-id (Jetson CSI camera)"), ...size })
    .strict(),
  z
    .object({
      type: z.literal("rtsp"),
      url: z.string().regex(/^rtsps?:\/\//, "must start with rtsp:// or rtsps://").describe("stream URL, credentials included if the camera needs them"),
      latencyMs: ms(200, 0, 10_000, "rtspsrc jitter buffer"),
      protocols: z.enum(["tcp", "udp", "auto"]).default("auto").describe("RTP transport"),
      decoder,
    })
    .strict(),
  z
    .object({
      type: z.literal("testsrc"),
      pattern: z.string().default("ball").describe("videotestsrc pattern (ball, smpte, snow, ...)"),
      width: z.number().int().min(16).max(8192).default(640).describe("frame width in pixels"),
      height: z.number().int().min(16).max(8192).default(480).describe("frame height in pixels"),
      framerate: z.number().positive().max(1000).default(30).describe("frames per second"),
      numBuffers: z.number().int().positive().optional().describe("end of stream after this many frames (default: endless)"),
    })
    .strict(),
  z
    .object({
      type: z.literal("pipeline"),
      pipeline: z.string().min(1).describe("GStreamer source description up to (not including) the conversion to the model input; experts only"),
      live: z.boolean().default(true).describe("treat as a live source: restart on errors and end of stream"),
    })
    .strict(),
]).describe("where frames come from; the keys allowed depend on type");

export const CameraSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "1-32 letters, digits, '_' or '-'").describe("camera id, carried in every frame and bus message"),
    source: SourceSchema,
    restart: RestartSchema.prefault({}),
    geometry: GeometrySchema.optional(),
    corridor: CorridorSchema.optional(),
  })
  .strict()
  .superRefine(groundCorridorHasGeometry);

function groundCorridorHasGeometry(c: { geometry?: unknown; corridor?: { type: string } }, ctx: z.RefinementCtx): void {
  if (c.corridor?.type === "ground" && c.geometry === undefined)
    ctx.addIssue({ code: "custom", path: ["corridor", "type"], message: "a ground corridor needs the camera's geometry (or use type: image with a polygon)" });
}

export const ExecutionProviderSchema = z.enum(EXECUTION_PROVIDERS);

// The thresholds behind the daemon's health state (src/health/): which conditions make it
// DEGRADED (still publishing, some of it late or missing) or FAULT (systemd restarts it).
export const HealthSchema = z
  .object({
    cameraStallMs: ms(500, 50, 60_000, "a camera with no frame for this long raises camera_stall (DEGRADED) until its next frame; the pipeline itself is rebuilt after the camera's restart.stallTimeoutMs"),
    inferenceDeadlineMs: ms(100, 1, 60_000, "per-frame worker time (preprocess + inference + decode) above this is an inference overrun"),
    overrunWindow: z.number().int().min(1).max(10_000).default(30).describe("frames per camera over which overruns, and detections stale at publish, are counted"),
    overrunThreshold: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(5)
      .describe("overruns (or stale results) within overrunWindow that make the daemon DEGRADED; cleared once at most half as many remain"),
    inferenceHangMs: ms(5000, 100, 600_000, "a worker busy on one frame for this long is hung: inference_hang (FAULT) and the worker is replaced"),
    maxWorkerReplacements: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(3)
      .describe("worker replacements allowed within replacementWindowMs; when one more is needed the daemon exits non-zero for systemd to restart it"),
    replacementWindowMs: ms(600_000, 1000, 86_400_000, "window of maxWorkerReplacements"),
    workerRestartTimeoutMs: ms(120_000, 1000, 3_600_000, "a replacement worker not warm after this has failed and the daemon gives up (TensorRT: the engine is cached after the first start)"),
    eventLoopLagMs: ms(100, 1, 60_000, "99th-percentile main-thread event-loop delay over a sample above this raises event_loop_lag (DEGRADED)"),
    eventLoopSampleMs: ms(1000, 100, 60_000, "event-loop delay sample window"),
    latencyBudgetMs: ms(200, 1, 60_000, "detections older than this at publish (ingest -> publish) go out flagged valid=false; sustained, they make the daemon DEGRADED"),
    publishHz: z
      .number()
      .min(minFreshHz("health"))
      .max(100)
      .default(fixedRateHz("health"))
      .describe(`rate of the health message on the bus; at least ${minFreshHz("health")} Hz so subscribers (health staleAfterMs ${TOPICS.health.staleAfterMs} ms) never see it stale`),
    systemdWatchdog: z
      .enum(["auto", "off"])
      .default("auto")
      .describe("auto: when systemd sets WATCHDOG_USEC (WatchdogSec=), send WATCHDOG=1 at half that interval while the state is not FAULT; off: never"),
  })
  .strict()
  .superRefine(thresholdWithinWindow)
  .describe("health state thresholds and systemd watchdog handling");

function thresholdWithinWindow(h: { overrunWindow: number; overrunThreshold: number }, ctx: z.RefinementCtx): void {
  if (h.overrunThreshold > h.overrunWindow)
    ctx.addIssue({ code: "custom", path: ["overrunThreshold"], message: `overrunThreshold (${h.overrunThreshold}) exceeds overrunWindow (${h.overrunWindow})` });
}

// `perceptd soak`'s budgets and settings: what a soak of this config must hold to pass. The
// daemon itself ignores the section; it lives here so that a bench config carries its own
// budgets, checked and documented like every other key.
export const SoakSchema = z
  .object({
    warmupS: z.number().min(0).max(3600).default(10).describe("seconds after the daemon's READY=1 left out of the windows and budgets (first frames, caches); reported on their own"),
    sampleIntervalMs: ms(2000, 200, 600_000, "how often /metrics, memory, CPU and temperatures are sampled"),
    e2eP99MaxMs: z.number().positive().max(600_000).default(200).describe("budget: ingest -> receipt p99 of every window at most this (milliseconds)"),
    e2eP99DriftMaxMs: z.number().min(0).max(600_000).default(20).describe("budget: the last window's e2e p99 at most this much above the first's (milliseconds)"),
    rssSlopeMaxMBPerHour: z.number().min(0).max(100_000).default(20).describe("budget: the daemon's resident memory grows at most this fast (Theil-Sen slope of every sample after warm-up, MB per hour)"),
    rssSlopeMinSpanS: z.number().min(0).max(86_400).default(600).describe("the memory slope is judged only over at least this many seconds; shorter soaks report it unjudged (start-up growth would read as a leak)"),
    maxCounterGaps: z.number().int().min(0).default(0).describe("budget: messages missing at the soak's subscriber, which keeps up (per-topic counter gaps, over every topic)"),
    maxBusErrors: z.number().int().min(0).default(0).describe("budget: messages failing the E2E checks (CRC, decoding, data id, schema version) or repeated"),
    minHealthOkFraction: z.number().min(0).max(1).default(0.99).describe("budget: at least this fraction of health messages say OK"),
    maxDroppedFraction: z.number().min(0).max(1).default(0.01).describe("budget: at most this fraction of ingested frames dropped (replaced by a newer frame)"),
    alertFlapMs: ms(2000, 1, 600_000, "an alert raised again for the same track and kind within this long of its clear counts as a flap"),
  })
  .strict()
  .describe("`perceptd soak`: budgets judged at the end of a soak of this config, and its sampling; the daemon ignores this section");

export const ConfigSchema = z
  .object({
    log: z
      .object({
        level: reloadable(z.enum(LOG_LEVELS).default("info").describe("least severe level written (SIGHUP applies a change)")),
        format: z.enum(LOG_FORMATS).default("auto").describe("auto: readable lines on a terminal, JSON otherwise (journald)"),
      })
      .strict()
      .prefault({})
      .describe("logging on stdout"),
    model: z
      .object({
        name: z.string().optional().describe("manifest name of the model (default: the manifest's default)"),
        byProvider: z
          .object({ tensorrt: z.string().min(1).optional(), cuda: z.string().min(1).optional(), cpu: z.string().min(1).optional() })
          .strict()
          .default({})
          .describe(
            "a model per execution provider (manifest names), e.g. { cpu: nanodet-int8-cpu, tensorrt: nanodet-u8 }: the daemon runs the model named " +
              "for the first provider in inference.executionProviders, else model.name (see src/config/model-choice.ts)",
          ),
        manifest: filePath("path to manifest.json (default: the repository's models/manifest.json)").optional(),
        scoreThreshold: reloadable(
          z.number().min(0).max(1).default(DEFAULT_SCORE_THRESHOLD).describe("detections scoring at or below this are dropped (SIGHUP applies a change)"),
        ),
        iouThreshold: reloadable(
          z
            .number()
            .min(0)
            .max(1)
            .default(DEFAULT_IOU_THRESHOLD)
            .describe("class-aware NMS: a box overlapping a better one of its class by more than this IoU is dropped (SIGHUP applies a change)"),
        ),
        classes: reloadable(z.array(z.string()).default([]).describe("labels to report (empty: all; SIGHUP applies a change)")),
        maxDetections: reloadable(
          z.number().int().min(1).max(1000).default(DEFAULT_MAX_DETECTIONS).describe("per frame, after NMS, best score first (SIGHUP applies a change)"),
        ),
      })
      .strict()
      .prefault({})
      .describe("detector model and its post-processing"),
    inference: z
      .object({
        executionProviders: z.array(ExecutionProviderSchema).min(1).default(["cpu"]).describe("tried in order; the first that loads runs"),
        intraOpThreads: z.number().int().min(0).max(256).default(0).describe("ONNX Runtime intra-op threads (0: one per core)"),
        interOpThreads: z.number().int().min(0).max(256).default(1).describe("ONNX Runtime inter-op threads (parallel graph branches)"),
        allowSpinning: z
          .boolean()
          .default(false)
          .describe("let ONNX Runtime's threads busy-wait between operators: a little faster alone, slower next to GStreamer and the bus on the same cores (see the README's pipeline bench)"),
        // The trt*/cuda* keys reach the providers only through a binding built with our patch
        // (src/infer/provider-options.ts, docs/jetson.md); the stock one logs them as not applied.
        trtFp16: z.boolean().default(true).describe("TensorRT: allow fp16 kernels (trt_fp16_enable)"),
        trtInt8: z
          .boolean()
          .default(false)
          .describe("TensorRT: allow int8 kernels (trt_int8_enable); for QDQ-quantized models (the *-u8 variants), whose scales TensorRT reads from the graph"),
        trtCacheDir: filePath("TensorRT engine and timing cache folder (engines are built on first run, minutes on a Jetson)").default("/var/cache/perceptd/trt"),
        trtEngineCache: z
          .boolean()
          .default(true)
          .describe("TensorRT: keep built engines in trtCacheDir and reuse them at the next start (trt_engine_cache_enable); off, every start rebuilds them"),
        trtTimingCache: z.boolean().default(true).describe("TensorRT: keep layer timings in trtCacheDir, which shortens later engine builds (trt_timing_cache_enable)"),
        trtMaxWorkspaceBytes: z
          .number()
          .int()
          .min(0)
          .max(2 ** 40)
          .default(1024 ** 3)
          .describe("TensorRT: most scratch memory a layer may use while the engine is built (trt_max_workspace_size; 0: TensorRT's default); on a Jetson it comes out of the memory CPU and GPU share"),
        cudaMemLimitBytes: z.number().int().min(0).max(2 ** 40).default(0).describe("CUDA: ceiling of the provider's memory arena (gpu_mem_limit; 0: no limit)"),
        cudaConvAlgoSearch: z
          .enum(CUDA_CONV_ALGO_SEARCH)
          .default("exhaustive")
          .describe("CUDA: how cuDNN picks convolution algorithms (cudnn_conv_algo_search): exhaustive benchmarks each at the first run, heuristic guesses, default takes one fixed"),
        cudaArenaExtendStrategy: z
          .enum(CUDA_ARENA_EXTEND_STRATEGY)
          .default("nextPowerOfTwo")
          .describe("CUDA: how the memory arena grows (arena_extend_strategy); sameAsRequested keeps it smaller where CPU and GPU share memory"),
        warmupRuns: z.number().int().min(0).max(100).default(3).describe("inferences on a blank frame before the daemon reports ready"),
        workers: z.enum(["shared", "per-camera"]).default("shared").describe("one inference worker for all cameras, or one each"),
        replayWorkers: z
          .number()
          .int()
          .min(0)
          .max(MAX_REPLAY_WORKERS)
          .default(0)
          .describe(
            "workers that run an unpaced replay's frames side by side, the cores split between them (0: two on a CPU with two cores or more, else one, and one when the chain names a GPU provider); live and paced cameras always have one (see the README's pipeline bench)",
          ),
      })
      .strict()
      .prefault({})
      .describe("ONNX Runtime sessions"),
    cameras: z
      .array(CameraSchema)
      .min(1)
      .max(MAX_CAMERAS)
      // Runs even when some camera is invalid otherwise, so a duplicate id is reported
      // together with the other problems instead of after they are fixed. (zod still skips
      // it after an aborting issue inside cameras, such as 1.5 where an integer belongs.)
      .superRefine(uniqueCameraIds, { when: (payload) => Array.isArray(payload.value) })
      .describe(`one entry per camera (at most ${MAX_CAMERAS}, as many as a Jetson Orin's CSI virtual channels); ids must be unique`),
    bus: z
      .object({
        endpoints: z
          .array(z.string().superRefine(bindableEndpoint))
          .min(1)
          .default(["tcp://127.0.0.1:5555"])
          .describe("ZeroMQ PUB endpoints to bind: tcp://HOST:PORT (HOST: *, an address such as 127.0.0.1 or [::1], or an interface name such as eth0; PORT 1-65535, or 0 or * for any free port) or ipc://PATH (or ipc://@name)"),
        sendHighWaterMark: z.number().int().min(1).max(1_000_000).default(1000).describe("ZMQ_SNDHWM: messages queued per subscriber before drops"),
        curve: z
          .object({
            enabled: z.boolean().default(false).describe("encrypt every bus connection and admit only the subscribers listed below (ZeroMQ CURVE with ZAP)"),
            serverSecretKeyFile: filePath("the daemon's secret key file, NAME.key_secret from `perceptd keys`; refused unless mode 0600 or stricter").optional(),
            allowedClientKeys: z
              .array(z.string().regex(Z85_KEY_PATTERN, "must be a Z85 CURVE public key: 40 characters (quote it in YAML)"))
              .default([])
              .describe("public keys (Z85) of the subscribers admitted; the public-key line of each subscriber's NAME.key"),
            allowedClientKeysDir: filePath(
              "a folder of subscribers' public NAME.key files (from `perceptd keys`), admitted besides allowedClientKeys; read at start, so adding a subscriber is a file copy and a restart",
            ).optional(),
          })
          .strict()
          .superRefine(curveComplete)
          .prefault({})
          .describe("CURVE encryption and subscriber authentication; subscribers then need the daemon's public key and a listed key pair"),
      })
      .strict()
      .prefault({})
      .describe("ZeroMQ publisher of detections, alerts and health"),
    metrics: z
      .object({
        enabled: z.boolean().default(true).describe("serve Prometheus /metrics and /healthz over HTTP"),
        host: z.string().default("127.0.0.1").describe("bind address of /metrics and /healthz"),
        port: z.number().int().min(0).max(65535).default(9464).describe("0: any free port"),
      })
      .strict()
      .prefault({})
      .describe("Prometheus metrics and health endpoint"),
    view: z
      .object({
        enabled: z.boolean().default(false).describe("serve the live view: each camera's annotated frames, health, latency and alerts in a browser (docs/live-view.md)"),
        host: z
          .string()
          .default("127.0.0.1")
          .describe("bind address of the live view; it shows the camera's picture to whoever connects, so anything but loopback is logged as a warning"),
        port: z.number().int().min(0).max(65535).default(9465).describe("0: any free port"),
        fps: z.number().min(0.2).max(30).default(5).describe("most annotated frames per camera per second; frames are drawn and encoded only while a client watches"),
        quality: z.number().int().min(1).max(100).default(70).describe("JPEG quality of the annotated frames"),
      })
      .strict()
      .prefault({})
      .describe("live view in the browser; off by default"),
    health: HealthSchema.prefault({}),
    tracking: TrackingSchema.prefault({}),
    alerts: AlertsSchema.prefault({}),
    status: z
      .object({
        mode: z.enum(["auto", "on", "off"]).default("auto").describe("live status line on stderr; auto: when stderr is a terminal"),
        intervalMs: ms(1000, 100, 60_000, "status line refresh"),
      })
      .strict()
      .prefault({})
      .describe("human-readable status line"),
    soak: ignoredByDaemon(SoakSchema.prefault({})),
  })
  .strict();

// libzmq would bind 70000 as 4464 and drop "/extra" after a port; see src/bus/endpoint.ts.
function bindableEndpoint(endpoint: string, ctx: z.RefinementCtx): void {
  const parsed = parseBindEndpoint(endpoint);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: `${parsed} (got ${JSON.stringify(endpoint)})` });
}

// Enabled CURVE without a key, or with nobody admitted, would fail at start; say so with the config's line numbers.
function curveComplete(c: { enabled: boolean; serverSecretKeyFile?: string; allowedClientKeys: string[]; allowedClientKeysDir?: string }, ctx: z.RefinementCtx): void {
  if (!c.enabled) return;
  if (c.serverSecretKeyFile === undefined) ctx.addIssue({ code: "custom", path: ["serverSecretKeyFile"], message: "is required when bus.curve.enabled is true" });
  if (c.allowedClientKeys.length === 0 && c.allowedClientKeysDir === undefined)
    ctx.addIssue({ code: "custom", path: ["allowedClientKeys"], message: "must list at least one subscriber key (or name allowedClientKeysDir) when bus.curve.enabled is true (nobody could connect)" });
}

// Defensive about shapes: with `when` above this also sees cameras that failed validation.
function uniqueCameraIds(cameras: CameraConfig[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  cameras.forEach((cam, i) => {
    const id: unknown = typeof cam === "object" && cam !== null ? cam.id : undefined;
    if (typeof id !== "string") return;
    const prev = seen.get(id);
    if (prev !== undefined) ctx.addIssue({ code: "custom", path: [i, "id"], message: `camera id "${id}" is also used by cameras.${prev}` });
    else seen.set(id, i);
  });
}

export type Config = z.infer<typeof ConfigSchema>;
export type CameraConfig = z.infer<typeof CameraSchema>;
export type SourceConfig = z.infer<typeof SourceSchema>;
export type HealthConfig = z.infer<typeof HealthSchema>;
export type SoakConfig = z.infer<typeof SoakSchema>;
