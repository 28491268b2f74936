// TensorRT and CUDA provider options: what the configuration asks of each GPU provider,
// spelled as the ONNX Runtime C API names them, and whether the loaded Node binding passes
// them on at all.
//
// onnxruntime-node hands the `cuda` and `tensorrt` providers their device id and drops
// every other key of the provider object. perceptd's patch to the binding
// (patches/onnxruntime-1.30.0-node-provider-options.patch, built by Dockerfile.jetson)
// passes each further key to UpdateCUDAProviderOptions / UpdateTensorRTProviderOptions, and
// marks the two entries of listSupportedBackends() with `providerOptions: true`. That mark
// is the only way to tell the bindings apart: the stock one accepts the keys and ignores
// them without a word, so trying an option would prove nothing.
//
// Pure (no native module): the config schema takes its enums from here.

/** The GPU providers whose options the patch forwards. */
export const GPU_PROVIDERS = ["tensorrt", "cuda"] as const;
export type GpuProvider = (typeof GPU_PROVIDERS)[number];

/** The cuDNN convolution algorithm search of the CUDA provider (cudnn_conv_algo_search). */
export const CUDA_CONV_ALGO_SEARCH = ["exhaustive", "heuristic", "default"] as const;
/** How the CUDA provider's memory arena grows (arena_extend_strategy). */
export const CUDA_ARENA_EXTEND_STRATEGY = ["nextPowerOfTwo", "sameAsRequested"] as const;

/**
 * The provider tuning, under the names of the `inference` configuration keys (so the
 * parsed `config.inference` is one): see src/config/schema.ts for meanings and defaults.
 */
export interface ProviderTuning {
  trtFp16: boolean;
  trtInt8: boolean;
  trtEngineCache: boolean;
  trtTimingCache: boolean;
  trtCacheDir: string;
  /** 0: TensorRT's own default */
  trtMaxWorkspaceBytes: number;
  /** 0: no limit */
  cudaMemLimitBytes: number;
  cudaConvAlgoSearch: (typeof CUDA_CONV_ALGO_SEARCH)[number];
  cudaArenaExtendStrategy: (typeof CUDA_ARENA_EXTEND_STRATEGY)[number];
}

export type ProviderOptionValue = string | number | boolean;

/**
 * The keys a provider object carries besides its name, as ONNX Runtime's C API spells them
 * (TensorRT EP and CUDA EP documentation). Values the patched binding turns into the
 * strings the C API parses: booleans to "1"/"0", numbers to decimal.
 */
export function gpuProviderOptions(provider: GpuProvider, t: ProviderTuning): Record<string, ProviderOptionValue> {
  if (provider === "tensorrt") {
    const o: Record<string, ProviderOptionValue> = {
      trt_fp16_enable: t.trtFp16,
      // QDQ models carry their own scales, so INT8 needs no calibration table.
      trt_int8_enable: t.trtInt8,
      trt_engine_cache_enable: t.trtEngineCache,
      trt_timing_cache_enable: t.trtTimingCache,
    };
    if (t.trtEngineCache) o.trt_engine_cache_path = t.trtCacheDir;
    if (t.trtTimingCache) o.trt_timing_cache_path = t.trtCacheDir;
    if (t.trtMaxWorkspaceBytes > 0) o.trt_max_workspace_size = t.trtMaxWorkspaceBytes;
    return o;
  }
  const o: Record<string, ProviderOptionValue> = {
    cudnn_conv_algo_search: t.cudaConvAlgoSearch.toUpperCase(),
    arena_extend_strategy: t.cudaArenaExtendStrategy === "nextPowerOfTwo" ? "kNextPowerOfTwo" : "kSameAsRequested",
  };
  if (t.cudaMemLimitBytes > 0) o.gpu_mem_limit = t.cudaMemLimitBytes;
  return o;
}

/**
 * What the loaded binding does with the keys of a GPU provider object:
 * - honoured: every GPU provider it was built with forwards them (the patched binding);
 * - ignored: it was built with a GPU provider that drops them (the stock binding on x64);
 * - no-gpu-providers: it has neither cuda nor tensorrt (the stock binding on arm64, macOS).
 */
export type ProviderOptionSupport = "honoured" | "ignored" | "no-gpu-providers";
export const PROVIDER_OPTION_SUPPORT: readonly ProviderOptionSupport[] = ["honoured", "ignored", "no-gpu-providers"];

/** An entry of listSupportedBackends(); `providerOptions` is the patch's mark. */
interface BackendEntry {
  name: string;
  bundled?: boolean;
  providerOptions?: unknown;
}

/** From the binding's listSupportedBackends(); no session is created. */
export function detectProviderOptionSupport(backends: readonly BackendEntry[]): ProviderOptionSupport {
  const gpu = backends.filter((b) => (GPU_PROVIDERS as readonly string[]).includes(b.name));
  if (gpu.length === 0) return "no-gpu-providers";
  return gpu.every((b) => b.providerOptions === true) ? "honoured" : "ignored";
}

/** "trt_fp16_enable=true, trt_engine_cache_path=/var/cache/perceptd/trt", for messages. */
export function describeProviderOptions(options: Record<string, ProviderOptionValue>): string {
  return Object.entries(options)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(", ");
}

/**
 * The start-up line about the binding: a warning where the chain names a GPU provider
 * whose options cannot reach it, information otherwise.
 */
export function providerOptionsNotice(support: ProviderOptionSupport, chain: readonly string[]): { level: "info" | "warn"; message: string } {
  const gpu = chain.filter((p) => (GPU_PROVIDERS as readonly string[]).includes(p));
  if (support === "honoured") return { level: "info", message: "onnxruntime-node binding: TensorRT/CUDA provider options honoured" };
  const what =
    support === "ignored"
      ? "TensorRT/CUDA provider options ignored (stock binding: the GPU providers get their device id only)"
      : "no TensorRT/CUDA provider in this build";
  if (gpu.length === 0) return { level: "info", message: `onnxruntime-node binding: ${what}` };
  return {
    level: "warn",
    message: `onnxruntime-node binding: ${what}; inference.${gpu.join("/")} settings cannot take effect (docs/jetson.md builds a binding that applies them)`,
  };
}
