// `perceptd bench ...`: benchmarks that print a Markdown report (or JSON) meant to be pasted
// into issues as is. A group, so each bench is its own subcommand: `bench model` times the
// graphs alone, `bench pipeline` the whole daemon against them.
import os from "node:os";
import { InvalidArgumentError, type Command } from "commander";
import type { BenchProgress, ModelBenchOptions } from "../bench/model-bench.ts";
import type { PipelineBenchOptions } from "../bench/pipeline-bench.ts";
import { DEFAULT_PIPELINE_FRAMES, DEFAULT_PIPELINE_WARMUP } from "../bench/pipeline-defaults.ts";
import { statusWriter } from "../status-writer.ts";
import { EXECUTION_PROVIDERS, type ExecutionProvider } from "../../core/providers.ts";

function providerOption(value: string): ExecutionProvider {
  const p = EXECUTION_PROVIDERS.find((known) => known === value);
  if (p === undefined) throw new InvalidArgumentError(`expected one of ${EXECUTION_PROVIDERS.join(", ")}, got "${value}"`);
  return p;
}

function intOption(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
    }
    return n;
  };
}

function listOption(value: string): string[] {
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError(`expected comma-separated model names, got "${value}"`);
  return names;
}

function progressPrinter(stream: NodeJS.WriteStream): { onProgress: (e: BenchProgress) => void; done: () => void } {
  const { tty, status, line, done } = statusWriter(stream);
  const onProgress = (e: BenchProgress): void => {
    switch (e.kind) {
      case "decode":
        if (tty) status(`bench: decoding frame ${e.done}/${e.total}`);
        else if (e.done === e.total) line(`bench: decoded and preprocessed ${e.done} frames`);
        return;
      case "load":
        if (tty) status(`bench: ${e.group}: loading ${e.what}`);
        return;
      case "run":
        if (tty) status(`bench: ${e.group}: ${e.warmup ? "warm-up" : "frame"} ${e.frame}/${e.frames}`);
        return;
      case "group-done":
        for (const r of e.rows) {
          line(
            `bench: ${r.model}, ${r.runtime}, ${r.threads} thread${r.threads === 1 ? "" : "s"}: ` +
              `p50 ${r.stats.p50Ms.toFixed(2)} ms, p99 ${r.stats.p99Ms.toFixed(2)} ms`,
          );
        }
        return;
    }
  };
  return { onProgress, done };
}

interface PipelineCommandOptions {
  video?: string;
  frames: number;
  warmup: number;
  model?: string;
  threads?: number;
  spinning?: boolean;
  replayWorkers?: number;
  json?: boolean;
}

interface ModelCommandOptions {
  provider: ExecutionProvider;
  config: string;
  set: string[];
  frames: number;
  warmup: number;
  threads?: number;
  models?: string[];
  tfjs: boolean;
  json?: boolean;
  video?: string;
}

export function register(program: Command): void {
  const bench = program.command("bench").description("benchmarks: side-by-side latency and throughput");

  bench
    .command("model")
    .description(
      "time each manifest model's graph on ONNX Runtime (CPU) against the original TensorFlow.js graph (wasm), " +
        "on the same decoded video frames; prints a Markdown table",
    )
    .option("--frames <n>", "timed runs per model and runtime, one per frame spread across the clip", intOption(1), 30)
    .option("--warmup <n>", "untimed runs per model and runtime first", intOption(0), 3)
    .option("--threads <n>", `ONNX Runtime intra-op threads (default: cores, here ${os.availableParallelism()})`, intOption(1))
    .option("--models <names>", "comma-separated manifest models (default: all)", listOption)
    .option("--no-tfjs", "skip the TensorFlow.js side")
    .option("--json", "print only the JSON result on stdout")
    .option("--video <path>", "video to take frames from (default: .cache/fixtures/vtest.avi in the repository)")
    .option("--provider <name>", `execution provider of the ORT rows, no fallback (${EXECUTION_PROVIDERS.join(", ")})`, providerOption, "cpu")
    .option("--config <path>", "configuration whose inference.trt*/cuda* keys tune a GPU provider", "config/default.yaml")
    .option("--set <key=value>", "override a config key (repeatable), e.g. --set inference.trtFp16=false", (v: string, prev: string[]) => [...prev, v], [])
    .action(async (opts: ModelCommandOptions) => {
      const { benchModels, renderModelBench } = await import("../bench/model-bench.ts");
      const { ConfigError, loadConfig } = await import("../../config/load.ts");
      const { EX_CONFIG, ExitError } = await import("./run.ts");
      // The provider tuning comes from the one config schema, so a bench row and the daemon
      // are tuned by the same keys; a bad key or value fails here with exit 78 like `run`.
      let tuning;
      try {
        tuning = (await loadConfig(opts.config, { set: opts.set })).config.inference;
      } catch (e) {
        if (e instanceof ConfigError) throw new ExitError(e.message, EX_CONFIG);
        throw e;
      }
      const progress = progressPrinter(process.stderr);
      const benchOpts: ModelBenchOptions = {
        frames: opts.frames,
        warmup: opts.warmup,
        threads: opts.threads,
        provider: opts.provider,
        tuning,
        models: opts.models,
        tfjs: opts.tfjs,
        video: opts.video,
        onProgress: progress.onProgress,
      };
      let result;
      try {
        result = await benchModels(benchOpts);
      } finally {
        progress.done();
      }
      process.stdout.write(opts.json === true ? JSON.stringify(result, null, 2) + "\n" : renderModelBench(result));
    });

  bench
    .command("pipeline")
    .description(
      "the whole daemon against a raw ONNX Runtime loop on the same video and model: the raw loop, the daemon replaying the " +
        "file unpaced, the daemon behind a camera below the raw rate, and behind one faster than it; throughput, end-to-end " +
        "latency at a ZeroMQ subscriber, drops from /metrics; prints one Markdown table",
    )
    .option("--video <path>", "video to play (default: .cache/fixtures/vtest.avi in the repository)")
    .option("--frames <n>", "timed frames per scenario: session runs for the raw loop, bus messages for the daemon", intOption(2), DEFAULT_PIPELINE_FRAMES)
    .option("--warmup <n>", "untimed runs of the raw loop, and a daemon's first messages left out of its window", intOption(1), DEFAULT_PIPELINE_WARMUP)
    .option("--model <name>", "manifest model (default: the manifest's default)")
    .option("--threads <n>", `ONNX Runtime intra-op threads, raw loop and daemon alike (default: ORT's, one per core; here ${os.availableParallelism()} cores)`, intOption(1))
    .option("--spinning", "let ONNX Runtime's threads busy-wait between operators, raw loop and daemon alike (inference.allowSpinning; default off)")
    .option("--replay-workers <n>", "sessions the daemon runs side by side for the unpaced replay (inference.replayWorkers; default 0: automatic)", intOption(0))
    .option("--json", "print only the JSON result on stdout")
    .action(async (opts: PipelineCommandOptions) => {
      const { benchPipeline, renderPipelineBench } = await import("../bench/pipeline-bench.ts");
      const { line } = statusWriter(process.stderr);
      const benchOpts: PipelineBenchOptions = {
        video: opts.video,
        frames: opts.frames,
        warmup: opts.warmup,
        model: opts.model,
        threads: opts.threads,
        spinning: opts.spinning,
        replayWorkers: opts.replayWorkers,
        onProgress: (text) => line(`bench: ${text}`),
      };
      const result = await benchPipeline(benchOpts);
      process.stdout.write(opts.json === true ? JSON.stringify(result, null, 2) + "\n" : renderPipelineBench(result));
    });
}
