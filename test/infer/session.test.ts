import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSession } from "../../src/infer/session.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../src/infer/manifest.ts";

let modelPath: string;
let dir: string;

beforeAll(async () => {
  // The failed provider loads are expected here; ORT would also log each to stderr.
  ort.env.logLevel = "fatal";
  const manifest = await readManifest(DEFAULT_MANIFEST_PATH);
  modelPath = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet").path;
  dir = await mkdtemp(join(tmpdir(), "perceptd-session-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("createSession", () => {
  it("loads a model on the cpu provider", async () => {
    const { session, provider, tried, warnings } = await createSession(modelPath, { executionProviders: ["cpu"], intraOpThreads: 1 });
    try {
      expect(provider).toBe("cpu");
      expect(tried).toEqual([{ provider: "cpu" }]);
      expect(warnings).toEqual([]);
      expect(session.inputNames).toEqual(["input_1"]);
      expect(session.outputNames).toContain("Identity_5");
    } finally {
      await session.release();
    }
  });

  it("falls back from cuda to cpu and records why cuda failed", async (ctx) => {
    const { session, provider, tried } = await createSession(modelPath, { executionProviders: ["cuda", "cpu"] });
    try {
      // A host with the CUDA provider libraries installed legitimately gets cuda.
      if (provider === "cuda") ctx.skip();
      expect(provider).toBe("cpu");
      expect(tried).toHaveLength(2);
      expect(tried[0].provider).toBe("cuda");
      expect(tried[0].error).toMatch(/\S/);
      expect(tried[1]).toEqual({ provider: "cpu" });
    } finally {
      await session.release();
    }
  });

  it("lists every provider's failure when none works", async (ctx) => {
    let err: unknown;
    try {
      const { session } = await createSession(modelPath, { executionProviders: ["tensorrt", "cuda"] });
      await session.release();
      ctx.skip();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(modelPath);
    expect(msg).toMatch(/no execution provider could create a session/);
    expect(msg).toMatch(/\[tensorrt\] \S.*\[cuda\] \S/);
  });

  it("rejects a file that is not ONNX, naming the file", async () => {
    const garbage = join(dir, "garbage.onnx");
    await writeFile(garbage, "this is not a protobuf, just some text\n".repeat(20));
    await expect(createSession(garbage, { executionProviders: ["cpu"] })).rejects.toThrow(
      new RegExp(`^${garbage.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not a valid ONNX model`),
    );
  });

  it("names the source of in-memory bytes that are not ONNX", async () => {
    await expect(
      createSession(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), { executionProviders: ["cpu"], source: "models/broken.onnx" }),
    ).rejects.toThrow(/^models\/broken\.onnx: not a valid ONNX model/);
  });

  it("says when the model file does not exist", async () => {
    const missing = join(dir, "missing.onnx");
    await expect(createSession(missing)).rejects.toThrow(`model file ${missing} does not exist`);
  });

  it("rejects unknown providers and bad thread counts before loading anything", async () => {
    // @ts-expect-error: the provider name is checked at runtime for callers without types
    await expect(createSession(modelPath, { executionProviders: ["gpu"] })).rejects.toThrow(/unknown execution provider "gpu"/);
    await expect(createSession(modelPath, { intraOpThreads: -1 })).rejects.toThrow(/intraOpThreads must be a non-negative integer, got -1/);
    await expect(createSession(modelPath, { executionProviders: [] })).rejects.toThrow(/executionProviders is empty/);
  });
});
