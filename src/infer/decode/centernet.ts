// Decoders for MobileNetV3-CenterNet. The heads decoder reproduces the model's own
// built-in decode graph so the two export variants (raw heads, or [1,100,6] detections)
// give the same detections for the same frame.
import type { Detection, RawTensor } from "../../core/types.ts";

export const CENTERNET_DEFAULT_TOP_K = 100;
export const CENTERNET_DEFAULT_STRIDE = 4;

export interface CenterNetHeadsOptions {
  inputWidth: number;
  inputHeight: number;
  /** Kept when score > scoreThreshold (src/core/postprocess.ts), applied after the top-K selection. */
  scoreThreshold: number;
  classFilter?: ReadonlySet<number>;
  labels: readonly string[];
  topK?: number;
  stride?: number;
}

export interface CenterNetDetectionsOptions {
  scoreThreshold: number;
  classFilter?: ReadonlySet<number>;
  labels: readonly string[];
}

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(", ")}]`;
}

function checkTensor(what: string, t: RawTensor, expected: readonly number[], hint = ""): void {
  const ok = t.dims.length === expected.length && t.dims.every((d, i) => d === expected[i]);
  if (!ok) {
    throw new Error(`CenterNet ${what}: expected dims ${dimsText(expected)}${hint}, got ${dimsText(t.dims)}`);
  }
  const size = expected.reduce((a, b) => a * b, 1);
  if (t.data.length !== size) {
    throw new Error(`CenterNet ${what}: dims ${dimsText(t.dims)} need ${size} values, data has ${t.data.length}`);
  }
}

/**
 * Peaks are heatmap values equal to the max of their 3x3 neighbourhood (TF's
 * Equal(x, MaxPool3x3_SAME(x)); plateaus count, out-of-image neighbours are ignored), the
 * top K peaks over all (y, x, class) are taken, ties going to the lower NHWC flat index as
 * tf.math.top_k does, and only then are the threshold and class filter applied.
 * Boxes are in model-input pixels.
 */
export function decodeCenterNetHeads(heatmap: RawTensor, wh: RawTensor, opts: CenterNetHeadsOptions): Detection[] {
  const topK = opts.topK ?? CENTERNET_DEFAULT_TOP_K;
  const stride = opts.stride ?? CENTERNET_DEFAULT_STRIDE;
  if (!Number.isInteger(topK) || topK < 1) {
    throw new RangeError(`decodeCenterNetHeads: topK must be a positive integer, got ${String(topK)}`);
  }
  if (!(stride > 0)) {
    throw new RangeError(`decodeCenterNetHeads: stride must be positive, got ${String(stride)}`);
  }
  for (const [name, v] of [["inputWidth", opts.inputWidth], ["inputHeight", opts.inputHeight]] as const) {
    if (!(v > 0)) throw new RangeError(`decodeCenterNetHeads: ${name} must be positive, got ${String(v)}`);
  }
  const numClasses = opts.labels.length;
  const H = Math.ceil(opts.inputHeight / stride);
  const W = Math.ceil(opts.inputWidth / stride);
  const hint = ` (NHWC, input ${opts.inputWidth}x${opts.inputHeight} / stride ${stride}, ${numClasses} labels)`;
  checkTensor("heatmap", heatmap, [1, H, W, numClasses], hint);
  checkTensor("wh", wh, [1, H, W, 4], hint);

  const heat = heatmap.data;
  const C = numClasses;
  // Bounded min-heap of the best K peaks; the root is the worst kept one. Scanning in flat
  // index order means a newcomer tying the root has the higher index, so it loses the tie.
  const hScore = new Float64Array(topK);
  const hIndex = new Int32Array(topK);
  let hSize = 0;
  const worse = (i: number, j: number): boolean =>
    hScore[i] < hScore[j] || (hScore[i] === hScore[j] && hIndex[i] > hIndex[j]);
  const swap = (i: number, j: number): void => {
    const s = hScore[i];
    hScore[i] = hScore[j];
    hScore[j] = s;
    const x = hIndex[i];
    hIndex[i] = hIndex[j];
    hIndex[j] = x;
  };
  const siftDown = (start: number): void => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < hSize && worse(l, m)) m = l;
      if (r < hSize && worse(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };

  for (let y = 0; y < H; y++) {
    const y0 = Math.max(0, y - 1);
    const y1 = Math.min(H - 1, y + 1);
    for (let x = 0; x < W; x++) {
      const x0 = Math.max(0, x - 1);
      const x1 = Math.min(W - 1, x + 1);
      const pix = (y * W + x) * C;
      for (let c = 0; c < C; c++) {
        const v = heat[pix + c];
        // Filtering on the threshold before top-K gives the same result as after it (every
        // peak above the threshold outranks every other) and skips most of the map.
        if (!(v > opts.scoreThreshold)) continue;
        if (hSize === topK && !(v > hScore[0])) continue;
        let isPeak = true;
        for (let yy = y0; yy <= y1 && isPeak; yy++) {
          for (let xx = x0; xx <= x1; xx++) {
            if (heat[(yy * W + xx) * C + c] > v) {
              isPeak = false;
              break;
            }
          }
        }
        if (!isPeak) continue;
        if (hSize < topK) {
          let i = hSize++;
          hScore[i] = v;
          hIndex[i] = pix + c;
          while (i > 0) {
            const p = (i - 1) >> 1;
            if (!worse(i, p)) break;
            swap(i, p);
            i = p;
          }
        } else {
          hScore[0] = v;
          hIndex[0] = pix + c;
          siftDown(0);
        }
      }
    }
  }

  const picks: { score: number; index: number }[] = [];
  for (let i = 0; i < hSize; i++) picks.push({ score: hScore[i], index: hIndex[i] });
  picks.sort((a, b) => b.score - a.score || a.index - b.index);

  const out: Detection[] = [];
  const whData = wh.data;
  for (const { score, index } of picks) {
    const c = index % C;
    if (opts.classFilter !== undefined && !opts.classFilter.has(c)) continue;
    const p = (index - c) / C;
    const y = Math.floor(p / W);
    const x = p - y * W;
    const px = x * stride;
    const py = y * stride;
    const o = p * 4;
    // The model's wh head already outputs input-pixel distances (left, top, right, bottom).
    out.push({
      classId: c,
      label: opts.labels[c],
      score,
      box: [px - whData[o], py - whData[o + 1], px + whData[o + 2], py + whData[o + 3]],
    });
  }
  return out;
}

/** Reads the built-in decode output: rows of x1, y1, x2, y2, score, class in input pixels. */
export function decodeCenterNetDetections(detections: RawTensor, opts: CenterNetDetectionsOptions): Detection[] {
  const dims = detections.dims;
  if (dims.length !== 3 || dims[0] !== 1 || dims[2] !== 6) {
    throw new Error(
      `CenterNet detections: expected dims [1, N, 6] (x1, y1, x2, y2, score, class), got ${dimsText(dims)}`,
    );
  }
  checkTensor("detections", detections, dims);
  const d = detections.data;
  const out: Detection[] = [];
  for (let r = 0; r < dims[1]; r++) {
    const o = r * 6;
    const score = d[o + 4];
    if (!(score > opts.scoreThreshold)) continue;
    // The class travels as a float; round so 2.9999999 from a cast still means class 3.
    const classId = Math.round(d[o + 5]);
    if (!(classId >= 0 && classId < opts.labels.length)) {
      throw new Error(
        `CenterNet detections: row ${r} has class ${String(d[o + 5])}, outside the ${opts.labels.length} labels`,
      );
    }
    if (opts.classFilter !== undefined && !opts.classFilter.has(classId)) continue;
    out.push({ classId, label: opts.labels[classId], score, box: [d[o], d[o + 1], d[o + 2], d[o + 3]] });
  }
  // The model emits rows in top-K order already; a stable sort keeps that and guards variants that don't.
  out.sort((a, b) => b.score - a.score);
  return out;
}
