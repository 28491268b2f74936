// One timed run of the bench's raw references on a real ONNX Runtime session of the default
// model: a positive time per run, and the session still runs after each run's outputs were
// freed. Never how fast.
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { timedRun } from "../../../src/cli/bench/timed-run.ts";
import { createSession } from "../../../src/infer/session.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../../src/infer/manifest.ts";

describe("timedRun", () => {
  it("times each run in ms and leaves the session able to run again after freeing the outputs", async () => {
    const manifest = await readManifest();
    const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, manifest.default);
    const { shape, name, dtype } = model.entry.input;
    expect(dtype, "the default model takes uint8 input").toBe("uint8");
    const pixels = new Uint8Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => (i * 37) % 256);
    const { session } = await createSession(new Uint8Array(await readFile(model.path)), { executionProviders: ["cpu"], intraOpThreads: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        const ms = await timedRun(session, name, new ort.Tensor("uint8", pixels, shape));
        expect(Number.isFinite(ms) && ms > 0, `run ${i + 1}: a positive time in ms, got ${ms}`).toBe(true);
      }
    } finally {
      await session.release();
    }
  }, 60_000);
});
