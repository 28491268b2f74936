// QDQ insertion on small graphs built here: the result passes the ONNX checker, runs in ONNX
// Runtime close to the float graph, keeps the head's last conv, the stem and excluded layers
// in float, and bad input (nothing to quantize, no calibration frames, an unknown method)
// is a clear error.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelInputData } from "../../../src/infer/input-tensor.ts";
import { checkOnnx } from "../../../src/model/onnx-checker.ts";
import { attr, producers, type OnnxGraph } from "../../../src/model/onnx/ir.ts";
import { encodeModel } from "../../../src/model/onnx/serialize.ts";
import { inferShapes } from "../../../src/model/onnx/shape-inference.ts";
import { quantizeGraph, type QuantizeOptions } from "../../../src/model/quantize/quantize.ts";
import { int8Features } from "../../../src/util/machine-info.ts";
import { GraphBuilder, maxRelDiff, randomInput, runOrt } from "../prune/graphs.ts";

// x86 without an int8 dot product saturates u8 x s8 pair sums with 8-bit weights
// (src/model/quantize/scales.ts, REDUCED_WEIGHT_MAX): there the closeness check runs on 7-bit weights.
const REDUCE_RANGE = process.arch === "x64" && !int8Features().int8DotProduct;

const INPUT = [1, 3, 12, 12];

/** stem conv -> LeakyRelu -> conv -> LeakyRelu -> (conv + residual Add) -> head conv -> Sigmoid -> output */
function detectorLike(): OnnxGraph {
  const b = new GraphBuilder("detector-like", INPUT, 5);
  let x = b.conv("stem", "x", 3, 8, 3);
  x = b.node("LeakyRelu", "stem/act", [x], { alpha: attr.float(0.1) });
  let y = b.conv("body1", x, 8, 8, 3);
  y = b.node("LeakyRelu", "body1/act", [y], { alpha: attr.float(0.1) });
  const z = b.conv("body2", y, 8, 8, 1);
  const s = b.node("Add", "residual", [z, y]);
  const h = b.conv("head", s, 8, 4, 1);
  b.node("Sigmoid", "scores", [h]);
  b.output("scores", [1, 4, 12, 12]);
  return b.g;
}

function frames(n: number): ModelInputData[] {
  return Array.from({ length: n }, (_, i) => ({ dtype: "float32" as const, data: randomInput(INPUT, 100 + i) }));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-qdq-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function checked(g: OnnxGraph, file: string): Promise<void> {
  const path = join(dir, file);
  await writeFile(path, encodeModel(g));
  const [r] = await checkOnnx([path]);
  expect(r.ok ? "ok" : r.error).toBe("ok");
}

/** The op that produces input `k` of node `name` in the quantized graph. */
function feederOf(g: OnnxGraph, name: string, k: number): string | undefined {
  const n = g.nodes.find((x) => x.name === name)!;
  return producers(g).get(n.inputs[k])?.opType;
}

describe("QDQ insertion", () => {
  const base: QuantizeOptions = { method: "minmax" };

  for (const scheme of ["int8", "uint8"] as const) {
    it(`${scheme} activations: passes the checker, runs in ONNX Runtime close to the float graph, keeps shapes and types`, async () => {
      const g = detectorLike();
      const r = await quantizeGraph(g, frames(8), { ...base, scheme, reduceRange: REDUCE_RANGE });
      await checked(r.graph, `detector-${scheme}.onnx`);
      expect(r.plan.weighted).toEqual(["body1", "body2"]);
      expect(r.plan.chain).toEqual(["body1/act", "residual"]);
      // every Conv weight quantized is an int8 constant behind a per-channel DequantizeLinear
      for (const name of r.plan.weighted) {
        const n = r.graph.nodes.find((x) => x.name === name)!;
        const dq = producers(r.graph).get(n.inputs[1])!;
        expect(dq.opType).toBe("DequantizeLinear");
        expect(r.graph.initializers.get(dq.inputs[0])!.dtype).toBe("int8");
        expect(r.graph.initializers.get(dq.inputs[1])!.dims).toEqual([8]);
        expect(r.graph.initializers.get(producers(r.graph).get(n.inputs[2])!.inputs[0])!.dtype).toBe("int32");
        expect(feederOf(r.graph, name, 0)).toBe("DequantizeLinear");
      }
      const zp = r.graph.initializers.get(r.graph.nodes.find((n) => n.opType === "QuantizeLinear")!.inputs[2])!;
      expect(zp.dtype).toBe(scheme);
      // shapes and types: the graph output is still float [1, 4, 12, 12]
      const shapes = inferShapes(r.graph);
      expect(shapes.get("scores")).toEqual({ dims: [1, 4, 12, 12], dtype: "float32" });
      const input = randomInput(INPUT, 100);
      const [f, q] = [await runOrt(g, input), await runOrt(r.graph, input)];
      expect(maxRelDiff(f.scores.data, q.scores.data), `ONNX Runtime's int8 output vs float (${int8Features().summary}; 7-bit weights: ${REDUCE_RANGE})`).toBeLessThan(0.05);
      expect(maxRelDiff(f.scores.data, q.scores.data)).toBeGreaterThan(0); // it did quantize
    });
  }

  it("reduceRange keeps every quantized weight within [-63, 63], at max |w| / 63 per channel", async () => {
    const g = detectorLike();
    const [full, reduced] = [await quantizeGraph(g, frames(4), base), await quantizeGraph(g, frames(4), { ...base, reduceRange: true })];
    for (const [r, qmax] of [[full, 127], [reduced, 63]] as const) {
      for (const name of r.plan.weighted) {
        const n = r.graph.nodes.find((x) => x.name === name)!;
        const dq = producers(r.graph).get(n.inputs[1])!;
        const q = r.graph.initializers.get(dq.inputs[0])!.data as Int8Array;
        const scales = r.graph.initializers.get(dq.inputs[1])!.data as Float32Array;
        const w = g.initializers.get(g.nodes.find((x) => x.name === name)!.inputs[1])!;
        const perChannel = (w.data as Float32Array).length / scales.length;
        expect(Math.max(...Array.from(q, Math.abs)), `${name}: largest |q| with weights up to ${qmax}`).toBe(qmax);
        scales.forEach((sc, c) => {
          const maxAbs = Math.max(...Array.from((w.data as Float32Array).subarray(c * perChannel, (c + 1) * perChannel), Math.abs));
          expect(sc, `${name} channel ${c}: scale`).toBeCloseTo(maxAbs / qmax, 6);
        });
      }
    }
  });

  it("the head's last conv, what follows it and the stem stay float; excluded layers too", async () => {
    const g = detectorLike();
    const r = await quantizeGraph(g, frames(4), { ...base, exclude: ["body2"] });
    expect(r.plan.kept).toEqual([
      { node: "stem", opType: "Conv", reason: "stem" },
      { node: "body2", opType: "Conv", reason: "excluded" },
      { node: "head", opType: "Conv", reason: "head tail" },
    ]);
    expect(r.plan.weighted).toEqual(["body1"]);
    for (const name of ["stem", "body2", "head"]) {
      const n = r.graph.nodes.find((x) => x.name === name)!;
      expect(r.graph.initializers.get(n.inputs[1])!.dtype).toBe("float32");
      expect(r.graph.initializers.get(n.inputs[2])!.dtype).toBe("float32");
    }
    // the stem reads the graph input itself, the head conv its float input, the Sigmoid the head's float output
    expect(r.graph.nodes.find((x) => x.name === "stem")!.inputs[0]).toBe("x");
    expect(feederOf(r.graph, "scores", 0)).toBe("Conv");
    await checked(r.graph, "excluded.onnx");

    const withStem = await quantizeGraph(g, frames(4), { ...base, quantizeStem: true, exclude: ["body.*"] });
    expect(withStem.plan.weighted).toEqual(["stem"]);
    await checked(withStem.graph, "stem.onnx");
  });

  it("per-tensor weight scales when asked", async () => {
    const r = await quantizeGraph(detectorLike(), frames(2), { ...base, perChannel: false });
    const n = r.graph.nodes.find((x) => x.name === "body1")!;
    const dq = producers(r.graph).get(n.inputs[1])!;
    expect(r.graph.initializers.get(dq.inputs[1])!.dims).toEqual([]);
    await checked(r.graph, "per-tensor.onnx");
  });

  it("percentile and entropy calibration quantize the same graph, with ranges no wider than minmax", async () => {
    const g = detectorLike();
    const mm = await quantizeGraph(g, frames(4), base);
    for (const method of ["percentile", "entropy"] as const) {
      const r = await quantizeGraph(g, frames(4), { method, percentile: 99 });
      const extent = (x: { min: number; max: number }): number => Math.max(-x.min, x.max);
      for (const [t, range] of r.ranges) expect(extent(range)).toBeLessThanOrEqual(extent(mm.ranges.get(t)!) + 1e-6);
      await checked(r.graph, `${method}.onnx`);
    }
  });

  it("bad input: no quantizable op, an empty calibration set, an unknown method", async () => {
    const b = new GraphBuilder("no-conv", INPUT);
    b.node("Sigmoid", "y", ["x"]);
    b.output("y", INPUT);
    await expect(quantizeGraph(b.g, frames(1), base)).rejects.toThrow(`graph "no-conv": nothing to quantize: it has no Conv, Gemm or MatMul with a constant weight`);
    const onlyHead = new GraphBuilder("only-head", INPUT);
    onlyHead.conv("c", "x", 3, 2);
    onlyHead.output("c", [1, 2, 12, 12]);
    await expect(quantizeGraph(onlyHead.g, frames(1), base)).rejects.toThrow(/nothing to quantize: every one is kept float \(c: head tail\)/);
    await expect(quantizeGraph(detectorLike(), [], base)).rejects.toThrow(`graph "detector-like": the calibration set is empty; quantization needs calibration frames`);
    await expect(quantizeGraph(detectorLike(), frames(1), { method: "kl" as never })).rejects.toThrow(/unknown calibration method "kl"; expected one of minmax, percentile, entropy/);
    await expect(quantizeGraph(detectorLike(), frames(1), { ...base, scheme: "int4" as never })).rejects.toThrow(/unknown activation type "int4"/);
  });
});
