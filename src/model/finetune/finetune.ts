// `perceptd finetune` without the command line: the pruned student learns the dense teacher's
// outputs (class scores and box distributions of every level) on unlabeled calibration frames,
// starting from its recovered weights; the trained weights go back into the student's own
// ONNX graph, which is checked (ONNX checker, ONNX Runtime) before it replaces --out.
//
// Models are manifest names or ONNX files (a file borrows the entry of the manifest model it
// is interchangeable with, as in `perceptd eval`); data are data specs, decoded once into the
// frame cache for the student's input size and read by the Python step from there.
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { writeFileAtomic } from "../../util/atomic-write.ts";
import { prepareFrames } from "../data/build.ts";
import { resolveModelArg } from "../eval/model-arg.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, type ResolvedModel } from "../../infer/manifest.ts";
import { checkOnnx } from "../onnx-checker.ts";
import { DEFAULT_AUGMENT, runDistillation, type AugmentSettings, type KeepBy, type DistillEvent, type DistillHead, type DistillSummary } from "./distill.ts";

/** The default recipe; `perceptd models build-pruned` records what each shipped variant used. */
export const FINETUNE_DEFAULTS = { batch: 8, lr: 3e-4, seed: 1, confidenceWeight: 20, featureWeight: 0, keepBy: "recall" as KeepBy, warmup: 20, validation: ["corpus:validation"] as readonly string[] };

export interface FinetuneOptions {
  /** manifest name or ONNX file: the pruned model trained */
  student: string;
  /** manifest name or ONNX file: the dense model whose outputs are learned */
  teacher: string;
  /** data specs trained on (calibration data; test and validation data are refused) */
  calibration: readonly string[];
  /** data specs the kept step is chosen on (default corpus:validation); [] keeps the last step */
  validation?: readonly string[];
  out: string;
  steps?: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  evalEvery?: number;
  confidenceWeight?: number;
  featureWeight?: number;
  keepBy?: KeepBy;
  warmup?: number;
  augment?: AugmentSettings;
  device?: "cpu" | "cuda";
  threads?: number;
  /** default: <out>.ckpt */
  checkpoint?: string;
  resume?: boolean;
  manifestPath?: string;
  onEvent?: (e: DistillEvent) => void;
  onProgress?: (text: string) => void;
}

export interface FinetuneResult extends DistillSummary {
  trainFrames: number;
  validationFrames: number;
  recipe: Record<string, unknown>;
}

/** The levels a nanodet-gfl model's decoder reads, with the bins per box side from the output shape. */
export function headsOf(model: ResolvedModel): DistillHead[] {
  const d = model.entry.decoder;
  if (d.kind !== "nanodet-gfl") throw new Error(`fine-tuning: model ${model.name} has a ${d.kind} head; distillation knows nanodet-gfl (class scores and box distributions)`);
  return d.outputs.levels.map((l) => {
    const box = model.entry.outputs.find((o) => o.name === l.boxes);
    const width = box?.shape.at(-1);
    if (width === undefined || width % 4 !== 0) throw new Error(`fine-tuning: model ${model.name}: box output ${l.boxes} has no last dimension divisible by 4 sides`);
    return { scores: l.scores, boxes: l.boxes, bins: width / 4 };
  });
}

async function cacheFor(specs: readonly string[], model: ResolvedModel, purpose: "training" | "validation", say: (t: string) => void): Promise<{ dir: string; count: number }> {
  const spec = model.entry.input;
  const cache = await prepareFrames(specs, { width: spec.width, height: spec.height, resize: spec.resize }, { purpose, onProgress: (p) => say(`finetune: ${purpose} data ${p.frames} frame(s), source ${p.source}/${p.sources}`) });
  const out = { dir: cache.dir, count: cache.index.count };
  await cache.close();
  return out;
}

export async function runFinetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const say = opts.onProgress ?? (() => undefined);
  const manifestPath = opts.manifestPath ?? DEFAULT_MANIFEST_PATH;
  const manifest = await readManifest(manifestPath);
  const student = await resolveModelArg(opts.student, manifest, manifestPath);
  const teacher = await resolveModelArg(opts.teacher, manifest, manifestPath);
  const si = student.entry.input;
  const ti = teacher.entry.input;
  if (si.width !== ti.width || si.height !== ti.height || si.resize !== ti.resize) {
    throw new Error(`fine-tuning: student ${student.name} takes ${si.width}x${si.height} (${si.resize}), teacher ${teacher.name} ${ti.width}x${ti.height} (${ti.resize}); they must see the same pictures`);
  }
  const heads = headsOf(teacher);
  const studentHeads = headsOf(student);
  if (JSON.stringify(heads) !== JSON.stringify(studentHeads)) throw new Error(`fine-tuning: student ${student.name} and teacher ${teacher.name} have different detection outputs`);
  if (opts.calibration.length === 0) throw new Error("fine-tuning needs training data: pass --calibration (for example corpus:calibration)");

  const train = await cacheFor(opts.calibration, student, "training", say);
  const validationSpecs = opts.validation ?? FINETUNE_DEFAULTS.validation;
  const validation = validationSpecs.length > 0 ? await cacheFor(validationSpecs, student, "validation", say) : null;
  const out = resolve(opts.out);
  await mkdir(dirname(out), { recursive: true });
  const work = await mkdtemp(join(tmpdir(), "perceptd-finetune-"));
  const keepBy = opts.keepBy ?? FINETUNE_DEFAULTS.keepBy;
  const recipe = {
    teacher: teacher.name,
    data: [...opts.calibration],
    validation: [...validationSpecs],
    steps: opts.steps ?? null,
    epochs: opts.epochs ?? null,
    batch: opts.batch ?? FINETUNE_DEFAULTS.batch,
    lr: opts.lr ?? FINETUNE_DEFAULTS.lr,
    schedule: "Adam, linear warm-up, cosine decay to 0",
    seed: opts.seed ?? FINETUNE_DEFAULTS.seed,
    augment: opts.augment ?? DEFAULT_AUGMENT,
    warmup: opts.warmup ?? FINETUNE_DEFAULTS.warmup,
    confidenceWeight: opts.confidenceWeight ?? FINETUNE_DEFAULTS.confidenceWeight,
    featureWeight: opts.featureWeight ?? FINETUNE_DEFAULTS.featureWeight,
    loss:
      "per level: KL divergence of class scores (as Bernoulli, each weighted 1 + confidenceWeight x the larger score) from the teacher's + KL of box-side distributions weighted by the teacher's best class score" +
      " + featureWeight x squared error of the head inputs against the teacher channels they were pruned from (in teacher standard deviations, mean over channels, summed over positions)",
    // the criterion by name: the summary's keptStep (the step number) would overwrite a "keptStep" here
    keepBy: keepBy === "recall" ? "highest validation recall of the teacher's confident scores" : "lowest validation loss",
  };
  try {
    const trained = join(work, "student.onnx");
    say(`finetune: ${student.name} <- ${teacher.name}: ${train.count} training frames, ${validation?.count ?? 0} validation frames`);
    const summary = await runDistillation({
      student: student.path,
      teacher: teacher.path,
      studentInput: si,
      teacherInput: ti,
      heads,
      train: [train.dir],
      validation: validation ? [validation.dir] : [],
      out: trained,
      steps: opts.steps,
      epochs: opts.steps === undefined ? (opts.epochs ?? 1) : undefined,
      batch: recipe.batch,
      lr: recipe.lr,
      seed: recipe.seed,
      evalEvery: opts.evalEvery,
      augment: recipe.augment,
      confidenceWeight: recipe.confidenceWeight,
      featureWeight: recipe.featureWeight,
      keepBy,
      warmup: recipe.warmup,
      device: opts.device ?? "cpu",
      threads: opts.threads,
      checkpoint: opts.checkpoint ?? `${out}.ckpt`,
      resume: opts.resume ?? false,
      onEvent: opts.onEvent,
    });
    const [check] = await checkOnnx([trained]);
    if (!check.ok) throw new Error(`fine-tuning: the trained model fails the ONNX checker (not written): ${check.error}`);
    const bytes = await readFile(trained);
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"] });
    await session.release();
    await writeFileAtomic(out, bytes);
    return { ...summary, out, trainFrames: train.count, validationFrames: validation?.count ?? 0, recipe };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
