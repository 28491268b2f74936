// Types shared by the decoders, the detector and everything downstream. Pure: no imports
// of native modules, so perception code and tests can use them anywhere.

/** Axis-aligned box [x1, y1, x2, y2] in pixels, x1 <= x2, y1 <= y2. */
export type Box = [number, number, number, number];

export interface Detection {
  /** Index into the model's label list (COCO: 0 = person). */
  classId: number;
  /** Human label from the manifest, e.g. "person". */
  label: string;
  /** Confidence in [0, 1]. */
  score: number;
  /** Box in source-frame pixels once mapped back through the letterbox transform. */
  box: Box;
}

/**
 * How a source frame of srcWidth x srcHeight was placed into the model input of
 * dstWidth x dstHeight: model = source * scale + pad, per axis. A stretch has
 * scaleX != scaleY and no pad; a letterbox keeps one scale and pads the short side.
 */
export interface LetterboxTransform {
  srcWidth: number;
  srcHeight: number;
  dstWidth: number;
  dstHeight: number;
  scaleX: number;
  scaleY: number;
  padX: number;
  padY: number;
}

export type ResizeMode = "stretch" | "letterbox";

/** A raw output tensor as it comes from ONNX Runtime or TensorFlow.js. */
export interface RawTensor {
  dims: readonly number[];
  data: Float32Array;
}
