import { describe, expect, it } from "vitest";
import { Corridor, corridorIssue } from "../../src/perception/corridor.ts";

const ground = (x: number, y: number) => ({ box: [0, 0, 1, 1] as [number, number, number, number], ground: { x, y, range: Math.hypot(x, y) } });
const foot = (u: number, v: number) => ({ box: [u - 10, v - 50, u + 10, v] as [number, number, number, number] });

describe("Corridor", () => {
  it("ground: a strip of width and range ahead, offset sideways, grown by the margin only for an object already inside", () => {
    const c = new Corridor({ type: "ground", widthM: 3, minRangeM: 1, maxRangeM: 20, offsetM: 0.5, marginM: 0.4 });
    expect(c.contains(ground(0.5, 10))).toBe(true);
    expect(c.contains(ground(1.9, 10)), "1.4 m right of the centre line: inside").toBe(true);
    expect(c.contains(ground(2.2, 10)), "1.7 m right: outside").toBe(false);
    expect(c.contains(ground(2.2, 10), true), "... unless it was inside: within the margin").toBe(true);
    expect(c.contains(ground(2.2, 10), true, false), "hysteresis off").toBe(false);
    expect(c.contains(ground(0, 0.5))).toBe(false);
    expect(c.contains(ground(0, 21))).toBe(false);
    expect(c.contains({ box: [0, 0, 1, 1] }), "no ground position: not a candidate").toBe(false);
  });

  it("image: the middle of the box's bottom edge inside the polygon, margin in pixels", () => {
    const c = new Corridor({ type: "image", polygon: [[100, 100], [300, 100], [300, 300], [100, 300]], marginPx: 5 });
    expect(c.contains(foot(200, 200))).toBe(true);
    expect(c.contains(foot(200, 303))).toBe(false);
    expect(c.contains(foot(200, 303), true)).toBe(true);
    expect(c.contains(foot(200, 306), true)).toBe(false);
    // The top of the box inside and the foot outside: outside (it stands elsewhere).
    expect(c.contains({ box: [190, 150, 210, 320] })).toBe(false);
  });

  it("names what is wrong with a corridor", () => {
    expect(corridorIssue({ type: "ground", widthM: 2, minRangeM: 5, maxRangeM: 5, offsetM: 0, marginM: 0 })).toBe("maxRangeM (5) must exceed minRangeM (5)");
    expect(corridorIssue({ type: "image", polygon: [[0, 0], [1, 1]], marginPx: 0 })).toBe("polygon needs at least 3 vertices, got 2");
    expect(corridorIssue({ type: "image", polygon: [[0, 0], [1, 1], [2, 2]], marginPx: 0 })).toBe("polygon has no area (vertices on one line?)");
    expect(() => new Corridor({ type: "ground", widthM: 0, minRangeM: 0, maxRangeM: 5, offsetM: 0, marginM: 0 })).toThrow(/corridor: widthM must be positive, got 0/);
  });
});
