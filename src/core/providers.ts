// ONNX Runtime execution providers perceptd knows, in the order of preference: the config
// schema's enum, the session's fallback chain and the CLI's --providers default all read
// this list. Pure: no imports.

export const EXECUTION_PROVIDERS = ["tensorrt", "cuda", "cpu"] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];
