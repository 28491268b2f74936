// Distance and time to collision against scenes whose truth is known: people of 1.7 m
// projected through the camera model, boxes jittered by a pixel or two as a detector's are.
import { describe, expect, it } from "vitest";
import { CameraModel } from "../../src/perception/camera-model.ts";
import { DEFAULT_RANGE_FILTER, positionOfBox, RangeFilter } from "../../src/perception/geometry.ts";
import { boxOf, CAR_CAMERA, DEMO_CAMERA, FRAME_NS, jitter, noise } from "./synthetic.ts";

const cam = new CameraModel(CAR_CAMERA);

describe("positionOfBox", () => {
  it("finds a standing person's distance from the bottom edge within 5 % from 3 to 40 m, boxes jittered by up to 1 px", () => {
    const n = noise(7, 1);
    for (const y of [3, 5, 8, 12, 20, 30, 40]) {
      for (const x of [-2, 0, 1.5]) {
        const truth = Math.hypot(x, y);
        const p = positionOfBox(cam, jitter(boxOf(cam, x, y, 1.7), n), "person")!;
        expect(p.method).toBe("ground");
        expect(Math.abs(p.range - truth) / truth, `person at (${x}, ${y})`).toBeLessThan(0.05);
      }
    }
  });

  it("falls back to the known height when the bottom edge is cut off by the frame (camera well above the object's top)", () => {
    // A camera 4.9 m up looking 25 degrees down (config/demo.yaml's): 3 m ahead, the feet of a
    // 1.7 m person are below the frame.
    const high = new CameraModel(DEMO_CAMERA);
    const box = boxOf(high, 0.3, 3, 1.7);
    expect(box[3], "bottom edge at the frame's bottom").toBe(576);
    const p = positionOfBox(high, box, "person")!;
    expect(p.method).toBe("known-height");
    expect(Math.abs(p.range - Math.hypot(0.3, 3)) / 3).toBeLessThan(0.05);
    // The cut-off bottom edge alone would put the person where the frame's bottom row meets
    // the ground, beyond where they stand.
    expect(high.groundPoint((box[0] + box[2]) / 2, box[3])!.range).toBeGreaterThan(3.3);
  });

  it("with the camera at about the object's height, gives the frame-bottom bound: never further than the object can be", () => {
    // The car camera (1.4 m) and a person 1.5 m ahead: feet cut off, head at 1.7 m, only 0.3 m
    // above the lens, so the known height would be off by tens of percent.
    const box = boxOf(cam, 0, 1.5, 1.7);
    expect(box[3]).toBe(720);
    const p = positionOfBox(cam, box, "person")!;
    expect(p.method).toBe("frame-bottom");
    expect(p.range).toBeGreaterThanOrEqual(1.5);
    expect(p.range).toBeLessThan(3);
    // No height known for the class: the bound again, even with the camera far above.
    const high = new CameraModel(DEMO_CAMERA);
    expect(positionOfBox(high, boxOf(high, 0, 3, 1.7), "umbrella")!.method).toBe("frame-bottom");
  });

  it("gives no distance for a box whose bottom edge is at or above the horizon", () => {
    const h = cam.horizonRow(640);
    expect(positionOfBox(cam, [600, h - 80, 660, h - 2], "person")).toBeNull();
  });
});

describe("RangeFilter: closing speed and time to collision", () => {
  it("a pedestrian approaching at 1.5 m/s from 15 m, boxes jittered by 1 px: distance within 5 % and TTC within 10 % once settled (1.5 s)", () => {
    const n = noise(3, 1);
    const speed = 1.5;
    const f = new RangeFilter(DEFAULT_RANGE_FILTER);
    let checked = 0;
    for (let i = 0; i * 0.1 * speed <= 12; i++) {
      const t = i / 10;
      const y = 15 - speed * t;
      const p = positionOfBox(cam, jitter(boxOf(cam, 0.5, y, 1.7), n), "person")!;
      const est = f.update(p.range, BigInt(i) * FRAME_NS);
      if (i < 15) continue;
      const truth = Math.hypot(0.5, y);
      expect(Math.abs(est.rangeM - truth) / truth, `distance at t=${t}s`).toBeLessThan(0.05);
      // d/dt of sqrt(x^2 + y^2) with y closing at speed
      const trueTtc = truth / ((speed * y) / truth);
      expect(est.ttcS, `TTC at t=${t}s`).toBeDefined();
      expect(Math.abs(est.ttcS! - trueTtc) / trueTtc, `TTC at t=${t}s: ${est.ttcS!.toFixed(2)} s vs ${trueTtc.toFixed(2)} s`).toBeLessThan(0.1);
      checked++;
    }
    expect(checked, "frames checked (3 m to 12.75 m)").toBe(66);
  });

  it("gives no TTC for an object standing still or moving away", () => {
    const still = new RangeFilter();
    const away = new RangeFilter();
    for (let i = 0; i < 30; i++) {
      still.update(10 + (i % 2 ? 0.05 : -0.05), BigInt(i) * FRAME_NS);
      away.update(10 + 0.2 * i, BigInt(i) * FRAME_NS);
    }
    expect(still.estimate().ttcS).toBeUndefined();
    expect(away.estimate().ttcS).toBeUndefined();
    expect(away.estimate().closingSpeedMps).toBeCloseTo(-2, 1);
  });
});
