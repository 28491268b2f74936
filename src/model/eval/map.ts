// COCO-style average precision, pure. perceptd judges a pruned model by how well it agrees
// with its dense parent: the parent's detections play the part of ground truth. Real
// labels (COCO JSON) go through the same code.
import { iou } from "../../infer/nms.ts";
import type { Detection } from "../../core/types.ts";

export interface EvalFrame {
  /** reference boxes ("ground truth") */
  reference: readonly Detection[];
  /** boxes of the model under test, with scores */
  predicted: readonly Detection[];
}

export interface ClassAp {
  classId: number;
  ap: number;
  references: number;
  predictions: number;
}

/** COCO's 101 recall points: 0, 0.01, ..., 1. */
const RECALL_POINTS = Array.from({ length: 101 }, (_, i) => i / 100);

export function averagePrecision(frames: readonly EvalFrame[], classId: number, iouThreshold: number): ClassAp {
  const preds: { score: number; frame: number; det: Detection }[] = [];
  let references = 0;
  frames.forEach((f, frame) => {
    references += f.reference.filter((d) => d.classId === classId).length;
    for (const det of f.predicted) if (det.classId === classId) preds.push({ score: det.score, frame, det });
  });
  // stable sort by score, ties in frame order, as pycocotools does (mergesort)
  preds.sort((a, b) => b.score - a.score);
  if (references === 0) return { classId, ap: NaN, references, predictions: preds.length };
  const used = frames.map((f) => new Array<boolean>(f.reference.length).fill(false));
  const tp: number[] = [];
  for (const p of preds) {
    const refs = frames[p.frame].reference;
    let best = -1;
    let bestIou = iouThreshold;
    refs.forEach((r, k) => {
      if (r.classId !== classId || used[p.frame][k]) return;
      const v = iou(p.det.box, r.box);
      if (v >= bestIou) {
        bestIou = v;
        best = k;
      }
    });
    if (best >= 0) used[p.frame][best] = true;
    tp.push(best >= 0 ? 1 : 0);
  }
  const precision: number[] = [];
  const recall: number[] = [];
  let ctp = 0;
  tp.forEach((t, i) => {
    ctp += t;
    precision.push(ctp / (i + 1));
    recall.push(ctp / references);
  });
  // precision envelope: the best precision at any recall to the right
  for (let i = precision.length - 2; i >= 0; i--) precision[i] = Math.max(precision[i], precision[i + 1]);
  let sum = 0;
  let k = 0;
  for (const r of RECALL_POINTS) {
    while (k < recall.length && recall[k] < r) k++;
    sum += k < recall.length ? precision[k] : 0;
  }
  return { classId, ap: sum / RECALL_POINTS.length, references, predictions: preds.length };
}

export interface MapResult {
  /** mean over classes that have references, at IoU 0.5 */
  map50: number;
  /** mean over classes and IoU 0.50:0.05:0.95 */
  map50_95: number;
  perClass: { classId: number; ap50: number; ap50_95: number; references: number; predictions: number }[];
}

export const COCO_IOU_THRESHOLDS = Array.from({ length: 10 }, (_, i) => 0.5 + 0.05 * i);

export function meanAveragePrecision(frames: readonly EvalFrame[], classIds: readonly number[]): MapResult {
  const perClass = classIds.map((c) => {
    const at = COCO_IOU_THRESHOLDS.map((t) => averagePrecision(frames, c, t));
    return {
      classId: c,
      ap50: at[0].ap,
      ap50_95: at.reduce((s, a) => s + a.ap, 0) / at.length,
      references: at[0].references,
      predictions: at[0].predictions,
    };
  });
  const valid = perClass.filter((p) => p.references > 0);
  const mean = (xs: number[]): number => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : NaN);
  return { map50: mean(valid.map((p) => p.ap50)), map50_95: mean(valid.map((p) => p.ap50_95)), perClass };
}

/** Share of reference objects of a class matched (IoU >= threshold) by a prediction at or above minScore. */
export function recallAt(frames: readonly EvalFrame[], classId: number, minScore: number, iouThreshold = 0.5): number {
  let refs = 0;
  let hit = 0;
  for (const f of frames) {
    const preds = f.predicted.filter((p) => p.classId === classId && p.score >= minScore);
    const taken = new Array<boolean>(preds.length).fill(false);
    for (const r of f.reference) {
      if (r.classId !== classId) continue;
      refs++;
      let best = -1;
      let bestIou = iouThreshold;
      preds.forEach((p, k) => {
        const v = iou(p.box, r.box);
        if (!taken[k] && v >= bestIou) {
          bestIou = v;
          best = k;
        }
      });
      if (best >= 0) {
        taken[best] = true;
        hit++;
      }
    }
  }
  return refs ? hit / refs : NaN;
}
