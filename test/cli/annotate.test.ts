import { describe, expect, it } from "vitest";
import { drawDetections } from "../../src/cli/annotate.ts";
import type { Detection } from "../../src/infer/types.ts";
import type { RgbImage } from "../../src/ingest/rgb-image.ts";

const GREY = [50, 50, 50];

function grey(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3).fill(50) };
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  const o = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(o, o + 3));
}

function changed(a: RgbImage, b: RgbImage): number {
  let n = 0;
  for (let i = 0; i < a.data.length; i += 3) {
    if (a.data[i] !== b.data[i] || a.data[i + 1] !== b.data[i + 1] || a.data[i + 2] !== b.data[i + 2]) n++;
  }
  return n;
}

const person: Detection = { classId: 0, label: "person", score: 0.87, box: [100, 100, 200, 180] };

describe("drawDetections", () => {
  it("draws a 2 px outline on the box edges and leaves the rest alone", () => {
    const img = grey(320, 240);
    const out = drawDetections(img, [person]);
    const colour = pixel(out, 100, 150);
    expect(colour).not.toEqual(GREY);
    // Both pixels of each edge's thickness, on all four sides, in the class colour.
    for (const [x, y] of [[100, 150], [101, 150], [198, 150], [199, 150], [150, 178], [150, 179], [150, 101], [160, 101]]) {
      expect(pixel(out, x, y)).toEqual(colour);
    }
    // Just inside and just outside the outline, and far away: untouched.
    for (const [x, y] of [[102, 150], [197, 150], [150, 177], [99, 150], [200, 150], [150, 180], [150, 140], [5, 5], [310, 230]]) {
      expect(pixel(out, x, y)).toEqual(GREY);
    }
    // The input is not modified.
    expect(changed(img, grey(320, 240))).toBe(0);
  });

  it("puts a filled label tag with text above the box", () => {
    const out = drawDetections(grey(320, 240), [person]);
    const colour = pixel(out, 100, 150);
    const inTag = new Set<string>();
    // "person 87%": 10 glyphs at 2x, a 14 px tall tag ending at the box top.
    for (let y = 86; y < 100; y++) for (let x = 100; x < 180; x++) inTag.add(pixel(out, x, y).join(","));
    expect(inTag.has(colour.join(","))).toBe(true);
    expect(inTag.has("255,255,255")).toBe(true);
    expect(inTag.has(GREY.join(","))).toBe(false);
    expect(pixel(out, 150, 84)).toEqual(GREY);
  });

  it("keeps the tag inside the image for a box at the top edge", () => {
    const out = drawDetections(grey(320, 240), [{ ...person, box: [0, 0, 60, 60] }]);
    expect(pixel(out, 0, 0)).not.toEqual(GREY);
    expect(pixel(out, 30, 30)).toEqual(GREY);
  });

  it("uses different colours for different classes", () => {
    const out = drawDetections(grey(320, 240), [person, { classId: 2, label: "car", score: 0.5, box: [10, 120, 60, 200] }]);
    expect(pixel(out, 10, 160)).not.toEqual(pixel(out, 100, 150));
  });

  it("clips boxes reaching outside the image and skips boxes wholly outside it", () => {
    const img = grey(64, 48);
    const clipped = drawDetections(img, [{ ...person, box: [-20, -20, 30, 30] }]);
    expect(pixel(clipped, 29, 10)).not.toEqual(GREY);
    expect(changed(img, drawDetections(img, [{ ...person, box: [100, 100, 150, 150] }]))).toBe(0);
    expect(changed(img, drawDetections(img, [{ ...person, box: [Number.NaN, 0, 10, 10] }]))).toBe(0);
  });
});
