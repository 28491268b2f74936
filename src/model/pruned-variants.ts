// The pruned variants shipped in models/: each one pruned from a dense parent by
// `perceptd prune` (src/model/prune/pipeline.ts), its preprocessing baked as for the dense
// models (-u8), its report written beside it, and both files entered in the manifest with
// their parent, method, ratios, calibration data and measured figures.
//
//   perceptd models build-pruned [--only nanodet-p25]
//
// Which variant the daemon runs is the manifest's `default`, chosen by hand against the
// bar in the README (pruning section); building a variant never changes it.
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { evaluateAgainstBar, findsOutOfScene, type BarVerdict } from "./eval/bar.ts";
import { DEFAULT_AUGMENT, type AugmentSettings, type KeepBy } from "./finetune/distill.ts";
import { FINETUNE_DEFAULTS, runFinetune } from "./finetune/finetune.ts";
import { resolveModelArg } from "./eval/model-arg.ts";
import { DEFAULT_MANIFEST_PATH, formatZodIssues, ManifestSchema, readManifest, resolveModel, sha256Hex, type Manifest, type ModelEntry } from "../infer/manifest.ts";
import { decodeModel, encodeModel } from "./onnx/serialize.ts";
import { graphStats } from "./onnx/shape-inference.ts";
import type { OnnxGraph } from "./onnx/ir.ts";
import { bakePreprocessing } from "./preprocess.ts";
import type { FitTarget } from "../ingest/frame-fit.ts";
import { prepareFrames } from "./data/build.ts";
import { runPrune } from "./prune/pipeline.ts";
import type { PruneReport } from "./prune/report.ts";
import type { ImportanceKind } from "./prune/importance.ts";
import type { RecoverLayers } from "./prune/recover-layers.ts";
import { DEFAULT_ROUND } from "./prune/structured.ts";

export interface FinetuneRecipe {
  /** manifest name of the dense model whose outputs the variant learns */
  teacher: string;
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  /** validation and checkpoint every this many steps; the best step by keepBy is kept */
  evalEvery: number;
  /** steps of linear learning-rate warm-up */
  warmup: number;
  /** a class score's loss counts 1 + this x the larger of the teacher's and student's scores */
  confidenceWeight: number;
  /** weight of the head inputs' match to the teacher channels they were pruned from (0: outputs only) */
  featureWeight: number;
  keepBy: KeepBy;
  augment: AugmentSettings;
}

export interface PrunedVariantSpec {
  /** manifest name of the float variant; the baked one is `${name}-u8` */
  name: string;
  /** dense float parent (manifest name) and its baked sibling, whose input spec the -u8 variant takes */
  parent: string;
  bakedParent: string;
  /** share of each prunable channel group removed (of the groups `ratios` does not name) */
  ratio: number;
  /** per-group shares by Conv node name, fixed once from a sensitivity sweep so that every build prunes the same channels */
  ratios?: Readonly<Record<string, number>>;
  importance: ImportanceKind;
  /** kept channel counts round to a multiple of this (default DEFAULT_ROUND) */
  round?: number;
  /** which Convs recovery refits */
  recoverLayers: RecoverLayers;
  /** data specs of pruning importance, recovery and fine-tuning (calibration data only) */
  calibration: readonly string[];
  /** calibration frames spread over the data for importance and recovery */
  calibrationFrames: number;
  /** ridge toward the original weights: a strength, or "auto" (picked per layer on `validation`) */
  ridge: number | "auto";
  /** data specs that pick the ridge and the fine-tuning step kept (never trained on) */
  validation: readonly string[];
  finetune: FinetuneRecipe;
  description: string;
}

/** Calibration data of every shipped variant: several places (the corpus) plus the clip the daemon is demonstrated on. */
const CALIBRATION: readonly string[] = ["corpus:calibration", "vtest:calibration"];
const VALIDATION: readonly string[] = ["corpus:validation"];
/**
 * `perceptd finetune`'s defaults (FINETUNE_DEFAULTS: batch, learning rate, seed, warm-up,
 * confidence weight, feature weight off, step kept by validation recall) for 400 steps of 8
 * pictures (under 5 epochs of the 682 frames, 8-10 minutes on a free 2-core machine). The
 * confidence-weighted loss with 300-1,000 steps found about twice as many of the dense model's
 * objects out of scene on nanodet-p40 as 120 steps of the plain loss, and 1,000 steps no more
 * than 300 (docs/fine-tuning.md).
 */
const { validation: _finetuneValidation, ...TRAINING_DEFAULTS } = FINETUNE_DEFAULTS;
const FINETUNE: FinetuneRecipe = { ...TRAINING_DEFAULTS, teacher: "nanodet-u8", steps: 400, evalEvery: 50, augment: DEFAULT_AUGMENT };

const conv = (i: number): string => `PartitionedCall/convolution_${i}/Conv`;
/**
 * Per-group shares for nanodet-s42, picked once by the sensitivity sweep of
 * `perceptd prune nanodet --target-latency 0.6 --importance reconstruction --round 16 --sweep-frames 16
 * --calibration corpus:calibration --calibration vtest:calibration --calibration-frames 96` (2026-12-08):
 * each group pruned alone at 1/8 to 1/2 and priced by the output error per millisecond saved.
 * Fixed here so every build prunes the same channels; the groups not named lose half.
 */
const SWEPT_RATIOS: Readonly<Record<string, number>> = Object.fromEntries([
  ...[4, 6, 7, 8, 9].map((i) => [conv(i), 0.25] as const),
  ...[1, 5, 12, 18, 23, 32].map((i) => [conv(i), 0.375] as const),
]);

/** What every NanoDet recipe shares: parent, channel selection, rounding, recovery, data and fine-tuning. */
const NANODET_RECIPE = {
  parent: "nanodet",
  bakedParent: "nanodet-u8",
  importance: "reconstruction",
  round: 16,
  recoverLayers: "all",
  calibration: CALIBRATION,
  calibrationFrames: 96,
  ridge: "auto",
  validation: VALIDATION,
  finetune: FINETUNE,
} as const satisfies Partial<PrunedVariantSpec>;
const AFTER_PRUNING =
  "least-squares recovery regularised toward the original weights, then distillation fine-tuning from nanodet-u8, on the calibration corpus and vtest.avi's first quarter";

export const PRUNED_VARIANTS: readonly PrunedVariantSpec[] = [
  {
    ...NANODET_RECIPE,
    name: "nanodet-p25",
    ratio: 0.25,
    description: `NanoDet, 25 % of each prunable channel group removed (reconstruction-aware selection, kept counts in multiples of 16), ${AFTER_PRUNING}`,
  },
  {
    ...NANODET_RECIPE,
    name: "nanodet-p40",
    ratio: 0.4,
    description: `NanoDet, 40 % of each prunable channel group removed (reconstruction-aware selection, kept counts in multiples of 16), ${AFTER_PRUNING}`,
  },
  {
    ...NANODET_RECIPE,
    name: "nanodet-s42",
    ratio: 0.5,
    ratios: SWEPT_RATIOS,
    description:
      "NanoDet pruned unevenly to 42 % of its FLOPs (per-group shares from a sensitivity sweep priced in measured milliseconds, " +
      `reconstruction-aware selection, kept counts in multiples of 16), ${AFTER_PRUNING}`,
  },
];

export interface BuildPrunedOptions {
  only?: string[];
  manifestPath?: string;
  /** where the stages' intermediate graphs go (default .cache/build-pruned) */
  workDir?: string;
  /** PyTorch's device for fine-tuning (default cpu) */
  device?: "cpu" | "cuda";
  /** continue an interrupted build: reuse the recovered graph and the fine-tuning checkpoint while the settings and the data are the same */
  resume?: boolean;
  log?: (msg: string, live?: boolean) => void;
  /** Markdown of a bar verdict for `<name>.bar.md` (the command line's eval rendering); default: the verdict as JSON in a code block. */
  renderBar?: (v: BarVerdict) => string;
}

export interface BuiltVariant {
  name: string;
  file: string;
  sha256: string;
}

function entryFrom(base: ModelEntry, g: OnnxGraph, file: string, bytes: Uint8Array, over: Pick<ModelEntry, "description" | "variant" | "parent" | "build">): ModelEntry {
  const stats = graphStats(g);
  return { ...base, ...over, file, sha256: sha256Hex(bytes), bytes: bytes.length, parameters: stats.parameters, macs: stats.macs, flops: 2 * stats.macs };
}

async function writeManifest(manifestPath: string, next: Manifest): Promise<void> {
  const sorted: Manifest = { ...next, models: Object.fromEntries(Object.keys(next.models).sort().map((k) => [k, next.models[k]])) };
  const check = ManifestSchema.safeParse(sorted);
  if (!check.success) throw new Error(formatZodIssues("manifest with pruned variants", check.error));
  await writeFileAtomic(manifestPath, JSON.stringify(sorted, null, 2) + "\n");
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

/** What the manifest keeps of a bar verdict: each check, and per set the headline figures. */
function barRecord(v: BarVerdict): Record<string, unknown> {
  return {
    holds: v.holds,
    reference: v.reference,
    checks: v.checks.map((c) => ({ name: c.name, set: c.set, value: c.value === null ? null : round3(c.value), threshold: c.threshold, pass: c.pass })),
    latency: v.latency === null ? null : { ...v.latency, referenceP50Ms: round3(v.latency.referenceP50Ms), modelP50Ms: round3(v.latency.modelP50Ms), speedup: round3(v.latency.speedup) },
    sets: v.sets.map((s) => ({
      set: s.set,
      frames: s.frames,
      map50: round3(s.map50),
      personAp50: round3(s.perClass.find((c) => c.label === "person")?.ap50 ?? NaN),
      recall: round3(s.recall),
      confident: s.confident,
      found: s.found,
      collapsed: s.collapsed,
    })),
  };
}

/** sha256 of the frames the specs give now (the frame cache, built when the data changed). */
async function framesSha256(specs: readonly string[], target: FitTarget, purpose: "calibration" | "validation"): Promise<string> {
  const cache = await prepareFrames(specs, target, { purpose });
  try {
    return cache.index.sha256;
  } finally {
    await cache.close();
  }
}

/**
 * The report of an earlier build's pruning and recovery when its graph is still there and its
 * settings and data are this spec's (an interrupted build resumed); null otherwise. Data are
 * compared by the frames they give, so a data set whose files changed under the same name
 * (models/datasets.json edited) is not taken for the one the graph was refitted on.
 */
export async function reusablePrune(spec: PrunedVariantSpec, recovered: string, reportJson: string, target: FitTarget): Promise<PruneReport | null> {
  if (!existsSync(recovered) || !existsSync(reportJson)) return null;
  const report = JSON.parse(await readFile(reportJson, "utf8")) as PruneReport;
  const s = report.settings;
  const cal = s.calibration as { data?: string[]; frames?: number; sha256?: string } | null;
  const ridge = report.recovery !== undefined && "ridge" in report.recovery ? report.recovery.ridge : undefined;
  const same =
    s.ratio === spec.ratio &&
    JSON.stringify(s.ratios ?? null) === JSON.stringify(spec.ratios ?? null) &&
    s.importance === spec.importance &&
    s.round === (spec.round ?? DEFAULT_ROUND) &&
    s.recoverLayers === spec.recoverLayers &&
    s.ridge === spec.ridge &&
    cal !== null &&
    JSON.stringify(cal.data) === JSON.stringify(spec.calibration) &&
    cal.frames === spec.calibrationFrames &&
    JSON.stringify(ridge?.validation ?? null) === JSON.stringify(spec.validation);
  if (!same || cal.sha256 === undefined || ridge?.validationSha256 === undefined) return null;
  const sameData =
    cal.sha256 === (await framesSha256(spec.calibration, target, "calibration")) &&
    ridge.validationSha256 === (await framesSha256(spec.validation, target, "validation"));
  return sameData ? report : null;
}

export async function buildPrunedVariants(opts: BuildPrunedOptions): Promise<{ built: BuiltVariant[]; verdicts: BarVerdict[] }> {
  const manifestPath = opts.manifestPath ?? DEFAULT_MANIFEST_PATH;
  const log = opts.log ?? (() => undefined);
  const specs = PRUNED_VARIANTS.filter((s) => opts.only === undefined || opts.only.includes(s.name));
  const unknown = (opts.only ?? []).filter((n) => !PRUNED_VARIANTS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown pruned variant(s) ${unknown.join(", ")}; known: ${PRUNED_VARIANTS.map((s) => s.name).join(", ")}`);
  const modelsDir = dirname(manifestPath);
  const workDir = resolve(opts.workDir ?? join(modelsDir, "..", ".cache", "build-pruned"));
  await mkdir(join(modelsDir, "reports"), { recursive: true });
  await mkdir(workDir, { recursive: true });
  const built: BuiltVariant[] = [];
  const verdicts: BarVerdict[] = [];
  for (const spec of specs) {
    const manifest = await readManifest(manifestPath);
    const parent = manifest.models[spec.parent];
    const bakedParent = manifest.models[spec.bakedParent];
    if (parent === undefined || bakedParent === undefined) throw new Error(`${spec.name}: parent ${spec.parent} or ${spec.bakedParent} is not in ${manifestPath}`);
    const norm = parent.input.normalization;
    if (norm === null || parent.input.layout !== "NCHW") throw new Error(`${spec.name}: parent ${spec.parent} must be a float NCHW model with its normalisation in the manifest`);

    const file = `${spec.name}.onnx`;
    const bakedFile = `${spec.name}-u8.onnx`;
    // reports and graphs are built in the work folder; a variant that ships gets them copied to models/
    const workPrefix = join(workDir, spec.name);
    const reportPrefix = join(modelsDir, "reports", spec.name);
    const command = `perceptd models build-pruned --only ${spec.name}`;
    // 1. prune and recover (ridge toward the original weights)
    const recovered = join(workDir, `${spec.name}-recovered.onnx`);
    log(`${spec.name}: pruning ${spec.parent} (ratio ${spec.ratio}${spec.ratios === undefined ? "" : `, ${Object.keys(spec.ratios).length} groups with their own`}, ${spec.importance}, recovery with ridge ${spec.ridge} toward the original weights)`);
    const reused = opts.resume === true ? await reusablePrune(spec, recovered, `${workPrefix}.json`, parent.input) : null;
    if (reused !== null) log(`${spec.name}: --resume: reusing ${relative(process.cwd(), recovered)} and its report (same pruning and recovery settings and data)`);
    const pruneReport: PruneReport =
      reused ??
      (
        await runPrune({
          model: spec.parent,
          out: recovered,
          manifestPath,
          method: "structured",
          ratio: spec.ratio,
          ratios: spec.ratios === undefined ? undefined : { ...spec.ratios },
          importance: spec.importance,
          round: spec.round,
          recover: true,
          recoverLayers: spec.recoverLayers,
          ridge: spec.ridge,
          validation: spec.validation,
          calibration: spec.calibration,
          calibrationFrames: spec.calibrationFrames,
          // agreement is judged on whole sets below, after fine-tuning
          evalFrames: 0,
          report: workPrefix,
          command,
          onProgress: (text, live) => log(`${spec.name}: ${text}`, live),
        })
      ).report;
    // 2. distillation fine-tuning from the dense teacher, into the same graph
    const ft = spec.finetune;
    const tunedPath = join(workDir, file);
    log(`${spec.name}: fine-tuning from ${ft.teacher}, ${ft.steps} steps of ${ft.batch}`);
    const tuned = await runFinetune({
      student: recovered,
      teacher: ft.teacher,
      calibration: spec.calibration,
      validation: spec.validation,
      out: tunedPath,
      steps: ft.steps,
      batch: ft.batch,
      lr: ft.lr,
      seed: ft.seed,
      evalEvery: ft.evalEvery,
      warmup: ft.warmup,
      confidenceWeight: ft.confidenceWeight,
      featureWeight: ft.featureWeight,
      keepBy: ft.keepBy,
      augment: ft.augment,
      device: opts.device ?? "cpu",
      threads: availableParallelism(),
      checkpoint: join(workDir, `${spec.name}.ckpt`),
      // a checkpoint continues only on the graph it was trained from, with the same data (both
      // checked by reusablePrune); a graph pruned again starts training afresh
      resume: reused !== null,
      manifestPath,
      onProgress: (t) => log(`${spec.name}: ${t}`),
      onEvent: (e) => {
        if (e.type === "progress") log(`${spec.name}: finetune: epoch ${e.epoch}/${e.epochs} step ${e.step}/${e.steps} loss ${e.loss.toFixed(3)}, ${Math.round(e.eta / 60)} min left`, e.step % 25 !== 0);
        else if (e.type === "validation") log(`${spec.name}: finetune: step ${e.step}: validation loss ${e.loss === null ? "-" : e.loss.toFixed(3)}, recall ${e.recall === null ? "-" : e.recall.toFixed(3)}`);
      },
    });
    const bytes = new Uint8Array(await readFile(tunedPath));
    const graph = decodeModel(bytes, tunedPath);
    // 3. preprocessing baked in (-u8), as for the dense models
    const baked = bakePreprocessing(graph, "NCHW", { mean: norm.mean, std: norm.std, colorOrder: parent.input.colorOrder });
    baked.metadata = { ...graph.metadata, preprocessing: JSON.stringify({ mean: norm.mean, std: norm.std, colorOrder: parent.input.colorOrder }) };
    const bakedBytes = encodeModel(baked);
    const bakedPath = join(workDir, bakedFile);
    await writeFileAtomic(bakedPath, bakedBytes);

    // 4. the bar, on the baked variant against the dense one, both sets whole
    log(`${spec.name}: judging ${bakedFile} against the bar (vtest:held-out and corpus:out-of-scene whole, latency side by side)`);
    const [verdict] = await evaluateAgainstBar({
      models: [await resolveModelArg(bakedPath, manifest, manifestPath)],
      reference: resolveModel(manifest, manifestPath, spec.bakedParent),
      onProgress: (p) => log(`${spec.name}: bar: ${p.set}, ${p.model}: ${p.done}/${p.total}`, true),
    });
    const named = { ...verdict, model: `${spec.name}-u8` };
    await writeFileAtomic(
      `${workPrefix}.bar.md`,
      `# ${spec.name}-u8 against the bar\n\nWritten by \`${command}\` on ${new Date().toISOString()}.\n\n${(opts.renderBar ?? ((v) => "```json\n" + JSON.stringify(v, null, 2) + "\n```"))(named)}\n`,
    );
    log(`${spec.name}: bar ${verdict.holds ? "HELD" : "not held"}: ${verdict.checks.map((c) => `${c.name} ${c.value === null ? "-" : c.value.toFixed(3)} ${c.pass ? "pass" : "FAIL"}`).join("; ")}`);
    // A variant ships only when it finds the dense model's objects out of scene (the bar's third line).
    const ships = findsOutOfScene(verdict);

    // read again: another build may have entered its variant meanwhile
    const current = await readManifest(manifestPath);
    const next: Manifest = { ...current, models: { ...current.models } };
    if (!ships) {
      // an earlier variant of this name goes too: it was built by another recipe and is not what this build judged
      delete next.models[spec.name];
      delete next.models[`${spec.name}-u8`];
      await writeManifest(manifestPath, next);
      for (const f of [file, bakedFile, `reports/${spec.name}.md`, `reports/${spec.name}.json`, `reports/${spec.name}.bar.md`]) await rm(join(modelsDir, f), { force: true });
      log(`${spec.name}: NOT shipped: it misses the dense model's objects out of scene; graphs and reports stay in ${relative(process.cwd(), workDir)}`);
      verdicts.push(named);
      continue;
    }
    for (const ext of [".md", ".json", ".bar.md"]) await copyFile(`${workPrefix}${ext}`, `${reportPrefix}${ext}`);
    await writeFileAtomic(join(modelsDir, file), bytes);
    await writeFileAtomic(join(modelsDir, bakedFile), bakedBytes);
    const r = pruneReport;
    const build: Record<string, unknown> = {
      command,
      method: "structured",
      ratio: spec.ratio,
      ...(spec.ratios === undefined ? {} : { ratios: spec.ratios }),
      importance: spec.importance,
      round: spec.round ?? DEFAULT_ROUND,
      recovery: "least squares, ridge toward the original weights",
      recoverLayers: spec.recoverLayers,
      ridge: spec.ridge,
      calibration: { data: [...spec.calibration], ...(r.settings.calibration as object | null) },
      validation: [...spec.validation],
      finetune: {
        ...tuned.recipe,
        steps: tuned.steps,
        keptStep: tuned.keptStep,
        trainFrames: tuned.trainFrames,
        validationFrames: tuned.validationFrames,
        validationLoss: { start: round3(tuned.validationLoss.start ?? NaN), best: round3(tuned.validationLoss.best ?? NaN) },
        validationRecall: tuned.validationRecall === null ? null : round3(tuned.validationRecall),
        trainLoss: { first: round3(tuned.trainLoss.first ?? NaN), last: round3(tuned.trainLoss.last ?? NaN) },
        minutes: Math.round(tuned.seconds / 6) / 10,
        device: opts.device ?? "cpu",
      },
      report: relative(modelsDir, `${reportPrefix}.md`),
    };
    next.models[spec.name] = entryFrom(parent, graph, file, bytes, { description: spec.description, variant: `pruned-structured-${spec.importance}-finetuned`, parent: spec.parent, build });
    next.models[`${spec.name}-u8`] = entryFrom(bakedParent, baked, bakedFile, bakedBytes, {
      description: `${spec.description}; uint8 RGB input, preprocessing in the graph`,
      variant: `pruned-structured-${spec.importance}-finetuned-u8`,
      parent: spec.name,
      build: { command, bakedFrom: spec.name, bar: barRecord(named), barReport: relative(modelsDir, `${reportPrefix}.bar.md`) },
    });
    await writeManifest(manifestPath, next);
    verdicts.push(named);
    built.push({ name: spec.name, file, sha256: next.models[spec.name].sha256 }, { name: `${spec.name}-u8`, file: bakedFile, sha256: next.models[`${spec.name}-u8`].sha256 });
    log(`${spec.name}: shipped ${file}, ${bakedFile}, ${relative(modelsDir, reportPrefix)}.{md,json,bar.md}; manifest updated`);
  }
  return { built, verdicts };
}
