// The daemon's configuration: every key, its default, its bounds and its meaning, declared
// once. YAML files in config/ are checked against this; unknown keys are errors (a typo
// must not silently fall back to a default).
import { z } from "zod";

const ms = (def: number, min: number, max: number, what: string) => z.number().int().min(min).max(max).default(def).describe(`${what} (milliseconds)`);

export const RestartSchema = z
  .object({
    initialBackoffMs: ms(500, 10, 600_000, "first delay before restarting a failed live source"),
    maxBackoffMs: ms(30_000, 100, 3_600_000, "ceiling of the exponential backoff"),
    jitter: z.number().min(0).max(1).default(0.2).describe("random spread added to each delay, as a fraction of it"),
  })
  .strict();

const size = {
  width: z.number().int().min(16).max(8192).optional().describe("capture width in pixels (source default if absent)"),
  height: z.number().int().min(16).max(8192).optional().describe("capture height in pixels"),
  framerate: z.number().positive().max(1000).optional().describe("capture frame rate (frames per second)"),
};

export const SourceSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("file"),
      path: z.string().min(1).describe("video file GStreamer can decode (AVI, MP4, MKV, ...)"),
      loop: z.boolean().default(false).describe("start again at the end instead of ending the run"),
      realtime: z.boolean().default(true).describe("pace frames at the file's own frame rate (false: as fast as they decode)"),
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
      url: z.string().regex(/^rtsps?:\/\//, "must start with rtsp:// or rtsps://"),
      latencyMs: ms(200, 0, 10_000, "rtspsrc jitter buffer"),
      protocols: z.enum(["tcp", "udp", "auto"]).default("auto").describe("RTP transport"),
    })
    .strict(),
  z
    .object({
      type: z.literal("testsrc"),
      pattern: z.string().default("ball").describe("videotestsrc pattern (ball, smpte, snow, ...)"),
      width: z.number().int().min(16).max(8192).default(640),
      height: z.number().int().min(16).max(8192).default(480),
      framerate: z.number().positive().max(1000).default(30),
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
]);

export const CameraSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "1-32 letters, digits, '_' or '-'").describe("camera id, carried in every frame and bus message"),
    source: SourceSchema,
    restart: RestartSchema.default(RestartSchema.parse({})),
  })
  .strict();

export const ExecutionProviderSchema = z.enum(["tensorrt", "cuda", "cpu"]);

export const ConfigSchema = z
  .object({
    log: z
      .object({
        level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
        format: z.enum(["auto", "json", "pretty"]).default("auto").describe("auto: readable lines on a terminal, JSON otherwise (journald)"),
      })
      .strict()
      .default({ level: "info", format: "auto" }),
    model: z
      .object({
        name: z.string().optional().describe("manifest name of the model (default: the manifest's default)"),
        manifest: z.string().optional().describe("path to manifest.json (default: the repository's models/manifest.json)"),
        scoreThreshold: z.number().min(0).max(1).default(0.35).describe("detections below this score are dropped"),
        iouThreshold: z.number().min(0).max(1).default(0.5).describe("class-aware NMS overlap threshold"),
        classes: z.array(z.string()).default([]).describe("labels to report (empty: all)"),
        maxDetections: z.number().int().min(1).max(1000).default(100).describe("per frame, after NMS"),
      })
      .strict()
      .default({ scoreThreshold: 0.35, iouThreshold: 0.5, classes: [], maxDetections: 100 }),
    inference: z
      .object({
        executionProviders: z.array(ExecutionProviderSchema).min(1).default(["cpu"]).describe("tried in order; the first that loads runs"),
        intraOpThreads: z.number().int().min(0).max(256).default(0).describe("ONNX Runtime intra-op threads (0: one per core)"),
        interOpThreads: z.number().int().min(0).max(256).default(1),
        trtFp16: z.boolean().default(true).describe("TensorRT: allow fp16 kernels"),
        trtCacheDir: z.string().default("/var/cache/perceptd/trt").describe("TensorRT engine cache folder"),
        warmupRuns: z.number().int().min(0).max(100).default(3).describe("inferences on a blank frame before the daemon reports ready"),
        workers: z.enum(["shared", "per-camera"]).default("shared").describe("one inference worker for all cameras, or one each"),
      })
      .strict()
      .default({ executionProviders: ["cpu"], intraOpThreads: 0, interOpThreads: 1, trtFp16: true, trtCacheDir: "/var/cache/perceptd/trt", warmupRuns: 3, workers: "shared" }),
    cameras: z.array(CameraSchema).min(1).describe("one entry per camera; ids must be unique"),
    bus: z
      .object({
        endpoints: z
          .array(z.string().regex(/^(tcp|ipc):\/\//, "must be tcp://host:port or ipc://path"))
          .min(1)
          .default(["tcp://127.0.0.1:5555"])
          .describe("ZeroMQ PUB endpoints to bind"),
        sendHighWaterMark: z.number().int().min(1).max(1_000_000).default(1000).describe("ZMQ_SNDHWM: messages queued per subscriber before drops"),
      })
      .strict()
      .default({ endpoints: ["tcp://127.0.0.1:5555"], sendHighWaterMark: 1000 }),
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().default("127.0.0.1").describe("bind address of /metrics and /healthz"),
        port: z.number().int().min(0).max(65535).default(9464).describe("0: any free port"),
      })
      .strict()
      .default({ enabled: true, host: "127.0.0.1", port: 9464 }),
    status: z
      .object({
        mode: z.enum(["auto", "on", "off"]).default("auto").describe("live status line on stderr; auto: when stderr is a terminal"),
        intervalMs: ms(1000, 100, 60_000, "status line refresh"),
      })
      .strict()
      .default({ mode: "auto", intervalMs: 1000 }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.cameras.forEach((cam, i) => {
      const prev = seen.get(cam.id);
      if (prev !== undefined) ctx.addIssue({ code: "custom", path: ["cameras", i, "id"], message: `camera id "${cam.id}" is also used by cameras[${prev}]` });
      seen.set(cam.id, i);
      if (cam.restart.initialBackoffMs > cam.restart.maxBackoffMs)
        ctx.addIssue({ code: "custom", path: ["cameras", i, "restart", "initialBackoffMs"], message: `camera ${cam.id}: initialBackoffMs exceeds maxBackoffMs` });
    });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type CameraConfig = z.infer<typeof CameraSchema>;
export type SourceConfig = z.infer<typeof SourceSchema>;
export type ExecutionProvider = z.infer<typeof ExecutionProviderSchema>;
