// `perceptd eval`: how well a model (typically a pruned one) agrees with a reference model
// (typically its dense parent) on real frames, or with real COCO JSON labels. By default it
// reports each data set on its own: the held-out frames of vtest.avi (none used for
// calibration) and the out-of-scene set (places no calibration source shows); --bar adds the
// side-by-side latency and the verdict on the bar a pruned default must hold. --video and
// --frames keep the single-video evaluation, --labels the evaluation against COCO labels.
import type { Command } from "commander";
import * as ort from "onnxruntime-node";
import { probeVideo } from "../../ingest/gst/video-file.ts";
import {
  AGREEMENT_CLASSES,
  DEFAULT_REFERENCE_THRESHOLD,
  evaluateAgainstLabels,
  evaluateAgreement,
  type AgreementReport,
} from "../../model/eval/agreement.ts";
import { readCocoLabels } from "../../model/eval/coco-json.ts";
import { DEFAULT_EVAL_VIDEO, splitVideoFrames } from "../../model/eval/frames.ts";
import { evaluateAgainstBar, type BarVerdict } from "../../model/eval/bar.ts";
import { resolveModelArg } from "../../model/eval/model-arg.ts";
import { DEFAULT_EVAL_SETS, evaluateOnSets, type SetAgreement } from "../../model/eval/set-agreement.ts";
import { DEFAULT_MANIFEST_PATH, readManifest, type Manifest, type ResolvedModel } from "../../infer/manifest.ts";
import { formatFixed, markdownTable } from "../bench/table.ts";
import { parseFrameSpec } from "./detect.ts";
import { renderSetAgreement, renderVerdict } from "./eval-sets.ts";

interface EvalFlags {
  model: string[];
  data?: string[];
  bar?: boolean;
  latencyRuns?: string;
  reference?: string;
  labels?: string;
  video?: string;
  frames?: string;
  referenceThreshold?: string;
  manifest?: string;
  threads?: string;
  json?: boolean;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function parseThreshold(text: string): number {
  const v = DECIMAL.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!(v >= 0 && v < 1)) throw new Error(`--reference-threshold must be a number in [0, 1), got ${JSON.stringify(text)}`);
  return v;
}

function parseThreads(text: string): number {
  const v = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isInteger(v)) throw new Error(`--threads must be a non-negative integer (0: ONNX Runtime decides), got ${JSON.stringify(text)}`);
  return v;
}

/** The frame indices a --frames spec selects in a clip of `total` frames. */
async function framesOf(video: string, spec: string): Promise<number[]> {
  const sel = parseFrameSpec(spec);
  let end = sel.last;
  if (!Number.isFinite(end)) {
    const info = await probeVideo(video);
    if (info.frames === undefined) throw new Error(`--frames ${JSON.stringify(spec)}: ${video} has no known length for an open range`);
    end = info.frames - 1;
  }
  const out: number[] = [];
  for (let i = 0; i <= end; i++) if (sel.has(i)) out.push(i);
  return out;
}

/** A readable report: what was compared on what, a per-class table, the summary lines. */
export function renderAgreement(r: AgreementReport): string {
  const against =
    r.referenceKind === "labels"
      ? `labels ${r.reference}`
      : `${r.reference} (its detections scoring above ${formatFixed(r.referenceThreshold, 2)} as ground truth)`;
  const frames = r.frameIndices.filter((i) => i >= 0);
  const where =
    frames.length === 0
      ? `${r.frames} labelled image(s)`
      : `${r.frames} frame(s) of ${r.video} (${frames[0]}..${frames[frames.length - 1]})`;
  const rows = r.perClass.map((c) => [
    c.label,
    formatFixed(c.ap50, 4),
    formatFixed(c.ap50_95, 4),
    String(c.references),
    String(c.predictions),
  ]);
  rows.push(["mAP (classes with references)", formatFixed(r.map50, 4), formatFixed(r.map50_95, 4), "", ""]);
  const table = markdownTable(
    [
      { header: "class" },
      { header: "AP@0.5", align: "right" },
      { header: "AP@0.5:0.95", align: "right" },
      { header: "references", align: "right" },
      { header: "predictions", align: "right" },
    ],
    rows,
  );
  return [
    `agreement of ${r.model} with ${against}`,
    `on ${where}; the model's detections scoring above ${r.predictionScoreFloor} are ranked`,
    "",
    table,
    "",
    `person recall at the operating threshold (score > ${r.operatingThreshold}, IoU >= 0.5): ${formatFixed(r.personRecall, 4)}`,
    "—: no references of that class on these frames (not counted in the mean)",
  ].join("\n");
}

/**
 * The dense model a variant descends from, taking the same input as the variant: a pruned
 * -u8 model's parent is the pruned float model, its dense reference is the dense -u8 one.
 */
function denseAncestor(model: ResolvedModel, manifest: Manifest): string | undefined {
  let root = model.entry.parent ?? undefined;
  if (root === undefined) return undefined;
  for (let guard = 0; manifest.models[root]?.parent && guard < 16; guard++) root = manifest.models[root].parent!;
  const sameInput = (name: string): boolean => JSON.stringify(manifest.models[name].input) === JSON.stringify(model.entry.input);
  const dense = [root, ...Object.keys(manifest.models).filter((n) => manifest.models[n].parent === root && manifest.models[n].variant.startsWith("dense"))];
  return dense.find(sameInput) ?? root;
}

function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

/** Per data set (never pooled), for one or more models; with --bar, the verdicts too. */
async function runSetEval(flags: EvalFlags, showProgress: boolean): Promise<void> {
  const manifestPath = flags.manifest ?? DEFAULT_MANIFEST_PATH;
  const manifest = await readManifest(manifestPath);
  const models = [];
  for (const m of flags.model) models.push(await resolveModelArg(m, manifest, manifestPath));
  const refArg = flags.reference ?? denseAncestor(models[0], manifest);
  if (refArg === undefined) throw new Error(`--reference is needed: model ${models[0].name} has no parent in the manifest to compare with`);
  const reference = await resolveModelArg(refArg, manifest, manifestPath);
  const threads = flags.threads === undefined ? undefined : parseThreads(flags.threads);
  const session = { executionProviders: ["cpu" as const], intraOpThreads: threads };
  const onProgress = (p: { set: string; model: string; done: number; total: number }): void => {
    if (showProgress) process.stderr.write(`\r\x1b[Keval: ${p.set}, ${p.model}: ${p.done}/${p.total}`);
  };
  let sets: SetAgreement[];
  let verdicts: BarVerdict[] | null = null;
  try {
    if (flags.bar === true) {
      if (flags.data !== undefined) throw new Error("--bar judges on the bar's own sets (vtest:held-out, corpus:out-of-scene); leave out --data");
      const runs = flags.latencyRuns === undefined ? undefined : parseThreads(flags.latencyRuns) || undefined;
      verdicts = await evaluateAgainstBar({ models, reference, session, latency: { runs, threads }, onProgress });
      sets = verdicts.flatMap((v) => v.sets);
    } else {
      sets = await evaluateOnSets({ models, reference, sets: flags.data ?? DEFAULT_EVAL_SETS, session, onProgress });
    }
  } finally {
    if (showProgress) process.stderr.write("\r\x1b[K");
  }
  if (flags.json === true) {
    process.stdout.write(JSON.stringify(verdicts ?? sets, null, 2) + "\n");
    return;
  }
  const blocks = sets.map(renderSetAgreement);
  if (verdicts !== null) blocks.push(...verdicts.map(renderVerdict));
  process.stdout.write(blocks.join("\n\n") + "\n");
}

async function runEval(flags: EvalFlags): Promise<void> {
  if (flags.reference !== undefined && flags.labels !== undefined) throw new Error("give --reference or --labels, not both");
  const legacy = flags.video !== undefined || flags.frames !== undefined || flags.labels !== undefined;
  if (!legacy) {
    if (flags.referenceThreshold !== undefined) throw new Error("--reference-threshold applies to --video and --frames; data sets use the fixed thresholds of the bar (see --help)");
    return runSetEval(flags, flags.json !== true && process.stderr.isTTY === true);
  }
  if (flags.data !== undefined || flags.bar === true) throw new Error("--data and --bar evaluate data sets; --video, --frames and --labels one video or a labels file: give one kind");
  if (flags.model.length !== 1) throw new Error("--video, --frames and --labels evaluate one --model at a time");
  const manifestPath = flags.manifest ?? DEFAULT_MANIFEST_PATH;
  const manifest = await readManifest(manifestPath);
  const model = await resolveModelArg(flags.model[0], manifest, manifestPath);
  const video = flags.video ?? DEFAULT_EVAL_VIDEO;
  const referenceThreshold = flags.referenceThreshold === undefined ? DEFAULT_REFERENCE_THRESHOLD : parseThreshold(flags.referenceThreshold);
  const threads = flags.threads === undefined ? undefined : parseThreads(flags.threads);
  const session = { executionProviders: ["cpu" as const], intraOpThreads: threads };
  const showProgress = flags.json !== true && process.stderr.isTTY === true;
  const onProgress = ({ done, total }: { done: number; total: number }): void => {
    if (showProgress) process.stderr.write(`\r\x1b[Keval: frame ${done}/${total}`);
  };
  ort.env.logLevel = "fatal";

  let report: AgreementReport;
  try {
    if (flags.labels !== undefined) {
      const labels = await readCocoLabels(flags.labels);
      const frames = flags.frames === undefined ? undefined : await framesOf(video, flags.frames);
      report = await evaluateAgainstLabels({ model, labels, video, frames, session, onProgress });
    } else {
      const refArg = flags.reference ?? model.entry.parent ?? undefined;
      if (refArg === undefined) {
        throw new Error(`--reference is needed: model ${model.name} has no parent in the manifest to compare with (or give --labels)`);
      }
      const reference = await resolveModelArg(refArg, manifest, manifestPath);
      const frames = flags.frames === undefined ? (await splitVideoFrames(video)).evaluation : await framesOf(video, flags.frames);
      report = await evaluateAgreement({ model, reference, video, frames, referenceThreshold, session, onProgress });
    }
  } finally {
    if (showProgress) process.stderr.write("\r\x1b[K");
  }
  process.stdout.write(flags.json === true ? JSON.stringify(report, null, 2) + "\n" : renderAgreement(report) + "\n");
}

const HELP_AFTER = `
The model and the reference are manifest names or ONNX files; a file is run like the
manifest model with the same input and outputs (e.g. a pruned nanodet like nanodet).
Without --reference and --labels, the reference is the dense model the variant descends from,
with the same input (a pruned nanodet-u8 file: nanodet-u8); with --video or --frames, its manifest parent.

Agreement: COCO-style AP at IoU 0.5 and 0.5:0.95 (101-point) per class for
${AGREEMENT_CLASSES.join(", ")}, with the reference's detections scoring above
--reference-threshold as ground truth and the model's detections above 0.05 ranked; the
mean is over classes the reference found.

Default: each data set on its own, never pooled: vtest:held-out (every frame of vtest.avi
after its calibration quarter) and corpus:out-of-scene (places no calibration source shows;
docs/datasets.md). Per set: AP@0.5 over every class the reference found and per class, and
recall of the reference's confident objects (score >= 0.5; found when the model has the
same class at IoU >= 0.5 with score >= 0.3), overall and per class; a class with >= 5
confident objects found below 0.8 is flagged as collapsed. --data names other sets (built-in
names, pictures, videos with frame ranges, folders; see perceptd data build --help).
--bar adds latency side by side with the reference and the verdict on the bar a pruned
default must hold (>= 1.5x faster, held-out person AP@0.5 >= 0.92, out-of-scene recall
>= 0.90 and no class collapse).

--video / --frames: one video's frames instead (default 100 frames spread over the last 75%
of the video); person recall there is at the daemon's operating threshold
(model.scoreThreshold default, 0.35). --frames takes the same specs as perceptd detect.

--labels: COCO JSON ground truth instead of a reference. An image whose file_name is a file
next to the labels file is read as that image; otherwise it is a frame of --video, given by
its frame_index field or the last number in its file name (frame_000120.jpg = frame 120).
Categories match model classes by name; crowd annotations are left out.

Examples:
  perceptd eval --model .cache/build-pruned/nanodet-p40-u8.onnx --reference nanodet-u8
  perceptd eval --model centernet-u8 --model .cache/build-pruned/nanodet-p25-u8.onnx --reference nanodet-u8 --bar --json
  perceptd eval --model centernet-u8 --reference nanodet-u8 --data corpus:validation --data my-clips/
  perceptd eval --model models/nanodet-pruned-50.onnx --reference nanodet --video .cache/fixtures/vtest.avi
  perceptd eval --model centernet --reference nanodet --frames 200-790:10 --json
  perceptd eval --model nanodet --labels my-labels.json`;

export function register(program: Command): void {
  program
    .command("eval")
    .description("measure how well a model agrees with a reference model (or COCO JSON labels), per data set")
    .requiredOption("-m, --model <name|file.onnx>", "model under test: manifest name or ONNX file (repeatable for data sets)", collect)
    .option("-r, --reference <name|file.onnx>", "reference model (default: the model's manifest parent)")
    .option("-d, --data <spec>", "a data set to report on its own (repeatable; default vtest:held-out and corpus:out-of-scene)", collect)
    .option("--bar", "also measure latency side by side and judge each model against the bar for a pruned default")
    .option("--latency-runs <n>", "--bar: timed runs per model (default 30)")
    .option("--labels <coco.json>", "COCO JSON ground truth instead of a reference model")
    .option("--video <file>", "evaluate on one video's frames instead of data sets (default with --frames: .cache/fixtures/vtest.avi)")
    .option("-f, --frames <spec>", "with --video: frames to evaluate on, e.g. 200-790:6 (default: the evaluation split)")
    .option("--reference-threshold <x>", `reference detections scoring above x count as ground truth (default ${DEFAULT_REFERENCE_THRESHOLD})`)
    .option("--threads <n>", "ONNX Runtime intra-op threads (default: ONNX Runtime decides)")
    .option("--manifest <path>", "model manifest (default: models/manifest.json of this perceptd)")
    .option("--json", "print the report as JSON")
    .addHelpText("after", HELP_AFTER)
    .action(async (flags: EvalFlags) => {
      await runEval(flags);
    });
}
