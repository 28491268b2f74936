// Detaching buffers so their memory goes back now rather than at V8's next collection.
import * as ort from "onnxruntime-node";
import { markAsUntransferable } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel, resolveModel } from "../../src/infer/manifest.ts";
import { releaseArrayBuffer, releaseArrayBuffers, releaseTensors } from "../../src/util/release-array-buffer.ts";

describe("releaseArrayBuffer", () => {
  it("detaches the buffer and gives its memory back without a collection", () => {
    const buf = new ArrayBuffer(32 << 20);
    const view = new Uint8Array(buf).fill(7);
    const before = process.memoryUsage().arrayBuffers;
    expect(releaseArrayBuffer(buf)).toBe(true);
    expect(buf.byteLength, "the buffer should be detached").toBe(0);
    expect(view.length, "views on a detached buffer read as empty").toBe(0);
    const freed = before - process.memoryUsage().arrayBuffers;
    expect(freed, `only ${freed} bytes of the 32 MiB buffer were given back`).toBeGreaterThanOrEqual(32 << 20);
  });

  it("releases an ONNX Runtime output, whose memory ORT owns", async () => {
    const model = resolveModel(await readManifest(), DEFAULT_MANIFEST_PATH);
    const { input: spec } = model.entry;
    if (spec.dtype !== "uint8") throw new Error(`the default model ${model.name} was expected to take uint8 input`);
    const session = await ort.InferenceSession.create(await readVerifiedModel(model));
    try {
      const input = new ort.Tensor("uint8", new Uint8Array(spec.width * spec.height * 3), spec.shape);
      const out = await session.run({ [spec.name]: input });
      const data = out[session.outputNames[0]].data;
      if (!ArrayBuffer.isView(data)) throw new Error("the default model's first output should be numeric");
      expect(data.byteLength).toBeGreaterThan(0);
      expect(releaseArrayBuffer(data.buffer)).toBe(true);
      expect(data.byteLength, "ORT's output buffer should be detached").toBe(0);
    } finally {
      await session.release();
    }
  });

  it("leaves alone what it must not or cannot detach, and says so", () => {
    const shared = new SharedArrayBuffer(16);
    expect(releaseArrayBuffer(shared)).toBe(false);
    expect(shared.byteLength).toBe(16);
    expect(releaseArrayBuffer(new ArrayBuffer(0))).toBe(false);
    const once = new ArrayBuffer(8);
    expect(releaseArrayBuffer(once)).toBe(true);
    expect(releaseArrayBuffer(once), "a second release of the same buffer should be a no-op").toBe(false);
    // Node's Buffer pool backs many small Buffers at once: detaching it would empty them all.
    const small = Buffer.from("still here");
    expect(releaseArrayBuffer(small.buffer)).toBe(false);
    expect(small.toString(), "a pooled Buffer must survive a release of its pool").toBe("still here");
    const kept = new ArrayBuffer(32);
    markAsUntransferable(kept);
    expect(releaseArrayBuffer(kept)).toBe(false);
    expect(kept.byteLength).toBe(32);
  });

  it("releases every numeric output of an ONNX Runtime run, as the worker and the bench's raw loop do", async () => {
    const model = resolveModel(await readManifest(), DEFAULT_MANIFEST_PATH);
    const { input: spec } = model.entry;
    const session = await ort.InferenceSession.create(await readVerifiedModel(model));
    try {
      const input = new ort.Tensor("uint8", new Uint8Array(spec.width * spec.height * 3), spec.shape);
      const out = Object.values(await session.run({ [spec.name]: input }));
      expect(out.length, "the default model should have several outputs").toBeGreaterThan(1);
      expect(releaseTensors(out), "each output tensor's buffer should be released once").toBe(out.length);
      for (const t of out) expect((t.data as ArrayBufferView).byteLength, `output ${t.dims.join("x")} should read as empty after the release`).toBe(0);
    } finally {
      await session.release();
    }
  });

  it("leaves tensors without a typed array alone", () => {
    const strings = new ort.Tensor("string", ["a", "b"], [2]);
    const numbers = new ort.Tensor("float32", new Float32Array(4), [4]);
    expect(releaseTensors([strings, numbers]), "only the float32 tensor has a buffer to release").toBe(1);
    expect(strings.data).toEqual(["a", "b"]);
  });

  it("releases a buffer shared by several views once", () => {
    const buf = new ArrayBuffer(64);
    const a = new Float32Array(buf, 0, 8);
    const b = new Float32Array(buf, 32, 8);
    expect(releaseArrayBuffers([a.buffer, b.buffer])).toBe(1);
    expect(buf.byteLength).toBe(0);
  });
});
