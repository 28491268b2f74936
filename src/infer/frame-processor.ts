// The one path from a model-size picture to detections in source pixels, in one order:
//
//   input tensor -> session.run -> decode (score threshold, class filter, model pixels)
//   -> map back to source pixels -> drop boxes left without area -> class-aware NMS,
//   best first, capped at maxDetections
//
// The daemon's inference worker (worker.ts) and the offline Detector (`perceptd detect`,
// eval, pruning agreement) both run frames through FrameProcessor, so a threshold or the
// detection cap means the same thing everywhere. Boxes are mapped before NMS so that NMS
// judges the boxes that are published (clamped to the frame), and degenerate boxes (wholly
// in a letterbox pad) are dropped before the cap rather than taking a place under it.
//
// Loadable in a worker thread: no resizing (the main thread's or GStreamer's business).
import type * as ort from "onnxruntime-node";
import { toSourceDetections } from "../core/letterbox.ts";
import type { Detection, LetterboxTransform, RawTensor } from "../core/types.ts";
import type { Decoder } from "./decode/index.ts";
import { toInputTensor } from "./input-tensor.ts";
import type { ModelEntry } from "./manifest.ts";
import { toRawTensor } from "./model-runtime.ts";
import { nms } from "./nms.ts";

/** The post-processing that may change at run time (SIGHUP), with the class filter resolved to ids. */
export interface PostprocessSettings {
  /** candidates scoring at or below this are dropped (src/core/postprocess.ts) */
  scoreThreshold: number;
  /** class-aware NMS overlap threshold */
  iouThreshold: number;
  /** most detections per frame, best first */
  maxDetections: number;
  /** class ids to keep; undefined keeps all */
  classFilter?: ReadonlySet<number>;
}

/** Degenerate after mapping: the box lay entirely in the letterbox pad and was clamped flat. */
function hasArea(d: Detection): boolean {
  return d.box[2] > d.box[0] && d.box[3] > d.box[1];
}

/** Decoder output to published detections: the steps after session.run, in their one order. */
export function postprocess(
  decoder: Decoder,
  entry: ModelEntry,
  raw: Readonly<Record<string, RawTensor>>,
  transform: LetterboxTransform,
  s: PostprocessSettings,
): Detection[] {
  const candidates = decoder.decode(raw, {
    inputWidth: entry.input.width,
    inputHeight: entry.input.height,
    scoreThreshold: s.scoreThreshold,
    classFilter: s.classFilter,
    labels: entry.labels,
    nanodetCenterOffset: entry.decoder.kind === "nanodet-gfl" ? entry.decoder.centerOffset : undefined,
  });
  const inSource = toSourceDetections(candidates, transform).filter(hasArea);
  return nms(inSource, s.iouThreshold, { classAware: true, maxDetections: s.maxDetections });
}

export interface ProcessedFrame {
  /** in source pixels, best score first */
  detections: Detection[];
  preprocessMs: number;
  inferenceMs: number;
  decodeMs: number;
  /**
   * The input tensor and the model's outputs, done with once the detections exist; a caller
   * that releases buffers early (worker.ts, release-array-buffer.ts) releases these.
   */
  spent: ort.Tensor[];
}

/** A model's session and decoder, running model-size pictures through the one frame path. */
export class FrameProcessor {
  readonly entry: ModelEntry;
  private readonly session: ort.InferenceSession;
  private readonly decoder: Decoder;
  private readonly fetches: string[];

  constructor(session: ort.InferenceSession, entry: ModelEntry, decoder: Decoder) {
    this.session = session;
    this.entry = entry;
    this.decoder = decoder;
    this.fetches = [...decoder.outputNames];
  }

  /**
   * One picture already at the model input size (packed RGB). `consume`: the caller gives
   * up `pixels` (a BGR uint8 model swaps them in place). `where` names the frame in errors.
   */
  async process(
    picture: { width: number; height: number; data: Uint8Array },
    transform: LetterboxTransform,
    s: PostprocessSettings,
    opts: { consume: boolean; where: string },
  ): Promise<ProcessedFrame> {
    const t0 = performance.now();
    const input = toInputTensor(picture, this.entry.input, opts);
    const t1 = performance.now();
    const outputs = await this.session.run({ [this.entry.input.name]: input }, this.fetches);
    const t2 = performance.now();
    const raw: Record<string, RawTensor> = {};
    for (const name of this.fetches) raw[name] = toRawTensor(name, outputs[name]);
    const detections = postprocess(this.decoder, this.entry, raw, transform, s);
    const t3 = performance.now();
    return { detections, preprocessMs: t1 - t0, inferenceMs: t2 - t1, decodeMs: t3 - t2, spent: [input, ...this.fetches.map((n) => outputs[n])] };
  }
}
