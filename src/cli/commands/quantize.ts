// `perceptd quantize <model> --out <file.onnx>`: static INT8 (QDQ) quantization of an ONNX
// detector with calibration frames, a per-layer report next to the output. The work is in
// src/model/quantize/pipeline.ts; this file parses and prints.
import { InvalidArgumentError, type Command } from "commander";
import { nonNegativeInt, positiveInt } from "../option-parsers.ts";
import { statusWriter } from "../status-writer.ts";
import { CALIBRATION_METHODS } from "../../model/quantize/calibration.ts";
import {
  DEFAULT_CALIBRATION,
  DEFAULT_CALIBRATION_FRAMES,
  DEFAULT_SWEEP_FRAMES,
  DEFAULT_SWEEP_MAX_FLOAT,
  DEFAULT_SWEEP_TARGET,
  VALIDATION_SET,
} from "../../model/quantize/pipeline.ts";
import { ACTIVATION_SCHEMES } from "../../model/quantize/scales.ts";

function commandLineOf(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

function inRange(name: string, lo: number, hi: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n <= lo || n > hi) throw new InvalidArgumentError(`${name} must be a number in (${lo}, ${hi}], got "${v}"`);
    return n;
  };
}

function oneOf<T extends string>(name: string, values: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(values as readonly string[]).includes(v)) throw new InvalidArgumentError(`unknown ${name} "${v}"; expected ${values.join(", ")}`);
    return v as T;
  };
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];

interface QuantizeFlags {
  out: string;
  calibration?: string[];
  calibrationFrames?: number;
  method: string;
  percentile?: number;
  activations: string;
  perChannel?: boolean;
  reduceRange?: boolean;
  exclude?: string[];
  sweep?: boolean;
  sweepTarget?: number;
  sweepMaxFloat?: number;
  sweepFrames?: number;
  latencyRuns?: number;
  agreement: boolean;
  threads?: number;
  report?: string;
  manifest?: string;
}

export function register(program: Command): void {
  program
    .command("quantize")
    .description(
      "static INT8 quantization of an ONNX detector to the QDQ format (weights int8 symmetric per output channel, activations " +
        "calibrated on real frames); the head's last convolutions and what follows them, and the first convolution unless the " +
        "sweep shows it safe, stay float; writes the model, checked with the ONNX checker and ONNX Runtime, and a per-layer report",
    )
    .argument("<model>", "float ONNX file or manifest name, e.g. nanodet-u8 (the -u8 variants with preprocessing baked in)")
    .requiredOption("-o, --out <file.onnx>", "where to write the quantized model (written atomically)")
    .option(
      "--calibration <data>",
      `calibration data, repeatable: built-in sets, pictures, videos with frame ranges, folders (default ${DEFAULT_CALIBRATION.join(" ")}); test and validation data are refused`,
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--calibration-frames <n>", `frames spread over the calibration data (default ${DEFAULT_CALIBRATION_FRAMES})`, positiveInt)
    .option("--method <method>", `activation ranges: ${CALIBRATION_METHODS.join(", ")}`, oneOf("calibration method", CALIBRATION_METHODS), "minmax")
    .option("--percentile <p>", "--method percentile: share of |x| kept unclipped, in (0, 100] (default 99.99)", inRange("--percentile", 0, 100))
    .option(
      "--activations <type>",
      "int8 (symmetric, zero point 0: what TensorRT needs, one file for both) or uint8 (asymmetric: ONNX Runtime's x86 CPU kernels, see docs/quantization.md)",
      oneOf("activation type", ACTIVATION_SCHEMES),
      "int8",
    )
    .option("--per-channel", "one weight scale per output channel (the default)")
    .option("--no-per-channel", "one weight scale per weight tensor")
    .option("--reduce-range", "7-bit weights ([-63, 63]) for x86 CPUs without VNNI, whose u8 x s8 kernels saturate 16-bit pair sums with 8-bit weights (docs/quantization.md)")
    .option("--exclude <nodes>", "node names or regular expressions of layers to keep float (repeatable, comma-separated)", collect)
    .option("--sweep", `per-layer sensitivity sweep: screen every layer alone, then keep the worst float until agreement on ${VALIDATION_SET} holds (the stem is a candidate)`)
    .option("--sweep-target <a>", `--sweep: agreement to reach, min of mAP@0.5 and recall (default ${DEFAULT_SWEEP_TARGET})`, inRange("--sweep-target", 0, 1))
    .option("--sweep-max-float <n>", `--sweep: most layers kept float (default ${DEFAULT_SWEEP_MAX_FLOAT})`, nonNegativeInt)
    .option("--sweep-frames <n>", `--sweep: calibration frames each layer is screened on (default ${DEFAULT_SWEEP_FRAMES})`, positiveInt)
    .option("--latency-runs <n>", "timed runs per model for float vs int8 side by side (default 20; 0 skips)", nonNegativeInt)
    .option("--no-agreement", `skip the agreement with the float model on ${VALIDATION_SET}`)
    .option("--threads <n>", "ONNX Runtime intra-op threads (default: all usable cores)", positiveInt)
    .option("--report <prefix>", "write <prefix>.json and <prefix>.md (default: the output path with .report instead of .onnx)")
    .option("--manifest <path>", "model manifest")
    .action(async (model: string, flags: QuantizeFlags) => {
      const { runQuantize } = await import("../../model/quantize/pipeline.ts");
      const progress = statusWriter(process.stderr);
      const onProgress = (text: string, transient = false): void => (transient ? progress.status(text) : progress.line(text));
      try {
        const { report, reportFiles } = await runQuantize({
          model,
          out: flags.out,
          manifestPath: flags.manifest,
          calibration: flags.calibration,
          calibrationFrames: flags.calibrationFrames,
          method: flags.method,
          percentile: flags.percentile,
          activations: flags.activations,
          perChannel: flags.perChannel,
          reduceRange: flags.reduceRange,
          exclude: flags.exclude,
          sweep: flags.sweep,
          sweepTarget: flags.sweepTarget,
          sweepMaxFloat: flags.sweepMaxFloat,
          sweepFrames: flags.sweepFrames,
          latencyRuns: flags.latencyRuns,
          noAgreement: !flags.agreement,
          threads: flags.threads,
          report: flags.report,
          command: commandLineOf(["perceptd", "quantize", ...process.argv.slice(3)]),
          onProgress,
        });
        progress.done();
        const l = report.latency;
        const a = report.agreement;
        process.stdout.write(
          `${report.model.output}\n` +
            `  ${report.layers.length} layers int8, ${report.keptFloat.length} float (${report.keptFloat.map((k) => `${k.node}: ${k.reason}`).join("; ")})\n` +
            `  file ${(report.model.bytesBefore / 1e6).toFixed(1)}MB -> ${(report.model.bytesAfter / 1e6).toFixed(1)}MB\n` +
            (l ? `  latency p50 float ${l.floatP50Ms.toFixed(1)} ms, int8 ${l.int8P50Ms.toFixed(1)} ms: ${l.speedup.toFixed(2)}x (same run, interleaved, ${l.threads} thread(s); ${report.machine.int8.summary})\n` : "") +
            (a ? `  agreement with ${a.reference} on ${a.set} (${a.frames} frames): mAP@0.5 ${a.map50.toFixed(3)}, recall ${a.recall.toFixed(3)} (${a.found}/${a.confident})\n` : "") +
            `  report: ${reportFiles[1]}, ${reportFiles[0]}\n`,
        );
      } finally {
        progress.done();
      }
    });
}
