// Bad TF.js models fail with an error that names the node and the op (or the file and
// the weight), and never produce an ONNX file.
import * as ort from "onnxruntime-node";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertTfGraph } from "../../../src/model/convert/convert.ts";
import { encodeModel } from "../../../src/model/onnx/serialize.ts";
import { loadTfGraphModel } from "../../../src/model/tfjs/graph-model.ts";
import { conv2dAttrs, tinyConvModel, writeTfjsModel, type FixtureModel } from "../fixtures/tfjs-model.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-convert-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function convert(name: string, m: FixtureModel) {
  const path = await writeTfjsModel(join(dir, name), m);
  return convertTfGraph(await loadTfGraphModel(path), { name });
}

describe("converter on small TF.js graphs", () => {
  it("converts a conv + bias + relu graph and computes what TF semantics say", async () => {
    const g = await convert("ok", tinyConvModel());
    expect(g.nodes.map((n) => n.opType), "bias folded into Conv, NHWC<->NCHW transposes only at the edges").toEqual(["Transpose", "Conv", "Relu", "Transpose"]);
    const session = await ort.InferenceSession.create(encodeModel(g));
    const x = Float32Array.from({ length: 32 }, (_, i) => (i % 5) - 2);
    const out = (await session.run({ x: new ort.Tensor("float32", x, [1, 4, 4, 2]) })).y.data as Float32Array;
    // direct NHWC convolution with SAME padding, as TF defines it
    const m = tinyConvModel();
    const w = m.weights[0].values;
    const bias = m.weights[1].values;
    for (let y = 0; y < 4; y++)
      for (let xx = 0; xx < 4; xx++)
        for (let o = 0; o < 3; o++) {
          let s = bias[o];
          for (let ky = 0; ky < 3; ky++)
            for (let kx = 0; kx < 3; kx++)
              for (let c = 0; c < 2; c++) {
                const iy = y + ky - 1;
                const ix = xx + kx - 1;
                if (iy < 0 || iy > 3 || ix < 0 || ix > 3) continue;
                s += x[(iy * 4 + ix) * 2 + c] * w[((ky * 3 + kx) * 2 + c) * 3 + o];
              }
          expect(out[(y * 4 + xx) * 3 + o], `y[0,${y},${xx},${o}]`).toBeCloseTo(Math.max(0, s), 5);
        }
    await session.release();
  });

  it("names the node and op of an unsupported op", async () => {
    const m = tinyConvModel();
    m.nodes[3] = { name: "y", op: "Erf", input: ["add"] };
    await expect(convert("unsupported", m)).rejects.toThrow(/node y \(Erf\): op Erf is not supported/);
  });

  it("names the node and op on a channel mismatch between input and filter", async () => {
    const m = tinyConvModel();
    m.weights[0] = { ...m.weights[0], shape: [3, 3, 1, 6] };
    await expect(convert("mismatch", m)).rejects.toThrow(/node conv \(Conv2D\): filter expects 1 input channels but the input has 2/);
  });

  it("names the node when the signature shape disagrees with the converted graph", async () => {
    const m = tinyConvModel();
    m.outputs = [{ name: "y", shape: [1, 4, 4, 5] }];
    await expect(convert("sigshape", m)).rejects.toThrow(/node y \(Relu\): converted output has shape \[1,4,4,3\], signature says \[1,4,4,5\]/);
  });

  it("names a missing input node", async () => {
    const m = tinyConvModel();
    m.nodes[3] = { name: "y", op: "Relu", input: ["nowhere"] };
    await expect(convert("dangling", m)).rejects.toThrow(/input nowhere is not a node of the graph/);
  });

  it("rejects a truncated weights file, naming the file and the weight", async () => {
    const path = await writeTfjsModel(join(dir, "truncated"), tinyConvModel());
    await truncate(join(dir, "truncated", "weights.bin"), 100);
    await expect(loadTfGraphModel(path)).rejects.toThrow(/weights\.bin: weight w needs bytes 0\.\.216 but the weight data is only 100 bytes long/);
  });

  it("rejects a weights file longer than the manifest describes", async () => {
    const path = await writeTfjsModel(join(dir, "long"), tinyConvModel());
    const bin = await readFile(join(dir, "long", "weights.bin"));
    await writeFile(join(dir, "long", "weights.bin"), Buffer.concat([bin, Buffer.alloc(8)]));
    await expect(loadTfGraphModel(path)).rejects.toThrow(/weight data is 236 bytes but the manifest describes 228/);
  });

  it("rejects corrupt model.json, naming the file", async () => {
    const path = await writeTfjsModel(join(dir, "corrupt"), tinyConvModel());
    await writeFile(path, '{"format": "graph-model", "modelTopology": {"node": [');
    await expect(loadTfGraphModel(path)).rejects.toThrow(new RegExp(`${path}: cannot read model.json`));
  });

  it("rejects a model.json of another format", async () => {
    const path = await writeTfjsModel(join(dir, "layers"), tinyConvModel());
    const json = JSON.parse(await readFile(path, "utf8"));
    await writeFile(path, JSON.stringify({ ...json, format: "layers-model" }));
    await expect(loadTfGraphModel(path)).rejects.toThrow(/format is "layers-model", expected "graph-model"/);
  });

  it("converts VALID strided conv and a SAME max pool with the right output size", async () => {
    const m = tinyConvModel();
    m.nodes[1] = { name: "conv", op: "Conv2D", input: ["x", "w"], attr: conv2dAttrs("VALID", [1, 2, 2, 1]) };
    m.nodes[3] = { name: "y", op: "MaxPool", input: ["add"], attr: { ...conv2dAttrs("SAME", [1, 1, 1, 1]), ksize: { list: { i: ["1", "3", "3", "1"] } } } };
    m.outputs = [{ name: "y", shape: [1, 1, 1, 3] }];
    const g = await convert("valid", m);
    expect(g.outputs[0].dims).toEqual([1, 1, 1, 3]);
  });
});
