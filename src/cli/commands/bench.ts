// `perceptd bench ...`: benchmarks that print a Markdown report (or JSON) meant to be pasted
// into issues as is. A group, so each bench is its own subcommand; `bench pipeline` joins
// `bench model` once the daemon exists.
import os from "node:os";
import { InvalidArgumentError, type Command } from "commander";
import type { BenchProgress, ModelBenchOptions } from "../bench/model-bench.ts";

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

/**
 * On a terminal one line is rewritten in place; elsewhere (CI logs, `2> file`) carriage
 * returns would pile up into one unreadable line, so only milestones are written, one a line.
 */
function progressPrinter(stream: NodeJS.WriteStream): { onProgress: (e: BenchProgress) => void; done: () => void } {
  const tty = stream.isTTY === true;
  let live = false;
  const status = (text: string): void => {
    stream.write(`\r\x1b[2K${text}`);
    live = true;
  };
  const line = (text: string): void => {
    if (live) stream.write("\r\x1b[2K");
    live = false;
    stream.write(`${text}\n`);
  };
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
  return {
    onProgress,
    done: () => {
      if (live) stream.write("\r\x1b[2K");
      live = false;
    },
  };
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
}
