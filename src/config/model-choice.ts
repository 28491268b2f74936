// Which model the daemon runs: `model.byProvider` names a model per execution provider, so one
// config can say "the INT8 model on a CPU host, the FP32 model where TensorRT builds its own
// FP16 engine". The provider that decides is the first one in inference.executionProviders:
// that list is the host's intent (a Jetson config starts with tensorrt, an x86 one with cpu).
// Choosing by the provider that actually loads would mean loading a model to find out which
// model to load; instead, if the session falls back to another provider, the daemon logs that
// the model was chosen for a provider that did not load (modelProviderMismatch).
import type { Config } from "./schema.ts";

export type ModelChoiceSource = "byProvider" | "name" | "manifest default";

export interface ModelChoice {
  /** manifest name, or undefined for the manifest's default */
  name: string | undefined;
  /** the provider the choice was made for */
  provider: Config["inference"]["executionProviders"][number];
  source: ModelChoiceSource;
}

export function chooseModel(config: Pick<Config, "model" | "inference">): ModelChoice {
  const provider = config.inference.executionProviders[0];
  const byProvider = config.model.byProvider[provider];
  if (byProvider !== undefined) return { name: byProvider, provider, source: "byProvider" };
  return { name: config.model.name, provider, source: config.model.name === undefined ? "manifest default" : "name" };
}

/** A warning when the model was picked from byProvider for a provider other than the one that loaded; null otherwise. */
export function modelProviderMismatch(choice: ModelChoice, loaded: string): string | null {
  if (choice.source !== "byProvider" || choice.provider === loaded) return null;
  return `model ${choice.name} was chosen by model.byProvider.${choice.provider}, but ONNX Runtime loaded it on ${loaded}; name a model for ${loaded} in model.byProvider, or list only the providers this host has`;
}
