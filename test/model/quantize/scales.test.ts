// The quantization arithmetic against hand computations: scales, rounding, saturation, and
// quantize -> dequantize staying within half a step of the value.
import { describe, expect, it } from "vitest";
import { floatTensor } from "../../../src/model/onnx/tensor.ts";
import {
  activationParams,
  dequantizeValue,
  fitWeightScalesToBias,
  quantizeBias,
  quantizeValue,
  quantizeWeights,
  roundHalfEven,
  weightScales,
} from "../../../src/model/quantize/scales.ts";
import { prng } from "../prune/graphs.ts";

describe("quantization arithmetic", () => {
  it("rounds half to even, as ONNX QuantizeLinear does", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2, 3]);
  });

  it("quantize -> dequantize of a known tensor is within half a step, for both activation types", () => {
    const r = prng(3);
    const values = Array.from({ length: 10_000 }, () => r() * 7 - 3); // [-3, 4)
    for (const scheme of ["int8", "uint8"] as const) {
      const p = activationParams({ min: -3, max: 4 }, scheme);
      if (scheme === "int8") {
        expect(p.zeroPoint).toBe(0);
        expect(p.scale).toBeCloseTo(4 / 127, 12);
      } else {
        expect(p.scale).toBeCloseTo(7 / 255, 12);
        expect(p.zeroPoint).toBe(roundHalfEven(3 / (7 / 255)));
      }
      for (const x of values) expect(Math.abs(dequantizeValue(quantizeValue(x, p), p) - x)).toBeLessThanOrEqual(p.scale / 2 + 1e-9);
      // values outside the range saturate
      expect(quantizeValue(1000, p)).toBe(p.qmax);
      expect(quantizeValue(-1000, p)).toBe(p.qmin);
    }
  });

  it("a range that never left zero gets a usable scale and represents zero exactly", () => {
    for (const scheme of ["int8", "uint8"] as const) {
      const p = activationParams({ min: 0, max: 0 }, scheme);
      expect(p.scale).toBeGreaterThan(0);
      expect(dequantizeValue(quantizeValue(0, p), p)).toBe(0);
    }
    expect(() => activationParams({ min: 1, max: -1 }, "int8")).toThrow(/not a finite interval/);
  });

  it("per-channel weight scales are max |w| / 127 of each output channel", () => {
    // [Cout=3, Cin=2, 1, 1]
    const w = floatTensor([3, 2, 1, 1], [0.5, -1.27, 2.54, 0.1, 0, 0]);
    const s = weightScales(w, true);
    expect(Array.from(s)).toEqual([Math.fround(1.27 / 127), Math.fround(2.54 / 127), 1]);
    expect(Array.from(weightScales(w, false))).toEqual([Math.fround(2.54 / 127)]);
    const q = quantizeWeights(w, s);
    expect(Array.from(q)).toEqual([50, -127, 127, 5, 0, 0]);
    // axis 1 (a MatMul weight [K, N]): one scale per column
    const m = floatTensor([2, 2], [1, -4, -2, 2]);
    expect(Array.from(weightScales(m, true, 1))).toEqual([Math.fround(2 / 127), Math.fround(4 / 127)]);
  });

  it("biases are int32 at input scale x weight scale; a bias too large for int32 widens its weight scale", () => {
    const b = quantizeBias(Float32Array.of(1, -0.5), 0.1, Float32Array.of(0.01, 0.02));
    expect(Array.from(b.values)).toEqual([1000, -250]);
    expect(b.scales[0]).toBeCloseTo(0.001, 9);
    expect(b.scales[1]).toBeCloseTo(0.002, 9);
    const huge = Float32Array.of(1e6);
    expect(() => quantizeBias(huge, 1e-6, Float32Array.of(1e-6))).toThrow(/does not fit int32/);
    const widened = fitWeightScalesToBias(Float32Array.of(1e-6), huge, 1e-6);
    expect(Math.abs(quantizeBias(huge, 1e-6, widened).values[0])).toBeLessThanOrEqual(2 ** 31 - 1);
  });
});
