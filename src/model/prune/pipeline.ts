// `perceptd prune` end to end, without the command line: read the model, gather calibration
// frames when a step needs them, prune (structured or unstructured, fixed ratios or a FLOPs /
// latency target), optionally refit with least squares, check the result with the ONNX
// checker and ONNX Runtime, measure dense vs pruned side by side, write model and report.
// The pruning steps themselves are pure functions (structured.ts, unstructured.ts); this file
// is the I/O around them, so a script can call it with the same options as the CLI.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, relative, resolve } from "node:path";
import type { ModelInputData } from "../../infer/input-tensor.ts";
import { writeFileAtomic } from "../../util/atomic-write.ts";
import { evaluateAgreement, type AgreementReport } from "../eval/agreement.ts";
import { DEFAULT_CALIBRATION_FRAMES, DEFAULT_EVAL_VIDEO, readModelFrames, splitVideoFrames, type FrameSplit } from "../eval/frames.ts";
import { calibrationInputsFromData, calibrationSource, type CalibrationData, type CalibrationSource } from "./calibration-data.ts";
import { resolveModelArg } from "../eval/model-arg.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, readVerifiedModel, resolveModel, type ResolvedModel } from "../../infer/manifest.ts";
import { checkOnnx } from "../onnx-checker.ts";
import type { OnnxGraph } from "../onnx/ir.ts";
import { decodeModel, encodeModel } from "../onnx/serialize.ts";
import { graphStats } from "../onnx/shape-inference.ts";
import { forEachActivation, type Activation, type ActivationAccumulator } from "./activations.ts";
import { buildDependencyGraph } from "./dependency-graph.ts";
import { activationTensors, type ChannelStats, type ImportanceKind } from "./importance.ts";
import { measureSideBySide, profileConvTimes, type ConvTimes, type LatencyResult } from "./latency.ts";
import { covarianceAccumulator } from "./reconstruction.ts";
import { DEFAULT_OVERSAMPLE, DEFAULT_RIDGE, DEFAULT_SAMPLES_PER_FRAME, recoverLeastSquares, type RecoverProgress } from "./recover.ts";

/** Where --ridge auto picks its strength unless --validation says otherwise. */
export const DEFAULT_VALIDATION: readonly string[] = ["corpus:validation"];
import { DEFAULT_RECOVER_LAYERS, downstreamConvs, type RecoverLayers } from "./recover-layers.ts";
import { machine, writeReport, type PruneReport } from "./report.ts";
import { pruneStructured, type StructuredOptions, type StructuredResult } from "./structured.ts";
import { outputDistortion, pickRatios, sensitivitySweep, type PickResult, type SweepResult } from "./sweep.ts";
import { compressedSize, NO_SPEEDUP_NOTE, pruneUnstructured } from "./unstructured.ts";

export interface PruneOptions {
  /** manifest name or ONNX file */
  model: string;
  out: string;
  manifestPath?: string;
  method?: "structured" | "unstructured";
  /** structured: share of channels removed per group; unstructured: target sparsity */
  ratio?: number;
  ratios?: Record<string, number>;
  targetFlops?: number;
  targetLatency?: number;
  importance?: ImportanceKind;
  round?: number;
  minChannels?: number;
  ignore?: string[];
  protectStem?: boolean;
  /** unstructured: one threshold over all layers or the same sparsity per layer */
  scope?: "global" | "layer";
  recover?: boolean;
  /** Recovery: which Convs are refitted (default DEFAULT_RECOVER_LAYERS); see RECOVER_LAYERS. */
  recoverLayers?: RecoverLayers;
  /** Recovery: least positions sampled per calibration frame and refitted Conv (default DEFAULT_SAMPLES_PER_FRAME). */
  samplesPerFrame?: number;
  /** Recovery: least fit samples per unknown of a refitted Conv (default DEFAULT_OVERSAMPLE). */
  oversample?: number;
  /**
   * Recovery: regularise the refit toward the original weights of the kept channels with this
   * relative strength, or "auto" to pick it per layer on the validation data. Absent: the plain
   * refit (a small ridge toward zero).
   */
  ridge?: number | "auto";
  /** Validation data specs for --ridge (default corpus:validation); never fitted to. */
  validation?: readonly string[];
  /** Validation frames read (spread over the data; default all of them). */
  validationFrames?: number;
  /**
   * Fold the mean contribution of removed channels into the consumers' biases (needs
   * calibration frames; default true when --calibration is given).
   */
  compensate?: boolean;
  /** One video (clip recipe) or data specs; see calibration-data.ts. */
  calibration?: string | readonly string[];
  calibrationFrames?: number;
  /**
   * Frames of the calibration video, after its calibration part, on which agreement with the
   * dense parent is measured (mAP@0.5 etc.). Default 50 when --calibration is given; 0 skips.
   */
  evalFrames?: number;
  /** frames of the calibration set the sensitivity sweep runs (it builds one session per try) */
  sweepFrames?: number;
  /** `<prefix>.json` and `<prefix>.md`; default: the output path without .onnx + ".report" */
  report?: string;
  latencyRuns?: number;
  threads?: number;
  command?: string;
  /** a line of progress; `live` lines may be overwritten by the next one on a terminal */
  onProgress?: (text: string, live?: boolean) => void;
}

export interface PruneOutcome {
  report: PruneReport;
  reportFiles: { json: string; markdown: string };
  graph: OnnxGraph;
}

/**
 * Calibration frames when --recover or --importance reconstruction fits to them. nanodet at
 * 50 %, L1, recovery: person AP@0.5 0.63 with 16 frames, 0.74 with 48 (fit time 1 -> 2.3 min
 * on the 2-core build machine); 4x the samples per unknown on 48 frames added nothing (0.73).
 */
export const DEFAULT_RECOVERY_CALIBRATION_FRAMES = 48;

function inRange(name: string, v: number | undefined, lo: number, hi: number, hiOpen = true): void {
  if (v === undefined) return;
  if (!(Number.isFinite(v) && v >= lo && (hiOpen ? v < hi : v <= hi))) throw new RangeError(`${name} must be in [${lo}, ${hi}${hiOpen ? ")" : "]"}, got ${String(v)}`);
}

async function loadModel(arg: string, manifestPath: string): Promise<{ graph: OnnxGraph; bytes: Uint8Array; path: string }> {
  let path = resolve(arg);
  let bytes: Uint8Array;
  if (!existsSync(path)) {
    const manifest = await readManifest(manifestPath).catch(() => null);
    if (!manifest || !(arg in manifest.models)) throw new Error(`model ${JSON.stringify(arg)} is neither an ONNX file nor a model in ${manifestPath}`);
    const m = resolveModel(manifest, manifestPath, arg);
    path = m.path;
    bytes = await readVerifiedModel(m);
  } else {
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new Error(`cannot read model ${path}: ${(e as Error).message}`);
    }
  }
  let graph: OnnxGraph;
  try {
    graph = decodeModel(bytes, path);
  } catch (e) {
    throw new Error(`model ${path} is not a readable ONNX model: ${(e as Error).message}`);
  }
  if (graph.inputs.length !== 1) throw new Error(`model ${path} has ${graph.inputs.length} inputs; perceptd prune handles single-input detectors`);
  return { graph, bytes, path };
}

async function calibrationOf(opts: PruneOptions, why: string): Promise<CalibrationSource> {
  const source = await calibrationSource(opts.calibration);
  if (source === undefined) {
    throw new Error(`${why} needs calibration frames: pass --calibration <video> (for example .cache/fixtures/vtest.avi) or data (for example corpus:calibration)`);
  }
  return source;
}

async function calibrationInputs(opts: PruneOptions, video: string, split: FrameSplit, manifestPath: string): Promise<ModelInputData[]> {
  const manifest = await readManifest(manifestPath);
  const model = await resolveModelArg(opts.model, manifest, manifestPath);
  opts.onProgress?.(`prune: decoding ${split.calibration.length} calibration frames of ${video} (frames ${split.calibration[0]}..${split.calibration.at(-1)}, first ${split.boundary} of ${split.total})`);
  const frames = await readModelFrames(video, split.calibration, model.entry.input);
  return frames.map((f) => f.input);
}

/** Per-channel mean and mean |x| of each tensor over the frames. */
function statisticsAccumulator(): ActivationAccumulator<{ mean: ChannelStats; meanAbs: ChannelStats }> {
  const acc = new Map<string, { sum: Float64Array; abs: Float64Array; n: number }>();
  const visit = (_f: number, values: ReadonlyMap<string, Activation>): void => {
    for (const [name, { dims, data }] of values) {
      const c = dims[1];
      const spatial = data.length / (dims[0] * c);
      let a = acc.get(name);
      if (!a) acc.set(name, (a = { sum: new Float64Array(c), abs: new Float64Array(c), n: 0 }));
      for (let b = 0; b < dims[0]; b++)
        for (let k = 0; k < c; k++) {
          let s = 0;
          let t = 0;
          for (let p = (b * c + k) * spatial, e = p + spatial; p < e; p++) {
            s += data[p];
            t += Math.abs(data[p]);
          }
          a.sum[k] += s;
          a.abs[k] += t;
        }
      a.n += dims[0] * spatial;
    }
  };
  const result = (): { mean: ChannelStats; meanAbs: ChannelStats } => {
    const mean: ChannelStats = new Map();
    const meanAbs: ChannelStats = new Map();
    for (const [name, a] of acc) {
      mean.set(name, a.sum.map((v) => v / a.n));
      meanAbs.set(name, a.abs.map((v) => v / a.n));
    }
    return { mean, meanAbs };
  };
  return { visit, result };
}

type Say = (text: string, live?: boolean) => void;

/** What the steps of one run share: the options, where progress goes, the report's notes. */
interface PruneRun {
  opts: PruneOptions;
  say: Say;
  manifestPath: string;
  method: "structured" | "unstructured";
  targeted: boolean;
  notes: string[];
}

/** Rejects contradictory or out-of-range options before anything is read; returns whether a FLOPs / latency target picks the ratios. */
function checkOptions(opts: PruneOptions, method: PruneRun["method"]): boolean {
  inRange("--ratio", opts.ratio, 0, 1);
  for (const [k, v] of Object.entries(opts.ratios ?? {})) inRange(`--ratios ${k}`, v, 0, 1);
  inRange("--target-flops", opts.targetFlops, 0, 1, false);
  inRange("--target-latency", opts.targetLatency, 0, 1, false);
  if (opts.targetFlops === 0 || opts.targetLatency === 0) throw new RangeError("--target-flops / --target-latency must be above 0");
  if (opts.targetFlops !== undefined && opts.targetLatency !== undefined) throw new Error("give --target-flops or --target-latency, not both");
  const targeted = opts.targetFlops !== undefined || opts.targetLatency !== undefined;
  if (targeted && (opts.ratio !== undefined || opts.ratios)) throw new Error("--target-flops/--target-latency pick the ratios; do not also give --ratio or --ratios");
  if (method === "unstructured") {
    if (opts.ratio === undefined) throw new Error("--method unstructured needs --ratio (the target sparsity, e.g. 0.5)");
    if (targeted || opts.ratios || opts.recover || (opts.importance !== undefined && opts.importance !== "l1" && opts.importance !== "l2"))
      throw new Error("--method unstructured takes --ratio (sparsity), --scope and --ignore only");
  } else if (!targeted && opts.ratio === undefined && !opts.ratios) {
    throw new Error("give --ratio, --ratios, --target-flops or --target-latency");
  }
  if ((opts.samplesPerFrame !== undefined || opts.oversample !== undefined || opts.recoverLayers !== undefined || opts.ridge !== undefined) && !opts.recover) {
    throw new Error("--recover-layers, --samples-per-frame, --oversample and --ridge tune least-squares recovery; they need --recover");
  }
  if (opts.ridge !== undefined && opts.ridge !== "auto" && !(Number.isFinite(opts.ridge) && opts.ridge > 0)) throw new RangeError(`--ridge must be auto or a number > 0, got ${String(opts.ridge)}`);
  if ((opts.validation !== undefined || opts.validationFrames !== undefined) && opts.ridge === undefined) throw new Error("--validation and --validation-frames pick the ridge strength; they need --ridge");
  if (!opts.out.endsWith(".onnx")) throw new Error(`--out ${opts.out}: expected a path ending in .onnx`);
  return targeted;
}

/** The calibration source, asked for before the model is read so that a step needing frames fails before any slow work. */
async function calibrationSourceFor(run: PruneRun): Promise<CalibrationSource | undefined> {
  const { opts } = run;
  const dataImportance = opts.importance === "activation" || opts.importance === "reconstruction";
  const needFrames = dataImportance || opts.recover || run.targeted;
  const why = dataImportance ? `--importance ${opts.importance}` : opts.recover ? "--recover" : "a --target-flops/--target-latency sweep";
  return needFrames || opts.calibration ? await calibrationOf(opts, why) : undefined;
}

/** The source model as the manifest resolves it, for readers that want its input spec. */
async function sourceModel(run: PruneRun): Promise<ResolvedModel> {
  return resolveModelArg(run.opts.model, await readManifest(run.manifestPath), run.manifestPath);
}

interface Calibration {
  source: CalibrationSource | undefined;
  /** The calibration video (clip recipe only). */
  video: string | undefined;
  /** Where agreement with the dense parent is measured. */
  evalVideo: string | undefined;
  split: FrameSplit | undefined;
  data: CalibrationData | undefined;
  frames: ModelInputData[];
}

async function loadCalibration(run: PruneRun, source: CalibrationSource | undefined): Promise<Calibration> {
  const { opts, method } = run;
  const video = source?.kind === "clip" ? source.video : undefined;
  const evalFrames = opts.evalFrames ?? 50;
  // A least-squares fit learns from every calibration frame; statistics need fewer.
  const fits = opts.recover || opts.importance === "reconstruction";
  const calibrationFrames = opts.calibrationFrames ?? (fits ? DEFAULT_RECOVERY_CALIBRATION_FRAMES : DEFAULT_CALIBRATION_FRAMES);
  // Data specs: agreement is still measured on vtest.avi's frames after its calibration quarter.
  const evalVideo = video ?? (source?.kind === "data" && existsSync(DEFAULT_EVAL_VIDEO) ? DEFAULT_EVAL_VIDEO : undefined);
  const split = evalVideo ? await splitVideoFrames(evalVideo, { calibrationFrames, evaluationFrames: evalFrames }) : undefined;
  // calibration frames also feed bias compensation, so any --calibration loads them (structured only)
  const data = source?.kind === "data" && method === "structured" ? await calibrationInputsFromData(source.specs, await sourceModel(run), calibrationFrames, (t) => run.say(t, true)) : undefined;
  const frames = video && split && method === "structured" ? await calibrationInputs(opts, video, split, run.manifestPath) : (data?.inputs ?? []);
  return { source, video, evalVideo, split, data, frames };
}

/** What pruning produced, and the report's parts that describe how. */
interface Pruned {
  graph: OnnxGraph;
  structured?: StructuredResult;
  unstructured?: PruneReport["unstructured"];
  sweep?: PruneReport["sweep"];
  recovery?: PruneReport["recovery"];
}

function pruneUnstructuredStep(run: PruneRun, dense: OnnxGraph): Pruned {
  const { opts } = run;
  const u = pruneUnstructured(dense, { sparsity: opts.ratio!, scope: opts.scope, ignore: opts.ignore, protectStem: opts.protectStem });
  run.notes.push(NO_SPEEDUP_NOTE);
  run.say(`prune: unstructured: ${(u.sparsity * 100).toFixed(1)}% of the pruned Conv weights are zero`);
  return { graph: u.graph, unstructured: { sparsity: u.sparsity, layers: u.layers, skipped: u.skipped, note: NO_SPEEDUP_NOTE } };
}

/** Fills `base` with what data-driven importance and bias compensation read from the calibration frames. */
async function gatherChannelData(run: PruneRun, dense: OnnxGraph, frames: readonly ModelInputData[], base: StructuredOptions): Promise<void> {
  const { opts, say } = run;
  const compensate = (opts.compensate ?? true) && frames.length > 0;
  // Channel statistics and covariances read the same tensors (what the pruned groups'
  // consumers see) on the same frames: one capture pass gathers whichever are needed.
  const statistics = base.importance === "activation" || compensate ? statisticsAccumulator() : undefined;
  const covariances = base.importance === "reconstruction" ? covarianceAccumulator() : undefined;
  const gathered = [statistics ? "activation statistics" : "", covariances ? "channel covariances" : ""].filter(Boolean);
  if (gathered.length > 0) {
    const tensors = activationTensors(buildDependencyGraph(dense, { protectStem: opts.protectStem, ignore: opts.ignore }));
    say(`prune: ${gathered.join(" and ")} of ${tensors.length} tensors over ${frames.length} frames`);
    await forEachActivation(
      dense,
      tensors,
      frames,
      (f, values) => {
        statistics?.visit(f, values);
        covariances?.visit(f, values);
      },
      { threads: opts.threads, onProgress: (d, t) => say(`prune: activations: frame ${d}/${t}`, true) },
    );
  }
  if (statistics) {
    const stats = statistics.result();
    if (base.importance === "activation") base.activationStats = stats.meanAbs;
    if (compensate) base.compensationMeans = stats.mean;
  }
  if (covariances) base.covariances = covariances.result();
}

/** --target-latency prices groups in profiled milliseconds, not FLOPs: what is cheap in FLOPs is not always cheap in time. */
async function profileForLatency(run: PruneRun, dense: OnnxGraph, frames: readonly ModelInputData[]): Promise<ConvTimes | undefined> {
  if (run.opts.targetLatency === undefined) return undefined;
  const times = await profileConvTimes(dense, { runs: 10, threads: run.opts.threads, inputs: frames.slice(0, 4) });
  const convMs = [...times.convMs.values()].reduce((a, b) => a + b, 0);
  run.say(`prune: profiled the dense graph: ${times.totalMs.toFixed(1)} ms of kernels per run, ${convMs.toFixed(1)} ms in ${times.convMs.size} Convs`);
  run.notes.push(`ONNX Runtime profile of the dense graph: ${times.totalMs.toFixed(1)} ms of kernels per run, ${((100 * convMs) / times.totalMs).toFixed(0)}% in Convs; the rest does not shrink with pruning`);
  return times;
}

/** The ms estimate is a model (time falls slower than MACs): tighten its budget until the measured ratio holds. */
async function meetLatencyTarget(run: PruneRun, dense: OnnxGraph, frames: readonly ModelInputData[], sweep: SweepResult, base: StructuredOptions, first: PickResult): Promise<PickResult> {
  const { opts, say, notes } = run;
  const goal = opts.targetLatency!;
  let target = goal;
  let pick = first;
  for (let round = 1; round <= 4; round++) {
    const lat = await measureSideBySide([{ label: "dense", graph: dense }, { label: "pruned", graph: pick.result.graph }], {
      runs: opts.latencyRuns ?? 10,
      threads: opts.threads,
      inputs: frames.slice(0, 4),
    });
    const ratio = lat.rows[1].stats.p50Ms / lat.rows[0].stats.p50Ms;
    const est = pick.msFraction ?? NaN;
    say(`prune: latency try ${round}: estimated ${est.toFixed(3)} of dense, measured pruned/dense p50 ${ratio.toFixed(3)} (target ${goal})`);
    notes.push(`latency target: try ${round}, budget ${target.toFixed(3)}, estimated pruned/dense ${est.toFixed(3)}, measured pruned/dense p50 ${ratio.toFixed(3)}`);
    if (ratio <= goal) break;
    const next = Math.max(0.02, target * (goal / ratio));
    if (pick.msFraction !== undefined && pick.msFraction > target * 1.001) {
      notes.push("the latency target cannot be met within the sweep's levels");
      break;
    }
    target = next;
    pick = pickRatios(dense, sweep, target, base, "ms");
  }
  return pick;
}

/** Per-group ratios picked from a sensitivity sweep so the pruned graph meets the FLOPs or latency target. */
async function pruneToTarget(run: PruneRun, dense: OnnxGraph, frames: readonly ModelInputData[], base: StructuredOptions): Promise<{ structured: StructuredResult; sweep: PruneReport["sweep"] }> {
  const { opts, say } = run;
  const sweepFrames = frames.slice(0, Math.max(1, opts.sweepFrames ?? 4));
  const distortion = await outputDistortion(dense, sweepFrames, opts.threads);
  const times = await profileForLatency(run, dense, frames);
  say(`prune: sensitivity sweep on ${sweepFrames.length} frame(s)`);
  const sweep: SweepResult = await sensitivitySweep(dense, {
    base,
    distortion,
    times,
    // a milestone line per group (its last level), live lines in between
    onProgress: (e) => say(`prune: sweep ${e.done}/${e.total}: ${e.group} at ${e.ratio}: distortion ${e.distortion.toExponential(2)}`, e.ratio !== e.levels.at(-1)),
  });
  const by = opts.targetLatency !== undefined ? "ms" : "macs";
  let pick: PickResult = pickRatios(dense, sweep, opts.targetFlops ?? opts.targetLatency!, base, by);
  if (opts.targetLatency !== undefined) pick = await meetLatencyTarget(run, dense, frames, sweep, base, pick);
  if (pick.result.after.macs > (opts.targetFlops ?? 1) * pick.result.before.macs) run.notes.push("the FLOPs target could not be met within the sweep's levels");
  return {
    structured: pick.result,
    sweep: {
      levels: sweep.levels,
      rows: sweep.rows,
      picked: pick.ratios,
      estimatedDistortion: pick.estimatedDistortion,
      estimatedMsFraction: pick.msFraction,
      target: opts.targetFlops !== undefined ? `FLOPs <= ${opts.targetFlops} of dense` : `latency <= ${opts.targetLatency} of dense`,
    },
  };
}

/** Validation frames for --ridge: the given specs, or corpus:validation when --ridge auto picks the strength. */
async function loadValidation(run: PruneRun): Promise<{ specs: string[]; data: CalibrationData | undefined }> {
  const { opts } = run;
  const specs = opts.ridge === "auto" ? [...(opts.validation ?? DEFAULT_VALIDATION)] : opts.validation !== undefined ? [...opts.validation] : [];
  const data = specs.length > 0 ? await calibrationInputsFromData(specs, await sourceModel(run), opts.validationFrames ?? Number.MAX_SAFE_INTEGER, (t) => run.say(t, true), "validation") : undefined;
  return { specs, data };
}

function reportRecoveryProgress(say: Say): (e: RecoverProgress) => void {
  return (e) => {
    if (e.kind === "layer") say(`prune: recovered ${e.layer.node}: rel. MSE ${e.layer.relMseBefore.toExponential(2)} -> ${e.layer.relMseAfter.toExponential(2)}`, true);
    else if (e.kind === "wave") say(`prune: recovery wave ${e.wave + 1}/${e.waves}: frame ${e.frame}/${e.frames}`, true);
    else say(`prune: recovery: dense frame ${e.frame}/${e.frames}`, true);
  };
}

/** --recover: refits the Convs that lost input channels (or all downstream of them) on the calibration frames. */
async function recoverStep(run: PruneRun, dense: OnnxGraph, pruned: OnnxGraph, structured: StructuredResult, frames: readonly ModelInputData[]): Promise<{ graph: OnnxGraph; recovery: PruneReport["recovery"] }> {
  const { opts } = run;
  if (structured.changedConvs.length === 0) return { graph: pruned, recovery: { skipped: "no Conv lost input channels; nothing to refit" } };
  const refit = (opts.recoverLayers ?? DEFAULT_RECOVER_LAYERS) === "all" ? downstreamConvs(pruned, structured.changedConvs) : structured.changedConvs;
  const validation = await loadValidation(run);
  const ridgeText = opts.ridge === undefined ? "" : `, ridge toward the original weights (${opts.ridge === "auto" ? `strength picked per layer on ${validation.data!.inputs.length} frames of ${validation.specs.join(", ")}` : opts.ridge})`;
  run.say(`prune: least-squares recovery of ${refit.length} Convs on ${frames.length} frames${ridgeText}`);
  const rec = await recoverLeastSquares({
    ridge: opts.ridge,
    ridgeToward: opts.ridge === undefined ? "zero" : "original",
    validationFrames: validation.data?.inputs,
    dense,
    pruned,
    convNodes: refit,
    frames,
    outputChannels: structured.keptOutputChannels,
    samplesPerFrame: opts.samplesPerFrame,
    oversample: opts.oversample,
    threads: opts.threads,
    onProgress: reportRecoveryProgress(run.say),
  });
  const recovery: PruneReport["recovery"] = {
    frames: frames.length,
    ridge:
      opts.ridge === undefined
        ? { toward: "zero", strength: DEFAULT_RIDGE, validationFrames: 0, validation: null }
        : {
            toward: "original",
            strength: opts.ridge,
            validationFrames: validation.data?.inputs.length ?? 0,
            validation: validation.specs.length > 0 ? validation.specs : null,
            ...(validation.data === undefined ? {} : { validationSha256: validation.data.sha256 }),
          },
    layers: rec.layers.map((l) => ({
      ridge: l.ridge,
      node: l.node,
      relMseBefore: l.relMseBefore,
      relMseAfter: l.relMseAfter,
      samples: l.samples,
      heldOutBefore: l.heldOutBefore,
      heldOutAfter: l.heldOutAfter,
    })),
  };
  return { graph: rec.graph, recovery };
}

async function pruneStructuredStep(run: PruneRun, dense: OnnxGraph, frames: readonly ModelInputData[], base: StructuredOptions): Promise<Pruned> {
  const { opts } = run;
  await gatherChannelData(run, dense, frames, base);
  const { structured, sweep } = run.targeted ? await pruneToTarget(run, dense, frames, base) : { structured: pruneStructured(dense, { ...base, ratio: opts.ratio, ratios: opts.ratios }), sweep: undefined };
  run.say(`prune: structured: ${structured.groups.filter((g) => g.after < g.before).length} groups pruned, FLOPs ${(2 * structured.before.macs / 1e9).toFixed(3)}G -> ${(2 * structured.after.macs / 1e9).toFixed(3)}G`);
  if (!opts.recover) return { graph: structured.graph, structured, sweep };
  const { graph, recovery } = await recoverStep(run, dense, structured.graph, structured, frames);
  return { graph, structured, sweep, recovery };
}

/** Parent and recipe go into the model itself, so a pruned file says where it came from without its report. */
function stampProvenance(run: PruneRun, pruned: OnnxGraph, sourcePath: string, base: StructuredOptions, sweep: PruneReport["sweep"]): void {
  const { opts } = run;
  pruned.metadata = {
    ...pruned.metadata,
    "perceptd.prune.parent": basename(sourcePath),
    "perceptd.prune.method": run.method,
    "perceptd.prune.settings": JSON.stringify({
      ratio: opts.ratio,
      ratios: opts.ratios ?? sweep?.picked,
      importance: base.importance,
      round: opts.round,
      minChannels: opts.minChannels,
      recover: !!opts.recover,
      recoverLayers: opts.recover ? (opts.recoverLayers ?? DEFAULT_RECOVER_LAYERS) : undefined,
      ridge: opts.ridge,
    }),
  };
}

/** Runs the ONNX checker on a copy in a temporary folder: a model that fails never replaces a good file at the output path. */
async function checkBeforeWriting(outBytes: Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "perceptd-prune-"));
  try {
    const probe = join(dir, "pruned.onnx");
    await writeFile(probe, outBytes);
    const [res] = await checkOnnx([probe]);
    if (!res.ok) throw new Error(`the pruned model fails the ONNX checker (not written): ${res.error}`);
    return "passed";
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function measureLatency(run: PruneRun, dense: OnnxGraph, pruned: OnnxGraph, frames: readonly ModelInputData[]): Promise<LatencyResult> {
  return measureSideBySide([{ label: "dense", graph: dense }, { label: "pruned", graph: pruned }], {
    runs: run.opts.latencyRuns ?? 20,
    threads: run.opts.threads,
    inputs: frames.slice(0, 4),
    onProgress: (d, t) => run.say(`prune: latency run ${d}/${t}`, true),
  });
}

function noteLatencyTarget(run: PruneRun, latency: LatencyResult): void {
  const goal = run.opts.targetLatency;
  if (goal === undefined) return;
  const measured = latency.rows[1].stats.p50Ms / latency.rows[0].stats.p50Ms;
  run.notes.push(`final measurement: pruned/dense p50 latency ${measured.toFixed(3)}, target ${goal}: ${measured <= goal ? "met" : "NOT met"}`);
}

/** Agreement of the written model with its dense parent on evaluation frames no step calibrated on. */
async function measureAgreement(run: PruneRun, cal: Calibration): Promise<AgreementReport | undefined> {
  const { opts, say, manifestPath } = run;
  const { evalVideo, split } = cal;
  if (!(evalVideo && split && split.evaluation.length > 0)) {
    if (evalVideo) run.notes.push("agreement with the dense parent not measured: --eval-frames 0");
    else run.notes.push("agreement with the dense parent not measured: pass --calibration <video> (evaluation frames come from after its calibration part)");
    return undefined;
  }
  const manifest = await readManifest(manifestPath);
  const denseModel = await resolveModelArg(opts.model, manifest, manifestPath);
  const prunedModel = await resolveModelArg(resolve(opts.out), manifest, manifestPath);
  say(`prune: agreement with the dense parent on ${split.evaluation.length} evaluation frames (from frame ${split.boundary}, none used for calibration)`);
  let agreement = await evaluateAgreement({
    model: prunedModel,
    reference: denseModel,
    video: evalVideo,
    frames: split.evaluation,
    session: { intraOpThreads: opts.threads },
    onProgress: (p) => say(`prune: agreement: frame ${p.done}/${p.total}`, true),
  });
  agreement = { ...agreement, video: relative(process.cwd(), agreement.video) };
  say(`prune: agreement: mAP@0.5 ${agreement.map50.toFixed(3)}, person AP@0.5 ${(agreement.perClass.find((c) => c.label === "person")?.ap50 ?? NaN).toFixed(3)}, person recall ${agreement.personRecall.toFixed(3)}`);
  return agreement;
}

function reportSettings(run: PruneRun, base: StructuredOptions, cal: Calibration): PruneReport["settings"] {
  const { opts, method } = run;
  const { video, split, data, frames, source } = cal;
  return {
    ratio: opts.ratio,
    ratios: opts.ratios,
    targetFlops: opts.targetFlops,
    targetLatency: opts.targetLatency,
    importance: method === "structured" ? base.importance : undefined,
    round: opts.round ?? 8,
    minChannels: opts.minChannels ?? 8,
    ignore: opts.ignore ?? [],
    protectStem: opts.protectStem ?? true,
    scope: method === "unstructured" ? (opts.scope ?? "global") : undefined,
    recover: !!opts.recover,
    recoverLayers: opts.recover ? (opts.recoverLayers ?? DEFAULT_RECOVER_LAYERS) : undefined,
    samplesPerFrame: opts.recover ? (opts.samplesPerFrame ?? DEFAULT_SAMPLES_PER_FRAME) : undefined,
    oversample: opts.recover ? (opts.oversample ?? DEFAULT_OVERSAMPLE) : undefined,
    ridge: opts.recover ? (opts.ridge ?? null) : undefined,
    compensate: method === "structured" && (opts.compensate ?? true) && frames.length > 0,
    calibration:
      video !== undefined
        ? { video: relative(process.cwd(), video), frames: frames.length, firstOf: split?.boundary ?? null }
        : data !== undefined
          ? { data: source?.kind === "data" ? source.specs : [], set: data.set, cache: relative(process.cwd(), data.cacheDir), frames: frames.length, of: data.of, sha256: data.sha256 }
          : null,
  };
}

interface Measured {
  started: string;
  source: { path: string; bytes: Uint8Array };
  dense: OnnxGraph;
  outBytes: Uint8Array;
  checker: string;
  latency: LatencyResult;
  agreement: AgreementReport | undefined;
}

function buildReport(run: PruneRun, base: StructuredOptions, cal: Calibration, result: Pruned, m: Measured): PruneReport {
  const { opts, method } = run;
  const { structured } = result;
  const sb = structured?.before ?? graphStats(m.dense);
  const sa = graphStats(result.graph);
  return {
    schemaVersion: 1,
    createdAt: m.started,
    command: opts.command ?? "",
    machine: machine(),
    // Relative to the working directory: reports are committed beside shipped models.
    model: { source: relative(process.cwd(), m.source.path), output: relative(process.cwd(), resolve(opts.out)) },
    method,
    settings: reportSettings(run, base, cal),
    parameters: { before: sb.parameters, after: sa.parameters },
    flops: { before: 2 * sb.macs, after: 2 * sa.macs },
    fileBytes: { before: m.source.bytes.length, after: m.outBytes.length },
    compressedBytes: { before: compressedSize(m.source.bytes), after: compressedSize(m.outBytes) },
    groups: structured?.groups,
    layers: structured?.layers,
    skipped: structured?.skipped,
    changedConvs: structured?.changedConvs,
    unstructured: result.unstructured,
    sweep: result.sweep,
    recovery: result.recovery,
    latency: m.latency,
    agreement: m.agreement,
    check: { onnxChecker: m.checker, onnxruntime: "loaded and ran (latency runs above)" },
    notes: run.notes,
  };
}

export async function runPrune(opts: PruneOptions): Promise<PruneOutcome> {
  const method = opts.method ?? "structured";
  const targeted = checkOptions(opts, method);
  const run: PruneRun = { opts, say: opts.onProgress ?? (() => undefined), manifestPath: opts.manifestPath ?? DEFAULT_MANIFEST_PATH, method, targeted, notes: [] };
  const source = await calibrationSourceFor(run);

  const started = new Date().toISOString();
  const src = await loadModel(opts.model, run.manifestPath);
  const dense = src.graph;
  run.say(`prune: ${src.path}: ${dense.nodes.length} nodes, ${dense.initializers.size} initializers`);
  const cal = await loadCalibration(run, source);
  const base: StructuredOptions = {
    importance: opts.importance ?? "l1",
    round: opts.round,
    minChannels: opts.minChannels,
    ignore: opts.ignore,
    protectStem: opts.protectStem,
  };
  const result = method === "unstructured" ? pruneUnstructuredStep(run, dense) : await pruneStructuredStep(run, dense, cal.frames, base);

  stampProvenance(run, result.graph, src.path, base, result.sweep);
  const outBytes = encodeModel(result.graph);
  const checker = await checkBeforeWriting(outBytes);
  run.say("prune: ONNX checker passed; measuring dense vs pruned latency side by side");
  const latency = await measureLatency(run, dense, result.graph, cal.frames);
  await writeFileAtomic(resolve(opts.out), outBytes);
  noteLatencyTarget(run, latency);
  const agreement = await measureAgreement(run, cal);

  const report = buildReport(run, base, cal, result, { started, source: src, dense, outBytes, checker, latency, agreement });
  const prefix = opts.report ?? resolve(opts.out).replace(/\.onnx$/, ".report");
  const reportFiles = await writeReport(prefix, report);
  return { report, reportFiles, graph: result.graph };
}
