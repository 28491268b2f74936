// models/manifest.json: what each shipped model is, where it came from and how to run it.
// The runtime reads it (this module is the one part of model/ the daemon imports), the
// importer and the pruner write it. The schema is declared once, here.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { DECODER_KINDS } from "./decode/index.ts";

export const MANIFEST_SCHEMA_VERSION = 1;

/** The repository's models/ folder, wherever the process was started from. */
export const MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../models");
export const DEFAULT_MANIFEST_PATH = resolve(MODELS_DIR, "manifest.json");

const dims = z.array(z.number().int().positive());

const normalization = z
  .object({
    mean: z.tuple([z.number(), z.number(), z.number()]).describe("per colour (r, g, b), whatever the channel order"),
    std: z.tuple([z.number(), z.number(), z.number()]),
  })
  .strict();

export const ModelInputSchema = z
  .object({
    name: z.string(),
    shape: dims,
    dtype: z.enum(["float32", "uint8"]),
    layout: z.enum(["NCHW", "NHWC"]),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    colorOrder: z.enum(["rgb", "bgr"]).describe("channel order the graph expects"),
    resize: z.enum(["stretch", "letterbox"]).describe("how source frames are fitted to width x height"),
    normalization: normalization
      .nullable()
      .describe("(pixel - mean) / std applied by the caller; null when the graph does it itself (baked-in preprocessing)"),
    bakedNormalization: normalization.nullable().describe("normalisation the graph applies to its uint8 input, for the record"),
  })
  .strict();

export const ModelOutputSchema = z
  .object({
    name: z.string(),
    shape: dims,
    dtype: z.enum(["float32", "int32", "int64"]),
    meaning: z.string(),
  })
  .strict();

const nanodetDecoder = z
  .object({
    kind: z.literal("nanodet-gfl"),
    outputs: z.object({
      levels: z.array(z.object({ stride: z.number().int().positive(), scores: z.string(), boxes: z.string() }).strict()).min(1),
    }),
    centerOffset: z.number(),
  })
  .strict();
const centernetHeadsDecoder = z
  .object({ kind: z.literal("centernet-heads"), outputs: z.object({ heatmap: z.string(), wh: z.string() }).strict() })
  .strict();
const centernetDetectionsDecoder = z
  .object({ kind: z.literal("centernet-detections"), outputs: z.object({ detections: z.string() }).strict() })
  .strict();

export const DecoderSpecSchema = z.discriminatedUnion("kind", [nanodetDecoder, centernetHeadsDecoder, centernetDetectionsDecoder]);
void DECODER_KINDS; // the union above must list every kind the decoder registry knows

export const ModelEntrySchema = z
  .object({
    file: z.string().describe("path relative to the manifest's folder"),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().positive(),
    description: z.string(),
    architecture: z.string(),
    variant: z.string().describe("dense, dense-u8 (baked preprocessing), or a pruning method"),
    parent: z.string().nullable().describe("manifest name of the model this one was derived from"),
    source: z
      .object({
        package: z.string(),
        version: z.string(),
        integrity: z.string(),
        files: z.array(z.string()),
        packageLicense: z.string(),
        license: z.string(),
        upstream: z.string(),
      })
      .strict(),
    input: ModelInputSchema,
    outputs: z.array(ModelOutputSchema).min(1),
    decoder: DecoderSpecSchema,
    labels: z.array(z.string()).min(1),
    parameters: z.number().int().nonnegative(),
    macs: z.number().int().nonnegative().describe("multiply-accumulates of one inference (Conv and Gemm)"),
    flops: z.number().int().nonnegative().describe("2 x macs"),
    opset: z.number().int().positive(),
    build: z.record(z.string(), z.unknown()).describe("how it was made: command, options, measurements"),
  })
  .strict();

export const ManifestSchema = z
  .object({
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    default: z.string().describe("model the daemon and `perceptd detect` use unless told otherwise"),
    models: z.record(z.string(), ModelEntrySchema),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (!(m.default in m.models)) ctx.addIssue({ code: "custom", path: ["default"], message: `default model "${m.default}" is not in models` });
  });

export type Manifest = z.infer<typeof ManifestSchema>;
export type ModelEntry = z.infer<typeof ModelEntrySchema>;
export type DecoderSpec = z.infer<typeof DecoderSpecSchema>;

export function formatZodIssues(where: string, error: z.ZodError): string {
  return `${where} is invalid:\n` + error.issues.map((i) => `  - ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n");
}

export async function readManifest(path = DEFAULT_MANIFEST_PATH): Promise<Manifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read model manifest ${path}: ${(e as Error).message}`);
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) throw new Error(formatZodIssues(`model manifest ${path}`, parsed.error));
  return parsed.data;
}

export interface ResolvedModel {
  name: string;
  path: string;
  entry: ModelEntry;
}

/** Looks a model up by manifest name (or the default), with a list of names on a miss. */
export function resolveModel(manifest: Manifest, manifestPath: string, name?: string): ResolvedModel {
  const key = name ?? manifest.default;
  const entry = manifest.models[key];
  if (!entry) throw new Error(`model "${key}" is not in ${manifestPath}; known models: ${Object.keys(manifest.models).join(", ")}`);
  return { name: key, path: resolve(dirname(manifestPath), entry.file), entry };
}

/** Hex SHA-256, as the manifest records files. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export async function sha256File(path: string): Promise<string> {
  return sha256Hex(await readFile(path));
}

/** Reads the model file and checks it against the manifest's checksum. */
export async function readVerifiedModel(model: ResolvedModel): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(model.path);
  } catch (e) {
    throw new Error(`model "${model.name}": cannot read ${model.path}: ${(e as Error).message}`);
  }
  const sum = createHash("sha256").update(bytes).digest("hex");
  if (sum !== model.entry.sha256)
    throw new Error(`model "${model.name}": ${model.path} has sha256 ${sum}, the manifest says ${model.entry.sha256} (corrupt or replaced file)`);
  return bytes;
}
