// The pruner on the shipped detectors: NanoDet (Concat, Split, residual Add across the FPN)
// and MobileNetV3-CenterNet (depthwise Conv, squeeze-excite broadcast Mul, hard-swish). The
// pruned graphs must pass the ONNX checker with strict shape inference and run in ONNX
// Runtime with the parent's outputs; what the pruner does not understand (the heads'
// Reshape/Transpose) stays whole and is listed.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOnnx } from "../../../src/model/onnx-checker.ts";
import type { OnnxGraph } from "../../../src/model/onnx/ir.ts";
import { decodeModel, encodeModel } from "../../../src/model/onnx/serialize.ts";
import { sizeOf } from "../../../src/model/onnx/tensor.ts";
import { buildDependencyGraph } from "../../../src/model/prune/dependency-graph.ts";
import { pruneStructured } from "../../../src/model/prune/structured.ts";
import { compressedSize, NO_SPEEDUP_NOTE, pruneUnstructured } from "../../../src/model/prune/unstructured.ts";
import { prng } from "./graphs.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-prune-real-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(name: string): Promise<OnnxGraph> {
  const path = `models/${name}.onnx`;
  return decodeModel(await readFile(path), path);
}

function pseudoRandomFeed(g: OnnxGraph): Record<string, ort.Tensor> {
  const inp = g.inputs[0];
  const r = prng(3);
  const n = sizeOf(inp.dims);
  const x =
    inp.dtype === "uint8"
      ? new ort.Tensor("uint8", Uint8Array.from({ length: n }, () => Math.floor(r() * 256)), inp.dims)
      : new ort.Tensor("float32", Float32Array.from({ length: n }, () => r()), inp.dims);
  return { [inp.name]: x };
}

async function outputsOf(g: OnnxGraph): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(encodeModel(g), { executionProviders: ["cpu"] });
  try {
    const res = await session.run(pseudoRandomFeed(g));
    return Object.fromEntries(g.outputs.map((o) => [o.name, Float32Array.from(res[o.name].data as Float32Array)]));
  } finally {
    await session.release();
  }
}

/**
 * Makes the first 8 channels of every prunable group (of a size that is a multiple of 8)
 * worthless in place: producer and depthwise filters and biases zero, consumer weights
 * reading them zero. Returns per-group ratios that remove exactly those 8.
 */
function killEightPerGroup(g: OnnxGraph): Record<string, number> {
  const dep = buildDependencyGraph(g);
  const dead = new Set<number>();
  const ratios: Record<string, number> = {};
  for (const grp of dep.groups) {
    if (!grp.prunable || grp.size <= 8 || grp.size % 8 !== 0) continue;
    for (const s of grp.slots.slice(0, 8)) dead.add(s);
    ratios[grp.name] = 8 / grp.size;
  }
  for (const c of dep.convs.values()) {
    const w = g.initializers.get(c.weight)!;
    const d = w.data as Float32Array;
    const [co, ci, kh, kw] = w.dims;
    const k = kh * kw;
    const out = dep.channels.get(c.output);
    if (out && c.kind !== "grouped")
      for (let o = 0; o < co; o++)
        if (dead.has(out[o])) {
          d.fill(0, o * ci * k, (o + 1) * ci * k);
          if (c.bias) (g.initializers.get(c.bias)!.data as Float32Array)[o] = 0;
        }
    const inp = c.input ? dep.channels.get(c.input) : undefined;
    if (inp && c.kind === "dense") for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) if (dead.has(inp[i])) d.fill(0, (o * ci + i) * k, (o * ci + i + 1) * k);
  }
  return ratios;
}

/** Runs one pseudo-random input through the graph; returns the output dims by name. */
async function runOnce(g: OnnxGraph): Promise<Record<string, readonly number[]>> {
  const session = await ort.InferenceSession.create(encodeModel(g), { executionProviders: ["cpu"] });
  try {
    const res = await session.run(pseudoRandomFeed(g));
    for (const o of g.outputs) expect(Array.from(res[o.name].data as Float32Array).every(Number.isFinite)).toBe(true);
    return Object.fromEntries(g.outputs.map((o) => [o.name, res[o.name].dims]));
  } finally {
    await session.release();
  }
}

async function expectValid(g: OnnxGraph, file: string): Promise<void> {
  const path = join(dir, file);
  await writeFile(path, encodeModel(g));
  const [res] = await checkOnnx([path]);
  expect(res.ok ? "ok" : res.error).toBe("ok");
}

describe("structured pruning of the shipped models", () => {
  it("nanodet: FPN groups pruned across Concat/Split/Add; heads kept and listed; checker and ORT pass", async () => {
    const dense = await load("nanodet");
    const r = pruneStructured(dense, { ratio: 0.3, importance: "l2" });
    expect(r.after.macs).toBeLessThan(0.6 * r.before.macs);
    expect(r.after.parameters).toBeLessThan(0.6 * r.before.parameters);
    // the three FPN lateral convs feed residual Adds together: one group
    const fpn = r.groups.find((g) => g.producers.length === 3)!;
    expect(fpn.producers.map((p) => p.split("/")[1]).sort()).toEqual(["convolution_25", "convolution_26", "convolution_27"]);
    expect(fpn.after).toBe(88);
    // head output convs: their channels reach graph outputs through Reshape + Transpose
    for (const head of ["convolution_29", "convolution_31", "convolution_33"]) {
      const g = r.groups.find((x) => x.name === `PartitionedCall/${head}/Conv`)!;
      expect(g.prunable).toBe(false);
      expect(g.reasons.join(" ")).toMatch(/Transpose with perm \[0,2,1\] moves the channel axis/);
    }
    expect(r.skipped.filter((s) => s.opType === "Transpose")).toHaveLength(6);
    await expectValid(r.graph, "nanodet-pruned.onnx");
    const dims = await runOnce(r.graph);
    for (const o of dense.outputs) expect(dims[o.name]).toEqual(o.dims);
  });

  it("nanodet-u8: the baked preprocessing ahead of the stem is left alone", async () => {
    const dense = await load("nanodet-u8");
    const r = pruneStructured(dense, { ratio: 0.25 });
    expect(r.groups.find((g) => g.name === "PartitionedCall/convolution/Conv")!.prunable).toBe(false);
    expect(r.after.macs).toBeLessThan(r.before.macs);
    await expectValid(r.graph, "nanodet-u8-pruned.onnx");
    await runOnce(r.graph);
  });

  it("centernet: depthwise and squeeze-excite groups pruned together; checker and ORT pass", async () => {
    const dense = await load("centernet");
    const r = pruneStructured(dense, { ratio: 0.3 });
    const dw = r.layers.filter((l) => l.kind === "depthwise");
    expect(dw.length).toBeGreaterThan(10);
    expect(dw.some((l) => l.outAfter < l.outBefore)).toBe(true);
    for (const l of dw) expect(l.inAfter).toBe(l.outAfter);
    // a squeeze-excite gate conv is grouped with the expand conv whose output it scales
    const se = r.groups.find((g) => g.producers.some((p) => /expanded_conv_3\/squeeze_excite\/Conv_1/.test(p)))!;
    expect(se.producers.some((p) => /expanded_conv_3\/expand\//.test(p))).toBe(true);
    expect(r.groups.find((g) => /centernet_cls_output/.test(g.name))!.prunable).toBe(false);
    await expectValid(r.graph, "centernet-pruned.onnx");
    const dims = await runOnce(r.graph);
    for (const o of dense.outputs) expect(dims[o.name]).toEqual(o.dims);
  });
});

describe("structured pruning of worthless channels in the shipped models", () => {
  // Every coupling of the real graphs at once: if any channel went to the wrong place
  // (a Concat offset, a Split size, an Add partner, a depthwise filter), outputs would move.
  for (const name of ["nanodet", "centernet"]) {
    it(`${name}: removing 8 zeroed channels from every group leaves the outputs unchanged`, async () => {
      const g = await load(name);
      const ratios = killEightPerGroup(g);
      expect(Object.keys(ratios).length).toBeGreaterThan(20);
      const r = pruneStructured(g, { ratios, round: 8, minChannels: 8 });
      for (const grp of r.groups) if (grp.name in ratios) expect(grp.after).toBe(grp.before - 8);
      const [dense, pruned] = [await outputsOf(g), await outputsOf(r.graph)];
      // centernet's built-in decode (TopK over the heatmap) is discontinuous; the heads it reads are compared
      for (const o of g.outputs.filter((x) => x.name !== "tower_0/detections")) {
        const a = dense[o.name];
        const b = pruned[o.name];
        let diff = 0;
        let scale = 0;
        for (let i = 0; i < a.length; i++) {
          diff = Math.max(diff, Math.abs(a[i] - b[i]));
          scale = Math.max(scale, Math.abs(a[i]));
        }
        expect(diff / scale, o.name).toBeLessThan(1e-5);
      }
    });
  }
});

describe("unstructured pruning", () => {
  it("reaches the sparsity asked for, keeps shapes, compresses better, and says it is no faster", async () => {
    const dense = await load("nanodet");
    const u = pruneUnstructured(dense, { sparsity: 0.5 });
    expect(u.sparsity).toBeGreaterThanOrEqual(0.5);
    expect(u.sparsity).toBeLessThan(0.5 + 1e-4);
    expect(u.skipped).toEqual([{ node: "PartitionedCall/convolution/Conv", reason: "first conv (reads the model input), protected by default" }]);
    const stem = dense.nodes.find((n) => n.name === "PartitionedCall/convolution/Conv")!;
    expect(u.graph.initializers.get(stem.inputs[1])).toBe(dense.initializers.get(stem.inputs[1]));
    const perLayer = pruneUnstructured(dense, { sparsity: 0.5, scope: "layer" });
    for (const l of perLayer.layers) expect(l.sparsity).toBeGreaterThanOrEqual(0.5 - 1 / l.weights);
    expect(compressedSize(encodeModel(u.graph))).toBeLessThan(0.8 * compressedSize(encodeModel(dense)));
    expect(encodeModel(u.graph).length).toBe(encodeModel(dense).length);
    expect(NO_SPEEDUP_NOTE).toMatch(/no speed-up on dense CPUs and GPUs/);
    await expectValid(u.graph, "nanodet-sparse.onnx");
    await runOnce(u.graph);
    expect(() => pruneUnstructured(dense, { sparsity: 1 })).toThrow(/--sparsity must be in \[0, 1\)/);
  });
});
