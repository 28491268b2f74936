// TensorRT/CUDA provider options: the mapping from the configuration to the keys ONNX
// Runtime's C API reads, and what the stock onnxruntime-node binding (the one npm installs
// here) is detected to do with them. The patched binding itself is built on the board
// (Dockerfile.jetson); docs/jetson.md records its check.
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/load.ts";
import { createSession } from "../../src/infer/session.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../../src/infer/manifest.ts";
import {
  detectProviderOptionSupport,
  gpuProviderOptions,
  providerOptionsNotice,
  type ProviderTuning,
} from "../../src/infer/provider-options.ts";

const configDir = join(dirname(fileURLToPath(import.meta.url)), "../../config");
const noEnv = { env: {} };

async function jetsonInference(set: string[] = []): Promise<ProviderTuning> {
  const { config } = await loadConfig(join(configDir, "jetson-orin.yaml"), { ...noEnv, set });
  return config.inference;
}

describe("config -> provider options", () => {
  it("jetson-orin.yaml gives TensorRT fp16, the engine and timing caches in trtCacheDir and a 1 GiB workspace", async () => {
    expect(gpuProviderOptions("tensorrt", await jetsonInference())).toEqual({
      trt_fp16_enable: true,
      trt_int8_enable: false,
      trt_engine_cache_enable: true,
      trt_engine_cache_path: "/var/cache/perceptd/trt",
      trt_timing_cache_enable: true,
      trt_timing_cache_path: "/var/cache/perceptd/trt",
      trt_max_workspace_size: 1024 ** 3,
    });
  });

  it("turning the caches off drops their paths, and a workspace of 0 leaves TensorRT's default", async () => {
    const options = gpuProviderOptions(
      "tensorrt",
      await jetsonInference(["inference.trtEngineCache=false", "inference.trtTimingCache=false", "inference.trtMaxWorkspaceBytes=0", "inference.trtInt8=true", "inference.trtFp16=false"]),
    );
    expect(options).toEqual({ trt_fp16_enable: false, trt_int8_enable: true, trt_engine_cache_enable: false, trt_timing_cache_enable: false });
  });

  it("maps the CUDA keys to ORT's spellings (jetson-orin.yaml: arena grown by what is asked), no memory limit by default", async () => {
    expect(gpuProviderOptions("cuda", await jetsonInference())).toEqual({ cudnn_conv_algo_search: "EXHAUSTIVE", arena_extend_strategy: "kSameAsRequested" });
    const tuned = await jetsonInference(["inference.cudaMemLimitBytes=2147483648", "inference.cudaConvAlgoSearch=heuristic", "inference.cudaArenaExtendStrategy=nextPowerOfTwo"]);
    expect(gpuProviderOptions("cuda", tuned)).toEqual({ cudnn_conv_algo_search: "HEURISTIC", arena_extend_strategy: "kNextPowerOfTwo", gpu_mem_limit: 2147483648 });
  });

  it("rejects an unknown CUDA algorithm search with the key's path", async () => {
    await expect(jetsonInference(["inference.cudaConvAlgoSearch=fastest"])).rejects.toThrow(/inference\.cudaConvAlgoSearch/);
  });
});

describe("detecting what the binding does with provider options", () => {
  it("the npm binding does not honour them", () => {
    const backends = ort.listSupportedBackends();
    const support = detectProviderOptionSupport(backends);
    const gpu = backends.filter((b) => b.name === "cuda" || b.name === "tensorrt").map((b) => b.name);
    // linux/x64 npm builds carry the GPU providers (their libraries come separately);
    // linux/arm64 and macOS builds are CPU only. Neither forwards the options.
    expect(support, `listSupportedBackends(): ${JSON.stringify(backends)}`).toBe(gpu.length > 0 ? "ignored" : "no-gpu-providers");
    if (process.platform === "linux" && process.arch === "x64") expect(gpu.sort()).toEqual(["cuda", "tensorrt"]);
  });

  it("reads the patch's mark on the cuda and tensorrt entries", () => {
    const patched = [{ name: "cpu", bundled: true }, { name: "cuda", bundled: false, providerOptions: true }, { name: "tensorrt", bundled: false, providerOptions: true }];
    expect(detectProviderOptionSupport(patched)).toBe("honoured");
    expect(detectProviderOptionSupport([patched[0], patched[1], { name: "tensorrt", bundled: false }])).toBe("ignored");
    expect(detectProviderOptionSupport([{ name: "cpu", bundled: true }])).toBe("no-gpu-providers");
  });

  it("warns at start only where the chain names a GPU provider the binding cannot tune", () => {
    expect(providerOptionsNotice("ignored", ["tensorrt", "cuda", "cpu"])).toEqual({
      level: "warn",
      message: expect.stringMatching(/provider options ignored .*inference\.tensorrt\/cuda settings cannot take effect/),
    });
    expect(providerOptionsNotice("ignored", ["cpu"]).level).toBe("info");
    expect(providerOptionsNotice("no-gpu-providers", ["cuda", "cpu"]).message).toMatch(/no TensorRT\/CUDA provider in this build; inference\.cuda settings/);
    expect(providerOptionsNotice("honoured", ["tensorrt", "cpu"])).toEqual({ level: "info", message: expect.stringMatching(/honoured/) });
  });
});

describe("createSession on the stock binding", () => {
  let modelPath: string;
  beforeAll(async () => {
    ort.env.logLevel = "fatal";
    const manifest = await readManifest(DEFAULT_MANIFEST_PATH);
    modelPath = resolveModel(manifest, DEFAULT_MANIFEST_PATH, "nanodet").path;
  });

  it("falls back along tensorrt -> cuda -> cpu with each reason, and reports the binding's support", async (ctx) => {
    const tuning = await jetsonInference();
    const created = await createSession(modelPath, { executionProviders: ["tensorrt", "cuda", "cpu"], intraOpThreads: 1, tuning });
    try {
      // A host with the GPU provider libraries installed legitimately runs on one of them.
      if (created.provider !== "cpu") ctx.skip();
      expect(created.providerOptions).not.toBe("honoured");
      expect(created.tried.map((t) => t.provider)).toEqual(["tensorrt", "cuda", "cpu"]);
      expect(created.tried[0].error, "why tensorrt failed").toMatch(/\S/);
      expect(created.tried[1].error, "why cuda failed").toMatch(/\S/);
      // The options of a provider that did not run are not the session's problem.
      expect(created.warnings).toEqual([]);
    } finally {
      await created.session.release();
    }
  });
});
