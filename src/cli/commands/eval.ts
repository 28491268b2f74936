// `perceptd eval`: how well a model (typically a pruned one) agrees with a reference model
// (typically its dense parent) on real frames, or with real COCO JSON labels. The default
// frames are the evaluation part of the calibration/evaluation split (src/model/eval/frames.ts),
// so a pruned model is never judged on frames it was calibrated on.
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
import { resolveModelArg } from "../../model/eval/model-arg.ts";
import { DEFAULT_MANIFEST_PATH, readManifest } from "../../model/manifest.ts";
import { formatFixed, markdownTable } from "../bench/table.ts";
import { parseFrameSpec } from "./detect.ts";

interface EvalFlags {
  model: string;
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

async function runEval(flags: EvalFlags): Promise<void> {
  if (flags.reference !== undefined && flags.labels !== undefined) throw new Error("give --reference or --labels, not both");
  const manifestPath = flags.manifest ?? DEFAULT_MANIFEST_PATH;
  const manifest = await readManifest(manifestPath);
  const model = await resolveModelArg(flags.model, manifest, manifestPath);
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
Without --reference and --labels, the reference is the model's manifest parent.

Agreement: COCO-style AP at IoU 0.5 and 0.5:0.95 (101-point) per class for
${AGREEMENT_CLASSES.join(", ")}, with the reference's detections scoring above
--reference-threshold as ground truth and the model's detections above 0.05 ranked; the
mean is over classes the reference found. Person recall is at the daemon's operating
threshold (inference.scoreThreshold default, 0.35).

Default frames: 100 frames spread over the last 75% of the video, the evaluation part that
calibration (perceptd prune) never uses. --frames takes the same specs as perceptd detect.

--labels: COCO JSON ground truth instead of a reference. An image whose file_name is a file
next to the labels file is read as that image; otherwise it is a frame of --video, given by
its frame_index field or the last number in its file name (frame_000120.jpg = frame 120).
Categories match model classes by name; crowd annotations are left out.

Examples:
  perceptd eval --model models/nanodet-pruned-50.onnx --reference nanodet
  perceptd eval --model centernet --reference nanodet --frames 200-790:10 --json
  perceptd eval --model nanodet --labels my-labels.json`;

export function register(program: Command): void {
  program
    .command("eval")
    .description("measure how well a model agrees with a reference model (or COCO JSON labels) on real video frames")
    .requiredOption("-m, --model <name|file.onnx>", "model under test: manifest name or ONNX file")
    .option("-r, --reference <name|file.onnx>", "reference model (default: the model's manifest parent)")
    .option("--labels <coco.json>", "COCO JSON ground truth instead of a reference model")
    .option("--video <file>", "video to take frames from (default: .cache/fixtures/vtest.avi)")
    .option("-f, --frames <spec>", "frames to evaluate on, e.g. 200-790:6 (default: the evaluation split)")
    .option("--reference-threshold <x>", `reference detections scoring above x count as ground truth (default ${DEFAULT_REFERENCE_THRESHOLD})`)
    .option("--threads <n>", "ONNX Runtime intra-op threads (default: ONNX Runtime decides)")
    .option("--manifest <path>", "model manifest (default: models/manifest.json of this perceptd)")
    .option("--json", "print the report as JSON")
    .addHelpText("after", HELP_AFTER)
    .action(async (flags: EvalFlags) => {
      await runEval(flags);
    });
}
