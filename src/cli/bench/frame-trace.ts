// `perceptd bench pipeline --frame-trace`: each timed frame of a daemon scenario taken
// apart, from the daemon's per-frame log lines (src/daemon/frame-timings.ts) joined with
// the subscriber's receipt of the same frame. The stage histograms say how each stage
// behaves over the window; this says which stage made the slowest frames slow.
import type { DetectionsMessage } from "../../bus/detections-message.ts";
import { FRAME_TIMINGS_MSG, type FrameTimings } from "../../daemon/frame-timings.ts";
import type { LogLine } from "./daemon-process.ts";
import { latencyStats, type LatencyStats } from "./model-bench.ts";
import { formatMs } from "./table.ts";

/** One frame, every step in ms: the daemon's stages, then the bus. */
export interface TracedFrame extends Omit<FrameTimings, "camera"> {
  e2eMs: number;
  /** the message's publish stamp to the subscriber's receipt: ZeroMQ, loopback, the subscriber waking up */
  publishToReceiptMs: number;
}

export interface FrameTrace {
  /** timed frames with a timings line; fewer than the window's only if the daemon's log lost some */
  frames: number;
  /** e2e minus the frame's own session.run: what the daemon and the bus add around the model */
  outsideModel: LatencyStats;
  /** the slowest frames by e2e, slowest first */
  slowest: TracedFrame[];
}

const SLOWEST = 5;

const NUMERIC_FIELDS = ["seq", "ingestToWorkerMs", "preprocessMs", "inferenceMs", "decodeMs", "workerToMainMs", "publishMs"] as const;

function timingsOf(line: LogLine, camera: string): FrameTimings | null {
  if (line.msg !== FRAME_TIMINGS_MSG || line.camera !== camera) return null;
  if (!NUMERIC_FIELDS.every((k) => typeof line[k] === "number" && Number.isFinite(line[k]))) return null;
  return line as unknown as FrameTimings;
}

/**
 * Joins the daemon's timings lines for `camera` with the window's messages (by frame
 * sequence number) and their receipt times. Null when no message of the window has a line
 * (the daemon did not run at log level trace).
 */
export function traceFrames(logs: readonly LogLine[], camera: string, msgs: readonly DetectionsMessage[], receivedNs: readonly bigint[]): FrameTrace | null {
  const bySeq = new Map<number, FrameTimings>();
  for (const l of logs) {
    const t = timingsOf(l, camera);
    if (t !== null) bySeq.set(t.seq, t);
  }
  const frames: TracedFrame[] = [];
  msgs.forEach((m, i) => {
    const t = bySeq.get(m.seq);
    if (t === undefined || m.camera !== camera) return;
    const { camera: _camera, ...steps } = t;
    frames.push({ ...steps, e2eMs: Number(receivedNs[i] - m.tIngestNs) / 1e6, publishToReceiptMs: Number(receivedNs[i] - m.tPublishNs) / 1e6 });
  });
  if (frames.length === 0) return null;
  return {
    frames: frames.length,
    outsideModel: latencyStats(frames.map((f) => f.e2eMs - f.inferenceMs)),
    slowest: [...frames].sort((a, b) => b.e2eMs - a.e2eMs).slice(0, SLOWEST),
  };
}

/** The report's line for one scenario. */
export function renderFrameTrace(label: string, t: FrameTrace): string {
  const f = (ms: number): string => formatMs(ms);
  const frame = (x: TracedFrame): string =>
    `#${x.seq} ${f(x.e2eMs)} = ingest->worker ${f(x.ingestToWorkerMs)} + preprocess ${f(x.preprocessMs)} + session.run ${f(x.inferenceMs)} + ` +
    `decode+NMS ${f(x.decodeMs)} + worker->main ${f(x.workerToMainMs)} + publish ${f(x.publishMs)} + publish->receipt ${f(x.publishToReceiptMs)}`;
  return (
    `${label}, frame by frame (--frame-trace, ${t.frames} frames), ms: e2e minus the frame's own session.run p50/p99 ` +
    `${f(t.outsideModel.p50Ms)}/${f(t.outsideModel.p99Ms)}; slowest: ${t.slowest.map(frame).join("; ")}. The steps follow one ` +
    `another, except that publish->receipt starts at the message's publish stamp, inside the publish step, so the parts can ` +
    `add up to a little more than e2e.`
  );
}
