import { describe, expect, it } from "vitest";
import { CameraModel, cameraModelIssues, type CameraModelParams } from "../../src/perception/camera-model.ts";
import { CAR_CAMERA } from "./synthetic.ts";

describe("CameraModel", () => {
  it("maps a ground point to a pixel and back, for any yaw and roll", () => {
    for (const extra of [{}, { yawDeg: 12, rollDeg: -3 }, { yawDeg: -30, rollDeg: 5, pitchDeg: 20 }]) {
      const cam = new CameraModel({ ...CAR_CAMERA, ...extra });
      for (const [x, y] of [
        [0, 10],
        [-3, 7.5],
        [4, 25],
      ]) {
        const px = cam.project({ x, y })!;
        const g = cam.groundPoint(px.u, px.v)!;
        expect(g.x, `x of (${x}, ${y}) with ${JSON.stringify(extra)}`).toBeCloseTo(x, 6);
        expect(g.y).toBeCloseTo(y, 6);
        expect(g.range).toBeCloseTo(Math.hypot(x, y), 6);
      }
    }
  });

  it("puts the horizon at cy - fy tan(pitch), and has no ground point above it", () => {
    const cam = new CameraModel({ imageWidthPx: 640, imageHeightPx: 480, fx: 500, fy: 500, cx: 320, cy: 240, heightM: 2, pitchDeg: 10 });
    const h = 240 - 500 * Math.tan((10 * Math.PI) / 180);
    expect(cam.horizonRow(320)).toBeCloseTo(h, 6);
    expect(cam.groundPoint(320, h - 1)).toBeNull();
    expect(cam.groundPoint(320, h + 1)!.range).toBeGreaterThan(100);
  });

  it("scales its intrinsics to another frame size and still sees the same ground", () => {
    const cam = new CameraModel({ ...CAR_CAMERA, yawDeg: 8, rollDeg: 2 });
    const small = cam.scaledTo(640, 360);
    const a = cam.project({ x: 1, y: 12 })!;
    const b = small.project({ x: 1, y: 12 })!;
    expect(b.u).toBeCloseTo(a.u / 2, 6);
    expect(b.v).toBeCloseTo(a.v / 2, 6);
  });

  it("names what is wrong with a camera that cannot work", () => {
    const msgs = (p: CameraModelParams) => cameraModelIssues(p).map((i) => `${i.key}: ${i.message}`);
    expect(msgs({ ...CAR_CAMERA, heightM: 0 })).toEqual(["heightM: mounting height must be positive, got 0"]);
    expect(msgs({ ...CAR_CAMERA, pitchDeg: -50 })[0]).toMatch(/^pitchDeg: the horizon falls at image row \d+, at or below the bottom \(row 720\): the camera would see no ground/);
    expect(msgs({ ...CAR_CAMERA, fx: 600 })[0]).toMatch(/^horizontalFovDeg: give either horizontalFovDeg or fx, fy, cx, cy, not both/);
    expect(msgs({ imageWidthPx: 640, imageHeightPx: 480, fx: 500, fy: 500, heightM: 1, pitchDeg: 0 })).toEqual(["cx: intrinsics incomplete: fx, fy, cx and cy go together (missing: cx, cy)"]);
    expect(msgs({ imageWidthPx: 640, imageHeightPx: 480, heightM: 1, pitchDeg: 0 })).toEqual(["horizontalFovDeg: intrinsics missing: give horizontalFovDeg, or fx, fy, cx and cy"]);
    expect(() => new CameraModel({ ...CAR_CAMERA, heightM: -1 })).toThrow(/camera model: heightM: mounting height must be positive, got -1/);
    // Looking steeply down is fine: the horizon is above the image, everything seen is ground.
    expect(msgs({ ...CAR_CAMERA, pitchDeg: 70 })).toEqual([]);
  });
});
