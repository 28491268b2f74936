// The hazard keys of the config (cameras[].geometry, cameras[].corridor, tracking, alerts):
// what a user gets back for a camera model that cannot work, a corridor that needs what is
// missing, and thresholds that contradict each other, with the line it is on.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { hazardConfigOf } from "../../src/daemon/hazard-stage.ts";
import { HazardAssessor } from "../../src/perception/hazard.ts";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "perceptd-hazard-config-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let n = 0;
async function load(yaml: string) {
  const p = join(tmp, `c${n++}.yaml`);
  await writeFile(p, yaml);
  return loadConfig(p, { env: {} });
}

async function problems(yaml: string): Promise<string[]> {
  const err = await load(yaml).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(err)}`);
  return err.problems.map((p) => `${p.line ?? "-"} ${p.path}: ${p.message}`);
}

const camera = (extra: string): string => `cameras:\n  - id: front\n    source: { type: testsrc }\n${extra}`;
const GEOMETRY = "    geometry: { imageWidthPx: 1280, imageHeightPx: 720, horizontalFovDeg: 90, heightM: 1.4, pitchDeg: 5 }\n";

describe("hazard configuration", () => {
  it("accepts a camera model with a ground corridor and fills in the defaults", async () => {
    const { config } = await load(camera(`${GEOMETRY}    corridor: { type: ground, widthM: 2.5, maxRangeM: 30 }\n`));
    const cam = config.cameras[0];
    expect(cam.geometry).toMatchObject({ yawDeg: 0, rollDeg: 0, knownHeightsM: {} });
    expect(cam.corridor).toEqual({ type: "ground", widthM: 2.5, minRangeM: 0, maxRangeM: 30, offsetM: 0, marginM: 0.3 });
    expect(config.alerts).toMatchObject({ publishHz: 5, raiseFrames: 2, clearFrames: 4, hysteresis: 0.15 });
    expect(config.alerts.kinds.pedestrian).toEqual({ classes: ["person"], info: { rangeM: 30 }, warning: { ttcS: 4, rangeM: 12 }, critical: { ttcS: 2, rangeM: 5 } });
    expect(config.tracking).toMatchObject({ highScore: 0.5, minHits: 3, maxMisses: 5 });
    // What the config accepts, the assessment accepts.
    expect(new HazardAssessor("front", hazardConfigOf(cam, config), () => 1n).hasCorridor).toBe(true);
  });

  it("reports a camera model that cannot work, at its line", async () => {
    expect(await problems(camera("    geometry: { imageWidthPx: 1280, imageHeightPx: 720, horizontalFovDeg: 90, heightM: 0, pitchDeg: 5 }\n"))).toEqual([
      '4 cameras.0.geometry.heightM: mounting height must be positive, got 0 [camera "front"]',
    ]);
    const up = await problems(camera("    geometry:\n      imageWidthPx: 1280\n      imageHeightPx: 720\n      horizontalFovDeg: 90\n      heightM: 1.4\n      pitchDeg: -50\n"));
    expect(up).toHaveLength(1);
    expect(up[0]).toMatch(/^9 cameras\.0\.geometry\.pitchDeg: the horizon falls at image row \d+, at or below the bottom \(row 720\): the camera would see no ground/);
    expect(await problems(camera("    geometry: { imageWidthPx: 640, imageHeightPx: 480, fx: 500, fy: 500, heightM: 2, pitchDeg: 5 }\n"))).toEqual([
      '4 cameras.0.geometry.cx: intrinsics incomplete: fx, fy, cx and cy go together (missing: cx, cy) [camera "front"]',
    ]);
  });

  it("refuses a ground corridor without geometry, and a polygon of two points", async () => {
    expect(await problems(camera("    corridor: { type: ground, widthM: 2, maxRangeM: 20 }\n"))).toEqual([
      '4 cameras.0.corridor.type: a ground corridor needs the camera\'s geometry (or use type: image with a polygon) [camera "front"]',
    ]);
    const two = await problems(camera("    corridor: { type: image, polygon: [[0, 0], [10, 10]] }\n"));
    expect(two).toHaveLength(1);
    expect(two[0]).toMatch(/^4 cameras\.0\.corridor\.polygon: /);
  });

  it("refuses thresholds out of order and a class under two kinds", async () => {
    const yaml = `${camera("")}alerts:\n  kinds:\n    vehicle:\n      warning: { rangeM: 5 }\n      critical: { rangeM: 8 }\n    obstacle:\n      classes: [person]\n`;
    expect(await problems(yaml)).toEqual([
      "7 alerts.kinds.vehicle: critical.rangeM (8) exceeds warning.rangeM (5): a more severe level needs a tighter threshold",
      '10 alerts.kinds.obstacle.classes.0: class "person" is already a pedestrian class',
    ]);
  });

  it("config/demo.yaml: the calibrated vtest.avi camera, and a corridor over the walkway", async () => {
    const { config } = await loadConfig(resolve(import.meta.dirname, "../../config/demo.yaml"), { env: {} });
    const cam = config.cameras[0];
    expect(cam.geometry).toMatchObject({ imageWidthPx: 768, imageHeightPx: 576 });
    expect(cam.corridor?.type).toBe("image");
  });
});
