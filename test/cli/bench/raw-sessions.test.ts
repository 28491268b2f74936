// The side-by-side raw loop of `bench pipeline` (a2): real sessions in real worker threads.
// Shape and failure handling only; its speed is the bench's business.
import { readFile } from "node:fs/promises";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { runSessionsSideBySide, type SideBySideOptions } from "../../../src/cli/bench/raw-sessions.ts";
import { readManifest, resolveModel, DEFAULT_MANIFEST_PATH } from "../../../src/model/manifest.ts";

let base: Omit<SideBySideOptions, "runs" | "sessions">;

/** Pixels that are not all alike, so the network does real work; the same every run. */
function pixels(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

beforeAll(async () => {
  const manifest = await readManifest();
  const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, manifest.default);
  const { shape, name, dtype } = model.entry.input;
  expect(dtype, "the default model takes uint8 input").toBe("uint8");
  const size = shape.reduce((a, b) => a * b, 1);
  base = {
    model: new Uint8Array(await readFile(model.path)),
    inputName: name,
    tensors: [1, 2, 3].map((seed) => new ort.Tensor("uint8", pixels(size, seed), shape)),
    session: { executionProviders: ["cpu"], intraOpThreads: 1, interOpThreads: 1, allowSpinning: false },
    warmup: 1,
  };
});

describe("runSessionsSideBySide", () => {
  it("runs the timed runs split over the sessions and reports each run and the whole span", async () => {
    const events: string[] = [];
    const r = await runSessionsSideBySide({ ...base, sessions: 2, runs: 7, onStart: () => events.push("start"), onEnd: () => events.push("end") });
    expect(r.runs, "7 runs over 2 sessions: 4 and 3").toBe(7);
    expect(r.samplesMs).toHaveLength(7);
    expect(r.samplesMs.every((ms) => Number.isFinite(ms) && ms > 0), `every run took time: ${r.samplesMs.join(", ")}`).toBe(true);
    // The span covers the longest session's runs at least (sessions 4 runs each at most).
    expect(r.durationS * 1e3).toBeGreaterThanOrEqual(Math.max(...r.samplesMs));
    expect(events, "one window: after warm-up, before the threads end").toEqual(["start", "end"]);
    expect(base.tensors.every((t) => (t.data as Uint8Array).length > 0), "the caller's tensors are copied, not taken").toBe(true);
  });

  it("rejects a model that does not load, naming the session", async () => {
    const bad = { ...base, model: new TextEncoder().encode("not an onnx model"), sessions: 2, runs: 2 };
    await expect(runSessionsSideBySide(bad)).rejects.toThrow(/bench: raw session [12] of 2: .+/);
  });

  it("refuses fewer than two sessions, fewer frames than sessions, and inputs of another type", async () => {
    await expect(runSessionsSideBySide({ ...base, sessions: 1, runs: 2 })).rejects.toThrow(/sessions must be an integer >= 2, got 1/);
    await expect(runSessionsSideBySide({ ...base, sessions: 4, runs: 4 })).rejects.toThrow(/3 frame\(s\) cannot feed 4 sessions/);
    const ints = [new ort.Tensor("int32", new Int32Array(4), [4]), new ort.Tensor("int32", new Int32Array(4), [4])];
    await expect(runSessionsSideBySide({ ...base, tensors: ints, sessions: 2, runs: 2 })).rejects.toThrow(/take uint8 or float32 inputs, got int32/);
  });
});
