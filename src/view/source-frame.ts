// The frame the daemon ran, shown as the camera saw it: the model input (after the
// pipeline's stretch or letterbox) resampled back onto the source frame's geometry, so
// boxes and the corridor, which live in source pixels, fall where they belong, and what is
// shown is exactly what the detector was given, blur and all.
//
// Pure: no I/O.
import type { LetterboxTransform } from "../core/types.ts";
import { assertRgbImage, type RgbImage } from "../core/rgb-image.ts";

/** Size of the rendering: the source size, scaled down so the longer side is at most `maxSide`. */
export function viewSize(t: Pick<LetterboxTransform, "srcWidth" | "srcHeight">, maxSide: number): { width: number; height: number } {
  const k = Math.min(1, maxSide / Math.max(t.srcWidth, t.srcHeight));
  return { width: Math.max(1, Math.round(t.srcWidth * k)), height: Math.max(1, Math.round(t.srcHeight * k)) };
}

interface Axis {
  lo: Int32Array;
  hi: Int32Array;
  w: Float32Array;
}

/** For each output pixel on one axis: the two model-input pixels around it and the upper one's weight. */
function axis(out: number, src: number, scale: number, pad: number, dst: number): Axis {
  const lo = new Int32Array(out);
  const hi = new Int32Array(out);
  const w = new Float32Array(out);
  for (let i = 0; i < out; i++) {
    // Centre of output pixel i in source pixels, then in model-input pixels.
    const s = ((i + 0.5) * src) / out;
    let m = s * scale + pad - 0.5;
    if (m < 0) m = 0;
    if (m > dst - 1) m = dst - 1;
    const l = Math.floor(m);
    lo[i] = l;
    hi[i] = Math.min(l + 1, dst - 1);
    w[i] = m - l;
  }
  return { lo, hi, w };
}

/** The model input `img` (t.dstWidth x t.dstHeight) back on the source geometry, at viewSize(t, maxSide). */
export function modelInputToSource(img: RgbImage, t: LetterboxTransform, maxSide: number): RgbImage {
  assertRgbImage(img, "modelInputToSource");
  if (img.width !== t.dstWidth || img.height !== t.dstHeight) {
    throw new RangeError(`modelInputToSource: image is ${img.width}x${img.height} but the transform is for a ${t.dstWidth}x${t.dstHeight} model input`);
  }
  const { width, height } = viewSize(t, maxSide);
  const xs = axis(width, t.srcWidth, t.scaleX, t.padX, t.dstWidth);
  const ys = axis(height, t.srcHeight, t.scaleY, t.padY, t.dstHeight);
  const out = new Uint8Array(width * height * 3);
  const d = img.data;
  const row = img.width * 3;
  for (let y = 0, o = 0; y < height; y++) {
    const r0 = ys.lo[y] * row;
    const r1 = ys.hi[y] * row;
    const wy = ys.w[y];
    for (let x = 0; x < width; x++) {
      const c0 = xs.lo[x] * 3;
      const c1 = xs.hi[x] * 3;
      const wx = xs.w[x];
      for (let k = 0; k < 3; k++, o++) {
        const top = d[r0 + c0 + k] + (d[r0 + c1 + k] - d[r0 + c0 + k]) * wx;
        const bottom = d[r1 + c0 + k] + (d[r1 + c1 + k] - d[r1 + c0 + k]) * wx;
        out[o] = top + (bottom - top) * wy + 0.5;
      }
    }
  }
  return { width, height, data: out };
}
