// The layering rule (eslint/layers.js) run through ESLint with the project's own config, on
// source text placed at paths inside src/, so it is judged exactly as `npm run lint` would.
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";
import { LAYERS } from "../../eslint/layers.js";

const eslint = new ESLint({ cwd: new URL("../..", import.meta.url).pathname });

async function layerErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.filter((m) => m.ruleId === "perceptd/layers").map((m) => m.message);
}

describe("perceptd/layers", () => {
  it("fails a stage importing another stage, naming both folders and what is allowed", async () => {
    const errors = await layerErrors("src/ingest/bad-import.ts", 'import type { Detection } from "../infer/detector.ts";\nexport type D = Detection;\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/src\/ingest may not import from src\/infer \(\.\.\/infer\/detector\.ts\); src\/ingest may use: core, util/);
  });

  it("fails a stage importing the config, however deep the importing file lies", async () => {
    const errors = await layerErrors("src/ingest/gst/bad-import.ts", 'import type { Config } from "../../config/schema.ts";\nexport type C = Config;\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/src\/ingest may not import from src\/config/);
  });

  it("fails core importing anything outside itself, and dynamic imports too", async () => {
    const errors = await layerErrors("src/core/bad-import.ts", 'export const m = await import("../util/logger.ts");\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/src\/core may not import from src\/util.*nothing: it is the bottom layer/);
  });

  it("fails the daemon path reaching into the model toolchain", async () => {
    const errors = await layerErrors("src/daemon/bad-import.ts", 'export { runPrune } from "../model/prune/pipeline.ts";\n');
    expect(errors).toHaveLength(1);
  });

  it("passes imports of core, util, the same folder and packages", async () => {
    const code = [
      'import type { Frame } from "../core/frame.ts";',
      'import { atomicWrite } from "../util/atomic-write.ts";',
      'import { nms } from "./nms.ts";',
      'import * as ort from "onnxruntime-node";',
      "export { atomicWrite, nms, ort };",
      "export type F = Frame;",
      "",
    ].join("\n");
    expect(await layerErrors("src/infer/good-import.ts", code)).toEqual([]);
  });

  it("passes the composition root wiring stages and config", async () => {
    const code = 'import { CameraSource } from "../ingest/camera-source.ts";\nimport type { Config } from "../config/schema.ts";\nexport { CameraSource };\nexport type C = Config;\n';
    expect(await layerErrors("src/daemon/wiring.ts", code)).toEqual([]);
  });

  it("knows every folder of src/", async () => {
    const { readdir } = await import("node:fs/promises");
    const folders = (await readdir(new URL("../../src", import.meta.url), { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(Object.keys(LAYERS).sort()).toEqual(folders.sort());
  });
});
