import { describe, expect, it } from "vitest";
import { iou, nms } from "../../src/infer/nms.ts";
import type { Box, Detection } from "../../src/core/types.ts";

function det(classId: number, score: number, box: Box): Detection {
  return { classId, label: `c${classId}`, score, box };
}

describe("iou", () => {
  it("is 1 for identical boxes", () => {
    expect(iou([10, 20, 30, 60], [10, 20, 30, 60])).toBe(1);
  });
  it("is 0 for disjoint boxes", () => {
    expect(iou([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
  });
  it("is 0 for boxes that only touch along an edge", () => {
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
  });
  it("is intersection over union for a partial overlap (2 / 6)", () => {
    expect(iou([0, 0, 2, 2], [1, 0, 3, 2])).toBeCloseTo(1 / 3, 12);
  });
  it("is 0, not NaN, for two identical zero-area boxes", () => {
    expect(iou([5, 5, 5, 5], [5, 5, 5, 5])).toBe(0);
  });
});

describe("nms", () => {
  it("suppresses a lower-scoring overlapping box of the same class", () => {
    const a = det(0, 0.9, [0, 0, 10, 10]);
    const b = det(0, 0.8, [1, 1, 11, 11]);
    expect(nms([b, a], 0.5)).toEqual([a]);
  });

  it("keeps overlapping boxes of different classes when class-aware (the default)", () => {
    const a = det(0, 0.9, [0, 0, 10, 10]);
    const b = det(1, 0.8, [0, 0, 10, 10]);
    expect(nms([a, b], 0.5)).toEqual([a, b]);
  });

  it("suppresses across classes when classAware is false", () => {
    const a = det(0, 0.9, [0, 0, 10, 10]);
    const b = det(1, 0.8, [0, 0, 10, 10]);
    expect(nms([a, b], 0.5, { classAware: false })).toEqual([a]);
  });

  it("keeps a box whose IoU equals the threshold exactly (only IoU > threshold suppresses)", () => {
    const a = det(0, 0.9, [0, 0, 2, 2]);
    const b = det(0, 0.8, [1, 0, 3, 2]); // IoU 1/3
    expect(nms([a, b], 1 / 3)).toHaveLength(2);
    expect(nms([a, b], 0.3)).toHaveLength(1);
  });

  it("returns results sorted by score, descending, whatever the input order", () => {
    const dets = [det(0, 0.2, [0, 0, 1, 1]), det(1, 0.7, [5, 5, 6, 6]), det(2, 0.5, [9, 9, 10, 10])];
    expect(nms(dets, 0.5).map((d) => d.score)).toEqual([0.7, 0.5, 0.2]);
  });

  it("a suppressed box does not suppress others (greedy chain A > B > C keeps A and C)", () => {
    const a = det(0, 0.9, [0, 0, 10, 10]);
    const b = det(0, 0.8, [6, 0, 16, 10]); // IoU(a, b) = 4/16
    const c = det(0, 0.7, [12, 0, 22, 10]); // IoU(a, c) = 0, IoU(b, c) = 4/16
    expect(nms([a, b, c], 0.2)).toEqual([a, c]);
  });

  it("stops at maxDetections, keeping the best", () => {
    const dets = [0.1, 0.9, 0.5, 0.7].map((s, i) => det(0, s, [i * 20, 0, i * 20 + 10, 10]));
    expect(nms(dets, 0.5, { maxDetections: 2 }).map((d) => d.score)).toEqual([0.9, 0.7]);
  });

  it("does not reorder or modify its input array", () => {
    const dets = [det(0, 0.1, [0, 0, 1, 1]), det(0, 0.9, [5, 5, 6, 6])];
    const copy = [...dets];
    nms(dets, 0.5);
    expect(dets).toEqual(copy);
  });

  it("rejects an IoU threshold outside [0, 1]", () => {
    expect(() => nms([], 1.5)).toThrow(/iouThreshold/);
    expect(() => nms([], Number.NaN)).toThrow(/iouThreshold/);
  });

  it("matches a naive per-class greedy NMS on 3000 random candidates", () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const dets: Detection[] = [];
    for (let i = 0; i < 3000; i++) {
      const x = rand() * 400;
      const y = rand() * 400;
      dets.push(det(Math.floor(rand() * 5), rand(), [x, y, x + 10 + rand() * 60, y + 10 + rand() * 60]));
    }
    const naive: Detection[] = [];
    for (let c = 0; c < 5; c++) {
      const remaining = dets.filter((d) => d.classId === c).sort((a, b) => b.score - a.score);
      while (remaining.length > 0) {
        const best = remaining.shift() as Detection;
        naive.push(best);
        for (let i = remaining.length - 1; i >= 0; i--) {
          if (iou(best.box, remaining[i].box) > 0.45) remaining.splice(i, 1);
        }
      }
    }
    naive.sort((a, b) => b.score - a.score);
    expect(nms(dets, 0.45)).toEqual(naive);
  });
});
