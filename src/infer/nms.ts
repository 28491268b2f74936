// Greedy non-maximum suppression. Boxes use continuous pixel coordinates (area = w * h,
// no "+1" convention), matching how the decoders produce them.
import type { Box, Detection } from "../core/types.ts";

function area(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

export function iou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = area(a) + area(b) - inter;
  // Zero-area boxes would otherwise give 0/0.
  return union > 0 ? inter / union : 0;
}

export interface NmsOptions {
  /** Boxes of different classes never suppress each other. Default true. */
  classAware?: boolean;
  /** Stop once this many boxes are kept. Default: no limit. */
  maxDetections?: number;
}

/**
 * Keeps the highest-scoring box and drops any lower-scoring box whose IoU with a kept box
 * is greater than iouThreshold, repeatedly. Returns kept detections (the same objects)
 * sorted by score descending; equal scores keep their input order.
 */
export function nms(dets: Detection[], iouThreshold: number, opts: NmsOptions = {}): Detection[] {
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) {
    throw new RangeError(`nms: iouThreshold must be in [0, 1], got ${String(iouThreshold)}`);
  }
  const classAware = opts.classAware ?? true;
  const maxDetections = opts.maxDetections ?? Number.POSITIVE_INFINITY;
  if (!(maxDetections >= 0) || (Number.isFinite(maxDetections) && !Number.isInteger(maxDetections))) {
    throw new RangeError(`nms: maxDetections must be a non-negative integer, got ${String(maxDetections)}`);
  }

  // NaN scores would make the sort order undefined; such a candidate is unusable anyway.
  const order = dets.filter((d) => !Number.isNaN(d.score));
  order.sort((a, b) => b.score - a.score);

  // Walking the globally sorted list once and comparing only against kept boxes of the
  // same group is the per-class greedy NMS, with the merged output already in score order.
  const keptByGroup = new Map<number, Box[]>();
  const kept: Detection[] = [];
  for (const d of order) {
    if (kept.length >= maxDetections) break;
    const group = classAware ? d.classId : 0;
    let groupKept = keptByGroup.get(group);
    if (groupKept === undefined) {
      groupKept = [];
      keptByGroup.set(group, groupKept);
    }
    let suppressed = false;
    for (const k of groupKept) {
      if (iou(k, d.box) > iouThreshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) {
      groupKept.push(d.box);
      kept.push(d);
    }
  }
  return kept;
}
