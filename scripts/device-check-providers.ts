// For scripts/device-check.sh: which execution providers the installed onnxruntime-node
// binding loads, each tried alone with a real session on the manifest's default model, and
// what the binding does with GPU provider options. Prints one JSON object.
import * as ort from "onnxruntime-node";
import { detectProviderOptionSupport } from "../src/infer/provider-options.ts";
import { createSession } from "../src/infer/session.ts";
import { EXECUTION_PROVIDERS } from "../src/core/providers.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, resolveModel } from "../src/infer/manifest.ts";

// Each failed provider load is one line here; ORT would print it again on stderr.
ort.env.logLevel = "fatal";
const manifest = await readManifest(DEFAULT_MANIFEST_PATH);
const model = resolveModel(manifest, DEFAULT_MANIFEST_PATH, undefined);
const providers = [];
for (const provider of EXECUTION_PROVIDERS) {
  try {
    const { session } = await createSession(model.path, { executionProviders: [provider], intraOpThreads: 1 });
    await session.release();
    providers.push({ provider, loads: true });
  } catch (err) {
    // createSession names the provider and the model; the reason follows the last "] ".
    const text = err instanceof Error ? err.message : String(err);
    providers.push({ provider, loads: false, error: text.slice(text.lastIndexOf("] ") + 2) });
  }
}
const backends = ort.listSupportedBackends();
console.log(
  JSON.stringify(
    { onnxruntimeNode: ort.env.versions.node, model: model.name, backends, providerOptions: detectProviderOptionSupport(backends), providers },
    null,
    2,
  ),
);
