// `perceptd bench ...`: benchmarks that print a Markdown report (or JSON) meant to be pasted
// into issues as is. A group, so each bench is its own subcommand: `bench model` times the
// graphs alone, `bench pipeline` the whole daemon against them.
import os from "node:os";
import { InvalidArgumentError, type Command } from "commander";
import type { BenchProgress, ModelBenchOptions } from "../bench/model-bench.ts";
import type { PipelineBenchOptions, PipelineBenchProgress } from "../bench/pipeline-bench.ts";
import { DEFAULT_PIPELINE_FRAMES, DEFAULT_PIPELINE_WARMUP } from "../bench/pipeline-defaults.ts";

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

interface StatusWriter {
  tty: boolean;
  /** rewrites the live line (terminals only) */
  status: (text: string) => void;
  /** a milestone, one a line */
  line: (text: string) => void;
  /** clears the live line */
  done: () => void;
}

/**
 * On a terminal one line is rewritten in place; elsewhere (CI logs, `2> file`) carriage
 * returns would pile up into one unreadable line, so only milestones are written, one a line.
 */
function statusWriter(stream: NodeJS.WriteStream): StatusWriter {
  const tty = stream.isTTY === true;
  let live = false;
  return {
    tty,
    status: (text) => {
      if (!tty) return;
      stream.write(`\r\x1b[2K${text}`);
      live = true;
    },
    line: (text) => {
      if (live) stream.write("\r\x1b[2K");
      live = false;
      stream.write(`${text}\n`);
    },
    done: () => {
      if (live) stream.write("\r\x1b[2K");
      live = false;
    },
  };
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

function pipelineProgressPrinter(stream: NodeJS.WriteStream): { onProgress: (e: PipelineBenchProgress) => void; done: () => void } {
  const { status, line, done } = statusWriter(stream);
  const ms = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? "-" : `${v.toFixed(1)} ms`);
  const onProgress = (e: PipelineBenchProgress): void => {
    switch (e.kind) {
      case "step":
        line(`bench: ${e.scenario === null ? "" : `${e.scenario}: `}${e.text}`);
        return;
      case "decode":
        if (e.done === e.total) line(`bench: decoded and resized ${e.done} frames`);
        else status(`bench: decoding frame ${e.done}/${e.total}`);
        return;
      case "frames":
        status(`bench: ${e.scenario}: ${e.warmup ? "warm-up" : "frame"} ${e.done}/${e.total}`);
        return;
      case "scenario-done": {
        const r = e.result;
        line(
          `bench: ${r.label}: ${r.processedPerSec.toFixed(1)} frames/s` +
            (r.e2e ? `, e2e p50 ${ms(r.e2e.p50Ms)} p99 ${ms(r.e2e.p99Ms)}` : "") +
            (r.inference ? `, inference p99 ${r.inference.source === "histogram" ? "~" : ""}${ms(r.inference.p99Ms)}` : "") +
            (r.drops ? `, dropped ${r.drops.droppedTotal}/${r.drops.ingestedTotal}` : "") +
            ((r.cpu?.otherProcessesPct ?? 0) >= 10 ? ` (other processes took ${r.cpu?.otherProcessesPct?.toFixed(0)}% of a core: figures suspect)` : ""),
        );
        return;
      }
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
  frameTrace?: boolean;
  json?: boolean;
}

interface ModelCommandOptions {
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
    .action(async (opts: ModelCommandOptions) => {
      const { benchModels, renderModelBench } = await import("../bench/model-bench.ts");
      const progress = progressPrinter(process.stderr);
      const benchOpts: ModelBenchOptions = {
        frames: opts.frames,
        warmup: opts.warmup,
        threads: opts.threads,
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
      "the whole daemon against a raw ONNX Runtime loop on the same video and model: (a) raw loop, (a2) raw loop in " +
        "the daemon's replay arrangement (sessions side by side), (a3) raw loop paced as (c), (b) daemon on the unpaced " +
        "file, (c) paced below saturation, (c2) the bus alone paced as (c), (c3) the model and the bus paced as (c) without " +
        "the daemon, (d) overloaded; throughput, end-to-end " +
        "latency from a ZeroMQ subscriber, drops from /metrics; prints a Markdown table with the targets",
    )
    .option("--video <path>", "video to play (default: .cache/fixtures/vtest.avi in the repository)")
    .option("--frames <n>", "timed frames per scenario: session runs for (a)-(a3), bus messages for (b)-(d), (c2) and (c3)", intOption(2), DEFAULT_PIPELINE_FRAMES)
    .option(
      "--warmup <n>",
      "untimed session runs for (a), and messages discarded before the timed ones in (b)-(d), (c2) and (c3), so that a daemon's first frames (V8 still compiling its frame path) stay out of the window",
      intOption(1),
      DEFAULT_PIPELINE_WARMUP,
    )
    .option("--model <name>", "manifest model (default: the manifest's default)")
    .option("--threads <n>", `ONNX Runtime intra-op threads, raw loop and daemon alike (default: ORT's, one per core; here ${os.availableParallelism()} cores)`, intOption(1))
    .option("--spinning", "let ONNX Runtime's threads busy-wait between operators, raw loop and daemon alike (inference.allowSpinning; default off)")
    .option(
      "--replay-workers <n>",
      "sessions the daemon runs side by side for the unpaced replay (b), and the raw side-by-side loop (a2) with it (inference.replayWorkers; default 0: automatic)",
      intOption(0),
    )
    .option(
      "--frame-trace",
      "run the daemons at log level trace, so that each logs every frame's stage timings, and take each daemon scenario's slowest frames apart in the report (costs the daemon a log line per frame)",
    )
    .option("--json", "print only the JSON result on stdout")
    .action(async (opts: PipelineCommandOptions) => {
      const { benchPipeline, renderPipelineBench } = await import("../bench/pipeline-bench.ts");
      const progress = pipelineProgressPrinter(process.stderr);
      const benchOpts: PipelineBenchOptions = {
        video: opts.video,
        frames: opts.frames,
        warmup: opts.warmup,
        model: opts.model,
        threads: opts.threads,
        spinning: opts.spinning,
        replayWorkers: opts.replayWorkers,
        frameTrace: opts.frameTrace === true,
        onProgress: progress.onProgress,
      };
      let result;
      try {
        result = await benchPipeline(benchOpts);
      } finally {
        progress.done();
      }
      process.stdout.write(opts.json === true ? JSON.stringify(result, null, 2) + "\n" : renderPipelineBench(result));
    });
}
