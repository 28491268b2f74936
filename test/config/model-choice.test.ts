// model.byProvider: one config, a model per execution provider, declared in the schema and
// chosen by the first provider the host lists.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { chooseModel, modelProviderMismatch } from "../../src/config/model-choice.ts";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "perceptd-model-choice-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function load(name: string, yaml: string): Promise<Awaited<ReturnType<typeof loadConfig>>["config"]> {
  const p = join(tmp, name);
  await writeFile(p, yaml);
  return (await loadConfig(p, { env: {} })).config;
}

const CAMERA = "cameras:\n  - id: front\n    source: { type: testsrc }\n";

describe("model.byProvider", () => {
  it("picks the model named for the first execution provider, else model.name, else the manifest default", async () => {
    const byProvider = "  byProvider: { cpu: nanodet-int8-cpu, tensorrt: nanodet-u8 }\n";
    const cpu = await load("cpu.yaml", `${CAMERA}model:\n  name: centernet-u8\n${byProvider}inference:\n  executionProviders: [cpu]\n`);
    expect(chooseModel(cpu)).toEqual({ name: "nanodet-int8-cpu", provider: "cpu", source: "byProvider" });
    const trt = await load("trt.yaml", `${CAMERA}model:\n${byProvider}inference:\n  executionProviders: [tensorrt, cuda, cpu]\n`);
    expect(chooseModel(trt)).toEqual({ name: "nanodet-u8", provider: "tensorrt", source: "byProvider" });
    const cuda = await load("cuda.yaml", `${CAMERA}model:\n  name: centernet-u8\n${byProvider}inference:\n  executionProviders: [cuda, cpu]\n`);
    expect(chooseModel(cuda)).toEqual({ name: "centernet-u8", provider: "cuda", source: "name" });
    const none = await load("none.yaml", `${CAMERA}inference:\n  executionProviders: [cpu]\n`);
    expect(none.model.byProvider).toEqual({});
    expect(chooseModel(none)).toEqual({ name: undefined, provider: "cpu", source: "manifest default" });
  });

  it("an unknown provider key is a config error naming it", async () => {
    const p = join(tmp, "bad.yaml");
    await writeFile(p, `${CAMERA}model:\n  byProvider: { gpu: nanodet-u8 }\n`);
    const err = await loadConfig(p, { env: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/model\.byProvider/);
    expect(String((err as Error).message)).toMatch(/gpu/);
  });

  it("warns when the chosen model ran on another provider than it was chosen for", () => {
    const choice = { name: "nanodet-u8", provider: "tensorrt" as const, source: "byProvider" as const };
    expect(modelProviderMismatch(choice, "tensorrt")).toBeNull();
    expect(modelProviderMismatch(choice, "cpu")).toMatch(/model nanodet-u8 was chosen by model\.byProvider\.tensorrt, but ONNX Runtime loaded it on cpu/);
    expect(modelProviderMismatch({ name: "x", provider: "tensorrt", source: "name" }, "cpu")).toBeNull();
  });
});
