// The built-in data sets (models/datasets.json): which files of which pinned Debian and npm
// packages make up the calibration corpus, the validation split, the out-of-scene test set
// and the two parts of vtest.avi, with a sha256 per file. Read and checked here once; the
// fetcher, the loader's guard and the cache builder all take the sets from this module.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { MODELS_DIR } from "../../infer/manifest.ts";

export const DATASETS_PATH = join(MODELS_DIR, "datasets.json");
/** Where fetched packages are extracted: .cache/datasets/<package key>/<path in its root>. */
export const DATASETS_CACHE = resolve(MODELS_DIR, "..", ".cache", "datasets");

const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, "a sha256 in lower-case hex");

const DebPackage = z
  .object({
    kind: z.literal("deb"),
    name: z.string().min(1),
    version: z.string().min(1),
    sha256: SHA256,
    /** For a package built per architecture: the one pinned (its .deb differs on every other). */
    arch: z.string().regex(/^[a-z0-9-]+$/).optional(),
    /** The .deb's path in the Debian archive, for hosts of another architecture (see fetch.ts). */
    pool: z.string().regex(/^pool\/[^\s]+\.deb$/, "pool/<component>/<prefix>/<source>/<file>.deb").optional(),
    root: z.string(),
    licence: z.string().min(1),
  })
  .strict()
  .refine((p) => (p.arch === undefined) === (p.pool === undefined), "arch and pool go together: a package pinned to one architecture names its .deb in the archive");
const NpmPackage = z
  .object({ kind: z.literal("npm"), name: z.string().min(1), version: z.string().min(1), integrity: z.string().regex(/^sha512-/), root: z.string(), licence: z.string().min(1) })
  .strict();
const PackageSchema = z.discriminatedUnion("kind", [DebPackage, NpmPackage]);

const FileRef = z
  .object({
    package: z.string().min(1),
    path: z.string().min(1).refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), "a relative path inside the package root"),
    sha256: SHA256,
    /** Frame range of a video, "first-last[:step]". */
    frames: z.string().regex(/^\d+-\d+(:\d+)?$/).optional(),
    /** Augmented copies of each frame besides the original. */
    augment: z.number().int().min(0).max(16).optional(),
    scene: z.string().optional(),
    why: z.string().optional(),
  })
  .strict();

export const SET_PURPOSES = ["calibration", "validation", "test"] as const;
export type SetPurpose = (typeof SET_PURPOSES)[number];

const SetSchema = z.object({ purpose: z.enum(SET_PURPOSES), description: z.string(), items: z.array(FileRef).min(1) }).strict();

const DatasetsSchema = z
  .object({
    format: z.literal("perceptd-datasets/1"),
    packages: z.record(z.string(), PackageSchema),
    sets: z.record(z.string(), SetSchema),
    /** Files no set uses that calibration must not read either (near-copies of test files). */
    reserved: z.array(FileRef),
  })
  .strict();

export type DataPackage = z.infer<typeof PackageSchema>;
export type DataFileRef = z.infer<typeof FileRef>;
export type DataSetDefinition = z.infer<typeof SetSchema>;
export type Datasets = z.infer<typeof DatasetsSchema>;

/** Reads and checks the definitions; every file must name a declared package. */
export function readDatasets(path = DATASETS_PATH): Datasets {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: cannot read the data set definitions: ${(err as Error).message}`, { cause: err });
  }
  const parsed = DatasetsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path}: ${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  }
  const d = parsed.data;
  const refs = [...Object.entries(d.sets).flatMap(([name, s]) => s.items.map((i) => [name, i] as const)), ...d.reserved.map((i) => ["reserved", i] as const)];
  for (const [where, ref] of refs) {
    if (!(ref.package in d.packages)) throw new Error(`${path}: ${where}: ${ref.path} names package ${ref.package}, which "packages" does not declare`);
  }
  return d;
}

/** Where a file of a package lies once fetched. */
export function localPath(ref: Pick<DataFileRef, "package" | "path">, cacheDir = DATASETS_CACHE): string {
  return join(cacheDir, ref.package, ref.path);
}

/** Every distinct file the definitions name (sets and reserved), by local path. */
export function allFiles(d: Datasets): DataFileRef[] {
  const seen = new Map<string, DataFileRef>();
  for (const ref of [...Object.values(d.sets).flatMap((s) => s.items), ...d.reserved]) {
    const key = `${ref.package}/${ref.path}`;
    const prev = seen.get(key);
    if (prev !== undefined && prev.sha256 !== ref.sha256) throw new Error(`datasets: ${key} is listed with two different checksums`);
    seen.set(key, ref);
  }
  return [...seen.values()];
}
