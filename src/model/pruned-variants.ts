// The pruned variants shipped in models/: each one pruned from a dense parent by
// `perceptd prune` (src/model/prune/pipeline.ts), its preprocessing baked as for the dense
// models (-u8), its report written beside it, and both files entered in the manifest with
// their parent, method, ratios, calibration data and measured figures.
//
//   perceptd models build-pruned [--only nanodet-p25]
//
// Which variant the daemon runs is the manifest's `default`, chosen by hand against the
// bar in the README (pruning section); building a variant never changes it.
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { DEFAULT_MANIFEST_PATH, formatZodIssues, ManifestSchema, readManifest, sha256Hex, type Manifest, type ModelEntry } from "../infer/manifest.ts";
import { encodeModel } from "./onnx/serialize.ts";
import { graphStats } from "./onnx/shape-inference.ts";
import type { OnnxGraph } from "./onnx/ir.ts";
import { bakePreprocessing } from "./preprocess.ts";
import { runPrune } from "./prune/pipeline.ts";
import type { ImportanceKind } from "./prune/importance.ts";
import { DEFAULT_RECOVER_LAYERS, type RecoverLayers } from "./prune/recover-layers.ts";
import { DEFAULT_ROUND } from "./prune/structured.ts";

export interface PrunedVariantSpec {
  /** manifest name of the float variant; the baked one is `${name}-u8` */
  name: string;
  /** dense float parent (manifest name) and its baked sibling, whose input spec the -u8 variant takes */
  parent: string;
  bakedParent: string;
  /** share of each prunable channel group removed */
  ratio: number;
  importance: ImportanceKind;
  /** kept channel counts round to a multiple of this (default DEFAULT_ROUND) */
  round?: number;
  recover: boolean;
  /** which Convs recovery refits (default DEFAULT_RECOVER_LAYERS) */
  recoverLayers?: RecoverLayers;
  calibrationFrames: number;
  description: string;
}

export const PRUNED_VARIANTS: readonly PrunedVariantSpec[] = [
  {
    name: "nanodet-p25",
    parent: "nanodet",
    bakedParent: "nanodet-u8",
    ratio: 0.25,
    importance: "l1",
    recover: true,
    calibrationFrames: 16,
    description: "NanoDet, 25 % of each prunable channel group removed (L1), least-squares recovery on vtest.avi calibration frames",
  },
  {
    name: "nanodet-p50",
    parent: "nanodet",
    bakedParent: "nanodet-u8",
    ratio: 0.5,
    importance: "l1",
    recover: true,
    calibrationFrames: 16,
    description: "NanoDet, 50 % of each prunable channel group removed (L1), least-squares recovery on vtest.avi calibration frames",
  },
  {
    // docs/pruning-curve.md: kept counts in multiples of 16, channels chosen for what the next
    // layer can rebuild, every Conv downstream of a pruned one refitted on 96 frames
    name: "nanodet-p375",
    parent: "nanodet",
    bakedParent: "nanodet-u8",
    ratio: 0.375,
    importance: "reconstruction",
    round: 16,
    recover: true,
    recoverLayers: "all",
    calibrationFrames: 96,
    description:
      "NanoDet, 37.5 % of each prunable channel group removed (reconstruction-aware selection, kept counts in multiples of 16), " +
      "least-squares recovery of every Conv downstream of a pruned one on vtest.avi calibration frames",
  },
  {
    // The same recipe at 40 % with every calibration frame of the first quarter: it held the
    // bar on held-out frames of the calibration clip, and finds nothing in other scenes.
    name: "nanodet-p40",
    parent: "nanodet",
    bakedParent: "nanodet-u8",
    ratio: 0.4,
    importance: "reconstruction",
    round: 16,
    recover: true,
    recoverLayers: "all",
    calibrationFrames: 192,
    description:
      "NanoDet, 40 % of each prunable channel group removed (reconstruction-aware selection, kept counts in multiples of 16), " +
      "least-squares recovery of every Conv downstream of a pruned one on 192 vtest.avi calibration frames",
  },
];

export interface BuildPrunedOptions {
  only?: string[];
  /** calibration and evaluation video (default .cache/fixtures/vtest.avi) */
  video: string;
  manifestPath?: string;
  log?: (msg: string, live?: boolean) => void;
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

export async function buildPrunedVariants(opts: BuildPrunedOptions): Promise<BuiltVariant[]> {
  const manifestPath = opts.manifestPath ?? DEFAULT_MANIFEST_PATH;
  const log = opts.log ?? (() => undefined);
  const specs = PRUNED_VARIANTS.filter((s) => opts.only === undefined || opts.only.includes(s.name));
  const unknown = (opts.only ?? []).filter((n) => !PRUNED_VARIANTS.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown pruned variant(s) ${unknown.join(", ")}; known: ${PRUNED_VARIANTS.map((s) => s.name).join(", ")}`);
  const modelsDir = dirname(manifestPath);
  await mkdir(join(modelsDir, "reports"), { recursive: true });
  const built: BuiltVariant[] = [];
  for (const spec of specs) {
    const manifest = await readManifest(manifestPath);
    const parent = manifest.models[spec.parent];
    const bakedParent = manifest.models[spec.bakedParent];
    if (parent === undefined || bakedParent === undefined) throw new Error(`${spec.name}: parent ${spec.parent} or ${spec.bakedParent} is not in ${manifestPath}`);
    const norm = parent.input.normalization;
    if (norm === null || parent.input.layout !== "NCHW") throw new Error(`${spec.name}: parent ${spec.parent} must be a float NCHW model with its normalisation in the manifest`);

    const file = `${spec.name}.onnx`;
    const reportPrefix = join(modelsDir, "reports", spec.name);
    const command = `perceptd models build-pruned --only ${spec.name}`;
    log(`${spec.name}: pruning ${spec.parent} (ratio ${spec.ratio}, ${spec.importance}${spec.recover ? ", least-squares recovery" : ""})`);
    const outcome = await runPrune({
      model: spec.parent,
      out: join(modelsDir, file),
      manifestPath,
      method: "structured",
      ratio: spec.ratio,
      importance: spec.importance,
      round: spec.round,
      recover: spec.recover,
      recoverLayers: spec.recover ? spec.recoverLayers : undefined,
      calibration: opts.video,
      calibrationFrames: spec.calibrationFrames,
      report: reportPrefix,
      command,
      onProgress: (text, live) => log(`${spec.name}: ${text}`, live),
    });
    const bytes = new Uint8Array(await readFile(join(modelsDir, file)));
    const r = outcome.report;
    const build = {
      command,
      method: "structured",
      ratio: spec.ratio,
      importance: spec.importance,
      round: spec.round ?? DEFAULT_ROUND,
      recovery: spec.recover ? "least squares" : "none",
      ...(spec.recover ? { recoverLayers: spec.recoverLayers ?? DEFAULT_RECOVER_LAYERS } : {}),
      // calibration frames spread over the first quarter of the video; agreement measured on frames after it
      calibration: { video: "vtest.avi (Debian opencv-doc)", ...(r.settings.calibration as object | null) },
      report: relative(modelsDir, `${reportPrefix}.md`),
      // measured in the same run (see the report for the machine and its load)
      latencySpeedup: r.latency?.rows[1]?.speedup ?? null,
      agreement:
        r.agreement === undefined
          ? null
          : {
              frames: r.agreement.frames,
              reference: r.agreement.reference,
              referenceThreshold: r.agreement.referenceThreshold,
              map50: r.agreement.map50,
              personAp50: r.agreement.perClass.find((c) => c.label === "person")?.ap50 ?? null,
              personRecall: r.agreement.personRecall,
              operatingThreshold: r.agreement.operatingThreshold,
            },
    };
    const baked = bakePreprocessing(outcome.graph, "NCHW", { mean: norm.mean, std: norm.std, colorOrder: parent.input.colorOrder });
    baked.metadata = { ...outcome.graph.metadata, preprocessing: JSON.stringify({ mean: norm.mean, std: norm.std, colorOrder: parent.input.colorOrder }) };
    const bakedBytes = encodeModel(baked);
    const bakedFile = `${spec.name}-u8.onnx`;
    await writeFileAtomic(join(modelsDir, bakedFile), bakedBytes);

    const next: Manifest = { ...manifest, models: { ...manifest.models } };
    next.models[spec.name] = entryFrom(parent, outcome.graph, file, bytes, { description: spec.description, variant: `pruned-structured-${spec.importance}`, parent: spec.parent, build });
    next.models[`${spec.name}-u8`] = entryFrom(bakedParent, baked, bakedFile, bakedBytes, {
      description: `${spec.description}; uint8 RGB input, preprocessing in the graph`,
      variant: `pruned-structured-${spec.importance}-u8`,
      parent: spec.name,
      build: { command, bakedFrom: spec.name },
    });
    const sorted: Manifest = { ...next, models: Object.fromEntries(Object.keys(next.models).sort().map((k) => [k, next.models[k]])) };
    const check = ManifestSchema.safeParse(sorted);
    if (!check.success) throw new Error(formatZodIssues("manifest with pruned variants", check.error));
    await writeFileAtomic(manifestPath, JSON.stringify(sorted, null, 2) + "\n");
    built.push({ name: spec.name, file, sha256: next.models[spec.name].sha256 }, { name: `${spec.name}-u8`, file: bakedFile, sha256: next.models[`${spec.name}-u8`].sha256 });
    log(`${spec.name}: wrote ${file}, ${bakedFile}, ${relative(modelsDir, reportPrefix)}.{md,json}; manifest updated`);
  }
  return built;
}
