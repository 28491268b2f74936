// Builds (or reuses) the frame cache of a data selection for one model input, and opens it
// for a purpose, with the guard applied. Everything that reads data for a model goes
// through prepareFrames: pruning, recovery, evaluation, and the Python training step, which
// gets the cache folder this returns.
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import type { FitTarget } from "../../ingest/frame-fit.ts";
import { MODELS_DIR } from "../../infer/manifest.ts";
import { readDatasets, type Datasets } from "./datasets.ts";
import { FrameCache, FrameCacheWriter, readFrameIndex, type FrameIndex } from "./frame-cache.ts";
import { checkDataPurpose, checkFrameCachePurpose, type DataPurpose } from "./guard.ts";
import { loadFrames, type LoadProgress } from "./load.ts";
import { formatFrameRange, resolveDataSpecs, type DataSelection, type ResolveOptions } from "./spec.ts";

export const FRAMES_CACHE = resolve(MODELS_DIR, "..", ".cache", "frames");
/** Bumped when fitting or augmentation changes what a plan produces, so old caches rebuild. */
const BUILDER_VERSION = 1;

/** The cache folder of a selection for a model input: .cache/frames/<set>/<W>x<H>-<resize>. */
export function cacheDirFor(selection: DataSelection, target: FitTarget, root = FRAMES_CACHE): string {
  const builtIn = selection.specs.length === 1 && selection.name === selection.specs[0];
  const folder = builtIn ? selection.name.replace(/:/g, "-") : `specs-${planOf(selection, target).slice(0, 16)}`;
  return resolve(root, folder, `${target.width}x${target.height}-${target.resize}`);
}

/** What a cache is built from; the same plan gives the same bytes. */
export function planOf(selection: DataSelection, target: FitTarget): string {
  const plan = {
    builder: BUILDER_VERSION,
    target,
    sources: selection.sources.map((s) => ({ kind: s.kind, sha256: s.sha256, frames: s.frames === null ? null : formatFrameRange(s.frames), augment: s.augment })),
  };
  return createHash("sha256").update(JSON.stringify(plan)).digest("hex");
}

export interface BuildResult {
  dir: string;
  index: FrameIndex;
  /** false: an up-to-date cache was already there. */
  built: boolean;
  seconds: number;
}

export interface BuildOptions {
  /** Default: cacheDirFor(selection, target). */
  dir?: string;
  /** Rebuild even when the cache is up to date. */
  force?: boolean;
  onProgress?: (p: LoadProgress) => void;
}

export async function buildFrameCache(selection: DataSelection, target: FitTarget, opts: BuildOptions = {}): Promise<BuildResult> {
  const t0 = performance.now();
  const dir = opts.dir ?? cacheDirFor(selection, target);
  const plan = planOf(selection, target);
  const existing = await readFrameIndex(dir).catch(() => null);
  if (existing !== null && existing.plan === plan && opts.force !== true) {
    return { dir, index: existing, built: false, seconds: (performance.now() - t0) / 1000 };
  }
  const writer = await FrameCacheWriter.create(dir, {
    width: target.width,
    height: target.height,
    resize: target.resize,
    set: selection.name,
    sources: selection.sources.map((s) => ({ path: s.path, sha256: s.sha256, frames: s.frames === null ? null : formatFrameRange(s.frames) })),
    plan,
  });
  try {
    for await (const f of loadFrames(selection, target, opts.onProgress)) await writer.append(f.image.data, f.item);
    if (writer.count === 0) throw new Error(`data ${selection.name}: the set is empty (no frame to write)`);
    const index = await writer.finish();
    return { dir, index, built: true, seconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

export interface PrepareOptions extends ResolveOptions, BuildOptions {
  purpose: DataPurpose;
  datasets?: Datasets;
}

/**
 * The frames of `specs` fitted to `target`, for `purpose`: resolved, checked against the
 * guard (an out-of-scene file asked for calibration is refused, naming it), built into the
 * cache when not there yet, and opened.
 */
export async function prepareFrames(specs: readonly string[], target: FitTarget, opts: PrepareOptions): Promise<FrameCache> {
  const datasets = opts.datasets ?? readDatasets();
  const selection = await resolveDataSpecs(specs, { ...opts, datasets });
  checkDataPurpose(selection, opts.purpose, datasets);
  const { dir } = await buildFrameCache(selection, target, opts);
  return FrameCache.open(dir);
}

/**
 * Opens a frame cache folder built earlier (e.g. handed to the training step) for `purpose`,
 * refusing it when its sources include data that purpose never reads.
 */
export async function openFrameCacheFor(dir: string, purpose: DataPurpose, datasets: Datasets = readDatasets()): Promise<FrameCache> {
  const index = await readFrameIndex(dir);
  if (index === null) throw new Error(`${dir}: no frame cache here (no index.json); build it with \`perceptd data build\``);
  checkFrameCachePurpose(index, dir, purpose, datasets);
  return FrameCache.open(dir);
}
