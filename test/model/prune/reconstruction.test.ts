// Reconstruction-aware channel selection on small graphs run in ONNX Runtime: covariances
// agree with the maps ORT returns, and a channel that another one duplicates goes first
// even though magnitude ranks it on top, because the consumer can take it from its twin.
import { describe, expect, it } from "vitest";
import type { ModelInputData } from "../../../src/infer/input-tensor.ts";
import { forEachActivation } from "../../../src/model/prune/activations.ts";
import { channelCovariances } from "../../../src/model/prune/reconstruction.ts";
import { pruneStructured } from "../../../src/model/prune/structured.ts";
import { GraphBuilder, randomInput } from "./graphs.ts";

const frames = (dims: number[], n: number): ModelInputData[] => Array.from({ length: n }, (_, i) => ({ dtype: "float32", data: randomInput(dims, 11 + i) }));

/** stem (3 -> 8, 3x3) -> ReLU -> convA (8 -> 8, 1x1) -> ReLU -> convB (8 -> 4, 3x3) */
function chain(): GraphBuilder {
  const b = new GraphBuilder("twins", [1, 3, 8, 8], 5);
  b.conv("stem", "x", 3, 8, 3);
  const s = b.node("Relu", "stem_act", ["stem"]);
  b.conv("convA", s, 8, 8);
  const a = b.node("Relu", "a_act", ["convA"]);
  b.conv("convB", a, 8, 4, 3);
  b.output("convB", [1, 4, 8, 8]);
  return b;
}

describe("channelCovariances", () => {
  it("is the centred covariance of the channels over every position of a small map", async () => {
    const b = chain();
    const input = frames([1, 3, 8, 8], 2);
    const cov = (await channelCovariances(b.g, ["a_act"], input)).get("a_act")!;
    expect(cov.channels).toBe(8);
    const maps: Float32Array[] = [];
    await forEachActivation(b.g, ["a_act"], input, (_, v) => maps.push(Float32Array.from(v.get("a_act")!.data)));
    const n = 2 * 64;
    const mean = (c: number): number => maps.reduce((s, m) => s + m.subarray(c * 64, (c + 1) * 64).reduce((t, x) => t + x, 0), 0) / n;
    for (const [i, j] of [[0, 0], [1, 3], [7, 2]]) {
      let xy = 0;
      for (const m of maps) for (let p = 0; p < 64; p++) xy += m[i * 64 + p] * m[j * 64 + p];
      expect(cov.cov[i * 8 + j]).toBeCloseTo(xy / n - mean(i) * mean(j), 6);
      expect(cov.cov[j * 8 + i]).toBe(cov.cov[i * 8 + j]);
    }
  });
});

describe("reconstruction importance", () => {
  it("removes one of two identical channels first, where L1 keeps both", async () => {
    const b = chain();
    // convA channels 2 and 6: the same filter and bias, twice as large as the rest, so L1 ranks them highest
    const w = b.g.initializers.get("convA/w")!.data as Float32Array;
    const bias = b.g.initializers.get("convA/b")!.data as Float32Array;
    for (let i = 0; i < 8; i++) w[6 * 8 + i] = w[2 * 8 + i] = 0.5 + 0.1 * i;
    bias[6] = bias[2] = 0.2;
    const covariances = await channelCovariances(b.g, ["a_act", "stem_act"], frames([1, 3, 8, 8], 4));
    const keptA = (importance: "l1" | "reconstruction", ratio: number): number[] =>
      pruneStructured(b.g, { importance, covariances, ratios: { convA: ratio }, round: 1, minChannels: 1 }).keptOutputChannels.get("convA")!;

    expect(keptA("l1", 0.125)).toEqual(expect.arrayContaining([2, 6]));
    const one = keptA("reconstruction", 0.125);
    expect(one).toHaveLength(7);
    expect(one.includes(2) && one.includes(6)).toBe(false);
    // the twin that stays carries the signal: removing it too would cost the most
    const half = keptA("reconstruction", 0.5);
    expect(half).toHaveLength(4);
    expect(half.includes(2) || half.includes(6)).toBe(true);
  });

  it("needs covariances, and names a tensor it has none for", async () => {
    const b = chain();
    expect(() => pruneStructured(b.g, { importance: "reconstruction", ratio: 0.5 })).toThrow(/needs channel covariances from calibration frames/);
    const partial = await channelCovariances(b.g, ["stem_act"], frames([1, 3, 8, 8], 1));
    expect(() => pruneStructured(b.g, { importance: "reconstruction", covariances: partial, ratio: 0.5, round: 1, minChannels: 1 })).toThrow(
      /no covariance of tensor a_act \(input of convB\)/,
    );
  });
});
