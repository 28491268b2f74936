import { describe, expect, it } from "vitest";
import { COCO_LABELS } from "../../../src/infer/coco-labels.ts";
import { createDecoder } from "../../../src/infer/decode/index.ts";
import { NANODET_DEFAULT_CENTER_OFFSET, decodeNanoDet, type NanoDetLevel } from "../../../src/infer/decode/nanodet.ts";
import type { RawTensor } from "../../../src/core/types.ts";

const BINS = 11; // reg_max 10
const LABELS = ["a", "b", "c"] as const;

function tensor(dims: number[], fill = 0): RawTensor {
  return { dims, data: new Float32Array(dims.reduce((p, d) => p * d, 1)).fill(fill) };
}

/** A level for an input of inputW x inputH, all scores 0 and all distributions uniform. */
function level(stride: number, inputW: number, inputH: number, numClasses: number = LABELS.length): NanoDetLevel {
  const n = Math.ceil(inputW / stride) * Math.ceil(inputH / stride);
  return { stride, scores: tensor([1, n, numClasses]), boxes: tensor([1, n, 4 * BINS]) };
}

function setScore(l: NanoDetLevel, anchor: number, cls: number, v: number): void {
  l.scores.data[anchor * l.scores.dims[2] + cls] = v;
}

/** Logits that put all probability on one bin (exp(-1000) underflows to exactly 0), per side [l, t, r, b]. */
function setOneHot(l: NanoDetLevel, anchor: number, binsPerSide: [number, number, number, number]): void {
  for (let s = 0; s < 4; s++) {
    for (let k = 0; k < BINS; k++) {
      l.boxes.data[anchor * 4 * BINS + s * BINS + k] = k === binsPerSide[s] ? 1000 : 0;
    }
  }
}

const baseOpts = { inputWidth: 32, inputHeight: 16, scoreThreshold: 0.3, labels: LABELS };

describe("decodeNanoDet", () => {
  it("uses a default anchor centre offset of 0.5 (cell centre)", () => {
    expect(NANODET_DEFAULT_CENTER_OFFSET).toBe(0.5);
  });

  it("one-hot distribution at bin 3 gives distances of 3 * stride around the anchor centre", () => {
    // Stride 8 on a 32x16 input: a 2-row x 4-column map; anchor 6 is row 1, col 2.
    const l = level(8, 32, 16);
    setScore(l, 6, 1, 0.8);
    setOneHot(l, 6, [3, 3, 3, 3]);
    const dets = decodeNanoDet([l], baseOpts);
    expect(dets).toHaveLength(1);
    const cx = 2.5 * 8;
    const cy = 1.5 * 8;
    const d = 3 * 8;
    expect(dets[0].classId).toBe(1);
    expect(dets[0].label).toBe("b");
    expect(dets[0].score).toBeCloseTo(0.8, 6);
    dets[0].box.forEach((v, i) =>
      expect(v, `box coordinate ${i}`).toBeCloseTo([cx - d, cy - d, cx + d, cy + d][i], 9),
    );
  });

  it("decodes each side from its own 11 bins (side-major: left, top, right, bottom)", () => {
    const l = level(16, 32, 16); // 1 x 2 map
    setScore(l, 1, 0, 0.9); // row 0, col 1: centre (24, 8)
    setOneHot(l, 1, [1, 2, 3, 4]);
    const [det] = decodeNanoDet([l], baseOpts);
    det.box.forEach((v, i) => expect(v, `box coordinate ${i}`).toBeCloseTo([24 - 16, 8 - 32, 24 + 48, 8 + 64][i], 9));
  });

  it("uniform bins give the mean distance, 5 * stride", () => {
    const l = level(8, 32, 16);
    setScore(l, 0, 2, 0.5); // row 0, col 0: centre (4, 4); boxes default to all-zero logits
    const [det] = decodeNanoDet([l], baseOpts);
    det.box.forEach((v, i) => expect(v, `box coordinate ${i}`).toBeCloseTo([4 - 40, 4 - 40, 4 + 40, 4 + 40][i], 9));
  });

  it("honours a custom centerOffset (NanoDet-Plus uses 0)", () => {
    const l = level(8, 32, 16);
    setScore(l, 6, 0, 0.8);
    setOneHot(l, 6, [0, 0, 0, 0]);
    const [det] = decodeNanoDet([l], { ...baseOpts, centerOffset: 0 });
    expect(det.box).toEqual([16, 8, 16, 8]);
  });

  it("maps anchors of every level to their own grid and stride on the real 416x416 layout", () => {
    const levels = [8, 16, 32].map((s) => level(s, 416, 416, 80));
    // Last anchor of the stride-32 13x13 map: row 12, col 12.
    setScore(levels[2], 168, 0, 0.9);
    setOneHot(levels[2], 168, [1, 1, 1, 1]);
    // Stride 16, 26x26: anchor 26 * 3 + 5 = row 3, col 5.
    setScore(levels[1], 83, 2, 0.7);
    setOneHot(levels[1], 83, [0, 0, 0, 0]);
    const dets = decodeNanoDet(levels, { ...baseOpts, inputWidth: 416, inputHeight: 416, labels: COCO_LABELS });
    expect(dets.map((d) => d.label)).toEqual(["person", "car"]);
    expect(dets[0].box).toEqual([12.5 * 32 - 32, 12.5 * 32 - 32, 12.5 * 32 + 32, 12.5 * 32 + 32]);
    expect(dets[1].box).toEqual([5.5 * 16, 3.5 * 16, 5.5 * 16, 3.5 * 16]);
  });

  it("uses a strict threshold: a score equal to scoreThreshold is not a candidate", () => {
    const l = level(8, 32, 16);
    setScore(l, 0, 0, 0.5);
    setScore(l, 1, 0, 0.25);
    setScore(l, 2, 0, 0.5000001);
    const dets = decodeNanoDet([l], { ...baseOpts, scoreThreshold: 0.5 });
    expect(dets.map((d) => d.score)).toEqual([Math.fround(0.5000001)]);
  });

  it("emits one candidate per class above threshold at the same anchor, each with its own box array", () => {
    const l = level(8, 32, 16);
    setScore(l, 3, 0, 0.6);
    setScore(l, 3, 2, 0.9);
    const dets = decodeNanoDet([l], baseOpts);
    expect(dets.map((d) => d.classId)).toEqual([2, 0]);
    expect(dets[0].box).toEqual(dets[1].box);
    expect(dets[0].box, "boxes must not be shared between detections").not.toBe(dets[1].box);
  });

  it("drops classes outside classFilter", () => {
    const l = level(8, 32, 16);
    setScore(l, 0, 0, 0.9);
    setScore(l, 1, 1, 0.8);
    setScore(l, 2, 2, 0.7);
    const dets = decodeNanoDet([l], { ...baseOpts, classFilter: new Set([0, 2]) });
    expect(dets.map((d) => d.label)).toEqual(["a", "c"]);
  });

  it("caps candidates to maxCandidates, keeping the highest scores in descending order", () => {
    const l = level(8, 32, 16);
    [0.4, 0.9, 0.6, 0.8, 0.5].forEach((s, a) => setScore(l, a, 0, s));
    const dets = decodeNanoDet([l], { ...baseOpts, maxCandidates: 3 });
    expect(dets.map((d) => d.score)).toEqual([0.9, 0.8, 0.6].map(Math.fround));
  });

  it("only decodes boxes of anchors that have a candidate (others may hold garbage)", () => {
    const l = level(8, 32, 16);
    l.boxes.data.fill(Number.NaN);
    setScore(l, 5, 0, 0.9);
    setOneHot(l, 5, [2, 2, 2, 2]);
    const dets = decodeNanoDet([l], baseOpts);
    expect(dets).toHaveLength(1);
    expect(dets[0].box.every(Number.isFinite), `box ${dets[0].box.join(", ")} should be finite`).toBe(true);
  });

  it("throws naming the level, stride, expected and actual dims when a score tensor is the wrong size", () => {
    const levels = [8, 16, 32].map((s) => level(s, 416, 416, 80));
    levels[1] = { ...levels[1], scores: tensor([1, 169, 80]) }; // a 13x13 map given as stride 16
    const run = (): unknown =>
      decodeNanoDet(levels, { ...baseOpts, inputWidth: 416, inputHeight: 416, labels: COCO_LABELS });
    expect(run).toThrow(/level 1 \(stride 16.*scores.*expected dims \[1, 676, 80\], got \[1, 169, 80\]/);
  });

  it("throws when the box tensor does not have 44 bins per anchor", () => {
    const l = level(8, 32, 16);
    const bad = { ...l, boxes: tensor([1, 8, 32]) }; // reg_max 7 export
    expect(() => decodeNanoDet([bad], baseOpts)).toThrow(/stride 8.*boxes.*\[1, 8, 44\].*\[1, 8, 32\]/);
  });

  it("throws when the class axis does not match the number of labels", () => {
    const l = level(8, 32, 16, 80);
    expect(() => decodeNanoDet([l], baseOpts)).toThrow(/expected dims \[1, 8, 3\], got \[1, 8, 80\]/);
  });
});

describe("createDecoder('nanodet-gfl')", () => {
  const names = {
    levels: [
      { stride: 8, scores: "cls_8", boxes: "dis_8" },
      { stride: 16, scores: "cls_16", boxes: "dis_16" },
    ],
  };

  it("reads the named outputs and passes nanodetCenterOffset through", () => {
    const l8 = level(8, 32, 16);
    const l16 = level(16, 32, 16);
    setScore(l16, 0, 1, 0.9);
    setOneHot(l16, 0, [0, 0, 0, 0]);
    const decoder = createDecoder("nanodet-gfl", names);
    expect(decoder.outputNames).toEqual(["cls_8", "dis_8", "cls_16", "dis_16"]);
    const outputs = { cls_8: l8.scores, dis_8: l8.boxes, cls_16: l16.scores, dis_16: l16.boxes };
    const dets = decoder.decode(outputs, { ...baseOpts, nanodetCenterOffset: 0 });
    expect(dets).toEqual([{ classId: 1, label: "b", score: Math.fround(0.9), box: [0, 0, 0, 0] }]);
  });

  it("names the missing output and the outputs present", () => {
    const l8 = level(8, 32, 16);
    const decoder = createDecoder("nanodet-gfl", names);
    expect(() => decoder.decode({ cls_8: l8.scores, dis_8: l8.boxes, other: l8.boxes }, baseOpts)).toThrow(
      /"cls_16".*missing.*"cls_8", "dis_8", "other"/,
    );
  });

  it("rejects an unknown decoder kind", () => {
    expect(() => createDecoder("yolo" as "nanodet-gfl", names)).toThrow(/unknown decoder kind "yolo"/);
  });
});

describe("COCO_LABELS", () => {
  it("has the 80 classes in detector order", () => {
    expect(COCO_LABELS).toHaveLength(80);
    expect(COCO_LABELS.slice(0, 4)).toEqual(["person", "bicycle", "car", "motorcycle"]);
    expect(COCO_LABELS[9]).toBe("traffic light");
    expect(COCO_LABELS[79]).toBe("toothbrush");
    expect(new Set(COCO_LABELS).size, "labels must be unique").toBe(80);
  });
});
