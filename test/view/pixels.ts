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
 * Longest horizontal run of pixels within `tolerance` (sum of absolute channel differences)
 * of any of `colours`: a drawn box edge or label tag makes a long one, natural footage
 * rarely does (raw vtest.avi frames: at most 17 px at tolerance 60).
 */
export function longestRun(img: Pixels, colours: readonly Rgb[], tolerance = 60): number {
  let best = 0;
  const d = img.data;
  for (let y = 0; y < img.height; y++) {
    let run = 0;
    for (let x = 0; x < img.width; x++) {
      const o = (y * img.width + x) * img.channels;
      const near = colours.some((c) => Math.abs(d[o] - c[0]) + Math.abs(d[o + 1] - c[1]) + Math.abs(d[o + 2] - c[2]) < tolerance);
      run = near ? run + 1 : 0;
      if (run > best) best = run;
    }
  }
  return best;
}
