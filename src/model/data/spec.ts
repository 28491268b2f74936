// Data specs as `perceptd prune --calibration`, `perceptd eval --data` and the fine-tuning
// step take them: any mix of
//
//   corpus:calibration | corpus:validation | corpus:out-of-scene | vtest:calibration | vtest:held-out
//                            a built-in set (models/datasets.json)
//   clip.avi                 every frame of a video
//   clip.avi:0-197           frames 0..197;  clip.avi:0-197:2 every second one;  clip.avi:198- to the end
//   photo.jpg                one picture (JPEG or PNG)
//   folder/                  every picture and video in the folder and below, in name order
//
// resolved to a list of sources with their checksums. Files are checked here (missing,
// not a picture or video, range on a picture); frames past a video's end are found when it
// is decoded (load.ts), since a container's frame count is only an estimate.
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join, relative, resolve } from "node:path";
import { localPath, readDatasets, type Datasets, type DataFileRef } from "./datasets.ts";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png"] as const;
export const VIDEO_EXTENSIONS = [".avi", ".mp4", ".mkv", ".webm", ".mov", ".ogv", ".mpg", ".mpeg", ".m4v"] as const;

export interface FrameRange {
  first: number;
  /** null: to the end of the video. */
  last: number | null;
  step: number;
}

export interface DataSource {
  kind: "image" | "video";
  /** Absolute path. */
  path: string;
  sha256: string;
  /** Videos only; null: every frame. */
  frames: FrameRange | null;
  /** Augmented copies of each frame besides the original. */
  augment: number;
  /** The built-in set entry it came from, if any. */
  ref?: DataFileRef;
}

export interface DataSelection {
  /** The set name for a single built-in set, else the specs joined. */
  name: string;
  specs: string[];
  sources: DataSource[];
}

export function parseFrameRange(text: string, where: string): FrameRange {
  const m = /^(\d+)-(\d*)(?::(\d+))?$/.exec(text);
  if (m === null) throw new Error(`${where}: frame range "${text}" is not FIRST-LAST, FIRST-LAST:STEP or FIRST- (e.g. 0-197, 0-197:2, 198-)`);
  const first = Number(m[1]);
  const last = m[2] === "" ? null : Number(m[2]);
  const step = m[3] === undefined ? 1 : Number(m[3]);
  if (last !== null && last < first) throw new Error(`${where}: frame range "${text}" ends before it starts`);
  if (step < 1) throw new Error(`${where}: frame range "${text}" has step 0; the step is at least 1`);
  return { first, last, step };
}

export function formatFrameRange(r: FrameRange): string {
  return `${r.first}-${r.last ?? ""}${r.step === 1 ? "" : `:${r.step}`}`;
}

export function inRange(r: FrameRange | null, i: number): boolean {
  if (r === null) return true;
  return i >= r.first && (r.last === null || i <= r.last) && (i - r.first) % r.step === 0;
}

function kindOf(path: string): "image" | "video" | null {
  const ext = extname(path).toLowerCase();
  if ((IMAGE_EXTENSIONS as readonly string[]).includes(ext)) return "image";
  if ((VIDEO_EXTENSIONS as readonly string[]).includes(ext)) return "video";
  return null;
}

export async function fileSha256(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

/** Built-in set names, as specs. */
export function builtInSetNames(d: Datasets = readDatasets()): string[] {
  return Object.keys(d.sets);
}

async function builtInSources(name: string, d: Datasets, cacheDir?: string): Promise<DataSource[]> {
  const set = d.sets[name];
  const out: DataSource[] = [];
  for (const ref of set.items) {
    const path = localPath(ref, cacheDir);
    const sha = await fileSha256(path).catch(() => null);
    if (sha === null) throw new Error(`data set ${name}: ${path} is missing; fetch the data sets with \`perceptd data fetch\` (or scripts/setup.sh)`);
    if (sha !== ref.sha256) throw new Error(`data set ${name}: ${path} has sha256 ${sha}, models/datasets.json pins ${ref.sha256}; run \`perceptd data fetch\` again`);
    const kind = kindOf(path);
    if (kind === null) throw new Error(`data set ${name}: ${path} is neither a picture nor a video`);
    out.push({ kind, path, sha256: sha, frames: ref.frames === undefined ? null : parseFrameRange(ref.frames, `data set ${name}: ${ref.path}`), augment: ref.augment ?? 0, ref });
  }
  return out;
}

async function folderSources(dir: string, spec: string): Promise<DataSource[]> {
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith(".")) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && kindOf(p) !== null) files.push(p);
    }
  };
  await walk(dir);
  if (files.length === 0) {
    throw new Error(`data spec "${spec}": folder ${dir} holds no pictures (${IMAGE_EXTENSIONS.join(" ")}) or videos (${VIDEO_EXTENSIONS.join(" ")})`);
  }
  const out: DataSource[] = [];
  for (const p of files) out.push({ kind: kindOf(p)!, path: p, sha256: await fileSha256(p), frames: null, augment: 0 });
  return out;
}

/** Splits "path:range" when the whole text is not itself an existing path. */
async function splitRange(spec: string): Promise<{ path: string; range: string | null }> {
  if ((await stat(spec).catch(() => null)) !== null) return { path: spec, range: null };
  const m = /^(.*):(\d+-\d*(?::\d+)?)$/.exec(spec);
  return m === null ? { path: spec, range: null } : { path: m[1], range: m[2] };
}

async function pathSources(spec: string): Promise<DataSource[]> {
  const { path: given, range } = await splitRange(spec);
  const path = resolve(given);
  const info = await stat(path).catch(() => null);
  if (info === null) throw new Error(`data spec "${spec}": ${given} does not exist (expected a picture, a video, a folder or one of the built-in sets)`);
  if (info.isDirectory()) {
    if (range !== null) throw new Error(`data spec "${spec}": a frame range applies to a video, ${given} is a folder`);
    return folderSources(path, spec);
  }
  const kind = kindOf(path);
  if (kind === null) throw new Error(`data spec "${spec}": ${given} is neither a picture (${IMAGE_EXTENSIONS.join(" ")}) nor a video (${VIDEO_EXTENSIONS.join(" ")})`);
  if (kind === "image" && range !== null) throw new Error(`data spec "${spec}": a frame range applies to a video, ${given} is a picture`);
  const frames = range === null ? null : parseFrameRange(range, `data spec "${spec}"`);
  return [{ kind, path, sha256: await fileSha256(path), frames, augment: 0 }];
}

export interface ResolveOptions {
  datasets?: Datasets;
  /** Where the built-in sets' packages are extracted (tests). */
  cacheDir?: string;
  /** Augmented copies per frame for sources given as paths (built-in sets carry their own). */
  augment?: number;
}

/** Resolves specs to sources in the order given; fails naming the first bad spec. */
export async function resolveDataSpecs(specs: readonly string[], opts: ResolveOptions = {}): Promise<DataSelection> {
  if (specs.length === 0) throw new Error("no data given: name a built-in set, pictures, videos or folders");
  const d = opts.datasets ?? readDatasets();
  const sources: DataSource[] = [];
  for (const spec of specs) {
    if (spec in d.sets) sources.push(...(await builtInSources(spec, d, opts.cacheDir)));
    else if (/^(corpus|vtest):/.test(spec)) throw new Error(`data spec "${spec}": no such built-in set; the built-in sets are ${Object.keys(d.sets).join(", ")}`);
    else sources.push(...(await pathSources(spec)).map((s) => ({ ...s, augment: opts.augment ?? 0 })));
  }
  const name = specs.length === 1 && specs[0] in d.sets ? specs[0] : specs.map((s) => (s in d.sets ? s : relative(process.cwd(), resolve(s)) || ".")).join("+");
  return { name, specs: [...specs], sources };
}
