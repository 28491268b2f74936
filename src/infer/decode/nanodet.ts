// Generalized Focal Loss decode for NanoDet: per level a sigmoid-ed class-score map and,
// per side of the box, a discrete distribution over distances 0..regMax (in stride units).
import type { Box, Detection, RawTensor } from "../../core/types.ts";

/** NanoDet (original) places anchor centres in the middle of each cell; NanoDet-Plus uses 0. */
export const NANODET_DEFAULT_CENTER_OFFSET = 0.5;
/** Largest distance bin; each side has regMax + 1 bins. */
export const NANODET_DEFAULT_REG_MAX = 10;
export const NANODET_DEFAULT_MAX_CANDIDATES = 1000;

export interface NanoDetLevel {
  stride: number;
  /** [1, N, numClasses], already sigmoid-ed. */
  scores: RawTensor;
  /** [1, N, 4 * (regMax + 1)], logits, side-major (left, top, right, bottom). */
  boxes: RawTensor;
}

export interface NanoDetDecodeOptions {
  inputWidth: number;
  inputHeight: number;
  /** A (anchor, class) pair is a candidate when its score is strictly greater. */
  scoreThreshold: number;
  classFilter?: ReadonlySet<number>;
  labels: readonly string[];
  centerOffset?: number;
  maxCandidates?: number;
  regMax?: number;
}

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(", ")}]`;
}

function checkTensor(what: string, t: RawTensor, expected: readonly number[]): void {
  const ok = t.dims.length === expected.length && t.dims.every((d, i) => d === expected[i]);
  if (!ok) {
    throw new Error(`NanoDet ${what}: expected dims ${dimsText(expected)}, got ${dimsText(t.dims)}`);
  }
  const size = expected.reduce((a, b) => a * b, 1);
  if (t.data.length !== size) {
    throw new Error(`NanoDet ${what}: dims ${dimsText(t.dims)} need ${size} values, data has ${t.data.length}`);
  }
}

/** Expected value of the softmax over bins [offset, offset + bins), in bin units. */
function expectedDistance(data: Float32Array, offset: number, bins: number): number {
  let max = -Infinity;
  for (let k = 0; k < bins; k++) max = Math.max(max, data[offset + k]);
  let sum = 0;
  let weighted = 0;
  for (let k = 0; k < bins; k++) {
    const e = Math.exp(data[offset + k] - max);
    sum += e;
    weighted += k * e;
  }
  return weighted / sum;
}

interface Candidates {
  level: number[];
  anchor: number[];
  cls: number[];
  score: number[];
}

/**
 * Appends the (anchor, class) pairs of one level scoring above the threshold. It reads every
 * score (288k a frame at 416x416) in the worker, between two inferences, so it is one flat
 * loop over plain locals with one compare per score; the class arithmetic and filter only
 * run for the few that pass.
 */
function scanScores(
  scores: Float32Array,
  total: number,
  numClasses: number,
  threshold: number,
  allowed: Uint8Array | undefined,
  level: number,
  out: Candidates,
): void {
  for (let i = 0; i < total; i++) {
    const s = scores[i];
    if (!(s > threshold)) continue;
    const a = Math.floor(i / numClasses);
    const c = i - a * numClasses;
    if (allowed !== undefined && allowed[c] !== 1) continue;
    out.level.push(level);
    out.anchor.push(a);
    out.cls.push(c);
    out.score.push(s);
  }
}

/**
 * Returns every (anchor, class) pair scoring above the threshold (multi-label, as NanoDet's
 * multiclass NMS does), at most maxCandidates of them, highest score first, boxes in
 * model-input pixels and not clipped. Run NMS afterwards.
 */
export function decodeNanoDet(levels: readonly NanoDetLevel[], opts: NanoDetDecodeOptions): Detection[] {
  const numClasses = opts.labels.length;
  const regMax = opts.regMax ?? NANODET_DEFAULT_REG_MAX;
  const bins = regMax + 1;
  const centerOffset = opts.centerOffset ?? NANODET_DEFAULT_CENTER_OFFSET;
  const maxCandidates = opts.maxCandidates ?? NANODET_DEFAULT_MAX_CANDIDATES;
  if (!Number.isInteger(maxCandidates) || maxCandidates < 1) {
    throw new RangeError(`decodeNanoDet: maxCandidates must be a positive integer, got ${String(maxCandidates)}`);
  }
  for (const [name, v] of [["inputWidth", opts.inputWidth], ["inputHeight", opts.inputHeight]] as const) {
    if (!(v > 0)) throw new RangeError(`decodeNanoDet: ${name} must be positive, got ${String(v)}`);
  }
  if (!Number.isInteger(regMax) || regMax < 1) {
    throw new RangeError(`decodeNanoDet: regMax must be a positive integer, got ${String(regMax)}`);
  }

  let allowed: Uint8Array | undefined;
  if (opts.classFilter !== undefined) {
    allowed = new Uint8Array(numClasses);
    for (const c of opts.classFilter) if (c >= 0 && c < numClasses) allowed[c] = 1;
  }

  // Pass 1: thresholding only. Softmax is ~10x the work of a score scan and most anchors
  // have no candidate, so boxes are decoded later, just for the anchors that survive.
  const cand: Candidates = { level: [], anchor: [], cls: [], score: [] };
  const { level: candLevel, anchor: candAnchor, cls: candClass, score: candScore } = cand;
  const grids: { fmW: number; firstAnchor: number }[] = [];
  let totalAnchors = 0;
  levels.forEach((level, li) => {
    const { stride } = level;
    if (!(stride > 0)) {
      throw new RangeError(`NanoDet level ${li}: stride must be positive, got ${String(stride)}`);
    }
    // NanoDet sizes its feature maps with ceil, so odd input sizes still cover every pixel.
    const fmW = Math.ceil(opts.inputWidth / stride);
    const fmH = Math.ceil(opts.inputHeight / stride);
    const n = fmW * fmH;
    const where = `level ${li} (stride ${stride}, ${fmH}x${fmW} map)`;
    checkTensor(`${where} scores`, level.scores, [1, n, numClasses]);
    checkTensor(`${where} boxes`, level.boxes, [1, n, 4 * bins]);
    grids.push({ fmW, firstAnchor: totalAnchors });
    totalAnchors += n;

    scanScores(level.scores.data, n * numClasses, numClasses, opts.scoreThreshold, allowed, li, cand);
  });

  // Stable sort: equal scores stay in (level, anchor, class) order, so output is deterministic.
  const order = candScore.map((_, i) => i);
  order.sort((i, j) => candScore[j] - candScore[i]);
  if (order.length > maxCandidates) order.length = maxCandidates;

  const boxCache = new Map<number, Box>();
  const out: Detection[] = [];
  for (const i of order) {
    const li = candLevel[i];
    const a = candAnchor[i];
    const key = grids[li].firstAnchor + a;
    let box = boxCache.get(key);
    if (box === undefined) {
      const { stride, boxes } = levels[li];
      const fmW = grids[li].fmW;
      const row = Math.floor(a / fmW);
      const col = a - row * fmW;
      const cx = (col + centerOffset) * stride;
      const cy = (row + centerOffset) * stride;
      const base = a * 4 * bins;
      const l = expectedDistance(boxes.data, base, bins) * stride;
      const t = expectedDistance(boxes.data, base + bins, bins) * stride;
      const r = expectedDistance(boxes.data, base + 2 * bins, bins) * stride;
      const b = expectedDistance(boxes.data, base + 3 * bins, bins) * stride;
      box = [cx - l, cy - t, cx + r, cy + b];
      boxCache.set(key, box);
    }
    const c = candClass[i];
    // Each detection owns its box: one anchor can yield several classes, and callers mutate.
    out.push({ classId: c, label: opts.labels[c], score: candScore[i], box: [box[0], box[1], box[2], box[3]] });
  }
  return out;
}
