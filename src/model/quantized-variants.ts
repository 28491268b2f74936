// The INT8 variants shipped in models/: each quantized from a float -u8 model (preprocessing
// baked in) by `perceptd quantize` (src/model/quantize/pipeline.ts), its report written to
// models/reports/, and entered in the manifest with its parent, method, calibration data and
// the layers kept float.
//
//   perceptd models build-quantized [--only nanodet-int8]
//
// Which model the daemon runs is the manifest's `default` (or model.byProvider in the
// config), chosen by hand against the bar; building a variant never changes it.
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { DEFAULT_MANIFEST_PATH, formatZodIssues, ManifestSchema, readManifest, sha256Hex, type Manifest, type ModelEntry } from "../infer/manifest.ts";
import { graphStats } from "./onnx/shape-inference.ts";
import type { CalibrationMethod } from "./quantize/calibration.ts";
import { runQuantize } from "./quantize/pipeline.ts";
import type { ActivationScheme } from "./quantize/scales.ts";

export interface QuantizedVariantSpec {
  /** manifest name of the quantized model: the parent's name without -u8, plus -int8 (-int8-cpu for uint8 activations) */
  name: string;
  /** the float model quantized (a -u8 variant: uint8 RGB in, preprocessing in the graph) */
  parent: string;
  activations: ActivationScheme;
  method: CalibrationMethod;
  percentile?: number;
  calibration: string[];
  calibrationFrames: number;
  /** layers kept float besides the head tail (and the stem, unless sweep) */
  exclude?: string[];
  sweep?: boolean;
  description: string;
}

const CALIBRATION = ["corpus:calibration"];

export const QUANTIZED_VARIANTS: readonly QuantizedVariantSpec[] = [
  {
    name: "nanodet-int8",
    parent: "nanodet-u8",
    activations: "int8",
    method: "percentile",
    calibration: CALIBRATION,
    calibrationFrames: 64,
    sweep: true,
    description:
      "NanoDet, static INT8 QDQ: weights int8 per output channel, activations int8 symmetric (TensorRT and ONNX Runtime), " +
      "layers kept float by the sensitivity sweep, head outputs float; calibrated on corpus:calibration",
  },
  {
    name: "nanodet-int8-cpu",
    parent: "nanodet-u8",
    activations: "uint8",
    method: "percentile",
    calibration: CALIBRATION,
    calibrationFrames: 64,
    sweep: true,
    description:
      "NanoDet, static INT8 QDQ for ONNX Runtime's CPU: weights int8 per output channel, activations uint8 asymmetric, " +
      "layers kept float by the sensitivity sweep, head outputs float; calibrated on corpus:calibration",
  },
];

export interface BuildQuantizedOptions {
  only?: string[];
  manifestPath?: string;
  threads?: number;
  log?: (msg: string, live?: boolean) => void;
}

export interface BuiltQuantized {
  name: string;
  file: string;
  sha256: string;
}

export async function buildQuantizedVariants(opts: BuildQuantizedOptions = {}): Promise<BuiltQuantized[]> {
  const manifestPath = opts.manifestPath ?? DEFAULT_MANIFEST_PATH;
  const log = opts.log ?? (() => undefined);
  const unknown = (opts.only ?? []).filter((n) => !QUANTIZED_VARIANTS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown quantized variant(s) ${unknown.join(", ")}; known: ${QUANTIZED_VARIANTS.map((s) => s.name).join(", ")}`);
  const specs = QUANTIZED_VARIANTS.filter((s) => opts.only === undefined || opts.only.includes(s.name));
  const modelsDir = dirname(manifestPath);
  await mkdir(join(modelsDir, "reports"), { recursive: true });
  const built: BuiltQuantized[] = [];
  for (const spec of specs) {
    const manifest = await readManifest(manifestPath);
    const parent = manifest.models[spec.parent];
    if (parent === undefined) throw new Error(`${spec.name}: parent ${spec.parent} is not in ${manifestPath}`);
    if (parent.input.dtype !== "uint8") throw new Error(`${spec.name}: parent ${spec.parent} must be a -u8 model (uint8 input, preprocessing in the graph)`);
    const file = `${spec.name}.onnx`;
    const reportPrefix = join(modelsDir, "reports", spec.name);
    const command = `perceptd models build-quantized --only ${spec.name}`;
    log(`${spec.name}: quantizing ${spec.parent} (${spec.method}, ${spec.activations} activations${spec.sweep === true ? ", sensitivity sweep" : ""})`);
    const { graph, report } = await runQuantize({
      model: spec.parent,
      out: join(modelsDir, file),
      manifestPath,
      calibration: spec.calibration,
      calibrationFrames: spec.calibrationFrames,
      method: spec.method,
      percentile: spec.percentile,
      activations: spec.activations,
      exclude: spec.exclude,
      sweep: spec.sweep,
      threads: opts.threads,
      report: reportPrefix,
      command,
      onProgress: (text, live) => log(`${spec.name}: ${text}`, live),
    });
    const bytes = new Uint8Array(await readFile(join(modelsDir, file)));
    const stats = graphStats(graph);
    const a = report.agreement;
    const entry: ModelEntry = {
      ...parent,
      file,
      sha256: sha256Hex(bytes),
      bytes: bytes.length,
      description: spec.description,
      variant: `${parent.variant}-int8${spec.activations === "uint8" ? "-cpu" : ""}`,
      parent: spec.parent,
      parameters: stats.parameters,
      macs: stats.macs,
      flops: 2 * stats.macs,
      build: {
        command,
        quantization: "static INT8, QDQ",
        weights: report.settings.weights,
        activations: spec.activations === "int8" ? "int8 symmetric" : "uint8 asymmetric",
        method: report.settings.method,
        percentile: report.settings.percentile,
        calibration: report.settings.calibration,
        quantizedLayers: report.layers.length,
        keptFloat: report.keptFloat.map((k) => ({ node: k.node, reason: report.sweep?.keepFloat.includes(k.node) === true ? "sweep" : k.reason })),
        sweep: report.sweep === null ? null : { target: report.sweep.target, reached: report.sweep.reached, steps: report.sweep.steps.map((s) => ({ keptFloat: s.keptFloat.length, agreement: s.agreement })) },
        report: relative(modelsDir, `${reportPrefix}.md`),
        // measured in the same run (see the report for the machine, its int8 features and its load)
        latencySpeedupVsParent: report.latency?.speedup ?? null,
        cpu: report.machine.int8.summary,
        validationAgreement: a === null ? null : { set: a.set, frames: a.frames, map50: a.map50, recall: a.recall, collapsed: a.collapsed },
      },
    };
    const next: Manifest = { ...manifest, models: { ...manifest.models, [spec.name]: entry } };
    const sorted: Manifest = { ...next, models: Object.fromEntries(Object.keys(next.models).sort().map((k) => [k, next.models[k]])) };
    const check = ManifestSchema.safeParse(sorted);
    if (!check.success) throw new Error(formatZodIssues("manifest with quantized variants", check.error));
    await writeFileAtomic(manifestPath, JSON.stringify(sorted, null, 2) + "\n");
    built.push({ name: spec.name, file, sha256: entry.sha256 });
    log(`${spec.name}: wrote ${file}, ${relative(modelsDir, reportPrefix)}.{md,json}; manifest updated`);
  }
  return built;
}
