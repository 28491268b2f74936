// Pixel checks shared by the tests that look at drawn frames (a browser screenshot, a decoded
// annotated video): lossy encodings shift colours, so colours match within a tolerance.
import type { Rgb } from "../../src/view/overlay.ts";

export interface Pixels {
  width: number;
  height: number;
  data: Uint8Array;
  /** bytes per pixel: 3 (RGB) or 4 (RGBA) */
  channels: number;
}

/**
 * Longest horizontal or vertical run of pixels within `tolerance` (sum of absolute channel
 * differences) of any of `colours`: a drawn box's edges make long ones (a standing person's
 * box is tall), natural footage does not (raw vtest.avi frames, every 10th: at most 17 px
 * across and 16 down at tolerance 60).
 */
export function longestRun(img: Pixels, colours: readonly Rgb[], tolerance = 60): number {
  const d = img.data;
  const near = (x: number, y: number): boolean => {
    const o = (y * img.width + x) * img.channels;
    return colours.some((c) => Math.abs(d[o] - c[0]) + Math.abs(d[o + 1] - c[1]) + Math.abs(d[o + 2] - c[2]) < tolerance);
  };
  let best = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0, run = 0; x < img.width; x++) {
      run = near(x, y) ? run + 1 : 0;
      if (run > best) best = run;
    }
  }
  for (let x = 0; x < img.width; x++) {
    for (let y = 0, run = 0; y < img.height; y++) {
      run = near(x, y) ? run + 1 : 0;
      if (run > best) best = run;
    }
  }
  return best;
}
