// The model as the bench's raw references run it: the manifest's model, real frames of
// vtest.avi through GStreamer, a real ONNX Runtime session. What each step returns and how
// it fails; never how fast.
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { createRawSession, decodeRawFrames, loadRawModel } from "../../../src/cli/bench/raw-model.ts";
import { DEFAULT_MANIFEST_PATH, readManifest } from "../../../src/infer/manifest.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);
if (!HAVE_VTEST) console.warn(`skipping the raw model's frame decoding: ${VTEST} is missing (run \`npm run setup\` to fetch it)`);

describe("raw-model", () => {
  it("loads the manifest's default model, checksum checked, with its input spec", async () => {
    const model = await loadRawModel(DEFAULT_MANIFEST_PATH, undefined);
    const manifest = await readManifest();
    expect(model.name).toBe(manifest.default);
    expect(model.input).toEqual(manifest.models[manifest.default].input);
    expect(model.bytes.byteLength, "the model file's bytes").toBeGreaterThan(0);
  });

  it("names the models it knows when asked for one it does not", async () => {
    await expect(loadRawModel(DEFAULT_MANIFEST_PATH, "no-such-model")).rejects.toThrow(/model "no-such-model" is not in .*manifest\.json; known models: /);
  });

  it("refuses a model file that does not match the manifest's checksum", async () => {
    const dir = await mkdtemp(join(tmpdir(), "perceptd-raw-model-"));
    try {
      const manifest = await readManifest();
      const entry = manifest.models[manifest.default];
      const manifestPath = join(dir, "manifest.json");
      await writeFile(manifestPath, JSON.stringify(manifest));
      await copyFile(DEFAULT_MANIFEST_PATH, join(dir, entry.file)); // the wrong bytes under the model's name
      await expect(loadRawModel(manifestPath, undefined)).rejects.toThrow(/has sha256 [0-9a-f]{64}, the manifest says .*\(corrupt or replaced file\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!HAVE_VTEST)("decodes frames spread over the video at the model's input size, and runs them in a session of its own", async () => {
    const model = await loadRawModel(DEFAULT_MANIFEST_PATH, undefined);
    const progress: [number, number][] = [];
    const tensors = await decodeRawFrames(VTEST, 3, model.input, (done, total) => progress.push([done, total]));
    expect(tensors, "one tensor per frame asked for").toHaveLength(3);
    for (const t of tensors) {
      expect(t.dims, "the model's input shape").toEqual(model.input.shape);
      expect(t.type).toBe(model.input.dtype);
    }
    expect(progress, "progress from 0 to every frame").toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    const session = await createRawSession(model, { threads: 1, spinning: false });
    try {
      const outputNames = (await readManifest()).models[model.name].outputs.map((o) => o.name).sort();
      for (const t of tensors) {
        const out = await session.run({ [model.input.name]: t });
        expect(Object.keys(out).sort(), "every output the manifest declares").toEqual(outputNames);
      }
    } finally {
      await session.release();
    }
  }, 60_000);

  it("says which video gave no frames", async () => {
    const model = await loadRawModel(DEFAULT_MANIFEST_PATH, undefined);
    await expect(decodeRawFrames("/nonexistent/clip.avi", 2, model.input)).rejects.toThrow(/\/nonexistent\/clip\.avi/);
  }, 30_000);
});
