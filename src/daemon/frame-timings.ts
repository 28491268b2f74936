// The one log line per processed frame that the daemon writes at log level "trace": every
// stage's time for that frame, which the stage histograms (src/metrics) only give in
// aggregate. `perceptd bench pipeline --frame-trace` reads these lines to take its slowest
// frames apart; they are off at every other level, so a daemon in service writes none.
import type { InferResult } from "../infer/inference-worker.ts";

/** The `msg` of the line. */
export const FRAME_TIMINGS_MSG = "frame timings";

/** The line's fields besides pino's own, in ms. */
export interface FrameTimings {
  camera: string;
  seq: number;
  /** ingest to the worker taking the frame: the hop, and waiting while the worker was busy */
  ingestToWorkerMs: number;
  preprocessMs: number;
  /** session.run */
  inferenceMs: number;
  /** decode + NMS */
  decodeMs: number;
  workerToMainMs: number;
  /** the main thread's work on the result until the message is handed to the bus: freshness, hazard assessment, encoding */
  publishMs: number;
}

export function frameTimings(r: InferResult, publishMs: number): FrameTimings {
  const t = r.timings;
  return {
    camera: r.camera,
    seq: r.seq,
    ingestToWorkerMs: t.queueMs,
    preprocessMs: t.preprocessMs,
    inferenceMs: t.inferenceMs,
    decodeMs: t.decodeMs,
    workerToMainMs: t.handoffMs,
    publishMs,
  };
}
