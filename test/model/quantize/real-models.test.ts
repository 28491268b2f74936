// The shipped INT8 models: they pass the ONNX checker, their manifest entries say what they
// are and where they came from, and on frames of vtest.avi that calibration never read they
// run in ONNX Runtime and find the people the dense model finds.
import { describe, expect, it } from "vitest";
import { prepareFrames } from "../../../src/model/data/build.ts";
import { DEFAULT_EVAL_VIDEO } from "../../../src/model/eval/frames.ts";
import { detectOnCache, REFERENCE_THRESHOLD, setAgreementMetrics } from "../../../src/model/eval/set-agreement.ts";
import { PREDICTION_SCORE_FLOOR } from "../../../src/model/eval/agreement.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../../src/infer/manifest.ts";
import { checkOnnx } from "../../../src/model/onnx-checker.ts";
import { QUANTIZED_VARIANTS } from "../../../src/model/quantized-variants.ts";

// held-out frames (after vtest.avi's calibration quarter), every 40th
const FRAMES = `${DEFAULT_EVAL_VIDEO}:220-780:40`;

describe("shipped INT8 models", async () => {
  const manifest = await readManifest();
  for (const spec of QUANTIZED_VARIANTS) {
    it(`${spec.name}: checked, recorded, and finds the people ${spec.parent} finds on held-out vtest.avi frames`, async () => {
      const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, spec.name);
      const parent = resolveModel(manifest, DEFAULT_MANIFEST_PATH, spec.parent);
      expect(model.entry.parent).toBe(spec.parent);
      expect(model.entry.variant).toMatch(/-int8(-cpu)?$/);
      expect(model.entry.build).toMatchObject({ method: spec.method, calibration: { specs: spec.calibration } });
      expect(Array.isArray(model.entry.build.keptFloat)).toBe(true);
      const [check] = await checkOnnx([model.path]);
      expect(check.ok ? "ok" : check.error).toBe("ok");

      const { width, height, resize } = parent.entry.input;
      const cache = await prepareFrames([FRAMES], { width, height, resize }, { purpose: "evaluation" });
      try {
        const session = { executionProviders: ["cpu" as const] };
        const reference = await detectOnCache(parent, cache, { scoreThreshold: REFERENCE_THRESHOLD, session });
        const predicted = await detectOnCache(model, cache, { scoreThreshold: PREDICTION_SCORE_FLOOR, session });
        const a = setAgreementMetrics(FRAMES, model.name, parent.name, reference.map((r, i) => ({ reference: r, predicted: predicted[i] })));
        const person = a.perClass.find((c) => c.label === "person")!;
        expect(person.confident).toBeGreaterThanOrEqual(20); // the frames do hold people
        expect(person.recall).toBeGreaterThanOrEqual(0.9);
        expect(person.ap50).toBeGreaterThanOrEqual(0.85);
      } finally {
        await cache.close();
      }
    }, 120_000);
  }
});
