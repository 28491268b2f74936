// Which input normalisation do the imported detectors expect? Neither upstream package
// says for sure, so this runs each candidate on real frames of vtest.avi and measures (a)
// how confidently the model finds people and (b) how well its people agree with the other,
// independently trained detector (person AP@0.5 with the other model as reference).
//
//   npx tsx scripts/normalisation-experiment.ts [--frames 40]
//
// The winners are pinned in src/model/importer.ts; README "Input normalisation" has the table.
import * as ort from "onnxruntime-node";
import { COCO_LABELS } from "../src/infer/coco-labels.ts";
import { createDecoder } from "../src/infer/decode/index.ts";
import { computeLetterbox, toSourceDetections } from "../src/core/letterbox.ts";
import { nms } from "../src/infer/nms.ts";
import type { Detection, RawTensor, ResizeMode } from "../src/core/types.ts";
import { readVideoFrames } from "../src/ingest/gst/video-file.ts";
import { resizeToModel, toNchwFloat, toNhwcFloat, type Triple } from "../src/infer/resize.ts";
import type { RgbImage } from "../src/core/rgb-image.ts";
import { averagePrecision } from "../src/model/eval/map.ts";
import { readManifest, resolveModel, DEFAULT_MANIFEST_PATH } from "../src/infer/manifest.ts";

interface Candidate {
  label: string;
  mean: Triple;
  std: Triple;
  order: "rgb" | "bgr";
  resize: ResizeMode;
}

// mean and std are per colour (r, g, b) whatever order the planes go to the model in
const IMAGENET = { mean: [123.675, 116.28, 103.53] as Triple, std: [58.395, 57.12, 57.375] as Triple };

const candidates = (resize: ResizeMode): Candidate[] => [
  { label: "rgb / 255", mean: [0, 0, 0], std: [255, 255, 255], order: "rgb", resize },
  { label: "bgr / 255", mean: [0, 0, 0], std: [255, 255, 255], order: "bgr", resize },
  { label: "rgb 0..255", mean: [0, 0, 0], std: [1, 1, 1], order: "rgb", resize },
  { label: "bgr 0..255", mean: [0, 0, 0], std: [1, 1, 1], order: "bgr", resize },
  { label: "rgb imagenet mean/std", ...IMAGENET, order: "rgb", resize },
  { label: "bgr imagenet mean/std", ...IMAGENET, order: "bgr", resize },
];

const argFrames = Number(process.argv[process.argv.indexOf("--frames") + 1]) || 40;
const SCORE = 0.35;
const PERSON = 0;

const manifest = await readManifest();
const frames: RgbImage[] = [];
for await (const f of readVideoFrames(".cache/fixtures/vtest.avi", { select: (i) => i % 19 === 0, maxFrames: argFrames })) frames.push(f.image);

async function detectAll(modelName: string, c: Candidate, centerOffset?: number): Promise<Detection[][]> {
  const m = resolveModel(manifest, DEFAULT_MANIFEST_PATH, modelName);
  const { input, decoder } = m.entry;
  const session = await ort.InferenceSession.create(m.path, { intraOpNumThreads: 2 });
  const dec = createDecoder(decoder.kind, decoder.outputs as never);
  const out: Detection[][] = [];
  for (const img of frames) {
    const t = computeLetterbox(img.width, img.height, input.width, input.height, c.resize);
    const resized = resizeToModel(img, t);
    const data = input.layout === "NCHW" ? toNchwFloat(resized, c.mean, c.std, c.order) : toNhwcFloat(resized, c.mean, c.std, c.order);
    const res = await session.run({ [input.name]: new ort.Tensor("float32", data, input.shape) });
    const raw: Record<string, RawTensor> = {};
    for (const [k, v] of Object.entries(res)) raw[k] = { dims: v.dims, data: v.data as Float32Array };
    const dets = dec.decode(raw, {
      inputWidth: input.width,
      inputHeight: input.height,
      scoreThreshold: 0.05,
      labels: COCO_LABELS,
      nanodetCenterOffset: decoder.kind === "nanodet-gfl" ? (centerOffset ?? decoder.centerOffset) : undefined,
    });
    out.push(nms(toSourceDetections(dets, t), 0.5));
  }
  await session.release();
  return out;
}

function summarise(dets: Detection[][], reference: Detection[][]): string {
  const persons = dets.map((d) => d.filter((x) => x.classId === PERSON && x.score >= SCORE));
  const count = persons.reduce((s, p) => s + p.length, 0) / dets.length;
  const top = dets.map((d) => Math.max(0, ...d.filter((x) => x.classId === PERSON).map((x) => x.score)));
  const meanTop = top.reduce((s, v) => s + v, 0) / top.length;
  const refFrames = reference.map((r, i) => ({ reference: r.filter((x) => x.score >= SCORE), predicted: dets[i] }));
  const ap = averagePrecision(refFrames, PERSON, 0.5).ap;
  return `${count.toFixed(2).padStart(6)}  ${meanTop.toFixed(3).padStart(6)}  ${ap.toFixed(3).padStart(6)}`;
}

/** The candidate the manifest pins for a model: its reference in the other model's table. */
function pinned(modelName: string): Candidate {
  const { input } = resolveModel(manifest, DEFAULT_MANIFEST_PATH, modelName).entry;
  const n = input.normalization!;
  return { label: "pinned", mean: n.mean, std: n.std, order: input.colorOrder, resize: input.resize };
}

console.log(`${frames.length} frames of vtest.avi (every 19th), persons counted at score >= ${SCORE}\n`);
const centerRef = await detectAll("centernet", pinned("centernet"));
const nanoRef = await detectAll("nanodet", pinned("nanodet"));
for (const [model, ref, refName] of [
  ["nanodet", centerRef, "centernet"],
  ["centernet", nanoRef, "nanodet"],
] as const) {
  console.log(`| ${model} input | resize | persons/frame | mean top person score | person AP@0.5 vs ${refName} |`);
  console.log("|---|---|---|---|---|");
  for (const resize of ["stretch", "letterbox"] as const)
    for (const c of candidates(resize)) {
      const cols = summarise(await detectAll(model, c), ref).trim().split(/\s+/);
      console.log(`| ${c.label} | ${resize} | ${cols.join(" | ")} |`);
    }
  console.log("");
}

// NanoDet's anchor centres: (col + 0.5) * stride (GFL head) or col * stride (NanoDet-Plus)?
// Box placement shows at strict IoU, so agreement with CenterNet is measured at 0.5 and 0.75.
console.log("| nanodet anchor centre | person AP@0.5 vs centernet | person AP@0.75 vs centernet |");
console.log("|---|---|---|");
for (const offset of [0, 0.5]) {
  const dets = await detectAll("nanodet", pinned("nanodet"), offset);
  const refFrames = centerRef.map((r, i) => ({ reference: r.filter((x) => x.score >= SCORE), predicted: dets[i] }));
  const ap = (t: number): string => averagePrecision(refFrames, PERSON, t).ap.toFixed(3);
  console.log(`| (col + ${offset}) * stride | ${ap(0.5)} | ${ap(0.75)} |`);
}
