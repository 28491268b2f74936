// What the bus says about a frame, as the overlay draws it (src/view/overlay.ts): the live
// view and `perceptd detect --from-bus` both start from published detections and alerts.
import type { Alert, PublishedDetection } from "../bus/codec.ts";
import type { AlertLevel, OverlayAlert, OverlayObject } from "../view/overlay.ts";

const LEVELS: Partial<Record<Alert["level"], AlertLevel>> = { LEVEL_INFO: "info", LEVEL_WARNING: "warning", LEVEL_CRITICAL: "critical" };

/** "KIND_PEDESTRIAN" -> "pedestrian" */
export function alertKindName(kind: Alert["kind"]): string {
  return kind.replace(/^KIND_/, "").toLowerCase().replace(/_/g, " ");
}

export function alertLevelName(level: Alert["level"]): AlertLevel | undefined {
  return LEVELS[level];
}

/** The camera's detections with each object's alert level (its track's, the highest when several). */
export function overlayObjects(detections: readonly PublishedDetection[], alerts: readonly Alert[]): OverlayObject[] {
  const byTrack = new Map<bigint, AlertLevel>();
  const rank = (l: AlertLevel | undefined): number => (l === undefined ? 0 : ["info", "warning", "critical"].indexOf(l) + 1);
  for (const a of alerts) {
    const level = alertLevelName(a.level);
    if (a.trackId !== 0n && rank(level) > rank(byTrack.get(a.trackId))) byTrack.set(a.trackId, level!);
  }
  return detections.map((d) => {
    const o: OverlayObject = { classId: d.classId, label: d.label, score: d.score, box: d.box };
    if (d.trackId !== undefined && d.trackId !== 0n) o.trackId = d.trackId;
    if (d.rangeM !== undefined) o.rangeM = d.rangeM;
    if (d.ttcS !== undefined) o.ttcS = d.ttcS;
    const level = d.trackId !== undefined ? byTrack.get(d.trackId) : undefined;
    if (level !== undefined) o.alert = level;
    return o;
  });
}

/** One line per alert, for the list under the caption. */
export function overlayAlerts(alerts: readonly Alert[]): OverlayAlert[] {
  const out: OverlayAlert[] = [];
  for (const a of alerts) {
    const level = alertLevelName(a.level);
    if (level === undefined) continue;
    const parts = [alertKindName(a.kind), `id${a.trackId}`];
    if (a.rangeM !== undefined) parts.push(`${a.rangeM.toFixed(1)}m`);
    if (a.ttcS !== undefined) parts.push(`ttc ${a.ttcS.toFixed(1)}s`);
    if (!a.valid) parts.push("not valid");
    out.push({ level, text: parts.join(" ") });
  }
  return out;
}
