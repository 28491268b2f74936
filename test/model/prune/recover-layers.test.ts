// --recover-layers all on a small graph in ONNX Runtime: a Conv whose input channels were
// all kept, but whose input is computed from pruned channels upstream, is refitted too, and
// it is fitted after, and from, the refitted consumers upstream of it.
import { describe, expect, it } from "vitest";
import type { ModelInputData } from "../../../src/infer/input-tensor.ts";
import { attr } from "../../../src/model/onnx/ir.ts";
import { forEachActivation } from "../../../src/model/prune/activations.ts";
import { downstreamConvs } from "../../../src/model/prune/recover-layers.ts";
import { recoverLeastSquares } from "../../../src/model/prune/recover.ts";
import { pruneStructured } from "../../../src/model/prune/structured.ts";
import { GraphBuilder, randomInput } from "./graphs.ts";

/** stem -> convA (8 -> 16, 3x3) -> convB (16 -> 8, 3x3) -> convC (8 -> 4, 1x1), LeakyRelu between. */
function chain(): GraphBuilder {
  const b = new GraphBuilder("downstream", [1, 3, 12, 12], 9);
  const act = (x: string, name: string): string => b.node("LeakyRelu", name, [x], { alpha: attr.float(0.1) });
  const s = act(b.conv("stem", "x", 3, 8, 3), "stem_act");
  const a = act(b.conv("convA", s, 8, 16, 3), "a_act");
  const c = act(b.conv("convB", a, 16, 8, 3), "b_act");
  b.conv("convC", c, 8, 4);
  b.output("convC", [1, 4, 12, 12]);
  return b;
}

const frames = (n: number, seed: number): ModelInputData[] => Array.from({ length: n }, (_, i) => ({ dtype: "float32", data: randomInput([1, 3, 12, 12], seed + i) }));

async function outputError(dense: GraphBuilder["g"], pruned: GraphBuilder["g"], input: readonly ModelInputData[]): Promise<number> {
  const ref: Float32Array[] = [];
  await forEachActivation(dense, ["convC"], input, (_, v) => ref.push(Float32Array.from(v.get("convC")!.data)));
  let num = 0;
  let den = 0;
  await forEachActivation(pruned, ["convC"], input, (f, v) => {
    v.get("convC")!.data.forEach((y, i) => {
      num += (ref[f][i] - y) ** 2;
      den += ref[f][i] ** 2;
    });
  });
  return num / den;
}

describe("recover layers", () => {
  it("all: the Convs whose inputs lost channels, and every Conv downstream of one", () => {
    const b = chain();
    // convA loses half its outputs; convB's 8 outputs stay (its group is not pruned)
    const r = pruneStructured(b.g, { ratios: { convA: 0.5 }, round: 1, minChannels: 1 });
    expect(r.changedConvs).toEqual(["convB"]);
    expect(downstreamConvs(r.graph, r.changedConvs)).toEqual(["convB", "convC"]);
    expect(downstreamConvs(r.graph, [])).toEqual([]);
  });

  it("refits the downstream Conv in a later wave, against the dense output, from the already refitted upstream", async () => {
    const b = chain();
    const r = pruneStructured(b.g, { ratios: { convA: 0.5 }, round: 1, minChannels: 1 });
    const calibration = frames(6, 100);
    const fit = (convNodes: string[]) =>
      recoverLeastSquares({ dense: b.g, pruned: r.graph, convNodes, outputChannels: r.keptOutputChannels, frames: calibration, samplesPerFrame: 144 });
    const consumers = await fit(r.changedConvs);
    const all = await fit(downstreamConvs(r.graph, r.changedConvs));
    expect(consumers.layers.map((l) => l.node)).toEqual(["convB"]);
    const [b1, c1] = all.layers;
    expect([b1.node, b1.wave, c1.node, c1.wave]).toEqual(["convB", 0, "convC", 1]);
    expect(c1.inputChannels).toEqual([8, 8]);
    // its input is what the refitted convB computes, not the dense one: something to fix
    expect(c1.relMseBefore).toBeGreaterThan(0.01);
    expect(c1.relMseBefore).toBeCloseTo(await outputError(b.g, consumers.graph, calibration), 1);
    expect(c1.relMseAfter).toBeLessThan(c1.relMseBefore);
    expect(await outputError(b.g, all.graph, calibration)).toBeLessThan(await outputError(b.g, consumers.graph, calibration));
  });
});
