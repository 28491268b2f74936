import { describe, expect, it } from "vitest";
import type { Box, Detection } from "../../src/core/types.ts";
import { Tracker } from "../../src/perception/tracker.ts";
import { FRAME_NS, noise, person } from "./synthetic.ts";

const at = (f: number): bigint => BigInt(f) * FRAME_NS;
const moving = (x0: number, y0: number, vx: number, f: number): Box => [x0 + vx * f, y0, x0 + vx * f + 40, y0 + 100];

describe("Tracker", () => {
  it("keeps one id per object while two people walk towards each other and past, boxes jittering", () => {
    const tr = new Tracker({ minHits: 3, maxMisses: 3 });
    const n = noise(1, 2);
    const ids: [number | undefined, number | undefined][] = [];
    for (let f = 0; f < 60; f++) {
      // A walks right at 6 px/frame, B left, 30 px lower so their boxes overlap only partly when they pass.
      const a = person(moving(100, 200, 6, f).map((v) => v + n()) as Box);
      const b = person(moving(460, 230, -6, f).map((v) => v + n()) as Box);
      const step = tr.step([a, b], at(f));
      ids.push([step.assigned[0]?.id, step.assigned[1]?.id]);
    }
    expect(new Set(ids.map((p) => p[0])), "A's ids").toEqual(new Set([1]));
    expect(new Set(ids.map((p) => p[1])), "B's ids").toEqual(new Set([2]));
    const a = tr.tracks.find((t) => t.id === 1)!;
    expect(a.velocityPxPerS.x, "A's image velocity (px/s): 6 px per frame at 10 fps").toBeCloseTo(60, -1);
    expect(Math.abs(a.velocityPxPerS.y)).toBeLessThan(10);
  });

  it("confirms a track after minHits detections and loses it after maxMisses frames without one", () => {
    const tr = new Tracker({ minHits: 3, maxMisses: 2 });
    const box: Box = [100, 100, 140, 200];
    const status = (f: number, dets: Detection[]) => {
      const s = tr.step(dets, at(f));
      return { status: tr.tracks[0]?.status, lost: s.lost.map((t) => t.id) };
    };
    expect(status(0, [person(box)]).status).toBe("tentative");
    expect(status(1, [person(box)]).status).toBe("tentative");
    expect(status(2, [person(box)]).status).toBe("confirmed");
    expect(status(3, []), "first miss").toEqual({ status: "confirmed", lost: [] });
    expect(status(4, []), "second miss").toEqual({ status: "confirmed", lost: [] });
    expect(status(5, []), "third miss: past maxMisses").toEqual({ status: undefined, lost: [1] });
    // The same object again: a new id, never the old one.
    tr.step([person(box)], at(6));
    expect(tr.tracks.map((t) => t.id)).toEqual([2]);
  });

  it("drops a tentative track at its first miss, without reporting it lost", () => {
    const tr = new Tracker({ minHits: 3 });
    tr.step([person([0, 0, 10, 10])], at(0));
    const s = tr.step([], at(1));
    expect(s.tracks).toEqual([]);
    expect(s.lost).toEqual([]);
  });

  it("second pass: a confirmed track continues through low-score detections, which never start tracks themselves", () => {
    const tr = new Tracker({ highScore: 0.5, minHits: 2, maxMisses: 1 });
    for (let f = 0; f < 5; f++) tr.step([person(moving(100, 100, 5, f), 0.9)], at(f));
    // Occluded: the detector still sees it, weakly, for 5 frames (longer than maxMisses).
    for (let f = 5; f < 10; f++) {
      const s = tr.step([person(moving(100, 100, 5, f), 0.3), person([600, 100, 640, 200], 0.3)], at(f));
      expect(s.assigned[0]?.id, `frame ${f}: the weak detection extends track 1`).toBe(1);
      expect(s.assigned[1], `frame ${f}: a weak detection elsewhere starts nothing`).toBeNull();
    }
    expect(tr.tracks.map((t) => t.id)).toEqual([1]);

    // Without the second pass, the same frames lose the track.
    const plain = new Tracker({ highScore: 0.5, minHits: 2, maxMisses: 1, secondPass: false });
    for (let f = 0; f < 5; f++) plain.step([person(moving(100, 100, 5, f), 0.9)], at(f));
    for (let f = 5; f < 10; f++) plain.step([person(moving(100, 100, 5, f), 0.3)], at(f));
    expect(plain.tracks).toEqual([]);
  });

  it("associates within a class only, and predicts across a dropped frame", () => {
    const tr = new Tracker({ minHits: 1 });
    tr.step([person([100, 100, 140, 200])], at(0));
    const s = tr.step([{ classId: 1, label: "bicycle", score: 0.9, box: [100, 100, 140, 200] }], at(1));
    expect(s.assigned[0]?.id, "a bicycle in the person's box gets its own track").toBe(2);

    const t2 = new Tracker({ minHits: 1, matchIou: 0.3 });
    // 20 px per frame on a 40 px wide box; frame 2 is dropped, so frame 3's box does not
    // overlap frame 1's at all (IoU 0), only the prediction two frames ahead (IoU 1).
    t2.step([person(moving(100, 100, 20, 0))], at(0));
    t2.step([person(moving(100, 100, 20, 1))], at(1));
    const s3 = t2.step([person(moving(100, 100, 20, 3))], at(3));
    expect(s3.assigned[0]?.id).toBe(1);
  });

  it("rejects settings out of range, naming them", () => {
    expect(() => new Tracker({ minHits: 0 })).toThrow(/minHits must be an integer >= 1, got 0/);
    expect(() => new Tracker({ matchIou: 0 })).toThrow(/matchIou must be within \[0.01, 1\], got 0/);
  });
});
