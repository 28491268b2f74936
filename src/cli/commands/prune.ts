// `perceptd prune <model> --out <file.onnx>`: structured (whole channels) or unstructured
// (magnitude, storage only) pruning of an ONNX detector, with a JSON + Markdown report next to
// the output. The work is in src/model/prune/pipeline.ts; this file parses and prints.
import { InvalidArgumentError, type Command } from "commander";
import { nonNegativeInt, positiveInt, positiveNumber } from "../option-parsers.ts";
import { statusWriter } from "../status-writer.ts";
import { IMPORTANCE_KINDS, type ImportanceKind } from "../../model/prune/importance.ts";
import { RECOVER_LAYERS, type RecoverLayers } from "../../model/prune/recover-layers.ts";

/** A command line a POSIX shell reads back as the same argv (for the report). */
function commandLineOf(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

function fraction(name: string, openHigh = true): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < 0 || (openHigh ? n >= 1 : n > 1)) {
      throw new InvalidArgumentError(`${name} must be a number in [0, ${openHigh ? "1)" : "1]"}, got "${value}"`);
    }
    return n;
  };
}

function minChannels(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (n >= 1 && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`expected a channel count >= 1 or a fraction in (0, 1), got "${value}"`);
  }
  return n;
}

/** "a=0.5,b=0.25" -> { a: 0.5, b: 0.25 }; the last "=" splits, so names may contain "=". */
export function parseRatios(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = item.lastIndexOf("=");
    if (at <= 0) throw new InvalidArgumentError(`--ratios item "${item}" is not NAME=RATIO (NAME a Conv node name or a regular expression)`);
    out[item.slice(0, at)] = fraction(`--ratios ${item.slice(0, at)}`)(item.slice(at + 1));
  }
  if (Object.keys(out).length === 0) throw new InvalidArgumentError(`--ratios "${value}" lists nothing; expected NAME=RATIO,...`);
  return out;
}

function collect(value: string, prev: string[] = []): string[] {
  return [...prev, ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

interface PruneFlags {
  out: string;
  method: "structured" | "unstructured";
  ratio?: number;
  ratios?: Record<string, number>;
  targetFlops?: number;
  targetLatency?: number;
  importance: ImportanceKind;
  round?: number;
  minChannels?: number;
  ignore?: string[];
  protectStem: boolean;
  scope: "global" | "layer";
  recover?: boolean;
  recoverLayers?: RecoverLayers;
  samplesPerFrame?: number;
  oversample?: number;
  ridge?: number | "auto";
  validation?: string[];
  validationFrames?: number;
  compensate: boolean;
  calibration?: string[];
  calibrationFrames?: number;
  sweepFrames?: number;
  evalFrames?: number;
  report?: string;
  latencyRuns?: number;
  threads?: number;
  manifest?: string;
}

export function register(program: Command): void {
  program
    .command("prune")
    .description(
      "prune an ONNX detector: structured (whole channels, grouped across Add, Mul, Concat, Split, depthwise Conv) " +
        "or unstructured (zeroed weights: smaller compressed file, no speed-up on dense hardware); writes the model, " +
        "checked with the ONNX checker and ONNX Runtime, and a JSON + Markdown report with latency measured side by side",
    )
    .argument("<model>", "ONNX file or manifest name (e.g. nanodet)")
    .requiredOption("-o, --out <file.onnx>", "where to write the pruned model (written atomically)")
    .option("--method <method>", "structured or unstructured", (v) => {
      if (v !== "structured" && v !== "unstructured") throw new InvalidArgumentError(`expected structured or unstructured, got "${v}"`);
      return v;
    }, "structured")
    .option("--ratio <r>", "structured: share of each group's channels to remove; unstructured: target sparsity; in [0, 1)", fraction("--ratio"))
    .option("--ratios <list>", "per-group ratios NAME=R,... (NAME: a Conv node name or a regular expression over node names)", parseRatios)
    .option("--target-flops <f>", "pick per-group ratios by sensitivity sweep until FLOPs <= f x dense (needs --calibration)", fraction("--target-flops", false))
    .option("--target-latency <f>", "as --target-flops, then tighten until measured latency <= f x dense (needs --calibration)", fraction("--target-latency", false))
    .option(
      "--importance <kind>",
      "l1, l2 (group weight magnitude), activation (mean |activation|) or reconstruction (greedy: the channels the next " +
        "layer can least rebuild from the kept ones stay; for --recover); the last two need --calibration",
      (v) => {
        if (!(IMPORTANCE_KINDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected ${IMPORTANCE_KINDS.join(", ")}, got "${v}"`);
        return v as ImportanceKind;
      },
      "l1",
    )
    .option("--round <n>", "kept channel counts round to a multiple of n (default 8)", positiveInt)
    .option("--min-channels <n>", "floor on kept channels per group: a count, or a fraction of the group if < 1 (default 8)", minChannels)
    .option("--ignore <nodes>", "node names or regular expressions whose channels are kept (repeatable, comma-separated)", collect)
    .option("--no-protect-stem", "allow pruning the first conv's output channels")
    .option("--scope <scope>", "unstructured: global (one threshold) or layer (same sparsity per layer)", (v) => {
      if (v !== "global" && v !== "layer") throw new InvalidArgumentError(`expected global or layer, got "${v}"`);
      return v;
    }, "global")
    .option("--recover", "refit the Convs whose inputs lost channels by least squares on calibration frames (needs --calibration)")
    .option(
      "--recover-layers <which>",
      "--recover: consumers (the Convs whose inputs lost channels) or all (those and every Conv downstream of one) (default consumers)",
      (v) => {
        if (!(RECOVER_LAYERS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected ${RECOVER_LAYERS.join(" or ")}, got "${v}"`);
        return v as RecoverLayers;
      },
    )
    .option("--samples-per-frame <n>", "--recover: least output positions sampled per calibration frame and refitted Conv (default 128)", positiveInt)
    .option("--oversample <n>", "--recover: least fit samples per unknown of a refitted Conv; fewer overfit the calibration frames (default 4)", positiveNumber)
    .option(
      "--ridge <auto|value>",
      "--recover: regularise the refit toward the original weights of the kept channels (not toward zero), so what the calibration " +
        "data does not show is kept; auto picks the strength per layer on --validation data",
      (v) => {
        if (v === "auto") return v;
        const n = Number(v);
        if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`expected auto or a number > 0, got "${v}"`);
        return n;
      },
    )
    .option("--validation <data>", "--ridge: data the strength is picked on, repeatable, never fitted to (default corpus:validation)", (v: string, prev: string[] = []) => [...prev, v])
    .option("--validation-frames <n>", "--ridge: validation frames read, spread over the data (default all)", positiveInt)
    .option("--no-compensate", "do not fold removed channels' mean activation into the next layer's bias (done by default with --calibration)")
    .option(
      "--calibration <data>",
      "calibration data, repeatable: one video alone gives frames from its first quarter (e.g. .cache/fixtures/vtest.avi); otherwise " +
        "built-in sets (corpus:calibration), pictures, videos with frame ranges (clip.avi:0-197:2) and folders, read through the frame " +
        "cache; test and validation data are refused",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--calibration-frames <n>", "calibration frames (default 48 with --recover or --importance reconstruction, else 16)", positiveInt)
    .option("--eval-frames <n>", "frames after the calibration part of the video on which agreement with the dense parent is measured (default 50; 0 skips)", nonNegativeInt)
    .option("--sweep-frames <n>", "calibration frames the sensitivity sweep compares outputs on (default 4)", positiveInt)
    .option("--report <prefix>", "write <prefix>.json and <prefix>.md (default: the output path with .report instead of .onnx)")
    .option("--latency-runs <n>", "timed runs per model for the side-by-side latency (default 20)", positiveInt)
    .option("--threads <n>", "ONNX Runtime intra-op threads for every session (default: all usable cores)", positiveInt)
    .option("--manifest <path>", "model manifest")
    .action(async (model: string, flags: PruneFlags) => {
      const { runPrune } = await import("../../model/prune/pipeline.ts");
      const progress = statusWriter(process.stderr);
      const onProgress = (text: string, transient = false): void => (transient ? progress.status(text) : progress.line(text));
      try {
        const { report, reportFiles } = await runPrune({
          model,
          out: flags.out,
          manifestPath: flags.manifest,
          method: flags.method,
          ratio: flags.ratio,
          ratios: flags.ratios,
          targetFlops: flags.targetFlops,
          targetLatency: flags.targetLatency,
          importance: flags.importance,
          round: flags.round,
          minChannels: flags.minChannels,
          ignore: flags.ignore,
          protectStem: flags.protectStem,
          scope: flags.scope,
          recover: flags.recover,
          recoverLayers: flags.recoverLayers,
          samplesPerFrame: flags.samplesPerFrame,
          oversample: flags.oversample,
          ridge: flags.ridge,
          validation: flags.validation,
          validationFrames: flags.validationFrames,
          compensate: flags.compensate,
          calibration: flags.calibration,
          calibrationFrames: flags.calibrationFrames,
          sweepFrames: flags.sweepFrames,
          evalFrames: flags.evalFrames,
          report: flags.report,
          latencyRuns: flags.latencyRuns,
          threads: flags.threads,
          command: commandLineOf(["perceptd", "prune", ...process.argv.slice(3)]),
          onProgress,
        });
        progress.done();
        const l = report.latency?.rows;
        process.stdout.write(
          `${report.model.output}\n` +
            `  FLOPs ${(report.flops.before / 1e9).toFixed(3)}G -> ${(report.flops.after / 1e9).toFixed(3)}G, ` +
            `params ${(report.parameters.before / 1e6).toFixed(2)}M -> ${(report.parameters.after / 1e6).toFixed(2)}M, ` +
            `file ${(report.fileBytes.before / 1e6).toFixed(1)}MB -> ${(report.fileBytes.after / 1e6).toFixed(1)}MB ` +
            `(compressed ${(report.compressedBytes.before / 1e6).toFixed(1)}MB -> ${(report.compressedBytes.after / 1e6).toFixed(1)}MB)\n` +
            (l ? `  latency p50 dense ${l[0].stats.p50Ms.toFixed(1)} ms, pruned ${l[1].stats.p50Ms.toFixed(1)} ms: ${l[1].speedup.toFixed(2)}x (same run, interleaved)\n` : "") +
            (report.agreement
              ? `  agreement with the dense parent on ${report.agreement.frames} frames: mAP@0.5 ${report.agreement.map50.toFixed(3)}, ` +
                `person AP@0.5 ${(report.agreement.perClass.find((c) => c.label === "person")?.ap50 ?? NaN).toFixed(3)}, person recall ${report.agreement.personRecall.toFixed(3)}\n`
              : "") +
            (report.unstructured ? `  ${report.unstructured.note}\n` : "") +
            `  report: ${reportFiles.markdown}, ${reportFiles.json}\n`,
        );
      } finally {
        progress.done();
      }
    });
}
