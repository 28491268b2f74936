// `perceptd quantize` end to end, without the command line: read the model, read calibration
// frames through the frame cache (the guard refuses test and validation data), plan, calibrate,
// optionally sweep layer sensitivity, rewrite to QDQ, check the result with the ONNX checker
// and ONNX Runtime, measure float vs int8 side by side, measure agreement with the float
// parent on validation frames, write the model and its report (atomically).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import type { ModelInputData } from "../../infer/input-tensor.ts";
import { createSession } from "../../infer/session.ts";
import { writeFileAtomic } from "../../util/atomic-write.ts";
import { int8Features, machineInfo } from "../../util/machine-info.ts";
import { prepareFrames } from "../data/build.ts";
import { PREDICTION_SCORE_FLOOR } from "../eval/agreement.ts";
import { resolveModelArg } from "../eval/model-arg.ts";
import { detectOnCache, REFERENCE_THRESHOLD, setAgreementMetrics, type SetAgreement } from "../eval/set-agreement.ts";
import { quantizeReportPrefix } from "./source.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, sha256Hex, type ResolvedModel } from "../../infer/manifest.ts";
import { checkOnnx } from "../onnx-checker.ts";
import type { OnnxGraph } from "../onnx/ir.ts";
import { decodeModel, encodeModel } from "../onnx/serialize.ts";
import { calibrationInputsFromData } from "../prune/calibration-data.ts";
import { measureSideBySide } from "../prune/latency.ts";
import { calibrateRanges, checkMethod, DEFAULT_PERCENTILE, type CalibrationMethod } from "./calibration.ts";
import { planQuantization, type QuantPlan } from "./plan.ts";
import { insertQdq, type QdqResult } from "./qdq.ts";
import { checkScheme } from "./quantize.ts";
import { renderQuantizeMarkdown } from "./report.ts";
import type { ActivationScheme } from "./scales.ts";
import { confirmSweep, escapeRegExp, screenLayers, type SweepResult } from "./sensitivity.ts";

export const DEFAULT_CALIBRATION = ["corpus:calibration"] as const;
export const DEFAULT_CALIBRATION_FRAMES = 64;
/** Validation data: the sweep's agreement and the report's; test sets stay for the table. */
export const VALIDATION_SET = "corpus:validation";
export const DEFAULT_SWEEP_TARGET = 0.95;
export const DEFAULT_SWEEP_MAX_FLOAT = 4;
export const DEFAULT_SWEEP_FRAMES = 4;

export interface QuantizeRunOptions {
  /** manifest name or ONNX file */
  model: string;
  out: string;
  manifestPath?: string;
  calibration?: readonly string[];
  calibrationFrames?: number;
  method?: string;
  percentile?: number;
  /** activation type: int8 (symmetric, default) or uint8 (asymmetric) */
  activations?: string;
  perChannel?: boolean;
  /** 7-bit weights, for x86 CPUs without VNNI */
  reduceRange?: boolean;
  exclude?: readonly string[];
  sweep?: boolean;
  sweepTarget?: number;
  sweepMaxFloat?: number;
  sweepFrames?: number;
  /** timed runs per model for the side-by-side latency (0 skips) */
  latencyRuns?: number;
  /** skip the agreement on validation frames */
  noAgreement?: boolean;
  threads?: number;
  report?: string;
  command?: string;
  onProgress?: (text: string, live?: boolean) => void;
}

export interface QuantizeReport {
  command: string;
  createdAt: string;
  machine: ReturnType<typeof machineInfo> & { int8: ReturnType<typeof int8Features> };
  /** source: as the command named it; sourceSha256: its bytes, which identify the parent wherever it is (./source.ts) */
  model: { source: string; sourceSha256: string; output: string; bytesBefore: number; bytesAfter: number };
  settings: {
    method: CalibrationMethod;
    percentile: number | null;
    activations: ActivationScheme;
    weights: string;
    calibration: { specs: string[]; cache: string; set: string; frames: number; of: number };
    exclude: string[];
    quantizeStem: boolean;
  };
  layers: QdqResult["layers"];
  keptFloat: QuantPlan["kept"];
  chain: string[];
  activations: QdqResult["activations"];
  sweep: SweepResult | null;
  latency: { threads: number; runs: number; floatP50Ms: number; int8P50Ms: number; speedup: number } | null;
  agreement: SetAgreement | null;
  checks: { onnxChecker: string; onnxRuntime: string };
}

export interface QuantizeOutcome {
  graph: OnnxGraph;
  report: QuantizeReport;
  reportFiles: string[];
}

function checkFraction(name: string, v: number | undefined, lo: number, hi: number): void {
  if (v !== undefined && !(v > lo && v <= hi)) throw new RangeError(`${name} must be in (${lo}, ${hi}], got ${v}`);
}

/** A graph not yet written, as a model perceptd can run (its entry borrowed from its parent). */
async function asModel(g: OnnxGraph, parent: ResolvedModel, dir: string, label: string): Promise<ResolvedModel> {
  const bytes = encodeModel(g);
  const path = join(dir, `${label.replace(/[^\w.-]/g, "_")}.onnx`);
  await writeFile(path, bytes);
  return { name: label, path, entry: { ...parent.entry, file: path, sha256: sha256Hex(bytes), bytes: bytes.length } };
}

export async function runQuantize(opts: QuantizeRunOptions): Promise<QuantizeOutcome> {
  const log = opts.onProgress ?? (() => undefined);
  const method = checkMethod(opts.method ?? "minmax");
  const scheme = checkScheme(opts.activations ?? "int8");
  checkFraction("--percentile", opts.percentile, 0, 100);
  checkFraction("--sweep-target", opts.sweepTarget, 0, 1);
  const manifestPath = opts.manifestPath ?? DEFAULT_MANIFEST_PATH;
  const manifest = await readManifest(manifestPath);
  const model = await resolveModelArg(opts.model, manifest, manifestPath);
  const sourceBytes = new Uint8Array(await readFile(model.path));
  const graph = decodeModel(sourceBytes, model.path);
  if (graph.metadata.quantization !== undefined) throw new Error(`model ${model.name} is quantized already (${graph.metadata.quantization}); quantize its float parent`);

  const specs = [...(opts.calibration ?? DEFAULT_CALIBRATION)];
  const frames = opts.calibrationFrames ?? DEFAULT_CALIBRATION_FRAMES;
  log(`quantize: calibration frames from ${specs.join(" ")}`);
  const cal = await calibrationInputsFromData(specs, model, frames, (t) => log(t.replace(/^prune: /, "quantize: "), true));
  if (cal.inputs.length === 0) throw new Error(`--calibration ${specs.join(" ")}: the calibration set is empty; quantization needs calibration frames`);
  log(`quantize: ${cal.inputs.length} calibration frames of ${cal.of} in ${relative(process.cwd(), cal.cacheDir)}`);

  const exclude = [...(opts.exclude ?? [])];
  // With the sweep the stem is a candidate; ranges are calibrated once for the widest plan
  // (every narrower plan's tensors are among its tensors).
  const widest = planQuantization(graph, { exclude, quantizeStem: opts.sweep === true });
  log(`quantize: calibrating ${widest.tensors.length} activations (${method})`);
  const ranges = await calibrateRanges(graph, widest.tensors, cal.inputs, {
    method,
    scheme,
    percentile: opts.percentile,
    threads: opts.threads,
    onProgress: (pass, d, t) => log(`quantize: ${pass} ${d}/${t} frames`, true),
  });
  const qdqOpts = { scheme, perChannel: opts.perChannel ?? true, reduceRange: opts.reduceRange ?? false };

  const tmp = await mkdtemp(join(tmpdir(), "perceptd-quantize-"));
  try {
    let sweep: SweepResult | null = null;
    let plan = widest;
    let quantizeStem = false;
    if (opts.sweep === true) {
      sweep = await runSweep(graph, model, widest, ranges, cal.inputs, qdqOpts, exclude, tmp, opts, log);
      quantizeStem = true;
      plan = planQuantization(graph, { exclude: [...exclude, ...sweep.keepFloat.map(escapeRegExp)], quantizeStem: true });
      // the sweep's choices are reported as excluded layers, the reason "sweep"
      exclude.push(...sweep.keepFloat);
    }
    const result = insertQdq(graph, plan, ranges, qdqOpts);
    const bytes = encodeModel(result.graph);
    log(`quantize: ${plan.weighted.length} layers int8, ${plan.chain.length} ops between them int8, ${plan.kept.length} layers float`);

    const candidate = join(tmp, "quantized.onnx");
    await writeFile(candidate, bytes);
    const [check] = await checkOnnx([candidate]);
    if (!check.ok) throw new Error(`the quantized model fails the ONNX checker: ${check.error}`);
    const { session } = await createSession(bytes, { executionProviders: ["cpu"], intraOpThreads: opts.threads, source: "quantized model" });
    await session.release();

    let latency: QuantizeReport["latency"] = null;
    if ((opts.latencyRuns ?? 20) > 0) {
      log("quantize: latency float vs int8, interleaved");
      const r = await measureSideBySide([{ label: "float", graph }, { label: "int8", graph: result.graph }], {
        runs: opts.latencyRuns ?? 20,
        threads: opts.threads,
        onProgress: (d, t) => log(`quantize: latency ${d}/${t}`, true),
      });
      latency = { threads: r.threads, runs: r.runs, floatP50Ms: r.rows[0].stats.p50Ms, int8P50Ms: r.rows[1].stats.p50Ms, speedup: r.rows[1].speedup };
    }
    let agreement: SetAgreement | null = null;
    if (opts.noAgreement !== true) {
      log(`quantize: agreement with ${model.name} on ${VALIDATION_SET}`);
      agreement = await validationAgreement(model, await asModel(result.graph, model, tmp, "int8"), opts.threads);
    }

    const out = resolve(opts.out);
    await writeFileAtomic(out, bytes);
    const report: QuantizeReport = {
      command: opts.command ?? `perceptd quantize ${opts.model} --out ${opts.out}`,
      createdAt: new Date().toISOString(),
      machine: { ...machineInfo(), int8: int8Features() },
      model: { source: model.name, sourceSha256: sha256Hex(sourceBytes), output: relative(process.cwd(), out), bytesBefore: sourceBytes.length, bytesAfter: bytes.length },
      settings: {
        method,
        percentile: method === "percentile" ? (opts.percentile ?? DEFAULT_PERCENTILE) : null,
        activations: scheme,
        weights: `int8 symmetric, ${qdqOpts.perChannel ? "per output channel" : "per tensor"}${qdqOpts.reduceRange ? ", 7-bit range [-63, 63]" : ""}`,
        calibration: { specs, cache: relative(process.cwd(), cal.cacheDir), set: cal.set, frames: cal.inputs.length, of: cal.of },
        exclude,
        quantizeStem,
      },
      layers: result.layers,
      keptFloat: plan.kept,
      chain: plan.chain,
      activations: result.activations,
      sweep,
      latency,
      agreement,
      checks: { onnxChecker: "passed (full check, strict shape inference)", onnxRuntime: "loaded (CPU)" },
    };
    const prefix = opts.report ?? quantizeReportPrefix(out);
    await writeFileAtomic(`${prefix}.json`, JSON.stringify(report, null, 2) + "\n");
    await writeFileAtomic(`${prefix}.md`, renderQuantizeMarkdown(report));
    return { graph: result.graph, report, reportFiles: [`${prefix}.json`, `${prefix}.md`] };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The quantized model's detections against its float parent's on the validation set. */
async function validationAgreement(parent: ResolvedModel, quantized: ResolvedModel, threads?: number): Promise<SetAgreement> {
  const { width, height, resize } = parent.entry.input;
  const cache = await prepareFrames([VALIDATION_SET], { width, height, resize }, { purpose: "validation" });
  try {
    const session = { executionProviders: ["cpu" as const], intraOpThreads: threads };
    const reference = await detectOnCache(parent, cache, { scoreThreshold: REFERENCE_THRESHOLD, session });
    const predicted = await detectOnCache(quantized, cache, { scoreThreshold: PREDICTION_SCORE_FLOOR, session });
    return setAgreementMetrics(VALIDATION_SET, quantized.name, parent.name, reference.map((r, i) => ({ reference: r, predicted: predicted[i] })));
  } finally {
    await cache.close();
  }
}

async function runSweep(
  graph: OnnxGraph,
  model: ResolvedModel,
  widest: QuantPlan,
  ranges: Map<string, { min: number; max: number }>,
  inputs: readonly ModelInputData[],
  qdqOpts: { scheme: ActivationScheme; perChannel: boolean; reduceRange: boolean },
  exclude: readonly string[],
  tmp: string,
  opts: QuantizeRunOptions,
  log: (text: string, live?: boolean) => void,
): Promise<SweepResult> {
  const screenFrames = inputs.slice(0, opts.sweepFrames ?? DEFAULT_SWEEP_FRAMES);
  log(`quantize: sweep, screening ${widest.weighted.length} layers on ${screenFrames.length} frames`);
  const screen = await screenLayers(graph, screenFrames, {
    ...qdqOpts,
    plan: widest,
    ranges,
    exclude,
    threads: opts.threads,
    onProgress: (d, t, node) => log(`quantize: sweep ${d}/${t} ${node}`, true),
  });
  const target = opts.sweepTarget ?? DEFAULT_SWEEP_TARGET;
  log(`quantize: sweep, worst layers ${screen.slice(0, 4).map((s) => `${s.node} (${s.outputError.toExponential(2)})`).join(", ")}; confirming on ${VALIDATION_SET} to agreement ${target}`);
  return confirmSweep(
    screen,
    target,
    opts.sweepMaxFloat ?? DEFAULT_SWEEP_MAX_FLOAT,
    async (keptFloat) => {
      const plan = planQuantization(graph, { exclude: [...exclude, ...keptFloat.map(escapeRegExp)], quantizeStem: true });
      const q = insertQdq(graph, plan, ranges, qdqOpts);
      const a = await validationAgreement(model, await asModel(q.graph, model, tmp, `sweep-${keptFloat.length}`), opts.threads);
      // both must hold: boxes ranked like the parent's (mAP) and its confident objects found
      const agreement = Math.min(a.map50, Number.isNaN(a.recall) ? 1 : a.recall);
      return { agreement, detail: `mAP@0.5 ${a.map50.toFixed(3)}, recall ${a.recall.toFixed(3)} (${a.found}/${a.confident})` };
    },
    (s) => log(`quantize: sweep, ${s.keptFloat.length} float: ${s.detail}`),
  );
}
