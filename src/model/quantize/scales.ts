// The arithmetic of INT8 quantization, as ONNX's QuantizeLinear / DequantizeLinear define it:
//   q = saturate(round(x / scale) + zero_point)      (round half to even)
//   x' = (q - zero_point) * scale
// Weights are symmetric int8 in [-127, 127] (zero point 0, TensorRT's restricted range, so
// that -w quantizes to -q), one scale per output channel; activations are symmetric int8 by
// default (TensorRT needs a zero point of 0) or asymmetric uint8, which ONNX Runtime's CPU
// kernels may run faster (u8 x s8 is what x86 VNNI multiplies natively).
import type { Tensor } from "../onnx/tensor.ts";

export const ACTIVATION_SCHEMES = ["int8", "uint8"] as const;
/** int8: symmetric, zero point 0; uint8: asymmetric, zero point from the range. */
export type ActivationScheme = (typeof ACTIVATION_SCHEMES)[number];

export interface QuantParams {
  scale: number;
  zeroPoint: number;
  qmin: number;
  qmax: number;
}

/** A calibrated range of one tensor (min <= 0 <= max is not assumed; params widen to hold 0). */
export interface Range {
  min: number;
  max: number;
}

const INT8_SYMMETRIC_MAX = 127;
/**
 * Weights in [-63, 63] (7 bits) instead of [-127, 127]: x86 CPUs without VNNI multiply u8 x s8
 * with vpmaddubsw, which adds each pair of products in 16 bits and saturates (255 x 127 x 2 >
 * 32767); with 7-bit weights a pair stays below 32767. Measured: on an AVX2-only CPU a small
 * quantized graph's outputs were 20 % off with 8-bit weights and within 5 % with 7-bit ones.
 */
export const REDUCED_WEIGHT_MAX = 63;
const INT32_MAX = 2 ** 31 - 1;

/** ONNX rounds half to even (numpy's rint); Math.round would round half up. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Scale and zero point of an activation with this range. A range of zero width (a tensor that
 * was always 0 on the calibration frames) gets scale 1: any scale represents 0 exactly.
 */
export function activationParams(range: Range, scheme: ActivationScheme): QuantParams {
  if (!Number.isFinite(range.min) || !Number.isFinite(range.max) || range.min > range.max) {
    throw new RangeError(`activation range [${range.min}, ${range.max}] is not a finite interval`);
  }
  if (scheme === "int8") {
    const t = Math.max(Math.abs(range.min), Math.abs(range.max));
    return { scale: t > 0 ? t / INT8_SYMMETRIC_MAX : 1, zeroPoint: 0, qmin: -128, qmax: 127 };
  }
  const lo = Math.min(range.min, 0);
  const hi = Math.max(range.max, 0);
  if (hi - lo <= 0) return { scale: 1, zeroPoint: 0, qmin: 0, qmax: 255 };
  const scale = (hi - lo) / 255;
  const zeroPoint = Math.min(255, Math.max(0, roundHalfEven(-lo / scale)));
  return { scale, zeroPoint, qmin: 0, qmax: 255 };
}

export function quantizeValue(x: number, p: QuantParams): number {
  return Math.min(p.qmax, Math.max(p.qmin, roundHalfEven(x / p.scale) + p.zeroPoint));
}

export function dequantizeValue(q: number, p: QuantParams): number {
  return (q - p.zeroPoint) * p.scale;
}

/** Output channels of a Conv weight [Cout, Cin/group, kH, kW] (or a Gemm/MatMul weight on `axis`). */
function channelsOf(w: Tensor, axis: number): { count: number; stride: number; block: number } {
  if (axis < 0 || axis >= w.dims.length) throw new RangeError(`axis ${axis} is not an axis of a weight with dims [${w.dims.join(", ")}]`);
  const count = w.dims[axis];
  const stride = w.dims.slice(axis + 1).reduce((p, d) => p * d, 1);
  const block = w.dims.slice(0, axis).reduce((p, d) => p * d, 1);
  return { count, stride, block };
}

/**
 * Symmetric weight scales: max |w| / 127 per channel on `axis` (per-channel), or one for the
 * whole tensor. A channel of zeros gets the floor so that the bias scale stays positive.
 */
export function weightScales(w: Tensor, perChannel: boolean, axis = 0, qmax = INT8_SYMMETRIC_MAX): Float32Array {
  if (w.dtype !== "float32") throw new TypeError(`weights must be float32 to quantize, got ${w.dtype}`);
  const data = w.data as Float32Array;
  const { count, stride, block } = channelsOf(w, axis);
  const maxAbs = new Float64Array(count);
  for (let b = 0; b < block; b++)
    for (let c = 0; c < count; c++) {
      const base = (b * count + c) * stride;
      for (let k = 0; k < stride; k++) maxAbs[c] = Math.max(maxAbs[c], Math.abs(data[base + k]));
    }
  if (!perChannel) {
    const all = Math.max(0, ...maxAbs);
    return Float32Array.of(all > 0 ? all / qmax : 1);
  }
  return Float32Array.from(maxAbs, (m) => (m > 0 ? m / qmax : 1));
}

/** int8 weights for these scales (one scale, or one per channel on `axis`), within [-qmax, qmax]. */
export function quantizeWeights(w: Tensor, scales: Float32Array, axis = 0, qmax = INT8_SYMMETRIC_MAX): Int8Array {
  const data = w.data as Float32Array;
  const { count, stride, block } = channelsOf(w, axis);
  if (scales.length !== 1 && scales.length !== count) throw new RangeError(`${scales.length} weight scales for ${count} channels`);
  const out = new Int8Array(data.length);
  for (let b = 0; b < block; b++)
    for (let c = 0; c < count; c++) {
      const s = scales.length === 1 ? scales[0] : scales[c];
      const base = (b * count + c) * stride;
      for (let k = 0; k < stride; k++) {
        out[base + k] = Math.min(qmax, Math.max(-qmax, roundHalfEven(data[base + k] / s)));
      }
    }
  return out;
}

/**
 * Weight scales raised where a bias would not fit int32 at inputScale x weightScale (a channel
 * of zero weights, scale floor 1, with a bias, on a tiny input scale). ONNX Runtime's fused
 * QLinearConv takes the int32 bias as it is, so the bias scale must be exactly that product;
 * the weight scale is what may move.
 */
export function fitWeightScalesToBias(wScales: Float32Array, bias: Float32Array, inputScale: number): Float32Array {
  const out = Float32Array.from(wScales);
  for (let c = 0; c < bias.length; c++) {
    const k = out.length === 1 ? 0 : c;
    // half the int32 range: margin for float32 rounding of the scales
    const need = Math.abs(bias[c]) / (inputScale * 2 ** 30);
    if (out[k] < need) out[k] = need;
  }
  return out;
}

/** The bias as int32 with scale inputScale x weightScale[c] (what QLinearConv accumulates in), and those scales. */
export function quantizeBias(bias: Float32Array, inputScale: number, wScales: Float32Array): { values: Int32Array; scales: Float32Array } {
  const scales = Float32Array.from(bias, (_, c) => inputScale * (wScales.length === 1 ? wScales[0] : wScales[c]));
  const values = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const q = roundHalfEven(bias[c] / scales[c]);
    if (Math.abs(q) > INT32_MAX) throw new RangeError(`bias ${bias[c]} of channel ${c} does not fit int32 at scale ${scales[c]}; fit the weight scales first`);
    values[c] = q;
  }
  return { values, scales };
}
