import { describe, expect, it } from "vitest";
import { LETTERBOX_PAD_RGB, computeLetterbox } from "../../src/core/letterbox.ts";
import { resizeToModel, toNchwFloat, toNhwcFloat } from "../../src/infer/resize.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";

function constant(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { width, height, data };
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  const o = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(o, o + 3));
}

function channel(img: RgbImage, c: number): number[][] {
  const rows: number[][] = [];
  for (let y = 0; y < img.height; y++) {
    const row: number[] = [];
    for (let x = 0; x < img.width; x++) row.push(img.data[(y * img.width + x) * 3 + c]);
    rows.push(row);
  }
  return rows;
}

describe("resizeToModel", () => {
  it("keeps a constant image constant, up and down, stretch and letterbox", () => {
    const img = constant(37, 23, [10, 200, 33]);
    for (const [w, h] of [[64, 48], [16, 16], [37, 23]]) {
      const out = resizeToModel(img, computeLetterbox(37, 23, w, h, "stretch"));
      expect([out.width, out.height]).toEqual([w, h]);
      for (let i = 0; i < out.data.length; i += 3) expect(pixel(out, (i / 3) % w, Math.floor(i / 3 / w))).toEqual([10, 200, 33]);
    }
  });

  it("letterbox leaves fill in the pads and the image in the middle", () => {
    // 200x100 into 64x64: scale 0.32, content 64x32, padY = 16.
    const img = constant(200, 100, [200, 50, 10]);
    // A bright stripe across the source's middle rows, to check content lands centred.
    for (let y = 45; y < 55; y++) for (let x = 0; x < 200; x++) img.data.set([255, 255, 255], (y * 200 + x) * 3);
    const t = computeLetterbox(200, 100, 64, 64, "letterbox");
    expect([t.padX, t.padY]).toEqual([0, 16]);
    const out = resizeToModel(img, t, 114);
    for (let x = 0; x < 64; x++) {
      for (const y of [0, 15, 48, 63]) expect(pixel(out, x, y)).toEqual([114, 114, 114]);
      for (const y of [16, 20, 43, 47]) expect(pixel(out, x, y)).toEqual([200, 50, 10]);
      expect(pixel(out, x, 32)).toEqual([255, 255, 255]);
    }
    const byDefault = resizeToModel(img, t);
    expect(pixel(byDefault, 10, 5), "default pads: the daemon's GStreamer pad colour").toEqual([...LETTERBOX_PAD_RGB]);
  });

  it("letterbox pads left and right for a tall image, odd leftover on the right", () => {
    // 30x100 into 64x64: scale 0.64, content round(19.2) = 19 wide, padX = floor(45 / 2) = 22.
    const t = computeLetterbox(30, 100, 64, 64, "letterbox");
    expect(t.padX).toBe(22);
    const out = resizeToModel(constant(30, 100, [1, 2, 3]), t, 114);
    for (let y = 0; y < 64; y++) {
      expect(pixel(out, 21, y)).toEqual([114, 114, 114]);
      expect(pixel(out, 22, y)).toEqual([1, 2, 3]);
      expect(pixel(out, 40, y)).toEqual([1, 2, 3]);
      expect(pixel(out, 41, y)).toEqual([114, 114, 114]);
    }
  });

  it("2x2 -> 4x4 stretch matches half-pixel-centre bilinear by hand", () => {
    // Source (red): a=0 at (0,0), b=100 at (1,0), c=200 at (0,1), d=40 at (1,1).
    // Output pixel d samples (d + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to
    // [0, 1], so the weights of the second pixel along each axis are 0, .25, .75, 1.
    // Row 0 (wy 0):    0, 25, 75, 100.   Row 3 (wy 1):   200, 160, 80, 40.
    // Row 1 (wy .25):  50, 58.75, 76.25, 85.   Row 2 (wy .75): 150, 126.25, 78.75, 55.
    const src: RgbImage = { width: 2, height: 2, data: new Uint8Array([0, 255, 9, 100, 155, 9, 200, 55, 9, 40, 215, 9]) };
    const out = resizeToModel(src, computeLetterbox(2, 2, 4, 4, "stretch"));
    const expected = [
      [0, 25, 75, 100],
      [50, 59, 76, 85],
      [150, 126, 79, 55],
      [200, 160, 80, 40],
    ];
    expect(channel(out, 0)).toEqual(expected);
    expect(channel(out, 1)).toEqual(expected.map((r) => r.map((v) => 255 - v)));
    expect(channel(out, 2)).toEqual(expected.map((r) => r.map(() => 9)));
  });

  it("downscaling by 2 averages each 2x2 block (half-pixel centres, not corners)", () => {
    const src: RgbImage = { width: 4, height: 1, data: new Uint8Array([0, 0, 0, 100, 100, 100, 20, 20, 20, 60, 60, 60]) };
    const out = resizeToModel(src, computeLetterbox(4, 1, 2, 1, "stretch"));
    expect(Array.from(out.data)).toEqual([50, 50, 50, 40, 40, 40]);
  });

  it("rejects an image that does not match the transform", () => {
    const t = computeLetterbox(10, 10, 4, 4, "stretch");
    expect(() => resizeToModel(constant(11, 10, [0, 0, 0]), t)).toThrow(/11x10 but the transform is for 10x10/);
  });
});

describe("toNchwFloat / toNhwcFloat", () => {
  // Two pixels: (10, 20, 30) and (40, 50, 60); mean and std are per colour.
  const img: RgbImage = { width: 2, height: 1, data: new Uint8Array([10, 20, 30, 40, 50, 60]) };
  const mean = [1, 2, 3] as const;
  const std = [2, 4, 6] as const;
  // r: 4.5, 19.5   g: 4.5, 12   b: 4.5, 9.5

  it("NCHW is planar, in the requested channel order", () => {
    expect(Array.from(toNchwFloat(img, mean, std, "rgb"))).toEqual([4.5, 19.5, 4.5, 12, 4.5, 9.5]);
    expect(Array.from(toNchwFloat(img, mean, std, "bgr"))).toEqual([4.5, 9.5, 4.5, 12, 4.5, 19.5]);
  });

  it("NHWC is interleaved, in the requested channel order", () => {
    expect(Array.from(toNhwcFloat(img, mean, std, "rgb"))).toEqual([4.5, 4.5, 4.5, 19.5, 12, 9.5]);
    expect(Array.from(toNhwcFloat(img, mean, std, "bgr"))).toEqual([4.5, 4.5, 4.5, 9.5, 12, 19.5]);
  });

  it("0..1 scaling is mean 0, std 255", () => {
    const t = toNchwFloat({ width: 1, height: 1, data: new Uint8Array([0, 255, 51]) }, [0, 0, 0], [255, 255, 255], "rgb");
    expect(Array.from(t)).toEqual([0, 1, Math.fround(0.2)]);
  });

  it("rejects a zero std", () => {
    expect(() => toNchwFloat(img, mean, [1, 0, 1], "rgb")).toThrow(/std non-zero/);
  });
});
