import { describe, expect, it } from "vitest";
import { BusEncoder, FrameError } from "../../src/bus/codec.ts";
import { decodeDetections } from "../../src/bus/detections-message.ts";

const clock = { monoNs: () => 9_007_199_254_757_000_456n, wallUnixNs: () => 1_760_000_123_456_789_000n };

describe("detections message (flat view)", () => {
  it("gives the frame's identity and objects in one object, bigints and fractional pixels included", () => {
    const enc = new BusEncoder(clock);
    const detections = [
      { classId: 0, label: "person", score: 0.875, box: [10.5, 20.25, 110.75, 300] as [number, number, number, number] },
      { classId: 2, label: "car", score: 0.25, box: [600, 300, 900.125, 500] as [number, number, number, number] },
    ];
    enc.encode("detections", { model: "m", frameWidthPx: 1, frameHeightPx: 1, detections: [] });
    const frame = enc.encode(
      "detections",
      { model: "nanodet-u8", frameWidthPx: 1280, frameHeightPx: 720, detections },
      { cameraId: "front-left", frameSeq: 41, tIngestMonoNs: 9_007_199_254_740_993_123n },
    );
    expect(decodeDetections(frame)).toEqual({
      camera: "front-left",
      seq: 41,
      counter: 1n,
      tIngestNs: 9_007_199_254_740_993_123n,
      tPublishNs: 9_007_199_254_757_000_456n,
      wallTimeMs: 1_760_000_123_456,
      valid: true,
      model: "nanodet-u8",
      width: 1280,
      height: 720,
      detections,
    });
  });

  it("checks the frame like decodeFrame", () => {
    const frame = new BusEncoder().encode("detections", { model: "m", frameWidthPx: 1, frameHeightPx: 1, detections: [] });
    frame[frame.length - 1] ^= 1;
    expect(() => decodeDetections(frame)).toThrow(FrameError);
    expect(() => decodeDetections(new BusEncoder().encode("alerts", { alerts: [] }))).toThrow(/data_id 3 on topic detections/);
  });
});
