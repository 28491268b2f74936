// Runs the distillation script (distill.py beside this file) on resolved inputs: a student and
// a teacher ONNX file, how each takes its input, which outputs to distil, and frame-cache
// folders. Each cache is opened for its purpose first (openFrameCacheFor), so a cache that
// holds test or validation data is refused before Python sees it. The script prints one JSON
// object per line; this turns them into progress events and the run's summary.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelInputSpec } from "../../infer/input-tensor.ts";
import { openFrameCacheFor } from "../data/build.ts";
import type { DataPurpose } from "../data/guard.ts";

export const DISTILL_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "distill.py");
const INSTALL_HINT = "install python3-torch and python3-onnx (scripts/setup.sh --training does)";

/** One detection level: its class-score output (after sigmoid) and its box-distribution output (logits, `bins` per side). */
export interface DistillHead {
  scores: string;
  boxes: string;
  bins: number;
}

/** Online augmentation of each training picture (distill.py's augment()). */
export interface AugmentSettings {
  /** horizontal flip with probability 0.5 */
  flip: boolean;
  /** random crop of this much of each side or more (then scaled back), with probability 0.8 */
  minScale: number;
  /** shrink the picture to this much of each side or more and place it on black, as the letterbox borders are (1: never), with probability 0.3 */
  zoomOut: number;
  /** brightness, contrast and saturation each scaled by 1 ± this */
  jitter: number;
  /** probability of grayscale */
  grayscale: number;
  /** probability of a 3x3 box blur */
  blur: number;
  /** standard deviation of the added Gaussian noise (0..255 units), with probability 0.5 */
  noise: number;
}

export const DEFAULT_AUGMENT: AugmentSettings = { flip: true, minScale: 0.6, zoomOut: 1, jitter: 0.3, grayscale: 0.1, blur: 0.1, noise: 4 };

/**
 * Augmentation settings from `key=value` overrides of the defaults (the command line's
 * --augment), e.g. ["minScale=0.3", "flip=false"]; an unknown key or a bad value is an error
 * naming it.
 */
export function parseAugment(overrides: readonly string[], base: AugmentSettings = DEFAULT_AUGMENT): AugmentSettings {
  const out: AugmentSettings = { ...base };
  const ranges: Record<Exclude<keyof AugmentSettings, "flip">, [number, number]> = {
    minScale: [0.05, 1],
    zoomOut: [0.05, 1],
    jitter: [0, 1],
    grayscale: [0, 1],
    blur: [0, 1],
    noise: [0, 64],
  };
  for (const o of overrides) {
    const eq = o.indexOf("=");
    const key = eq > 0 ? o.slice(0, eq) : o;
    const value = eq > 0 ? o.slice(eq + 1) : "";
    if (key === "flip") {
      if (value !== "true" && value !== "false") throw new Error(`augment ${o}: flip takes true or false`);
      out.flip = value === "true";
      continue;
    }
    if (!Object.hasOwn(ranges, key)) throw new Error(`augment ${o}: unknown setting "${key}"; known: flip, ${Object.keys(ranges).join(", ")}`);
    const k = key as keyof typeof ranges;
    const [lo, hi] = ranges[k];
    const n = Number(value);
    if (value === "" || !Number.isFinite(n) || n < lo || n > hi) throw new Error(`augment ${o}: ${key} takes a number from ${lo} to ${hi}`);
    out[k] = n;
  }
  return out;
}

export type KeepBy = "loss" | "recall";

export interface DistillRun {
  student: string;
  teacher: string;
  studentInput: Pick<ModelInputSpec, "layout" | "colorOrder" | "normalization">;
  teacherInput: Pick<ModelInputSpec, "layout" | "colorOrder" | "normalization">;
  heads: readonly DistillHead[];
  /** frame-cache folders trained on (opened for "training") */
  train: readonly string[];
  /** frame-cache folders the kept step is chosen on (opened for "validation"); none: the last step is kept */
  validation: readonly string[];
  out: string;
  /** give steps, or epochs over the training frames */
  steps?: number;
  epochs?: number;
  batch: number;
  lr: number;
  seed: number;
  /** validation and checkpoint every this many steps (default once per epoch) */
  evalEvery?: number;
  augment: AugmentSettings;
  lossWeights?: { cls: number; box: number };
  /** each class score's loss counts 1 + this x the larger of the two scores (0: every score alike) */
  confidenceWeight?: number;
  /**
   * weight of the feature term: the student's head inputs (each FPN level) against the teacher
   * channels they were pruned from, in units of each teacher channel's spread, summed over
   * positions like the score loss (0: outputs only)
   */
  featureWeight?: number;
  /** what picks the kept step: lowest validation loss, or highest recall of the teacher's confident scores (ties: loss) */
  keepBy?: KeepBy;
  /** steps of linear learning-rate warm-up before the cosine decay */
  warmup?: number;
  device: "cpu" | "cuda";
  threads?: number;
  checkpoint: string;
  resume: boolean;
  /** default: $PERCEPTD_PYTHON, else the first of /usr/bin/python3, python3 with torch and onnx */
  python?: string;
  onEvent?: (e: DistillEvent) => void;
}

export type DistillEvent =
  | { type: "progress"; epoch: number; epochs: number; step: number; steps: number; loss: number; cls: number; box: number; feat: number; eta: number }
  /** a head input distilled as features: its student and teacher channel counts and how well the matched pairs correlate on the first training frames */
  | { type: "features"; tensor: string; student: number; teacher: number; meanCorrelation: number; minCorrelation: number }
  /** recall: share of the teacher's class scores >= 0.5 that the student scores >= 0.3, over every anchor of the validation frames */
  | { type: "validation"; step: number; loss: number | null; recall: number | null }
  | { type: "checkpoint"; step: number; path: string }
  | { type: "resumed"; step: number; steps: number };

export interface DistillSummary {
  out: string;
  steps: number;
  /** the step whose weights were written (best validation by keepBy) */
  keptStep: number;
  validationLoss: { start: number | null; best: number | null };
  /** the kept step's validation recall of the teacher's confident scores */
  validationRecall: number | null;
  trainLoss: { first: number | null; last: number | null };
  seconds: number;
}

/** A python3 that has torch and onnx, or why there is none. */
export function findTrainingPython(explicit = process.env.PERCEPTD_PYTHON): { python: string } | { missing: string } {
  const tried: string[] = [];
  for (const py of explicit ? [explicit] : ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(py, ["-c", "import torch, onnx, numpy"], { encoding: "utf8", timeout: 60_000 });
    if (r.status === 0) return { python: py };
    tried.push(`${py}: ${r.error ? r.error.message : (r.stderr.trim().split("\n").at(-1) ?? `exit ${r.status}`)}`);
  }
  return { missing: `no python3 with PyTorch and ONNX (${tried.join("; ")}); ${INSTALL_HINT}` };
}

async function openChecked(dirs: readonly string[], purpose: DataPurpose): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    const cache = await openFrameCacheFor(resolve(d), purpose);
    await cache.close();
    out.push(resolve(d));
  }
  return out;
}

export async function runDistillation(run: DistillRun): Promise<DistillSummary> {
  if ((run.steps === undefined) === (run.epochs === undefined)) throw new Error("fine-tuning: give steps or epochs (one of them)");
  for (const [k, v] of [["steps", run.steps], ["epochs", run.epochs], ["batch", run.batch]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new RangeError(`fine-tuning: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (!(run.lr > 0)) throw new RangeError(`fine-tuning: learning rate must be > 0, got ${run.lr}`);
  if (run.confidenceWeight !== undefined && !(run.confidenceWeight >= 0)) throw new RangeError(`fine-tuning: confidence weight must be >= 0, got ${run.confidenceWeight}`);
  if (run.featureWeight !== undefined && !(run.featureWeight >= 0)) throw new RangeError(`fine-tuning: feature weight must be >= 0, got ${run.featureWeight}`);
  if (run.warmup !== undefined && !(Number.isInteger(run.warmup) && run.warmup >= 0)) throw new RangeError(`fine-tuning: warm-up must be a whole number of steps >= 0, got ${run.warmup}`);
  if (run.heads.length === 0) throw new Error("fine-tuning: no outputs to distil (heads)");
  if (!run.out.endsWith(".onnx")) throw new Error(`fine-tuning: --out ${run.out}: expected a path ending in .onnx`);
  const train = await openChecked(run.train, "training");
  const validation = await openChecked(run.validation, "validation");
  if (train.length === 0) throw new Error("fine-tuning: no training data");
  const py = run.python !== undefined ? { python: run.python } : findTrainingPython();
  if ("missing" in py) throw new Error(`fine-tuning: ${py.missing}`);
  const studentBytes = await readFile(run.student).catch((e: Error) => {
    throw new Error(`fine-tuning: cannot read the student ${run.student}: ${e.message}`);
  });

  const config = {
    student: resolve(run.student),
    studentSha256: createHash("sha256").update(studentBytes).digest("hex"),
    teacher: resolve(run.teacher),
    studentInput: run.studentInput,
    teacherInput: run.teacherInput,
    heads: run.heads,
    train,
    validation,
    out: resolve(run.out),
    steps: run.steps ?? null,
    epochs: run.epochs ?? null,
    batch: run.batch,
    lr: run.lr,
    seed: run.seed,
    evalEvery: run.evalEvery ?? null,
    augment: run.augment,
    lossWeights: run.lossWeights ?? { cls: 1, box: 1 },
    confidenceWeight: run.confidenceWeight ?? 0,
    featureWeight: run.featureWeight ?? 0,
    keepBy: run.keepBy ?? "loss",
    warmup: run.warmup ?? 0,
    device: run.device,
    threads: run.threads ?? null,
    checkpoint: resolve(run.checkpoint),
    resume: run.resume,
  };
  const configPath = `${resolve(run.checkpoint)}.config.json`;
  await writeFile(configPath, JSON.stringify(config, null, 1));
  try {
    return await new Promise<DistillSummary>((resolveRun, reject) => {
      const child = spawn(py.python, [DISTILL_SCRIPT, configPath], { stdio: ["ignore", "pipe", "pipe"] });
      let summary: DistillSummary | null = null;
      let error: string | null = null;
      let stderr = "";
      let pending = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        pending += chunk;
        let nl;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line.startsWith("{")) continue;
          const e = JSON.parse(line) as { type: string } & Record<string, unknown>;
          if (e.type === "done") summary = e as unknown as DistillSummary;
          else if (e.type === "error") error = String(e.message);
          else run.onEvent?.(e as DistillEvent);
        }
      });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk: string) => {
        stderr = (stderr + chunk).slice(-4000);
      });
      child.on("error", (e) => reject(new Error(`fine-tuning: cannot start ${py.python}: ${e.message}`)));
      child.on("close", (code, signal) => {
        if (summary !== null && code === 0) resolveRun(summary);
        else if (error !== null) reject(new Error(`fine-tuning: ${error}`));
        else reject(new Error(`fine-tuning: ${DISTILL_SCRIPT} ended with ${signal ?? `exit ${code}`}${stderr ? `:\n${stderr.trim()}` : ""}`));
      });
    });
  } finally {
    await rm(configPath, { force: true });
  }
}
