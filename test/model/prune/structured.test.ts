// Structured pruning on small graphs built here, one per kind of channel coupling. In each,
// the channels meant to go are made worthless (zero filters and biases, zero consumer weights),
// so their group importance is zero and they go first; the pruned graph must then compute
// exactly what the dense one computes, in ONNX Runtime.
import { describe, expect, it } from "vitest";
import { attr } from "../../../src/model/onnx/ir.ts";
import { inferShapes } from "../../../src/model/onnx/shape-inference.ts";
import { floatTensor, int64Tensor, toNumbers } from "../../../src/model/onnx/tensor.ts";
import { buildDependencyGraph } from "../../../src/model/prune/dependency-graph.ts";
import { keptChannels, pruneStructured, type StructuredResult } from "../../../src/model/prune/structured.ts";
import { GraphBuilder, maxRelDiff, randomInput, runOrt } from "./graphs.ts";

const exact = { round: 1, minChannels: 1, importance: "l1" as const };

/** A 3 -> 8 stem (protected by default) followed by ReLU; returns the stem's activation. */
function stem(b: GraphBuilder): string {
  b.conv("stem", "x", 3, 8, 3);
  return b.node("Relu", "stem_act", ["stem"]);
}

async function expectSameOutputs(b: GraphBuilder, r: StructuredResult): Promise<void> {
  const x = randomInput(b.g.inputs[0].dims);
  const dense = await runOrt(b.g, x);
  const pruned = await runOrt(r.graph, x);
  for (const o of b.g.outputs) {
    expect(pruned[o.name].dims).toEqual(dense[o.name].dims);
    expect(maxRelDiff(dense[o.name].data, pruned[o.name].data)).toBeLessThan(1e-5);
  }
}

function layer(r: StructuredResult, node: string): { in: number; out: number } {
  const l = r.layers.find((x) => x.node === node)!;
  return { in: l.inAfter, out: l.outAfter };
}

describe("pruneStructured on coupled channels", () => {
  it("residual Add: both addends lose the same channels, and so does the consumer", async () => {
    const b = new GraphBuilder("residual", [1, 3, 8, 8]);
    const s = stem(b);
    b.conv("convA", s, 8, 8, 3);
    const a = b.node("Relu", "a_act", ["convA"]);
    b.conv("convB", a, 8, 8);
    b.node("Add", "res", [a, "convB"]);
    b.conv("convC", "res", 8, 4);
    b.output("convC", [1, 4, 8, 8]);
    for (const c of ["convA", "convB"]) b.zeroOut(c, [2, 5]);
    for (const c of ["convB", "convC"]) b.zeroIn(c, [2, 5]);

    const dep = buildDependencyGraph(b.g);
    const grp = dep.groups.find((g) => g.producers.includes("convA"))!;
    expect(grp.producers).toEqual(["convA", "convB"]);
    expect(grp.size).toBe(8);

    const r = pruneStructured(b.g, { ...exact, ratios: { convA: 0.25 } });
    expect(layer(r, "convA")).toEqual({ in: 8, out: 6 });
    expect(layer(r, "convB")).toEqual({ in: 6, out: 6 });
    expect(layer(r, "convC")).toEqual({ in: 6, out: 4 });
    expect(r.changedConvs.sort()).toEqual(["convB", "convC"]);
    expect(r.keptOutputChannels.get("convA")).toEqual([0, 1, 3, 4, 6, 7]);
    await expectSameOutputs(b, r);

    // the comparison has teeth: removing live channels as well changes the outputs
    const deeper = pruneStructured(b.g, { ...exact, ratios: { convA: 0.5 } });
    const x = randomInput(b.g.inputs[0].dims);
    const [d, p] = [await runOrt(b.g, x), await runOrt(deeper.graph, x)];
    expect(maxRelDiff(d.convC.data, p.convC.data)).toBeGreaterThan(1e-3);
  });

  it("Concat: each input is its own group, and the consumer loses channels at each input's offset", async () => {
    const b = new GraphBuilder("concat", [1, 3, 8, 8]);
    const s = stem(b);
    b.conv("convA", s, 8, 8, 3);
    const a = b.node("Relu", "a_act", ["convA"]);
    b.conv("convB", s, 8, 8);
    const c = b.node("LeakyRelu", "b_act", ["convB"], { alpha: attr.float(0.1) });
    b.node("Concat", "cat", [a, c], { axis: attr.int(1) });
    b.conv("convC", "cat", 16, 4, 3);
    b.output("convC", [1, 4, 8, 8]);
    b.zeroOut("convA", [1, 3]);
    b.zeroOut("convB", [6]);
    b.zeroIn("convC", [1, 3, 8 + 6]);

    const r = pruneStructured(b.g, { ...exact, ratios: { convA: 0.25, convB: 0.125 } });
    expect(layer(r, "convA").out).toBe(6);
    expect(layer(r, "convB").out).toBe(7);
    expect(layer(r, "convC").in).toBe(13);
    await expectSameOutputs(b, r);
  });

  it("Split and Slice on the channel axis: sizes and bounds are rewritten", async () => {
    const b = new GraphBuilder("split", [1, 3, 8, 8]);
    const s = stem(b);
    b.conv("convA", s, 8, 16);
    const a = b.node("Relu", "a_act", ["convA"]);
    b.node("Split", "sp", [a, b.splitSizes("sp/sizes", [8, 8])], { axis: attr.int(1) }, ["s0", "s1"]);
    b.conv("convB", "s0", 8, 4);
    b.conv("convC", "s1", 8, 4);
    const sl = b.node("Slice", "sl", [a, b.const("sl/starts", int64Tensor([1], [4])), b.const("sl/ends", int64Tensor([1], [12])), b.const("sl/axes", int64Tensor([1], [1]))]);
    b.conv("convD", sl, 8, 4);
    for (const o of ["convB", "convC", "convD"]) b.output(o, [1, 4, 8, 8]);
    b.zeroOut("convA", [2, 11]);
    b.zeroIn("convB", [2]);
    b.zeroIn("convC", [11 - 8]);
    b.zeroIn("convD", [11 - 4]);

    const r = pruneStructured(b.g, { ...exact, ratios: { convA: 0.125 } });
    expect(layer(r, "convA").out).toBe(14);
    expect([layer(r, "convB").in, layer(r, "convC").in, layer(r, "convD").in]).toEqual([7, 7, 7]);
    const split = r.graph.nodes.find((n) => n.name === "sp")!;
    expect(toNumbers(r.graph.initializers.get(split.inputs[1])!)).toEqual([7, 7]);
    const slice = r.graph.nodes.find((n) => n.name === "sl")!;
    expect([toNumbers(r.graph.initializers.get(slice.inputs[1])!), toNumbers(r.graph.initializers.get(slice.inputs[2])!)]).toEqual([[3], [10]]);
    await expectSameOutputs(b, r);
  });

  it("depthwise Conv: input and output channels go together and `group` is rewritten", async () => {
    const b = new GraphBuilder("depthwise", [1, 3, 8, 8]);
    const s = stem(b);
    b.conv("convA", s, 8, 16);
    const a = b.node("Relu", "a_act", ["convA"]);
    b.conv("dw", a, 16, 16, 3, 16);
    const d = b.node("Clip", "dw_act", ["dw", b.const("zero", floatTensor([], [0])), b.const("six", floatTensor([], [6]))]);
    b.conv("convB", d, 16, 4);
    b.output("convB", [1, 4, 8, 8]);
    b.zeroOut("convA", [4, 9]);
    b.zeroOut("dw", [4, 9]);
    b.zeroIn("convB", [4, 9]);

    const dep = buildDependencyGraph(b.g);
    expect(dep.groups.find((g) => g.producers.includes("convA"))!.depthwise).toEqual(["dw"]);
    const r = pruneStructured(b.g, { ...exact, ratios: { convA: 0.125 } });
    const dw = r.graph.nodes.find((n) => n.name === "dw")!;
    expect(dw.attrs.group).toEqual(attr.int(14));
    expect(layer(r, "dw")).toEqual({ in: 14, out: 14 });
    expect(layer(r, "convB").in).toBe(14);
    expect(r.changedConvs).toEqual(["convB"]);
    await expectSameOutputs(b, r);
  });

  it("broadcast Mul (squeeze-excite): the gate's producer joins the group; per-channel constants are sliced", async () => {
    const b = new GraphBuilder("se", [1, 3, 8, 8]);
    const s = stem(b);
    b.conv("convA", s, 8, 16, 3);
    const t = b.node("Relu", "t", ["convA"]);
    const p = b.node("GlobalAveragePool", "gap", [t]);
    b.conv("se1", p, 16, 4);
    const r1 = b.node("Relu", "se1_act", ["se1"]);
    b.conv("se2", r1, 4, 16);
    const e = b.node("Sigmoid", "gate", ["se2"]);
    const m = b.node("Mul", "scale", [t, e]);
    const m2 = b.node("Add", "shift", [m, b.const("shift/c", floatTensor([16, 1, 1], Array.from({ length: 16 }, (_, i) => i / 10)))]);
    b.conv("convB", m2, 16, 4);
    b.output("convB", [1, 4, 8, 8]);
    b.zeroOut("convA", [3, 10]);
    b.zeroOut("se2", [3, 10]);
    b.zeroIn("se1", [3, 10]);
    b.zeroIn("convB", [3, 10]);

    const dep = buildDependencyGraph(b.g);
    const grp = dep.groups.find((g) => g.producers.includes("convA"))!;
    expect(grp.producers.sort()).toEqual(["convA", "se2"]);
    expect(grp.consumers.sort()).toEqual(["convB", "se1"]);
    const r = pruneStructured(b.g, { ...exact, ratios: { convA: 0.125 } });
    expect(layer(r, "convA").out).toBe(14);
    expect(layer(r, "se2").out).toBe(14);
    expect(layer(r, "se1").in).toBe(14);
    expect(r.graph.initializers.get(r.graph.nodes.find((n) => n.name === "shift")!.inputs[1])!.dims).toEqual([14, 1, 1]);
    await expectSameOutputs(b, r);
  });

  it("an op it does not understand leaves the channels it touches whole and is listed with the reason", async () => {
    const b = new GraphBuilder("unknown", [1, 3, 8, 8]);
    const s = stem(b);
    b.conv("convA", s, 8, 8, 3);
    b.node("Transpose", "to_nhwc", ["convA"], { perm: attr.ints([0, 2, 3, 1]) });
    b.node("Transpose", "to_nchw", ["to_nhwc"], { perm: attr.ints([0, 3, 1, 2]) });
    b.conv("convB", "to_nchw", 8, 8);
    const r1 = b.node("Relu", "b_act", ["convB"]);
    b.conv("convC", r1, 8, 4);
    b.output("convC", [1, 4, 8, 8]);

    const r = pruneStructured(b.g, { ratio: 0.5 });
    const byName = new Map(r.groups.map((g) => [g.name, g]));
    expect(byName.get("convA")!.prunable).toBe(false);
    expect(byName.get("convA")!.after).toBe(8);
    expect(byName.get("stem")!.prunable).toBe(false);
    // a Conv after the untouched ops starts a new chain: prunable, not a protected stem (8 is the floor)
    expect(byName.get("convB")!.prunable).toBe(true);
    expect(byName.get("convB")!.after).toBe(8);
    expect(r.skipped).toContainEqual({ node: "to_nhwc", opType: "Transpose", reason: "Transpose with perm [0,2,3,1] moves the channel axis", groups: ["convA"] });
    expect(r.skipped.some((x) => x.node === "stem" && /first conv/.test(x.reason))).toBe(true);
    expect(r.skipped.some((x) => x.opType === "graph output" && x.groups.includes("convC"))).toBe(true);
    inferShapes(r.graph);
    await expectSameOutputs(b, r);
  });

  it("--ignore protects a group; unknown names and bad ratios are errors naming them", () => {
    const b = new GraphBuilder("ignore", [1, 3, 8, 8]);
    const s = stem(b);
    b.conv("convA", s, 8, 16);
    const a = b.node("Relu", "a_act", ["convA"]);
    b.conv("convB", a, 16, 4);
    b.output("convB", [1, 4, 8, 8]);
    const opts = { ratio: 0.5, round: 1, minChannels: 1 };
    expect(layer(pruneStructured(b.g, opts), "convA").out).toBe(8);
    const kept = pruneStructured(b.g, { ...opts, ignore: ["conv[A]"] });
    expect(layer(kept, "convA").out).toBe(16);
    expect(kept.skipped.some((x) => x.node === "convA" && /--ignore/.test(x.reason))).toBe(true);
    expect(() => pruneStructured(b.g, { ...opts, ignore: ["convZ"] })).toThrow(/--ignore: unknown node "convZ"/);
    expect(() => pruneStructured(b.g, { ratio: 1 })).toThrow(/ratio must be in \[0, 1\), got 1/);
    expect(() => pruneStructured(b.g, { ratios: { convA: -0.1 } })).toThrow(/--ratios convA: ratio must be in/);
    expect(() => pruneStructured(b.g, { ratio: 0.2, importance: "activation" })).toThrow(/needs activation statistics/);
  });
});

describe("bias compensation", () => {
  it("a removed channel that is a constant is folded into the consumer's bias", async () => {
    const b = new GraphBuilder("constant-channel", [1, 3, 8, 8], 3);
    const s = stem(b);
    b.conv("convA", s, 8, 8, 3);
    const a = b.node("Relu", "a_act", ["convA"]);
    b.conv("convB", a, 8, 4);
    b.output("convB", [1, 4, 8, 8]);
    // channel 5 of convA: no filter, bias 0.7, so after ReLU it is 0.7 everywhere
    b.zeroOut("convA", [5]);
    (b.g.initializers.get("convA/b")!.data as Float32Array)[5] = 0.7;
    const w = b.g.initializers.get("convB/w")!.data as Float32Array;
    for (let o = 0; o < 4; o++) w[o * 8 + 5] = 0.05 * (o + 1); // small, so channel 5 ranks lowest, but not zero
    const means = new Map([["a_act", Float64Array.from({ length: 8 }, (_, c) => (c === 5 ? 0.7 : 1))]]);
    const opts = { ...exact, ratios: { convA: 0.125 } };

    const plain = pruneStructured(b.g, opts);
    expect(plain.keptOutputChannels.get("convA")).toEqual([0, 1, 2, 3, 4, 6, 7]);
    const x = randomInput(b.g.inputs[0].dims);
    const dense = (await runOrt(b.g, x)).convB.data;
    expect(maxRelDiff(dense, (await runOrt(plain.graph, x)).convB.data)).toBeGreaterThan(1e-3);
    const compensated = pruneStructured(b.g, { ...opts, compensationMeans: means });
    expect(maxRelDiff(dense, (await runOrt(compensated.graph, x)).convB.data)).toBeLessThan(1e-5);
  });
});

describe("keptChannels", () => {
  it("rounds to the multiple, never below the floor or above the group", () => {
    expect(keptChannels(128, 0.3)).toBe(88);
    expect(keptChannels(128, 0.5)).toBe(64);
    expect(keptChannels(16, 0.9)).toBe(8);
    expect(keptChannels(6, 0.5)).toBe(6);
    expect(keptChannels(128, 0.9, 8, 0.25)).toBe(32);
    expect(keptChannels(10, 0.3, 1, 1)).toBe(7);
    expect(keptChannels(18, 0)).toBe(18);
    expect(keptChannels(18, 0.05)).toBe(16);
  });
});
