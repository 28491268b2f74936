// The whole per-camera assessment (tracker -> geometry -> corridor -> alerts) on synthetic
// scenes: boxes projected from people at known ground positions through the car camera.
import { describe, expect, it } from "vitest";
import { DEFAULT_KIND_RULES } from "../../src/config/hazard-schema.ts";
import type { Detection } from "../../src/core/types.ts";
import { CameraModel } from "../../src/perception/camera-model.ts";
import { HazardAssessor, type HazardConfig, type HazardResult } from "../../src/perception/hazard.ts";
import { boxOf, CAR_CAMERA, FRAME_NS, jitter, noise, person } from "./synthetic.ts";

const cam = new CameraModel(CAR_CAMERA);
const FRAME = { width: 1280, height: 720 };

const CONFIG: HazardConfig = {
  camera: CAR_CAMERA,
  corridor: { type: "ground", widthM: 3, minRangeM: 0, maxRangeM: 40, offsetM: 0, marginM: 0.4 },
  alerts: { kinds: DEFAULT_KIND_RULES, raiseFrames: 2, clearFrames: 4, hysteresis: 0.15 },
};

function assessor(cfg: HazardConfig = CONFIG, corridorHysteresis = true): HazardAssessor {
  let id = 1n;
  return new HazardAssessor("front", cfg, () => id++, corridorHysteresis);
}

describe("HazardAssessor", () => {
  it("a pedestrian walking towards the camera at 1.5 m/s from 25 m: tracked under one id, info -> warning -> critical, TTC within 10 %", () => {
    const h = assessor();
    const n = noise(5, 1);
    const results: HazardResult[] = [];
    let f = 0;
    for (; 25 - 0.15 * f >= 2.5; f++) {
      const y = 25 - 0.15 * f;
      results.push(h.assess([person(jitter(boxOf(cam, 0.4, y, 1.7), n))], FRAME, BigInt(f) * FRAME_NS));
    }
    const ids = new Set(results.slice(3).map((r) => r.detections[0].trackId));
    expect(ids, "one track id once confirmed").toEqual(new Set([1]));
    expect(results[1].detections[0].trackId, "no id while tentative").toBeUndefined();
    const levels = results.flatMap((r) => r.alerts.events.map((e) => `${e.type}:${e.alert.level}`));
    expect(levels).toEqual(["raised:info", "level:warning", "level:critical"]);
    // Warning by TTC (4 s at 1.5 m/s: 6 m... or 12 m by distance, whichever comes first: distance here).
    const warnAt = results.findIndex((r) => r.alerts.events.some((e) => e.type === "level" && e.alert.level === "warning"));
    const rangeAtWarn = 25 - 0.15 * warnAt;
    expect(rangeAtWarn, "warning raised within 2 frames after crossing 12 m").toBeGreaterThan(12 - 0.15 * 3);
    expect(rangeAtWarn).toBeLessThanOrEqual(12);
    // Checked from 15 m in (from 3.3 s after the start), where the thresholds are: further
    // out a pixel of jitter is a good fraction of a metre and the speed takes longer to settle.
    for (let i = 67; i < results.length; i++) {
      const y = 25 - 0.15 * i;
      const truth = Math.hypot(0.4, y);
      const d = results[i].detections[0];
      expect(Math.abs(d.rangeM! - truth) / truth, `distance at ${y.toFixed(2)} m`).toBeLessThan(0.05);
      const trueTtc = truth / ((1.5 * y) / truth);
      expect(Math.abs(d.ttcS! - trueTtc) / trueTtc, `TTC at ${y.toFixed(2)} m: ${d.ttcS!.toFixed(2)} s vs ${trueTtc.toFixed(2)} s`).toBeLessThan(0.1);
      expect(d.inCorridor).toBe(true);
    }
    const track = results.at(-1)!.tracks[0];
    expect(track.ground!.vy, "ground velocity forward (m/s)").toBeCloseTo(-1.5, 0);
    expect(track.velocityPxPerS.y, "image velocity: the box moves down as it comes closer").toBeGreaterThan(0);
  });

  it("a pedestrian walking along the corridor's edge: alert flips with no hysteresis, one raise with it", () => {
    // 8 m ahead, walking slowly forward along x = 1.5 m (the corridor's right edge), boxes
    // jittering by 6 px (5 cm at 8 m), as a walking person's box does.
    const run = (cfg: HazardConfig, corridorHysteresis: boolean): number => {
      const h = assessor(cfg, corridorHysteresis);
      const n = noise(9, 6);
      let flips = 0;
      for (let f = 0; f < 100; f++) {
        const r = h.assess([person(jitter(boxOf(cam, 1.5, 8 + 0.02 * f, 1.7), n))], FRAME, BigInt(f) * FRAME_NS);
        flips += r.alerts.events.filter((e) => e.type !== "level").length;
      }
      return flips;
    };
    const without = run({ ...CONFIG, alerts: { ...CONFIG.alerts, raiseFrames: 1, clearFrames: 1, hysteresis: 0 } }, false);
    const withH = run(CONFIG, true);
    expect(without, "raises + clears without hysteresis").toBeGreaterThan(10);
    expect(withH, "raises + clears with hysteresis").toBe(1);
  });

  it("tracks and measures without a corridor, but raises nothing", () => {
    const h = assessor({ ...CONFIG, corridor: undefined });
    let last: HazardResult | undefined;
    for (let f = 0; f < 20; f++) last = h.assess([person(boxOf(cam, 0, 4, 1.7))], FRAME, BigInt(f) * FRAME_NS);
    expect(last!.detections[0]).toMatchObject({ trackId: 1, inCorridor: false });
    expect(last!.detections[0].rangeM).toBeCloseTo(4, 1);
    expect(last!.alerts.active).toEqual([]);
  });

  it("without a camera model: track ids, an image corridor, info alerts (no distance to grade them further)", () => {
    const h = assessor({
      corridor: { type: "image", polygon: [[0, 300], [1280, 300], [1280, 720], [0, 720]], marginPx: 5 },
      alerts: { kinds: DEFAULT_KIND_RULES, raiseFrames: 1, clearFrames: 1, hysteresis: 0 },
    });
    const det: Detection = person([600, 400, 640, 500]);
    let last: HazardResult | undefined;
    for (let f = 0; f < 5; f++) last = h.assess([det], FRAME, BigInt(f) * FRAME_NS);
    expect(last!.detections[0]).toEqual({ trackId: 1, rangeM: undefined, ttcS: undefined, inCorridor: true });
    expect(last!.alerts.active.map((a) => `${a.level} ${a.kind} track ${a.trackId}`)).toEqual(["info pedestrian track 1"]);
    expect(() => assessor({ corridor: CONFIG.corridor, alerts: CONFIG.alerts })).toThrow(/camera front: a ground corridor needs a camera model/);
  });
});
