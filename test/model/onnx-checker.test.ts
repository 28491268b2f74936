import { mkdtemp, rm, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import onnxProto from "onnx-proto";
import type { onnx as OnnxTypes } from "onnx-proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkOnnx } from "../../src/model/onnx-checker.ts";

// onnx-proto is CommonJS whose module.exports is the protobufjs root; Node's ESM loader
// cannot see its named export, so it comes through the default import.
const { onnx } = onnxProto;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function tensor(name: string, elemType: number, dims: number[]): OnnxTypes.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

function model(graph: OnnxTypes.IGraphProto): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "perceptd-test",
    graph,
  }).finish();
}

let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "perceptd-onnx-check-"));
  await writeFile(file("relu.onnx"), model({
    name: "relu",
    node: [{ name: "relu0", opType: "Relu", input: ["X"], output: ["Y"] }],
    input: [tensor("X", FLOAT, [1, 4])],
    output: [tensor("Y", FLOAT, [1, 4])],
  }));
  await writeFile(file("dangling.onnx"), model({
    name: "dangling",
    node: [{ name: "relu0", opType: "Relu", input: ["missing_tensor"], output: ["Y"] }],
    input: [tensor("X", FLOAT, [1, 4])],
    output: [tensor("Y", FLOAT, [1, 4])],
  }));
  await writeFile(file("typemix.onnx"), model({
    name: "typemix",
    node: [{ name: "add0", opType: "Add", input: ["A", "B"], output: ["C"] }],
    input: [tensor("A", FLOAT, [1, 4]), tensor("B", INT64, [1, 4])],
    output: [tensor("C", FLOAT, [1, 4])],
  }));
  await writeFile(file("garbage.onnx"), "this is not a protobuf");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("checkOnnx", () => {
  it("passes a valid model and describes it, fails broken ones naming the node/tensor", async () => {
    const [relu, dangling, typemix, garbage, missing] = await checkOnnx([
      file("relu.onnx"), file("dangling.onnx"), file("typemix.onnx"), file("garbage.onnx"), file("missing.onnx"),
    ]);

    expect(relu).toEqual({
      file: file("relu.onnx"),
      ok: true,
      opset: 13,
      irVersion: 7,
      inputs: [{ name: "X", shape: [1, 4], elemType: "FLOAT" }],
      outputs: [{ name: "Y", shape: [1, 4], elemType: "FLOAT" }],
      nodes: 1,
    });

    expect(dangling.ok).toBe(false);
    if (dangling.ok) return;
    expect(dangling.file).toBe(file("dangling.onnx"));
    expect(dangling.error).toContain("missing_tensor");
    expect(dangling.error).toContain("relu0");

    expect(typemix.ok).toBe(false);
    if (typemix.ok) return;
    expect(typemix.error).toContain("add0");
    expect(typemix.error).toMatch(/type/i);

    expect(garbage.ok).toBe(false);
    expect(missing.ok).toBe(false);
    if (missing.ok) return;
    expect(missing.error).toContain("missing.onnx");
  });

  it("returns nothing for no paths without starting python", async () => {
    expect(await checkOnnx([], { python: "/nonexistent/python3" })).toEqual([]);
  });

  it("says how to install the checker when python3 is missing", async () => {
    await expect(checkOnnx([file("relu.onnx")], { python: path.join(dir, "no-such-python3") }))
      .rejects.toThrow(/python3 not found.*install python3-onnx \(scripts\/setup\.sh does\)/);
  });

  it("says how to install the checker when the onnx module is missing", async () => {
    // python3 -S skips site-packages, where python3-onnx lives: a python without onnx.
    const noOnnx = file("python-without-onnx");
    await writeFile(noOnnx, '#!/bin/sh\nexec python3 -S "$@"\n');
    await chmod(noOnnx, 0o755);
    await expect(checkOnnx([file("relu.onnx")], { python: noOnnx }))
      .rejects.toThrow(/onnx Python module cannot be imported.*install python3-onnx \(scripts\/setup\.sh does\)/);
  });
});
