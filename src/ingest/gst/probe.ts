// The source frame size as the probe branch of a pipeline description saw it
// (pipeline-description.ts): the appsink's caps only show the fitted model-input size.
import { parseFraction, type SourceFrame } from "../pipeline-description.ts";
import type { GstElementHandle } from "./binding.ts";

/** The source frame from the probe's last sample, or null while it has none. */
export function readProbe(probe: GstElementHandle): SourceFrame | null {
  // Reading last-sample before the first buffer makes the binding pass NULL to
  // gst_sample_get_caps, which logs a GStreamer-CRITICAL; the stats say when it is there.
  const stats = probe.stats;
  const rendered = typeof stats === "string" ? /rendered=\(guint64\)(\d+)/.exec(stats) : null;
  if (rendered === null || Number(rendered[1]) < 1) return null;
  const sample = probe["last-sample"];
  if (typeof sample !== "object" || sample === null) return null;
  const caps = (sample as { caps?: unknown }).caps;
  if (typeof caps !== "object" || caps === null) return null;
  const { width, height } = caps as { width?: unknown; height?: unknown };
  if (typeof width !== "number" || typeof height !== "number" || width <= 0 || height <= 0) return null;
  const par = parseFraction((caps as { "pixel-aspect-ratio"?: unknown })["pixel-aspect-ratio"]);
  return par === null ? { width, height } : { width, height, parN: par[0], parD: par[1] };
}
