// Agreement with a dense reference per data set, never pooled: the in-clip held-out frames
// of vtest.avi and the out-of-scene set are different questions (does the model still see
// this street; does it still see anything else), so each gets its own figures.
//
// Per set: COCO-style AP@0.5 with the reference's detections scoring above
// REFERENCE_THRESHOLD as ground truth, over every class the reference found and per road
// class; and recall of the reference's confident objects (score >= 0.5) by the model at
// the bar's operating point (same class, IoU >= 0.5, model score >= 0.3), overall and per
// class, with class collapse flagged (a class with >= 5 confident objects found < 80 %).
// Frames come from the frame cache, fitted by the daemon's own pipeline.
import type { FitTarget } from "../../ingest/frame-fit.ts";
import { Detector, type DetectorOptions } from "../../infer/detector.ts";
import type { Detection } from "../../core/types.ts";
import { tailTransform } from "../../ingest/pipeline-description.ts";
import { prepareFrames } from "../data/build.ts";
import type { FrameCache } from "../data/frame-cache.ts";
import type { ResolvedModel } from "../../infer/manifest.ts";
import { AGREEMENT_CLASSES, DEFAULT_REFERENCE_THRESHOLD, PREDICTION_SCORE_FLOOR } from "./agreement.ts";
import { averagePrecision, recallAt, type EvalFrame } from "./map.ts";

/** The sets `perceptd eval` reports by default, each on its own. */
export const DEFAULT_EVAL_SETS = ["vtest:held-out", "corpus:out-of-scene"] as const;
export const REFERENCE_THRESHOLD = DEFAULT_REFERENCE_THRESHOLD;
/** Reference objects whose recall is measured: the reference is confident about them. */
export const CONFIDENT_REFERENCE_SCORE = 0.5;
/** A model detection counts as finding a confident object from this score on. */
export const RECALL_MODEL_SCORE = 0.3;
export const RECALL_IOU = 0.5;
/** Class collapse: a class with at least this many confident objects ... */
export const COLLAPSE_MIN_OBJECTS = 5;
/** ... found below this share. */
export const COLLAPSE_RECALL = 0.8;
const MAX_DETECTIONS = 100;

export interface ClassFigures {
  label: string;
  /** Reference boxes above REFERENCE_THRESHOLD: AP's ground truth. */
  references: number;
  predictions: number;
  /** NaN when the reference found none of the class. */
  ap50: number;
  /** Confident reference objects (score >= 0.5) and how many the model found. */
  confident: number;
  found: number;
  /** found / confident; NaN when there are none. */
  recall: number;
  collapsed: boolean;
}

export interface SetAgreement {
  set: string;
  model: string;
  reference: string;
  frames: number;
  /** Mean AP@0.5 over the classes the reference found (all COCO classes, not just road users). */
  map50: number;
  classesPresent: number;
  /** Every class the reference found, plus the road classes, road classes first. */
  perClass: ClassFigures[];
  /** Over all classes: confident reference objects found / confident reference objects. */
  recall: number;
  confident: number;
  found: number;
  /** Labels of collapsed classes. */
  collapsed: string[];
  thresholds: { reference: number; predictionFloor: number; confidentReference: number; recallModel: number; recallIou: number; collapseMinObjects: number; collapseRecall: number };
}

function byLabelIds(frames: readonly { reference: readonly Detection[]; predicted: readonly Detection[] }[]): Map<string, number> {
  const ids = new Map<string, number>();
  for (const l of AGREEMENT_CLASSES) ids.set(l, ids.size);
  for (const f of frames) for (const d of [...f.reference, ...f.predicted]) if (!ids.has(d.label)) ids.set(d.label, ids.size);
  return ids;
}

/** The figures of one set from per-frame detections of the reference and the model (source pixels). */
export function setAgreementMetrics(
  set: string,
  model: string,
  reference: string,
  frames: readonly { reference: readonly Detection[]; predicted: readonly Detection[] }[],
): SetAgreement {
  const ids = byLabelIds(frames);
  const relabel = (ds: readonly Detection[]): Detection[] => ds.map((d) => ({ ...d, classId: ids.get(d.label)! }));
  const apFrames: EvalFrame[] = frames.map((f) => ({ reference: relabel(f.reference.filter((d) => d.score > REFERENCE_THRESHOLD)), predicted: relabel(f.predicted) }));
  const recallFrames: EvalFrame[] = frames.map((f) => ({
    reference: relabel(f.reference.filter((d) => d.score >= CONFIDENT_REFERENCE_SCORE)),
    predicted: relabel(f.predicted.filter((d) => d.score >= RECALL_MODEL_SCORE)),
  }));
  const perClass: ClassFigures[] = [];
  for (const [label, id] of ids) {
    const ap = averagePrecision(apFrames, id, 0.5);
    const confident = recallFrames.reduce((n, f) => n + f.reference.filter((d) => d.classId === id).length, 0);
    const recall = confident === 0 ? Number.NaN : recallAt(recallFrames, id, RECALL_MODEL_SCORE, RECALL_IOU);
    const found = confident === 0 ? 0 : Math.round(recall * confident);
    const road = (AGREEMENT_CLASSES as readonly string[]).includes(label);
    if (!road && ap.references === 0 && confident === 0) continue;
    perClass.push({ label, references: ap.references, predictions: ap.predictions, ap50: ap.ap, confident, found, recall, collapsed: confident >= COLLAPSE_MIN_OBJECTS && recall < COLLAPSE_RECALL });
  }
  const present = perClass.filter((c) => c.references > 0);
  const confident = perClass.reduce((n, c) => n + c.confident, 0);
  const found = perClass.reduce((n, c) => n + c.found, 0);
  return {
    set,
    model,
    reference,
    frames: frames.length,
    map50: present.length ? present.reduce((s, c) => s + c.ap50, 0) / present.length : Number.NaN,
    classesPresent: present.length,
    perClass,
    recall: confident ? found / confident : Number.NaN,
    confident,
    found,
    collapsed: perClass.filter((c) => c.collapsed).map((c) => c.label),
    thresholds: {
      reference: REFERENCE_THRESHOLD,
      predictionFloor: PREDICTION_SCORE_FLOOR,
      confidentReference: CONFIDENT_REFERENCE_SCORE,
      recallModel: RECALL_MODEL_SCORE,
      recallIou: RECALL_IOU,
      collapseMinObjects: COLLAPSE_MIN_OBJECTS,
      collapseRecall: COLLAPSE_RECALL,
    },
  };
}

export type SessionChoice = Pick<DetectorOptions, "executionProviders" | "intraOpThreads">;

function targetOf(m: ResolvedModel): FitTarget {
  const { width, height, resize } = m.entry.input;
  return { width, height, resize };
}

/** The model's detections on every frame of a cache, in source pixels. */
export async function detectOnCache(
  model: ResolvedModel,
  cache: FrameCache,
  opts: { scoreThreshold: number; session?: SessionChoice; onFrame?: () => void },
): Promise<Detection[][]> {
  const target = targetOf(model);
  const ix = cache.index;
  if (ix.width !== target.width || ix.height !== target.height || ix.resize !== target.resize) {
    throw new Error(`frame cache ${cache.dir} holds ${ix.width}x${ix.height} ${ix.resize} frames; model ${model.name} takes ${target.width}x${target.height} ${target.resize}`);
  }
  const detector = await Detector.create(model, { ...opts.session, executionProviders: opts.session?.executionProviders ?? ["cpu"], scoreThreshold: opts.scoreThreshold, maxDetections: MAX_DETECTIONS });
  const out: Detection[][] = [];
  try {
    for await (const { item, pixels } of cache.frames()) {
      const transform = tailTransform({ width: item.sourceWidth, height: item.sourceHeight }, target);
      out.push((await detector.detectFitted({ width: ix.width, height: ix.height, data: pixels }, transform)).detections);
      opts.onFrame?.();
    }
  } finally {
    await detector.close();
  }
  return out;
}

export interface EvalProgress {
  set: string;
  model: string;
  done: number;
  total: number;
}

export interface EvaluateSetsOptions {
  models: readonly ResolvedModel[];
  reference: ResolvedModel;
  /** Data specs, each evaluated as a set of its own (default DEFAULT_EVAL_SETS). */
  sets?: readonly string[];
  session?: SessionChoice;
  onProgress?: (p: EvalProgress) => void;
}

/**
 * Every model against the reference on every frame of every set; the reference runs once per
 * set. Returns one SetAgreement per (model, set), models in the order given, sets within.
 */
export async function evaluateOnSets(opts: EvaluateSetsOptions): Promise<SetAgreement[]> {
  const sets = opts.sets ?? DEFAULT_EVAL_SETS;
  const results: SetAgreement[][] = opts.models.map(() => []);
  const caches = new Map<string, FrameCache>();
  const cacheFor = async (set: string, m: ResolvedModel): Promise<FrameCache> => {
    const t = targetOf(m);
    const key = `${set}|${t.width}x${t.height}-${t.resize}`;
    let c = caches.get(key);
    if (c === undefined) {
      c = await prepareFrames([set], t, { purpose: "evaluation" });
      caches.set(key, c);
    }
    return c;
  };
  try {
    for (const set of sets) {
      const run = async (m: ResolvedModel, threshold: number, label: string): Promise<Detection[][]> => {
        const cache = await cacheFor(set, m);
        let done = 0;
        const total = cache.index.count;
        return detectOnCache(m, cache, { scoreThreshold: threshold, session: opts.session, onFrame: () => opts.onProgress?.({ set, model: label, done: ++done, total }) });
      };
      const reference = await run(opts.reference, REFERENCE_THRESHOLD, opts.reference.name);
      const refCache = await cacheFor(set, opts.reference);
      for (const [k, m] of opts.models.entries()) {
        const cache = await cacheFor(set, m);
        checkSameItems(refCache, cache);
        const predicted = await run(m, PREDICTION_SCORE_FLOOR, m.name);
        results[k].push(setAgreementMetrics(set, m.name, opts.reference.name, reference.map((r, i) => ({ reference: r, predicted: predicted[i] }))));
      }
    }
  } finally {
    for (const c of caches.values()) await c.close();
  }
  return results.flat();
}

/** Two caches of one set for different inputs must list the same pictures in the same order. */
function checkSameItems(a: FrameCache, b: FrameCache): void {
  if (a === b) return;
  const same = a.index.count === b.index.count && a.index.items.every((x, i) => {
    const y = b.index.items[i];
    return x.source === y.source && x.frame === y.frame && x.augment === y.augment && x.seed === y.seed && a.index.sources[x.source].sha256 === b.index.sources[y.source].sha256;
  });
  if (!same) throw new Error(`frame caches ${a.dir} and ${b.dir} do not hold the same frames; rebuild them with \`perceptd data build --force\``);
}
