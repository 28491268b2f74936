// How well a model agrees with a reference on real frames: COCO-style AP with the reference's
// confident detections as ground truth (or real COCO JSON labels), for the road-user classes
// a vehicle cares about, plus recall of people at the daemon's operating threshold.
//
// The model under test keeps every candidate scoring above PREDICTION_SCORE_FLOOR (up to 100
// per frame), as a COCO evaluation ranks all of a detector's output; the reference keeps only
// what scores above the stated reference threshold. Boxes are compared in source pixels, so
// models with different input sizes (nanodet 416, centernet 512) compare fairly. Frames are
// fitted to each model's input by the daemon's own pipeline (src/ingest/frame-fit.ts).
import { DEFAULT_SCORE_THRESHOLD } from "../../core/postprocess.ts";
import { Detector, type DetectorOptions } from "../../infer/detector.ts";
import type { Detection } from "../../core/types.ts";
import type { FitTarget } from "../../ingest/frame-fit.ts";
import { PictureFitter } from "../../ingest/offline-fit.ts";
import { fitVideoFrames } from "../../ingest/gst/video-file.ts";
import { readImageFile } from "../../ingest/image-file.ts";
import type { RgbImage } from "../../core/rgb-image.ts";
import type { ResolvedModel } from "../../infer/manifest.ts";
import type { CocoLabels, LabelledImage } from "./coco-json.ts";
import { meanAveragePrecision, recallAt, type EvalFrame } from "./map.ts";

/** Road users a vehicle's perception is judged on, in report order (COCO names). */
export const AGREEMENT_CLASSES = ["person", "bicycle", "car", "motorcycle", "bus", "truck"] as const;
export const DEFAULT_REFERENCE_THRESHOLD = 0.3;
/** The daemon's default model.scoreThreshold: detections at or below it never reach the bus. */
export const OPERATING_THRESHOLD = DEFAULT_SCORE_THRESHOLD;
/** Lowest score of the model's detections that enter AP (COCO evaluations use 0.05 or lower). */
export const PREDICTION_SCORE_FLOOR = 0.05;
const MAX_DETECTIONS = 100;

export interface ClassAgreement {
  label: string;
  ap50: number;
  ap50_95: number;
  /** Reference boxes ("ground truth") of the class over all frames. */
  references: number;
  predictions: number;
}

export interface AgreementMetrics {
  frames: number;
  /** Mean over the classes that have references. */
  map50: number;
  map50_95: number;
  perClass: ClassAgreement[];
  /** Share of reference people found (IoU >= 0.5) by detections scoring above the operating threshold. */
  personRecall: number;
  operatingThreshold: number;
}

/** Detections limited to AGREEMENT_CLASSES, with class ids renumbered into that list (by label). */
function roadUsers(dets: readonly Detection[]): Detection[] {
  const out: Detection[] = [];
  for (const d of dets) {
    const id = (AGREEMENT_CLASSES as readonly string[]).indexOf(d.label);
    if (id >= 0) out.push({ ...d, classId: id });
  }
  return out;
}

/** The metrics from per-frame detections; both lists are in source pixels. */
export function agreementMetrics(
  frames: readonly { reference: readonly Detection[]; predicted: readonly Detection[] }[],
  operatingThreshold = OPERATING_THRESHOLD,
): AgreementMetrics {
  const evalFrames: EvalFrame[] = frames.map((f) => ({ reference: roadUsers(f.reference), predicted: roadUsers(f.predicted) }));
  const map = meanAveragePrecision(
    evalFrames,
    AGREEMENT_CLASSES.map((_, i) => i),
  );
  // The daemon drops scores at or below the threshold; recallAt keeps >= minScore, so filter first.
  const operating = evalFrames.map((f) => ({ reference: f.reference, predicted: f.predicted.filter((p) => p.score > operatingThreshold) }));
  return {
    frames: frames.length,
    map50: map.map50,
    map50_95: map.map50_95,
    perClass: map.perClass.map((c) => ({
      label: AGREEMENT_CLASSES[c.classId],
      ap50: c.ap50,
      ap50_95: c.ap50_95,
      references: c.references,
      predictions: c.predictions,
    })),
    personRecall: recallAt(operating, 0, 0),
    operatingThreshold,
  };
}

export interface AgreementProgress {
  done: number;
  total: number;
}

export interface AgreementOptions {
  model: ResolvedModel;
  reference: ResolvedModel;
  video: string;
  /** Frame indices to evaluate on. */
  frames: readonly number[];
  referenceThreshold?: number;
  operatingThreshold?: number;
  session?: Pick<DetectorOptions, "executionProviders" | "intraOpThreads">;
  onProgress?: (p: AgreementProgress) => void;
}

export interface AgreementReport extends AgreementMetrics {
  model: string;
  /** Manifest name or file of the reference model, or the COCO labels file. */
  reference: string;
  referenceKind: "model" | "labels";
  /** null for labels. */
  referenceThreshold: number | null;
  predictionScoreFloor: number;
  video: string;
  frameIndices: number[];
}

function fitOf(m: ResolvedModel): FitTarget {
  const { width, height, resize } = m.entry.input;
  return { width, height, resize };
}

/** Per frame, in clip order: each model's detections on the frame fitted to its own input. */
async function detectEach(video: string, wanted: ReadonlySet<number>, detectors: readonly Detector[], onFrame: (index: number, dets: Detection[][]) => void): Promise<void> {
  const last = Math.max(...wanted);
  // One decoding pass per distinct model input (usually one), the last pass reporting frames.
  const targets = [...new Map(detectors.map((d) => [JSON.stringify(fitOf(d.model)), fitOf(d.model)])).values()];
  const perModel: Map<number, Detection[]>[] = detectors.map(() => new Map());
  for (const [t, fit] of targets.entries()) {
    const key = JSON.stringify(fit);
    for await (const f of fitVideoFrames(video, { fit, select: (i) => wanted.has(i) })) {
      for (const [k, d] of detectors.entries()) {
        if (JSON.stringify(fitOf(d.model)) === key) perModel[k].set(f.index, (await d.detectFitted(f.image, f.transform)).detections);
      }
      if (t === targets.length - 1) onFrame(f.index, perModel.map((m) => m.get(f.index) ?? []));
      if (f.index >= last) break;
    }
  }
}

async function openDetector(model: ResolvedModel, scoreThreshold: number, session: AgreementOptions["session"]): Promise<Detector> {
  return Detector.create(model, { ...session, executionProviders: session?.executionProviders ?? ["cpu"], scoreThreshold, maxDetections: MAX_DETECTIONS });
}

/** Agreement of `model` with `reference` on frames of a video, decoded one at a time. */
export async function evaluateAgreement(opts: AgreementOptions): Promise<AgreementReport> {
  const referenceThreshold = opts.referenceThreshold ?? DEFAULT_REFERENCE_THRESHOLD;
  if (!(referenceThreshold >= 0 && referenceThreshold < 1)) {
    throw new RangeError(`reference threshold must be in [0, 1), got ${String(referenceThreshold)}`);
  }
  const wanted = new Set(opts.frames);
  if (wanted.size === 0) throw new RangeError("evaluateAgreement: no frames to evaluate on");
  const last = Math.max(...wanted);
  const model = await openDetector(opts.model, PREDICTION_SCORE_FLOOR, opts.session);
  const pairs: { reference: Detection[]; predicted: Detection[] }[] = [];
  const indices: number[] = [];
  try {
    const reference = await openDetector(opts.reference, referenceThreshold, opts.session);
    try {
      await detectEach(opts.video, wanted, [model, reference], (index, [predicted, ref]) => {
        pairs.push({ reference: ref, predicted });
        indices.push(index);
        opts.onProgress?.({ done: pairs.length, total: wanted.size });
      });
    } finally {
      await reference.close();
    }
  } finally {
    await model.close();
  }
  if (pairs.length < wanted.size) {
    throw new Error(`${opts.video}: has ${pairs.length} of the ${wanted.size} frames asked for (last asked: ${last}); it ends earlier`);
  }
  return {
    model: opts.model.name,
    reference: opts.reference.name,
    referenceKind: "model",
    referenceThreshold,
    predictionScoreFloor: PREDICTION_SCORE_FLOOR,
    video: opts.video,
    frameIndices: indices,
    ...agreementMetrics(pairs, opts.operatingThreshold),
  };
}

/**
 * One model's detections on video frames, in clip order: for comparing several models with one
 * reference without running the reference again for each (the pruning curve does this).
 * `scoreThreshold` defaults to the floor the model under test is evaluated at.
 */
export async function detectOnFrames(
  model: ResolvedModel,
  video: string,
  frames: readonly number[],
  opts: { scoreThreshold?: number; session?: AgreementOptions["session"]; onProgress?: (p: AgreementProgress) => void } = {},
): Promise<{ indices: number[]; detections: Detection[][] }> {
  const wanted = new Set(frames);
  if (wanted.size === 0) throw new RangeError("detectOnFrames: no frames");
  const last = Math.max(...wanted);
  const detector = await openDetector(model, opts.scoreThreshold ?? PREDICTION_SCORE_FLOOR, opts.session);
  const indices: number[] = [];
  const detections: Detection[][] = [];
  try {
    await detectEach(video, wanted, [detector], (index, [dets]) => {
      detections.push(dets);
      indices.push(index);
      opts.onProgress?.({ done: indices.length, total: wanted.size });
    });
  } finally {
    await detector.close();
  }
  if (indices.length < wanted.size) throw new Error(`${video}: has ${indices.length} of the ${wanted.size} frames asked for; it ends before frame ${last}`);
  return { indices, detections };
}

export interface LabelsOptions {
  model: ResolvedModel;
  labels: CocoLabels;
  /** The video that frame-indexed labels refer to. */
  video: string;
  /** Only these frames of the video's labelled frames; absent: all labelled images. */
  frames?: readonly number[];
  operatingThreshold?: number;
  session?: AgreementOptions["session"];
  onProgress?: (p: AgreementProgress) => void;
}

function labelDetections(img: LabelledImage): Detection[] {
  return img.boxes.map((b) => ({ classId: -1, label: b.label, score: 1, box: b.box }));
}

function checkSize(labels: CocoLabels, img: LabelledImage, picture: Pick<RgbImage, "width" | "height">): void {
  if ((img.width !== undefined && img.width !== picture.width) || (img.height !== undefined && img.height !== picture.height)) {
    throw new Error(
      `COCO labels ${labels.path}: image ${img.id} "${img.fileName}" is labelled as ${img.width}x${img.height}, ` +
        `the picture it refers to is ${picture.width}x${picture.height}`,
    );
  }
}

/** The model's detections against real labels (COCO JSON); see coco-json.ts for how images are found. */
export async function evaluateAgainstLabels(opts: LabelsOptions): Promise<AgreementReport> {
  const only = opts.frames === undefined ? null : new Set(opts.frames);
  const images = opts.labels.images.filter((i) => i.source.kind === "image" || only === null || only.has(i.source.index));
  if (images.length === 0) throw new Error(`COCO labels ${opts.labels.path}: no labelled image among the frames asked for`);
  const byFrame = new Map<number, LabelledImage>();
  for (const img of images) if (img.source.kind === "frame") byFrame.set(img.source.index, img);
  const model = await openDetector(opts.model, PREDICTION_SCORE_FLOOR, opts.session);
  const pairs: { reference: Detection[]; predicted: Detection[] }[] = [];
  const indices: number[] = [];
  const record = (img: LabelledImage, predicted: Detection[], width: number, height: number, index: number): void => {
    checkSize(opts.labels, img, { width, height });
    pairs.push({ reference: labelDetections(img), predicted });
    indices.push(index);
    opts.onProgress?.({ done: pairs.length, total: images.length });
  };
  const fitter = PictureFitter.open(fitOf(opts.model));
  try {
    for (const img of images) {
      if (img.source.kind !== "image") continue;
      const picture = await readImageFile(img.source.path);
      const fitted = await fitter.fit(picture, img.source.path);
      record(img, (await model.detectFitted(fitted.image, fitted.transform)).detections, picture.width, picture.height, -1);
    }
    if (byFrame.size > 0) {
      const last = Math.max(...byFrame.keys());
      for await (const f of fitVideoFrames(opts.video, { fit: fitOf(opts.model), select: (i) => byFrame.has(i) })) {
        record(byFrame.get(f.index)!, (await model.detectFitted(f.image, f.transform)).detections, f.transform.srcWidth, f.transform.srcHeight, f.index);
        if (f.index >= last) break;
      }
    }
  } finally {
    await fitter.close();
    await model.close();
  }
  if (pairs.length < images.length) {
    const missing = [...byFrame.keys()].filter((k) => !indices.includes(k)).sort((a, b) => a - b);
    throw new Error(`COCO labels ${opts.labels.path}: label video frame ${missing[0]}, which ${opts.video} does not have`);
  }
  return {
    model: opts.model.name,
    reference: opts.labels.path,
    referenceKind: "labels",
    referenceThreshold: null,
    predictionScoreFloor: PREDICTION_SCORE_FLOOR,
    video: opts.video,
    frameIndices: indices,
    ...agreementMetrics(pairs, opts.operatingThreshold),
  };
}
