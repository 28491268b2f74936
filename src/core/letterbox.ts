// Geometry between source frames and model inputs. Decoders work in model-input pixels;
// everything downstream (bus, overlays, tracking) wants source pixels, so the transform
// computed at preprocessing time is the single source of truth for both directions.
import type { Box, Detection, LetterboxTransform, ResizeMode } from "./types.ts";

/**
 * Colour of the letterbox pads: videoscale's add-borders fills them with black. Offline code
 * that reasons about pads (augmentation, tests) uses this rather than its own constant.
 */
export const LETTERBOX_PAD_RGB: readonly [number, number, number] = [0, 0, 0];

function requireSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`computeLetterbox: ${name} must be a positive integer, got ${String(value)}`);
  }
}

export function computeLetterbox(
  srcW: number,
  srcH: number,
  dstW: number,
  dstH: number,
  mode: ResizeMode,
): LetterboxTransform {
  requireSize("srcW", srcW);
  requireSize("srcH", srcH);
  requireSize("dstW", dstW);
  requireSize("dstH", dstH);
  const base = { srcWidth: srcW, srcHeight: srcH, dstWidth: dstW, dstHeight: dstH };
  if (mode === "stretch") {
    return { ...base, scaleX: dstW / srcW, scaleY: dstH / srcH, padX: 0, padY: 0 };
  }
  if (mode === "letterbox") {
    const scale = Math.min(dstW / srcW, dstH / srcH);
    // Pads are whole pixels because the resized image is pasted at an integer offset;
    // flooring puts the odd leftover pixel on the right/bottom, as the preprocessor does.
    const padX = Math.floor((dstW - Math.round(srcW * scale)) / 2);
    const padY = Math.floor((dstH - Math.round(srcH * scale)) / 2);
    return { ...base, scaleX: scale, scaleY: scale, padX, padY };
  }
  // Reachable when the mode comes from an unchecked config file.
  throw new RangeError(`computeLetterbox: mode must be "stretch" or "letterbox", got ${JSON.stringify(mode)}`);
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Model-input pixels -> source pixels, clamped to the source frame (boxes reaching into the pad). */
export function boxToSource(box: Box, t: LetterboxTransform): Box {
  return [
    clamp((box[0] - t.padX) / t.scaleX, 0, t.srcWidth),
    clamp((box[1] - t.padY) / t.scaleY, 0, t.srcHeight),
    clamp((box[2] - t.padX) / t.scaleX, 0, t.srcWidth),
    clamp((box[3] - t.padY) / t.scaleY, 0, t.srcHeight),
  ];
}

/** Source pixels -> model-input pixels. Not clamped, so boxToSource(boxToModel(b)) == b inside the frame. */
export function boxToModel(box: Box, t: LetterboxTransform): Box {
  return [
    box[0] * t.scaleX + t.padX,
    box[1] * t.scaleY + t.padY,
    box[2] * t.scaleX + t.padX,
    box[3] * t.scaleY + t.padY,
  ];
}

/** Maps decoder output (model-input pixels) to source pixels; returns new objects, inputs untouched. */
export function toSourceDetections(dets: readonly Detection[], t: LetterboxTransform): Detection[] {
  return dets.map((d) => ({ ...d, box: boxToSource(d.box, t) }));
}
