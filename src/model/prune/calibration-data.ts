// What `perceptd prune --calibration` reads. One plain video file keeps the clip-only recipe
// the first pruned models were built with (calibration frames from its first quarter,
// agreement measured on frames after it); anything else is data specs (src/model/data/spec.ts:
// built-in sets such as corpus:calibration, pictures, videos with frame ranges, folders),
// read through the frame cache with the guard that keeps test and validation data out.
import { stat } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { toModelInputData, type ModelInputData } from "../../infer/input-tensor.ts";
import { prepareFrames } from "../data/build.ts";
import { VIDEO_EXTENSIONS } from "../data/spec.ts";
import type { ResolvedModel } from "../../infer/manifest.ts";

export type CalibrationSource = { kind: "clip"; video: string } | { kind: "data"; specs: string[] };

/** Which recipe the --calibration arguments ask for; undefined when none were given. */
export async function calibrationSource(arg: string | readonly string[] | undefined): Promise<CalibrationSource | undefined> {
  const specs = arg === undefined ? [] : typeof arg === "string" ? [arg] : [...arg];
  if (specs.length === 0) return undefined;
  if (specs.length === 1 && (VIDEO_EXTENSIONS as readonly string[]).includes(extname(specs[0]).toLowerCase())) {
    const info = await stat(resolve(specs[0])).catch(() => null);
    if (!info?.isFile()) throw new Error(`--calibration ${specs[0]}: no such file`);
    return { kind: "clip", video: resolve(specs[0]) };
  }
  return { kind: "data", specs };
}

export interface CalibrationData {
  inputs: ModelInputData[];
  /** The cache read, and how many of its frames were taken. */
  cacheDir: string;
  set: string;
  of: number;
  /** sha256 of the cache's frames: what the data was, whatever its specs are called */
  sha256: string;
}

/**
 * `count` frames spread evenly over the data (all of them when it has fewer), fitted to the
 * model's input by the daemon's pipeline, refused when they include test or validation data.
 */
export async function calibrationInputsFromData(
  specs: readonly string[],
  model: ResolvedModel,
  count: number,
  onProgress?: (text: string) => void,
  purpose: "calibration" | "validation" = "calibration",
): Promise<CalibrationData> {
  const spec = model.entry.input;
  const cache = await prepareFrames(specs, { width: spec.width, height: spec.height, resize: spec.resize }, {
    purpose,
    onProgress: (p) => onProgress?.(`prune: ${purpose} data ${p.frames} frame(s), source ${p.source}/${p.sources}`),
  });
  try {
    const total = cache.index.count;
    const n = Math.min(count, total);
    const inputs: ModelInputData[] = [];
    for (let k = 0; k < n; k++) {
      const i = Math.floor((k * total) / n);
      inputs.push(toModelInputData({ width: spec.width, height: spec.height, data: await cache.frame(i) }, spec, { consume: true, where: `${cache.dir} frame ${i}` }));
    }
    return { inputs, cacheDir: cache.dir, set: cache.index.set, of: total, sha256: cache.index.sha256 };
  } finally {
    await cache.close();
  }
}
