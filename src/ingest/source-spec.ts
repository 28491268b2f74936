// What ingest needs to know about a camera: plain data, as the composition root (the daemon)
// hands it over. The config schema (src/config/schema.ts) validates the YAML and fills the
// defaults; its parsed camera fits these types, and the compiler checks that where the
// daemon passes it in, so ingest never depends on the config module.

/** software: decodebin on the CPU; jetson: NVDEC + VIC. */
export type DecoderChoice = "software" | "jetson";

interface CaptureSize {
  width?: number;
  height?: number;
  framerate?: number;
}

export type SourceSpec =
  | { type: "file"; path: string; loop: boolean; realtime: boolean; decoder?: DecoderChoice }
  | ({ type: "v4l2"; device: string } & CaptureSize)
  | ({ type: "csi"; sensorId: number } & CaptureSize)
  | { type: "rtsp"; url: string; latencyMs: number; protocols: "tcp" | "udp" | "auto"; decoder?: DecoderChoice }
  | { type: "testsrc"; pattern: string; width: number; height: number; framerate: number; numBuffers?: number }
  | { type: "pipeline"; pipeline: string; live: boolean };

/** The backoff before a live source is rebuilt, and when a silent one counts as failed. */
export interface RestartOptions {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** random spread of each delay, as a fraction of it */
  jitter: number;
  stallTimeoutMs: number;
}

export interface CameraSpec {
  id: string;
  source: SourceSpec;
  restart: RestartOptions;
}
