// The scene clock the hazard stage runs the tracker on (src/daemon/hazard-stage.ts): arrival
// time for live cameras, media time for sources that deliver every frame, and a step past a
// replay's loop.
import { describe, expect, it } from "vitest";
import { SceneClock } from "../../src/daemon/hazard-stage.ts";

const MS = 1_000_000n;

describe("SceneClock", () => {
  it("times a live camera's frames (no media time) by their arrival", () => {
    const c = new SceneClock();
    expect(c.at("cam", 5_000n * MS, null)).toBe(5_000n * MS);
    expect(c.at("cam", 5_000n * MS + 1n, null), "bursts stay bursts: the live path is unchanged").toBe(5_000n * MS + 1n);
  });

  it("times an unpaced replay's frames by media time, however bunched their arrival", () => {
    const c = new SceneClock();
    const first = c.at("replay", 1_000n * MS, 0);
    // frames 1 and 2 arrive 0.1 ms apart, frame 3 after a pause of 300 ms; the video runs at 10 fps
    const t1 = c.at("replay", 1_000n * MS + 100_000n, 100_000_000);
    const t2 = c.at("replay", 1_000n * MS + 200_000n, 200_000_000);
    const t3 = c.at("replay", 1_300n * MS, 300_000_000);
    expect(first, "the scene starts at the first frame's arrival").toBe(1_000n * MS);
    expect([t1 - first, t2 - t1, t3 - t2], "steps of one frame period (100 ms)").toEqual([100n * MS, 100n * MS, 100n * MS]);
  });

  it("keeps each camera's clock apart", () => {
    const c = new SceneClock();
    c.at("a", 1_000n * MS, 0);
    expect(c.at("b", 7_000n * MS, 0), "camera b starts at its own first arrival").toBe(7_000n * MS);
    expect(c.at("a", 1_001n * MS, 40_000_000), "camera a goes on from its own start").toBe(1_040n * MS);
  });

  it("steps one second forward when a looping replay's media time starts over", () => {
    const c = new SceneClock();
    c.at("loop", 0n, 0);
    const end = c.at("loop", 10n * MS, 79_400_000_000);
    const again = c.at("loop", 11n * MS, 0);
    const next = c.at("loop", 12n * MS, 100_000_000);
    expect(again - end, "a cut of one second, never backwards").toBe(1_000n * MS);
    expect(next - again, "then media time again").toBe(100n * MS);
  });
});
