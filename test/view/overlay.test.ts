import { describe, expect, it } from "vitest";
import { drawDetections, drawScene, ALERT_COLOURS, CORRIDOR_COLOUR, objectLabel } from "../../src/view/overlay.ts";
import type { Detection } from "../../src/core/types.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";

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

describe("drawScene", () => {
  it("maps source pixels onto a rendering of another size", () => {
    // A 640x480 source drawn on a 320x240 image: the box lands at half its coordinates.
    const img = grey(320, 240);
    drawScene(img, { objects: [{ ...person, box: [200, 200, 400, 360] }], sourceWidth: 640, sourceHeight: 480 });
    expect(pixel(img, 100, 150)).not.toEqual(GREY);
    expect(pixel(img, 199, 150)).not.toEqual(GREY);
    expect(pixel(img, 150, 150)).toEqual(GREY);
  });

  it("draws the corridor outline in its own colour", () => {
    const img = grey(320, 240);
    drawScene(img, { objects: [], corridor: [[40, 40], [280, 40], [280, 200], [40, 200]] });
    expect(pixel(img, 160, 40)).toEqual([...CORRIDOR_COLOUR]);
    expect(pixel(img, 280, 120)).toEqual([...CORRIDOR_COLOUR]);
    expect(pixel(img, 160, 120)).toEqual(GREY);
  });

  it("rings an object in an alert with the level's colour and names the level in its tag", () => {
    const img = grey(320, 240);
    drawScene(img, { objects: [{ ...person, trackId: 7, rangeM: 6.25, ttcS: 1.5, alert: "critical" }] });
    // Class outline at the box edge, the alert ring just outside it.
    expect(pixel(img, 100, 150)).not.toEqual([...ALERT_COLOURS.critical]);
    expect(pixel(img, 97, 150)).toEqual([...ALERT_COLOURS.critical]);
    expect(objectLabel({ ...person, trackId: 7, rangeM: 6.25, ttcS: 1.5 })).toBe("person id7 87% 6.3m ttc 1.5s");
  });

  it("lists the caption and the alerts at the top left", () => {
    const img = grey(320, 240);
    drawScene(img, { objects: [], caption: "demo frame 12", alerts: [{ level: "warning", text: "pedestrian id3 9.0m" }] });
    expect(pixel(img, 0, 0)).toEqual([0, 0, 0]);
    // The caption's tag is 14 px tall at this size; the alert's row follows it.
    expect(pixel(img, 0, 15)).toEqual([...ALERT_COLOURS.warning]);
    expect(pixel(img, 300, 15)).toEqual(GREY);
  });

  it("rejects a source size that is not positive", () => {
    expect(() => drawScene(grey(32, 24), { objects: [], sourceWidth: 0, sourceHeight: 24 })).toThrow(/source size must be positive/);
  });
});
