// Model-size packed RGB -> the model's input tensor. The daemon's frames arrive already at
// the model size (GStreamer scales them), so this is the whole per-frame preprocessing of
// the inference worker; the offline Detector and the model bench do their resize first and
// then need exactly this step, so it lives here once rather than in each of them.
//
// For the -u8 models (uint8 NHWC RGB, preprocessing baked into the graph) the tensor wraps
// the pixel bytes themselves: no copy, no arithmetic on the CPU.
import * as ort from "onnxruntime-node";
import { toNchwFloat, toNhwcFloat, type Triple } from "./resize.ts";
import { assertRgbImage, type RgbImage } from "../core/rgb-image.ts";
import type { ModelEntry } from "./manifest.ts";

export type ModelInputSpec = ModelEntry["input"];

export type ModelInputData = { dtype: "uint8"; data: Uint8Array } | { dtype: "float32"; data: Float32Array };

export interface ModelInputOptions {
  /**
   * The caller gives up `img.data`: a uint8 NHWC BGR input then swaps channels in place
   * instead of into a copy. Callers that keep using the image (annotation) leave it false.
   */
  consume?: boolean;
  /** Names the caller in error messages, e.g. `model "nanodet-u8"`. */
  where?: string;
}

const IDENTITY: { mean: Triple; std: Triple } = { mean: [0, 0, 0], std: [1, 1, 1] };

/** A shape for messages, e.g. `[1, 3, 416, 416]`; ONNX symbolic dims (strings) print as named. */
export function shapeText(s: readonly (number | string)[]): string {
  return `[${s.join(", ")}]`;
}

/**
 * Checks that the manifest's input spec is consistent in itself (shape vs layout and size,
 * dtype vs normalisation), so a bad entry fails once, at load, naming the model.
 */
export function checkInputSpec(modelName: string, input: ModelInputSpec): void {
  const expected = input.layout === "NCHW" ? [1, 3, input.height, input.width] : [1, input.height, input.width, 3];
  if (input.shape.length !== 4 || input.shape.some((d, i) => d !== expected[i])) {
    throw new Error(
      `model "${modelName}": input shape ${shapeText(input.shape)} does not match ${input.layout} ` +
        `${input.width}x${input.height} (expected ${shapeText(expected)})`,
    );
  }
  if (input.dtype === "uint8" && input.normalization !== null) {
    throw new Error(
      `model "${modelName}": uint8 input with normalization set; normalised values cannot be fed as uint8 ` +
        `(use normalization: null and bake it into the graph, or a float32 input)`,
    );
  }
}

/**
 * The values the model input wants, as a bare typed array in the spec's layout and dtype
 * (TF.js and ONNX Runtime both take these). `img` must already be input.width x
 * input.height; resizing is the caller's business (GStreamer in the daemon, resizeToModel
 * offline). Normalisation is (value - mean) / std with mean/std per colour (r, g, b), as the
 * manifest declares them; colorOrder only orders the channels.
 */
export function toModelInputData(img: RgbImage, input: ModelInputSpec, opts: ModelInputOptions = {}): ModelInputData {
  const where = opts.where ?? "toModelInputData";
  assertRgbImage(img, where);
  if (img.width !== input.width || img.height !== input.height) {
    throw new RangeError(
      `${where}: frame is ${img.width}x${img.height}, the model input is ${input.width}x${input.height} ` +
        `(frames must be scaled to the model size before inference)`,
    );
  }
  const order = input.colorOrder;
  if (input.dtype === "uint8") {
    if (input.layout === "NCHW") return { dtype: "uint8", data: planar(img, order) };
    if (order === "rgb") return { dtype: "uint8", data: img.data };
    const src = img.data;
    const out = opts.consume === true ? src : new Uint8Array(src.length);
    for (let i = 0; i < src.length; i += 3) {
      const r = src[i];
      out[i] = src[i + 2];
      out[i + 1] = src[i + 1];
      out[i + 2] = r;
    }
    return { dtype: "uint8", data: out };
  }
  // null: the graph normalises itself and wants plain 0..255 values.
  const { mean, std } = input.normalization ?? IDENTITY;
  const data = input.layout === "NCHW" ? toNchwFloat(img, mean, std, order) : toNhwcFloat(img, mean, std, order);
  return { dtype: "float32", data };
}

/** Input data from toModelInputData as an ONNX Runtime tensor of the manifest's input shape. */
export function toOrtTensor(d: ModelInputData, input: ModelInputSpec): ort.Tensor {
  // Two calls so each sees its own overload; the union does not select one.
  return d.dtype === "uint8" ? new ort.Tensor("uint8", d.data, input.shape) : new ort.Tensor("float32", d.data, input.shape);
}

/** toModelInputData wrapped as an ONNX Runtime tensor of the manifest's input shape. */
export function toInputTensor(img: RgbImage, input: ModelInputSpec, opts: ModelInputOptions = {}): ort.Tensor {
  return toOrtTensor(toModelInputData(img, input, opts), input);
}

function planar(img: RgbImage, order: "rgb" | "bgr"): Uint8Array {
  const plane = img.width * img.height;
  const out = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const src = order === "rgb" ? c : 2 - c;
    for (let p = 0, s = src; p < plane; p++, s += 3) out[c * plane + p] = img.data[s];
  }
  return out;
}
