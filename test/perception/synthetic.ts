// Synthetic scenes with known geometry: people of known height standing at known ground
// positions, projected through a camera model into the boxes a detector would report.
import type { Box, Detection } from "../../src/core/types.ts";
import { CameraModel, type CameraModelParams } from "../../src/perception/camera-model.ts";

/** A vehicle camera: 1280x720, 90 degrees horizontal field of view, 1.4 m up, pitched 5 degrees down. */
export const CAR_CAMERA: CameraModelParams = { imageWidthPx: 1280, imageHeightPx: 720, horizontalFovDeg: 90, heightM: 1.4, pitchDeg: 5 };

/** config/demo.yaml's camera over vtest.avi's walkway: 4.9 m up, 25.6 degrees down. */
export const DEMO_CAMERA: CameraModelParams = { imageWidthPx: 768, imageHeightPx: 576, horizontalFovDeg: 66, heightM: 4.9, pitchDeg: 25.6 };

/** The box of an upright object (a cylinder of widthM) standing at ground point (x, y), clipped to the frame. */
export function boxOf(cam: CameraModel, x: number, y: number, heightM: number, widthM = 0.5): Box {
  const pts = [
    cam.project({ x: x - widthM / 2, y }, 0),
    cam.project({ x: x + widthM / 2, y }, 0),
    cam.project({ x: x - widthM / 2, y }, heightM),
    cam.project({ x: x + widthM / 2, y }, heightM),
  ];
  if (pts.some((p) => p === null)) throw new Error(`object at (${x}, ${y}) is behind the camera`);
  const us = pts.map((p) => p!.u);
  const vs = pts.map((p) => p!.v);
  const clip = (v: number, hi: number): number => Math.max(0, Math.min(hi, v));
  return [clip(Math.min(...us), cam.width), clip(Math.min(...vs), cam.height), clip(Math.max(...us), cam.width), clip(Math.max(...vs), cam.height)];
}

export function person(box: Box, score = 0.9): Detection {
  return { classId: 0, label: "person", score, box };
}

/** Deterministic noise in [-amp, amp] (a linear congruential generator), so a failing test fails the same way again. */
export function noise(seed: number, amp: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * amp;
  };
}

export const FRAME_NS = 100_000_000n; // 10 fps

export const jitter = (b: Box, n: () => number): Box => [b[0] + n(), b[1] + n(), b[2] + n(), b[3] + n()];
