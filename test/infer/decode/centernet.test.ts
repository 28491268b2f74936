import { describe, expect, it } from "vitest";
import { COCO_LABELS } from "../../../src/infer/coco-labels.ts";
import { decodeCenterNetDetections, decodeCenterNetHeads } from "../../../src/infer/decode/centernet.ts";
import { createDecoder } from "../../../src/infer/decode/index.ts";
import type { Detection, RawTensor } from "../../../src/core/types.ts";

const LABELS = ["a", "b", "c"] as const;
// 32x24 input at stride 4: an 8-wide, 6-high map.
const W = 8;
const H = 6;
const C = LABELS.length;
const opts = { inputWidth: 32, inputHeight: 24, scoreThreshold: 0.3, labels: LABELS };

function tensor(dims: number[], fill = 0): RawTensor {
  return { dims, data: new Float32Array(dims.reduce((p, d) => p * d, 1)).fill(fill) };
}

function heads(): { heat: RawTensor; wh: RawTensor; set: (y: number, x: number, c: number, v: number) => void } {
  const heat = tensor([1, H, W, C]);
  const wh = tensor([1, H, W, 4]);
  return { heat, wh, set: (y, x, c, v) => void (heat.data[(y * W + x) * C + c] = v) };
}

function setWh(wh: RawTensor, y: number, x: number, ltrb: [number, number, number, number]): void {
  wh.data.set(ltrb, (y * W + x) * 4);
}

/** Straightforward reading of the model's decode graph, as a reference for the fast path. */
function reference(heat: RawTensor, wh: RawTensor, topK: number, threshold: number): Detection[] {
  const peaks: { score: number; index: number }[] = [];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < C; c++) {
        const v = heat.data[(y * W + x) * C + c];
        let max = -Infinity;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy;
            const xx = x + dx;
            if (yy >= 0 && yy < H && xx >= 0 && xx < W) max = Math.max(max, heat.data[(yy * W + xx) * C + c]);
          }
        }
        if (v === max) peaks.push({ score: v, index: (y * W + x) * C + c });
      }
    }
  }
  peaks.sort((a, b) => b.score - a.score || a.index - b.index);
  return peaks
    .slice(0, topK)
    .filter((p) => p.score > threshold)
    .map(({ score, index }) => {
      const c = index % C;
      const pix = (index - c) / C;
      const x = pix % W;
      const y = (pix - x) / W;
      const o = pix * 4;
      const d = wh.data;
      return {
        classId: c,
        label: LABELS[c],
        score,
        box: [x * 4 - d[o], y * 4 - d[o + 1], x * 4 + d[o + 2], y * 4 + d[o + 3]],
      };
    });
}

describe("decodeCenterNetHeads", () => {
  it("finds a single peak whose neighbours are lower, with the wh box around x*stride, y*stride", () => {
    const { heat, wh, set } = heads();
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) set(2 + dy, 5 + dx, 1, 0.5);
    set(2, 5, 1, 0.9);
    setWh(wh, 2, 5, [3, 4, 5, 6]);
    const dets = decodeCenterNetHeads(heat, wh, opts);
    expect(dets).toEqual([{ classId: 1, label: "b", score: Math.fround(0.9), box: [20 - 3, 8 - 4, 20 + 5, 8 + 6] }]);
  });

  it("a pixel next to a higher one of the same class is not a peak", () => {
    const { heat, wh, set } = heads();
    set(2, 5, 0, 0.9);
    set(2, 6, 0, 0.8);
    set(3, 4, 0, 0.7); // diagonal neighbour counts too
    const dets = decodeCenterNetHeads(heat, wh, opts);
    expect(dets.map((d) => d.score)).toEqual([Math.fround(0.9)]);
  });

  it("classes are pooled separately: a neighbour of another class does not suppress", () => {
    const { heat, wh, set } = heads();
    set(2, 5, 0, 0.9);
    set(2, 6, 2, 0.8);
    const dets = decodeCenterNetHeads(heat, wh, opts);
    expect(dets.map((d) => [d.label, d.score])).toEqual([
      ["a", Math.fround(0.9)],
      ["c", Math.fround(0.8)],
    ]);
  });

  it("equal neighbours on a plateau are both peaks, as Equal(x, maxpool(x)) makes them", () => {
    const { heat, wh, set } = heads();
    set(1, 1, 0, 0.7);
    set(1, 2, 0, 0.7);
    const dets = decodeCenterNetHeads(heat, wh, opts);
    expect(dets.map((d) => d.box)).toEqual([
      [4, 4, 4, 4],
      [8, 4, 8, 4],
    ]);
  });

  it("ignores out-of-image neighbours, so corner and edge pixels can be peaks", () => {
    const { heat, wh, set } = heads();
    set(0, 0, 0, 0.6);
    set(H - 1, W - 1, 1, 0.5);
    const dets = decodeCenterNetHeads(heat, wh, opts);
    expect(dets.map((d) => d.box)).toEqual([
      [0, 0, 0, 0],
      [(W - 1) * 4, (H - 1) * 4, (W - 1) * 4, (H - 1) * 4],
    ]);
  });

  it("returns the topK peaks in descending score order", () => {
    const { heat, wh, set } = heads();
    const scores = [0.4, 0.95, 0.6, 0.85, 0.7];
    scores.forEach((s, i) => set(0, i * 2, 0, s)); // two columns apart: all are peaks
    const dets = decodeCenterNetHeads(heat, wh, { ...opts, topK: 3 });
    expect(dets.map((d) => d.score)).toEqual([0.95, 0.85, 0.7].map(Math.fround));
  });

  it("breaks score ties by lower NHWC flat index, as tf.math.top_k does", () => {
    const { heat, wh } = heads();
    // A flat map above the threshold: every pixel is a plateau peak; the first 4 flat indices win.
    heat.data.fill(0.1);
    const dets = decodeCenterNetHeads(heat, wh, { ...opts, scoreThreshold: 0, topK: 4 });
    expect(dets.map((d) => [d.classId, d.box[0]])).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
      [0, 4],
    ]);
  });

  it("applies the score threshold strictly, as every decoder does: a score equal to it is dropped", () => {
    const { heat, wh, set } = heads();
    set(3, 3, 0, 0.5);
    expect(decodeCenterNetHeads(heat, wh, { ...opts, scoreThreshold: 0.49999 })).toHaveLength(1);
    expect(decodeCenterNetHeads(heat, wh, { ...opts, scoreThreshold: 0.5 })).toHaveLength(0);
  });

  it("applies classFilter after topK, like filtering the model's own 100-row output", () => {
    const { heat, wh, set } = heads();
    set(0, 0, 0, 0.9);
    set(3, 3, 1, 0.8);
    set(5, 7, 1, 0.7);
    const dets = decodeCenterNetHeads(heat, wh, { ...opts, topK: 2, classFilter: new Set([1]) });
    expect(dets.map((d) => d.score), "the 0.7 peak is outside the top 2 and must not appear").toEqual([
      Math.fround(0.8),
    ]);
  });

  it("matches a naive reading of the decode graph on a random heatmap", () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const { heat, wh } = heads();
    // Coarse values make plateaus and ties common.
    for (let i = 0; i < heat.data.length; i++) heat.data[i] = Math.floor(rand() * 5) / 4;
    for (let i = 0; i < wh.data.length; i++) wh.data[i] = rand() * 30;
    for (const [topK, threshold] of [
      [100, 0],
      [10, 0.5],
      [7, 0.75],
    ]) {
      expect(decodeCenterNetHeads(heat, wh, { ...opts, topK, scoreThreshold: threshold }), `topK ${topK}`).toEqual(
        reference(heat, wh, topK, threshold),
      );
    }
  });

  it("accepts the real 512x512 / stride 4 layout and rejects NCHW with a message naming the tensor", () => {
    const realOpts = { inputWidth: 512, inputHeight: 512, scoreThreshold: 0.3, labels: COCO_LABELS };
    const wh = tensor([1, 128, 128, 4]);
    const heat = tensor([1, 128, 128, 80]);
    heat.data[(100 * 128 + 37) * 80 + 2] = 0.8;
    const dets = decodeCenterNetHeads(heat, wh, realOpts);
    expect(dets.map((d) => [d.label, d.box[0], d.box[1]])).toEqual([["car", 37 * 4, 100 * 4]]);
    expect(() => decodeCenterNetHeads(tensor([1, 80, 128, 128]), wh, realOpts)).toThrow(
      /heatmap: expected dims \[1, 128, 128, 80\].*got \[1, 80, 128, 128\]/,
    );
    expect(() => decodeCenterNetHeads(heat, tensor([1, 128, 128, 2]), realOpts)).toThrow(
      /wh: expected dims \[1, 128, 128, 4\].*got \[1, 128, 128, 2\]/,
    );
  });
});

describe("decodeCenterNetDetections", () => {
  function rows(...r: number[][]): RawTensor {
    return { dims: [1, r.length, 6], data: Float32Array.from(r.flat()) };
  }

  it("reads x1, y1, x2, y2, score, class rows and keeps those above the threshold", () => {
    const t = rows([10, 20, 30, 40, 0.9, 2], [1, 2, 3, 4, 0.5, 0], [5, 6, 7, 8, 0.2, 1]);
    const dets = decodeCenterNetDetections(t, { scoreThreshold: 0.5, labels: LABELS });
    expect(dets, "0.5 equals the threshold: dropped").toEqual([{ classId: 2, label: "c", score: Math.fround(0.9), box: [10, 20, 30, 40] }]);
  });

  it("drops classes outside classFilter", () => {
    const t = rows([0, 0, 1, 1, 0.9, 2], [0, 0, 1, 1, 0.8, 0]);
    const dets = decodeCenterNetDetections(t, { scoreThreshold: 0.1, labels: LABELS, classFilter: new Set([0]) });
    expect(dets.map((d) => d.label)).toEqual(["a"]);
  });

  it("throws on wrong dims, naming expected layout and actual dims", () => {
    const t: RawTensor = { dims: [1, 100, 7], data: new Float32Array(700) };
    expect(() => decodeCenterNetDetections(t, { scoreThreshold: 0.1, labels: LABELS })).toThrow(
      /expected dims \[1, N, 6\].*got \[1, 100, 7\]/,
    );
  });

  it("throws when a kept row's class is outside the label list", () => {
    const t = rows([0, 0, 1, 1, 0.9, 3]);
    expect(() => decodeCenterNetDetections(t, { scoreThreshold: 0.1, labels: LABELS })).toThrow(/row 0 has class 3/);
  });
});

describe("createDecoder for CenterNet", () => {
  it("centernet-heads and centernet-detections agree when fed the same model's outputs", () => {
    const { heat, wh, set } = heads();
    set(1, 2, 0, 0.9);
    set(4, 6, 2, 0.6);
    setWh(wh, 1, 2, [1, 2, 3, 4]);
    const fromHeads = createDecoder("centernet-heads", { heatmap: "hm", wh: "wh" }).decode({ hm: heat, wh }, opts);
    const det = rows(fromHeads);
    const fromDetections = createDecoder("centernet-detections", { detections: "det" }).decode({ det }, opts);
    expect(fromDetections).toEqual(fromHeads);
  });

  it("names the missing output and lists the outputs present", () => {
    const decoder = createDecoder("centernet-heads", { heatmap: "hm", wh: "wh" });
    expect(decoder.outputNames).toEqual(["hm", "wh"]);
    expect(() => decoder.decode({ hm: tensor([1, H, W, C]) }, opts)).toThrow(/"wh" \(wh\) is missing.*"hm"/);
    expect(() => createDecoder("centernet-detections", { detections: "x" }).decode({}, opts)).toThrow(
      /"x" \(detections\) is missing.*\(none\)/,
    );
  });

  function rows(dets: Detection[]): RawTensor {
    return { dims: [1, dets.length, 6], data: Float32Array.from(dets.flatMap((d) => [...d.box, d.score, d.classId])) };
  }
});
