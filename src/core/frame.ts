// A frame as it leaves ingest: already converted, scaled and letterboxed to the model
// input by GStreamer, tagged with where and when it came from.
import type { LetterboxTransform } from "./types.ts";

export interface Frame {
  camera: string;
  /** per-camera sequence number, from 0, counting every frame ingest received (dropped ones too) */
  seq: number;
  /** process.hrtime.bigint() when the appsink handed the frame over */
  tIngestNs: bigint;
  /** buffer timestamp from the pipeline, when known */
  ptsNs: number | null;
  /** packed RGB, width * height * 3 bytes, at the model input size */
  pixels: Uint8Array;
  width: number;
  height: number;
  /** how the source frame was placed into width x height; maps boxes back to source pixels */
  transform: LetterboxTransform;
}
