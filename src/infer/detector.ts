// One model from the manifest, ready to turn RGB frames into detections in source pixels.
// Everything model-specific (input layout, dtype, normalisation, decoder, output names)
// comes from the manifest entry and is checked against the ONNX session once, at create,
// so a mismatched manifest fails at startup with the model's name rather than per frame.
import type * as ort from "onnxruntime-node";
import type { Decoder } from "./decode/index.ts";
import { checkInputSpec, toInputTensor } from "./input-tensor.ts";
import { checkSession, decoderFor, toRawTensor } from "./model-runtime.ts";
import { FrameProcessor, type PostprocessSettings } from "./frame-processor.ts";
import { createSession, type ProviderAttempt, type SessionOptions } from "./session.ts";
import type { ExecutionProvider } from "../core/providers.ts";
import type { Detection, LetterboxTransform, RawTensor } from "../core/types.ts";
import { fitPicture } from "./resize.ts";
import { assertRgbImage, type RgbImage } from "../core/rgb-image.ts";
import { readVerifiedModel, type ResolvedModel } from "./manifest.ts";
import { DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD } from "../core/postprocess.ts";


export interface DetectorOptions extends Omit<SessionOptions, "source"> {
  /** Candidates scoring at or below this are dropped (src/core/postprocess.ts). Default DEFAULT_SCORE_THRESHOLD. */
  scoreThreshold?: number;
  /** Class-aware NMS overlap threshold. Default 0.5. */
  iouThreshold?: number;
  /** Labels to keep, e.g. ["person", "car"]; absent keeps all classes. */
  classFilter?: readonly string[];
  /** Most detections returned per frame, best first. Default 100. */
  maxDetections?: number;
}

export interface DetectTimings {
  preprocessMs: number;
  inferenceMs: number;
  decodeMs: number;
}

export interface DetectResult {
  /** In source pixels, after class-aware NMS, best score first. */
  detections: Detection[];
  timings: DetectTimings;
}

export interface Preprocessed {
  input: ort.Tensor;
  transform: LetterboxTransform;
}

function checkUnit(name: string, v: number): number {
  if (!(typeof v === "number" && v >= 0 && v <= 1)) {
    throw new RangeError(`Detector: ${name} must be a number in [0, 1], got ${String(v)}`);
  }
  return v;
}

/** Label -> class ids; a list with duplicates (it happens in merged label sets) maps to each. */
function resolveClassFilter(model: ResolvedModel, wanted: readonly string[]): ReadonlySet<number> {
  const labels = model.entry.labels;
  if (wanted.length === 0) throw new RangeError(`Detector: classFilter is empty; give labels or leave it out`);
  const ids = new Set<number>();
  const unknown: string[] = [];
  for (const w of wanted) {
    let found = false;
    labels.forEach((l, i) => {
      if (l === w) {
        ids.add(i);
        found = true;
      }
    });
    if (!found) unknown.push(w);
  }
  if (unknown.length > 0) {
    throw new Error(
      `model "${model.name}" has no class ${unknown.map((u) => JSON.stringify(u)).join(", ")}; ` +
        `valid classes: ${[...new Set(labels)].join(", ")}`,
    );
  }
  return ids;
}

export class Detector {
  readonly model: ResolvedModel;
  /** The execution provider that runs the session. */
  readonly provider: ExecutionProvider;
  /** Each provider tried before (and including) the one in use, with its failure. */
  readonly providerAttempts: readonly ProviderAttempt[];
  /** Session options that were accepted but could not be applied. */
  readonly warnings: readonly string[];
  readonly scoreThreshold: number;
  readonly iouThreshold: number;
  readonly maxDetections: number;
  private readonly session: ort.InferenceSession;
  private readonly processor: FrameProcessor;
  private readonly settings: PostprocessSettings;
  private closed = false;

  private constructor(
    model: ResolvedModel,
    created: { session: ort.InferenceSession; provider: ExecutionProvider; tried: ProviderAttempt[]; warnings: string[] },
    decoder: Decoder,
    settings: { scoreThreshold: number; iouThreshold: number; maxDetections: number; classFilter?: ReadonlySet<number> },
  ) {
    this.model = model;
    this.session = created.session;
    this.provider = created.provider;
    this.providerAttempts = created.tried;
    this.warnings = created.warnings;
    this.processor = new FrameProcessor(created.session, model.entry, decoder);
    this.settings = settings;
    this.scoreThreshold = settings.scoreThreshold;
    this.iouThreshold = settings.iouThreshold;
    this.maxDetections = settings.maxDetections;
  }

  static async create(model: ResolvedModel, opts: DetectorOptions = {}): Promise<Detector> {
    const { scoreThreshold, iouThreshold, classFilter, maxDetections, ...sessionOpts } = opts;
    const settings = {
      scoreThreshold: checkUnit("scoreThreshold", scoreThreshold ?? DEFAULT_SCORE_THRESHOLD),
      iouThreshold: checkUnit("iouThreshold", iouThreshold ?? DEFAULT_IOU_THRESHOLD),
      maxDetections: maxDetections ?? DEFAULT_MAX_DETECTIONS,
      classFilter: classFilter === undefined ? undefined : resolveClassFilter(model, classFilter),
    };
    if (!(Number.isInteger(settings.maxDetections) && settings.maxDetections > 0)) {
      throw new RangeError(`Detector: maxDetections must be a positive integer, got ${String(maxDetections)}`);
    }
    checkInputSpec(model.name, model.entry.input);
    const decoder = decoderFor(model.entry.decoder);

    const bytes = await readVerifiedModel(model);
    const created = await createSession(bytes, { ...sessionOpts, source: model.path });
    try {
      checkSession(model, created.session, decoder);
    } catch (err) {
      await created.session.release();
      throw err;
    }
    return new Detector(model, created, decoder, settings);
  }

  /** Resize (stretch or letterbox per the manifest) on the CPU: a still picture at the model input size. */
  fit(img: RgbImage): { fitted: RgbImage; transform: LetterboxTransform } {
    assertRgbImage(img, `Detector(${this.model.name}).fit`);
    return fitPicture(img, this.model.entry.input);
  }

  /** Resize (stretch or letterbox per the manifest) and lay out one frame as the model input. */
  preprocess(img: RgbImage): Preprocessed {
    const { fitted, transform } = this.fit(img);
    // fitted is ours alone, so a BGR uint8 model may swap its channels in place.
    const input = toInputTensor(fitted, this.model.entry.input, { consume: true, where: `Detector(${this.model.name}).preprocess` });
    return { input, transform };
  }

  /** Detections on a picture of any size: fitted on the CPU, then the one frame path (frame-processor.ts). */
  async detect(img: RgbImage): Promise<DetectResult> {
    const t0 = performance.now();
    const { fitted, transform } = this.fit(img);
    const fitMs = performance.now() - t0;
    const r = await this.run(fitted, transform, true, "detect");
    return { ...r, timings: { ...r.timings, preprocessMs: r.timings.preprocessMs + fitMs } };
  }

  /**
   * Detections on a frame already fitted to the model input (the daemon's pipeline, the
   * frame cache); `transform` maps its boxes back to the source picture.
   */
  async detectFitted(fitted: RgbImage, transform: LetterboxTransform): Promise<DetectResult> {
    assertRgbImage(fitted, `Detector(${this.model.name}).detectFitted`);
    return this.run(fitted, transform, false, "detectFitted");
  }

  private async run(fitted: RgbImage, transform: LetterboxTransform, consume: boolean, what: string): Promise<DetectResult> {
    if (this.closed) throw new Error(`Detector for model "${this.model.name}" is closed`);
    const r = await this.processor.process(fitted, transform, this.settings, { consume, where: `Detector(${this.model.name}).${what}` });
    return { detections: r.detections, timings: { preprocessMs: r.preprocessMs, inferenceMs: r.inferenceMs, decodeMs: r.decodeMs } };
  }

  /** Runs the session on a prepared input and returns every output, as float32. */
  async runRaw(input: ort.Tensor): Promise<Record<string, RawTensor>> {
    if (this.closed) throw new Error(`Detector for model "${this.model.name}" is closed`);
    const fetches = this.session.outputNames;
    const results = await this.session.run({ [this.model.entry.input.name]: input }, [...fetches]);
    const out: Record<string, RawTensor> = {};
    for (const name of fetches) out[name] = toRawTensor(name, results[name]);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
  }
}
