// A flat view of one `detections` frame, for consumers that want the frame's identity and
// its objects in one object rather than Header + body (the test harness, quick scripts).
// The wire format is protobuf (proto/perceptd.proto, message Detections); encoding goes
// through BusEncoder (src/bus/codec.ts) only, so the counter and CRC are stamped in one place.
import { decodeFrame, type PublishedDetection } from "./codec.ts";

export interface DetectionsMessage {
  camera: string;
  /** the frame's per-camera sequence number (gaps: frames dropped before inference) */
  seq: number;
  /** the topic's message counter (gaps: messages lost on the bus) */
  counter: bigint;
  /** process.hrtime.bigint() of the publisher when ingest received the frame */
  tIngestNs: bigint;
  /** process.hrtime.bigint() of the publisher when the message was encoded */
  tPublishNs: bigint;
  /** wall clock at encoding, Unix milliseconds */
  wallTimeMs: number;
  /** false: older than the latency budget at publish; do not act on it */
  valid: boolean;
  /** manifest name of the model that produced the detections */
  model: string;
  /** size of the source frame in pixels: the space the boxes are in */
  width: number;
  height: number;
  /** with track id, range, time to collision and corridor membership where the camera has a hazard assessment */
  detections: PublishedDetection[];
}

/** Checks (CRC, schema_version, data_id) and decodes a `detections` frame; throws FrameError saying what is wrong. */
export function decodeDetections(frame: Uint8Array): DetectionsMessage {
  const { header: h, body: b } = decodeFrame("detections", frame);
  return {
    camera: h.cameraId,
    seq: Number(h.frameSeq),
    counter: h.counter,
    tIngestNs: h.tIngestMonoNs,
    tPublishNs: h.tPublishMonoNs,
    wallTimeMs: Number(h.wallTimeUnixNs / 1_000_000n),
    valid: h.valid,
    model: b.model,
    width: b.frameWidthPx,
    height: b.frameHeightPx,
    detections: b.detections,
  };
}
