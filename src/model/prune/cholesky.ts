// Dense symmetric positive-definite solves in Float64, for the normal equations of
// least-squares recovery. Systems are at most a few thousand unknowns (3 x 3 x 256 + 1), so
// a plain in-place Cholesky is enough and keeps the project free of a linear-algebra package.

export class NotPositiveDefiniteError extends Error {
  constructor(readonly column: number, readonly pivot: number) {
    super(`matrix is not positive definite: pivot ${pivot} at column ${column}`);
  }
}

/**
 * Factors the n x n symmetric matrix `a` (row-major, only the lower triangle is read) in place
 * into L with A = L Lᵀ, L in the lower triangle. The upper triangle is left as it was.
 */
export function choleskyFactor(a: Float64Array, n: number): void {
  if (a.length < n * n) throw new RangeError(`choleskyFactor: ${n} x ${n} needs ${n * n} values, got ${a.length}`);
  for (let j = 0; j < n; j++) {
    const rowJ = j * n;
    let d = a[rowJ + j];
    for (let k = 0; k < j; k++) d -= a[rowJ + k] * a[rowJ + k];
    if (!(d > 0)) throw new NotPositiveDefiniteError(j, d);
    const ljj = Math.sqrt(d);
    a[rowJ + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const rowI = i * n;
      let s = a[rowI + j];
      for (let k = 0; k < j; k++) s -= a[rowI + k] * a[rowJ + k];
      a[rowI + j] = s / ljj;
    }
  }
}

/**
 * Solves L Lᵀ X = B for the m right-hand sides in `b` (n x m, row-major), in place, with L
 * from choleskyFactor.
 */
export function choleskySolveFactored(l: Float64Array, n: number, b: Float64Array, m: number): void {
  if (b.length < n * m) throw new RangeError(`choleskySolve: right-hand side needs ${n} x ${m} values, got ${b.length}`);
  // Forward: L Y = B
  for (let i = 0; i < n; i++) {
    const rowI = i * n;
    for (let k = 0; k < i; k++) {
      const lik = l[rowI + k];
      if (lik === 0) continue;
      for (let c = 0; c < m; c++) b[i * m + c] -= lik * b[k * m + c];
    }
    const d = l[rowI + i];
    for (let c = 0; c < m; c++) b[i * m + c] /= d;
  }
  // Backward: Lᵀ X = Y
  for (let i = n - 1; i >= 0; i--) {
    for (let k = i + 1; k < n; k++) {
      const lki = l[k * n + i];
      if (lki === 0) continue;
      for (let c = 0; c < m; c++) b[i * m + c] -= lki * b[k * m + c];
    }
    const d = l[i * n + i];
    for (let c = 0; c < m; c++) b[i * m + c] /= d;
  }
}

/**
 * Factors A + λI (λ on the first `ridged` diagonal entries only, default all), with
 * λ = r x their mean (1 where that is not positive), into a new array: A itself is left as it
 * was. r starts at `ridge` and rises tenfold (from 1e-8 when 0) while the sum is not positive
 * definite (dead channels, all-zero inputs on the calibration frames, make A singular),
 * up to r = 1; past that the NotPositiveDefiniteError is thrown.
 */
export function choleskyFactorRidged(a: Float64Array, n: number, ridge: number, ridged = n): { l: Float64Array; ridge: number; lambda: number } {
  let diag = 0;
  for (let i = 0; i < ridged; i++) diag += a[i * n + i];
  const scale = ridged > 0 && diag > 0 ? diag / ridged : 1;
  for (let r = ridge; ; r = r > 0 ? r * 10 : 1e-8) {
    const l = Float64Array.from(a.subarray(0, n * n));
    for (let i = 0; i < ridged; i++) l[i * n + i] += r * scale;
    try {
      choleskyFactor(l, n);
      return { l, ridge: r, lambda: r * scale };
    } catch (err) {
      if (err instanceof NotPositiveDefiniteError && r < 1) continue;
      throw err;
    }
  }
}

/** X with A X = B, A n x n symmetric positive definite, B n x m; both inputs untouched. */
export function choleskySolve(a: Float64Array, n: number, b: Float64Array, m: number): Float64Array {
  const l = Float64Array.from(a.subarray(0, n * n));
  choleskyFactor(l, n);
  const x = Float64Array.from(b.subarray(0, n * m));
  choleskySolveFactored(l, n, x, m);
  return x;
}
