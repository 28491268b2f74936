// ONNX Runtime sessions with an explicit execution-provider fallback chain. ORT's own
// list (["cuda", "cpu"]) fails as a whole when one provider's library is missing, and
// never says which provider ended up running the graph; trying each provider alone keeps
// both facts, so the daemon can report "running on cpu because cuda: <reason>".
import { stat } from "node:fs/promises";
import * as ort from "onnxruntime-node";
import { EXECUTION_PROVIDERS, type ExecutionProvider } from "../core/providers.ts";
import { describeProviderOptions, detectProviderOptionSupport, gpuProviderOptions, type ProviderOptionSupport, type ProviderTuning } from "./provider-options.ts";


export interface SessionOptions {
  /** Tried one at a time, in this order. Default: tensorrt, cuda, cpu. */
  executionProviders?: readonly ExecutionProvider[];
  /** Threads inside one operator; 0 or absent lets ORT decide. */
  intraOpThreads?: number;
  /** Threads across independent operators; 0 or absent lets ORT decide. */
  interOpThreads?: number;
  /**
   * Whether ORT's pool threads busy-wait for work between operators (ORT's default: yes).
   * Spinning shaves a little off one run but burns the cores meanwhile, which a daemon
   * that also decodes video and publishes on the same cores pays for (see the README's
   * pipeline bench). Absent: ORT's default.
   */
  allowSpinning?: boolean;
  /**
   * TensorRT and CUDA provider options (FP16/INT8, engine and timing caches, workspace,
   * memory limit). They reach the providers only through a binding built with our patch
   * (provider-options.ts); the stock onnxruntime-node passes the device id alone, so a GPU
   * session on it reports the options in `warnings` rather than pretending.
   */
  tuning?: ProviderTuning;
  /** What to call the model in messages when bytes are passed, e.g. its path. */
  source?: string;
}

export interface ProviderAttempt {
  provider: ExecutionProvider;
  /** Absent for the provider that succeeded. */
  error?: string;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
  /** Every provider tried, in order, ending with the one that worked. */
  tried: ProviderAttempt[];
  /** Options that were accepted but could not be applied. */
  warnings: string[];
  /** Whether the loaded binding hands GPU providers their options (provider-options.ts). */
  providerOptions: ProviderOptionSupport;
}

function checkThreads(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
    throw new RangeError(`createSession: ${name} must be a non-negative integer, got ${String(value)}`);
  }
}

/** ORT messages can span lines (native log context); one line is enough for a summary. */
function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, " ").trim();
}

// A model that cannot be parsed fails the same way on every provider; recognising it lets
// the error say "not an ONNX model" instead of blaming three providers for it.
const MODEL_PROBLEM = /protobuf parsing failed|load model .* failed|failed to load model|invalid_graph|invalid_protobuf|no_model/i;

async function checkModelFile(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? `model file ${path} does not exist` : `cannot read model file ${path}: ${oneLine(err)}`, {
      cause: err,
    });
  }
  if (!info.isFile()) throw new Error(`model file ${path} is not a regular file`);
  if (info.size === 0) throw new Error(`model file ${path} is empty, expected an ONNX model`);
}

/**
 * The executionProviders entry for one provider: a GPU provider carries its options when
 * the binding honours them; otherwise it goes by name, and `notApplied` says what was lost.
 */
function providerConfig(
  provider: ExecutionProvider,
  tuning: ProviderTuning | undefined,
  support: ProviderOptionSupport,
): { config: ort.InferenceSession.ExecutionProviderConfig; notApplied?: string } {
  if (provider === "cpu" || tuning === undefined) return { config: provider };
  const extra = gpuProviderOptions(provider, tuning);
  if (support === "honoured") {
    const config: ort.InferenceSession.ExecutionProviderOption = { name: provider, ...extra };
    return { config };
  }
  return {
    config: provider,
    notApplied:
      `${provider}: options not applied (${describeProviderOptions(extra)}): onnxruntime-node ${ort.env.versions.node ?? "?"} ` +
      `passes only the device id to the ${provider} provider; a binding built with ` +
      `patches/onnxruntime-1.30.0-node-provider-options.patch applies them (docs/jetson.md)`,
  };
}

export async function createSession(model: string | Uint8Array, opts: SessionOptions = {}): Promise<CreatedSession> {
  const providers = opts.executionProviders ?? EXECUTION_PROVIDERS;
  if (providers.length === 0) throw new RangeError("createSession: executionProviders is empty");
  for (const p of providers) {
    if (!(EXECUTION_PROVIDERS as readonly string[]).includes(p)) {
      throw new RangeError(
        `createSession: unknown execution provider ${JSON.stringify(p)}; known: ${EXECUTION_PROVIDERS.join(", ")}`,
      );
    }
  }
  checkThreads("intraOpThreads", opts.intraOpThreads);
  checkThreads("interOpThreads", opts.interOpThreads);

  const source = typeof model === "string" ? model : (opts.source ?? `in-memory model (${model.byteLength} bytes)`);
  if (typeof model === "string") await checkModelFile(model);
  else if (model.byteLength === 0) throw new Error(`${source}: empty model, expected an ONNX model`);

  const base: ort.InferenceSession.SessionOptions = {};
  if (opts.intraOpThreads !== undefined) base.intraOpNumThreads = opts.intraOpThreads;
  if (opts.interOpThreads !== undefined) base.interOpNumThreads = opts.interOpThreads;
  if (opts.allowSpinning !== undefined) {
    // Session config keys session.intra_op.allow_spinning / session.inter_op.allow_spinning
    // (onnxruntime_session_options_config_keys.h); the Node binding takes string values.
    const spin = opts.allowSpinning ? "1" : "0";
    base.extra = { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } };
  }

  const providerOptions = detectProviderOptionSupport(ort.listSupportedBackends());
  const tried: ProviderAttempt[] = [];
  for (const provider of providers) {
    const { config, notApplied } = providerConfig(provider, opts.tuning, providerOptions);
    const options: ort.InferenceSession.SessionOptions = { ...base, executionProviders: [config] };
    try {
      const session =
        typeof model === "string"
          ? await ort.InferenceSession.create(model, options)
          : await ort.InferenceSession.create(model, options);
      tried.push({ provider });
      return { session, provider, tried, warnings: notApplied === undefined ? [] : [notApplied], providerOptions };
    } catch (err) {
      tried.push({ provider, error: oneLine(err) });
    }
  }

  const list = tried.map((t) => `[${t.provider}] ${t.error ?? ""}`).join(", ");
  const modelProblem = tried.find((t) => t.error !== undefined && MODEL_PROBLEM.test(t.error));
  if (modelProblem !== undefined) {
    throw new Error(`${source}: not a valid ONNX model (${modelProblem.error}); tried: ${list}`);
  }
  throw new Error(`${source}: no execution provider could create a session. ERR: ${list}`);
}
