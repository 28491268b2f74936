// Constant tensors as the model tools hold them: a dtype, static dims and a typed array.
// int64 data is kept in a BigInt64Array so ONNX initializers round-trip exactly.

export type DType = "float32" | "float16" | "int32" | "int64" | "uint8" | "int8" | "bool";

export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;

export interface Tensor {
  dtype: DType;
  dims: number[];
  data: TensorData;
}

export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function floatTensor(dims: number[], data?: ArrayLike<number>): Tensor {
  const arr = new Float32Array(sizeOf(dims));
  if (data) arr.set(data);
  return { dtype: "float32", dims: [...dims], data: arr };
}

export function int64Tensor(dims: number[], values: ArrayLike<number>): Tensor {
  const arr = new BigInt64Array(sizeOf(dims));
  for (let i = 0; i < arr.length; i++) arr[i] = BigInt(Math.trunc(values[i]));
  return { dtype: "int64", dims: [...dims], data: arr };
}

export function int32Tensor(dims: number[], values: ArrayLike<number>): Tensor {
  const arr = new Int32Array(sizeOf(dims));
  arr.set(Array.from(values, (v) => Math.trunc(v)));
  return { dtype: "int32", dims: [...dims], data: arr };
}

/** The tensor's values as plain numbers (int64 narrowed; fine for shapes and indices). */
export function toNumbers(t: Tensor): number[] {
  if (t.data instanceof BigInt64Array) return Array.from(t.data, (v) => Number(v));
  if (t.dtype === "float16") return Array.from(t.data as Uint16Array, halfToFloat);
  return Array.from(t.data as ArrayLike<number>);
}

/** A tensor of the same dtype from numbers (values are truncated for integer types). */
export function fromNumbers(dtype: DType, dims: number[], values: ArrayLike<number>): Tensor {
  switch (dtype) {
    case "float32":
      return floatTensor(dims, values);
    case "int64":
      return int64Tensor(dims, values);
    case "int32":
      return int32Tensor(dims, values);
    case "uint8":
    case "bool": {
      const arr = new Uint8Array(sizeOf(dims));
      for (let i = 0; i < arr.length; i++) arr[i] = values[i];
      return { dtype, dims: [...dims], data: arr };
    }
    case "int8":
      return { dtype, dims: [...dims], data: Int8Array.from({ length: sizeOf(dims) }, (_, i) => values[i]) };
    case "float16":
      throw new TypeError("float16 tensors are created from raw half bits, not numbers");
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half (as its 16 bits) to a JS number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  u32[0] = ((h & 0x8000) << 16) | ((exp - 15 + 127) << 23) | (frac << 13);
  return f32[0];
}

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case "float32":
    case "int32":
      return 4;
    case "int64":
      return 8;
    case "float16":
      return 2;
    case "uint8":
    case "int8":
    case "bool":
      return 1;
  }
}

export function shapeString(dims: readonly number[]): string {
  return `[${dims.join(",")}]`;
}

/** Transposes a dense tensor: output axis i is input axis perm[i]. */
export function transposeTensor(t: Tensor, perm: readonly number[]): Tensor {
  const rank = t.dims.length;
  if (perm.length !== rank) throw new RangeError(`perm ${shapeString(perm)} does not fit rank ${rank}`);
  const outDims = perm.map((p) => t.dims[p]);
  const inStrides = stridesOf(t.dims);
  const n = sizeOf(t.dims);
  const Ctor = t.data.constructor as new (n: number) => TensorData;
  const out = new Ctor(n);
  const idx = new Array<number>(rank).fill(0);
  const permStrides = perm.map((p) => inStrides[p]);
  const src = t.data as unknown as ArrayLike<number | bigint>;
  const dst = out as unknown as (number | bigint)[];
  for (let o = 0; o < n; o++) {
    let off = 0;
    for (let a = 0; a < rank; a++) off += idx[a] * permStrides[a];
    dst[o] = src[off];
    for (let a = rank - 1; a >= 0; a--) {
      if (++idx[a] < outDims[a]) break;
      idx[a] = 0;
    }
  }
  return { dtype: t.dtype, dims: outDims, data: out };
}

export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}
