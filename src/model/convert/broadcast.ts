// NumPy-style broadcasting, shared by the TF constant evaluator and ONNX shape inference.

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Applies f elementwise with broadcasting over flat row-major arrays. */
export function broadcastBinary(
  a: ArrayLike<number>,
  aDims: readonly number[],
  b: ArrayLike<number>,
  bDims: readonly number[],
  outDims: readonly number[],
  f: (x: number, y: number) => number,
): number[] {
  const rank = outDims.length;
  const pad = (d: readonly number[]): number[] => [...new Array<number>(rank - d.length).fill(1), ...d];
  const ad = pad(aDims);
  const bd = pad(bDims);
  const stride = (d: number[]): number[] => {
    const s = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let i = rank - 1; i >= 0; i--) {
      s[i] = d[i] === 1 ? 0 : acc;
      acc *= d[i];
    }
    return s;
  };
  const as = stride(ad);
  const bs = stride(bd);
  let n = 1;
  for (const d of outDims) n *= d;
  const out = new Array<number>(n);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < n; o++) {
    let ia = 0;
    let ib = 0;
    for (let k = 0; k < rank; k++) {
      ia += idx[k] * as[k];
      ib += idx[k] * bs[k];
    }
    out[o] = f(a[ia], b[ib]);
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < outDims[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}
