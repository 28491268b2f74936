// How a decoded frame becomes the model's input picture: the one resize/letterbox path that
// the daemon runs on every camera frame and that calibration, evaluation and the frame cache
// run offline (src/ingest/offline-fit.ts), so offline numbers describe what the daemon feeds
// its model. Pure: the GStreamer description of the step, not the running of it.
//
// GStreamer does the fitting, not JavaScript: the daemon scales in the source's own format
// (I420, NV12, ...) before converting the small result to RGB, which is cheaper than
// converting the full frame first, and the offline path must give the very same bytes.
import type { ResizeMode } from "../core/types.ts";

export interface FitTarget {
  width: number;
  height: number;
  resize: ResizeMode;
}

/**
 * The conversion from any raw video format to width x height packed RGB. The first
 * videoconvert passes through whenever videoscale accepts the source format, so the frame is
 * scaled in its own format and only the small result is converted to RGB; it remains for
 * formats videoscale cannot handle.
 *
 * Letterbox: videoscale's add-borders keeps the display aspect ratio and fills the rest with
 * black, centred (pads rounded down to the left/top). Stretch must set add-borders=false
 * explicitly: since GStreamer 1.22 videoscale adds borders by default.
 */
export function fitChain(target: FitTarget): string {
  const { width, height, resize } = target;
  return (
    `videoconvert ! videoscale add-borders=${resize === "letterbox"} ! videoconvert ! ` +
    `video/x-raw,format=RGB,width=${width},height=${height},pixel-aspect-ratio=1/1`
  );
}
