// Real frames for judging and calibrating models offline: decoded and fitted to a model's
// input by the daemon's own GStreamer pipeline (fitVideoFrames, src/ingest/frame-fit.ts), so
// they are the very pixels the daemon would feed the model, then the shared input-tensor step.
//
// Calibration (pruning importance, least-squares recovery) and evaluation (agreement) must
// never see the same frames, or a pruned model is judged on what it was fitted to. The split
// is by position in the clip: calibration frames come from the first part, evaluation frames
// are spread over the rest. Splitting by position rather than interleaving keeps consecutive,
// near-identical frames of one moment (vtest.avi: 10 fps) from landing on both sides.
import { resolve } from "node:path";
import { toModelInputData, type ModelInputData, type ModelInputSpec } from "../../infer/input-tensor.ts";
import type { LetterboxTransform } from "../../core/types.ts";
import { fitVideoFrames, probeVideo, readVideoFrames } from "../../ingest/gst/video-file.ts";
import type { RgbImage } from "../../core/rgb-image.ts";
import { MODELS_DIR } from "../../infer/manifest.ts";

export const DEFAULT_EVAL_VIDEO = resolve(MODELS_DIR, "..", ".cache/fixtures/vtest.avi");
/** Share of the clip, from its start, that calibration frames are drawn from. */
export const DEFAULT_CALIBRATION_SHARE = 0.25;
export const DEFAULT_CALIBRATION_FRAMES = 16;
export const DEFAULT_EVALUATION_FRAMES = 100;

export interface FrameSplit {
  /** Frames in the clip (possibly an estimate from duration x rate). */
  total: number;
  /** First frame index of the evaluation part; every calibration index is below it. */
  boundary: number;
  calibration: number[];
  evaluation: number[];
}

export interface SplitOptions {
  calibrationFrames?: number;
  evaluationFrames?: number;
  /** In (0, 1): calibration frames come from [0, total x share), evaluation from the rest. */
  calibrationShare?: number;
}

function countOption(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`splitFrames: ${name} must be a non-negative integer, got ${String(v)}`);
  return v;
}

/** `n` distinct indices spread evenly over [first, end), starting at `first`. */
function spread(first: number, end: number, n: number): number[] {
  const span = end - first;
  const out: number[] = [];
  for (let i = 0; i < Math.min(n, span); i++) out.push(first + Math.floor((i * span) / Math.min(n, span)));
  return out;
}

/**
 * The deterministic split: calibration evenly spread over the first `calibrationShare` of
 * the clip, evaluation evenly spread over the rest. The two sets never overlap.
 */
export function splitFrames(total: number, opts: SplitOptions = {}): FrameSplit {
  if (!Number.isInteger(total) || total < 2) throw new RangeError(`splitFrames: a clip needs at least 2 frames, got ${String(total)}`);
  const calibrationFrames = countOption("calibrationFrames", opts.calibrationFrames ?? DEFAULT_CALIBRATION_FRAMES);
  const evaluationFrames = countOption("evaluationFrames", opts.evaluationFrames ?? DEFAULT_EVALUATION_FRAMES);
  const share = opts.calibrationShare ?? DEFAULT_CALIBRATION_SHARE;
  if (!(share > 0 && share < 1)) throw new RangeError(`splitFrames: calibrationShare must be in (0, 1), got ${String(share)}`);
  const boundary = Math.min(total - 1, Math.max(1, Math.floor(total * share)));
  return {
    total,
    boundary,
    calibration: spread(0, boundary, calibrationFrames),
    evaluation: spread(boundary, total, evaluationFrames),
  };
}

/** The split for a video file, with its frame count from GStreamer's duration x rate. */
export async function splitVideoFrames(video: string, opts: SplitOptions = {}): Promise<FrameSplit> {
  const info = await probeVideo(video);
  if (info.frames === undefined) {
    throw new Error(`${video}: GStreamer reports no duration or frame rate, so frames cannot be split into calibration and evaluation`);
  }
  return splitFrames(info.frames, opts);
}

/** Fails naming the first wanted frame that was not read (the clip ended before it). */
function checkAllRead(video: string, wanted: ReadonlySet<number>, read: readonly { index: number }[]): void {
  if (read.length >= wanted.size) return;
  const got = new Set(read.map((f) => f.index));
  const missing = [...wanted].sort((a, b) => a - b).filter((i) => !got.has(i));
  throw new Error(`${video}: has no frame ${missing[0]} (${missing.length} requested frame(s) past its end)`);
}

export interface SourceFrame {
  /** 0-based index in the clip. */
  index: number;
  image: RgbImage;
}

/**
 * Decodes the frames at `indices` (any order, duplicates ignored), returned in clip order.
 * Fails naming the first index the clip does not have, so a wrong frame count is not
 * silently turned into a smaller evaluation.
 */
export async function readFramesAt(video: string, indices: readonly number[]): Promise<SourceFrame[]> {
  const wanted = new Set(indices);
  for (const i of wanted) {
    if (!Number.isInteger(i) || i < 0) throw new RangeError(`readFramesAt: frame index must be a non-negative integer, got ${String(i)}`);
  }
  if (wanted.size === 0) return [];
  const last = Math.max(...wanted);
  const out: SourceFrame[] = [];
  for await (const f of readVideoFrames(video, { select: (i) => wanted.has(i) })) {
    out.push({ index: f.index, image: f.image });
    if (f.index >= last) break;
  }
  checkAllRead(video, wanted, out);
  return out;
}

export interface ModelFrame {
  index: number;
  /** The model's input values (layout, dtype, normalisation per the manifest). */
  input: ModelInputData;
  /** Where the source frame sits in the model input, to map boxes back. */
  transform: LetterboxTransform;
}

/** Decodes `indices` fitted to the model input by the daemon's pipeline; source images are not kept. */
export async function readModelFrames(video: string, indices: readonly number[], spec: ModelInputSpec): Promise<ModelFrame[]> {
  const wanted = new Set(indices);
  if (wanted.size === 0) return [];
  const last = Math.max(...wanted);
  const out: ModelFrame[] = [];
  const fit = { width: spec.width, height: spec.height, resize: spec.resize };
  for await (const f of fitVideoFrames(video, { fit, select: (i) => wanted.has(i) })) {
    // f.image is ours alone, so a BGR uint8 model may swap its channels in place.
    out.push({ index: f.index, input: toModelInputData(f.image, spec, { consume: true, where: `${video} frame ${f.index}` }), transform: f.transform });
    if (f.index >= last) break;
  }
  checkAllRead(video, wanted, out);
  return out;
}
