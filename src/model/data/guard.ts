// Keeps the test sets out of what a model learns from. Calibration and training never read a
// file of a test set (corpus:out-of-scene, vtest:held-out) or of the validation split, nor a
// reserved near-copy of a test file; validation never reads test files. Files are known by
// their sha256, so a copy or a rename is refused too, naming the file and the set it belongs to.
//
// When a test set takes only some frames of a video that a calibration set also uses
// (vtest.avi: calibration is its first quarter, held-out the rest), only those frames are
// refused; otherwise the whole file is.
import type { Datasets } from "./datasets.ts";
import type { FrameIndex } from "./frame-cache.ts";
import { formatFrameRange, inRange, parseFrameRange, type DataSelection, type FrameRange } from "./spec.ts";

/** What data is read for: the guard's rules depend on it. */
export const DATA_PURPOSES = ["calibration", "training", "validation", "evaluation"] as const;
export type DataPurpose = (typeof DATA_PURPOSES)[number];

interface Guarded {
  sha256: string;
  file: string;
  set: string;
  /** null: the whole file. */
  frames: FrameRange | null;
  refusedFor: readonly DataPurpose[];
}

const LEARNING: readonly DataPurpose[] = ["calibration", "training"];
const NOT_TEST: readonly DataPurpose[] = ["calibration", "training", "validation"];

function guardedEntries(d: Datasets): Guarded[] {
  const calibrationShas = new Set(Object.values(d.sets).filter((s) => s.purpose === "calibration").flatMap((s) => s.items.map((i) => i.sha256)));
  const out: Guarded[] = [];
  for (const [name, set] of Object.entries(d.sets)) {
    if (set.purpose === "calibration") continue;
    const refusedFor = set.purpose === "test" ? NOT_TEST : LEARNING;
    for (const ref of set.items) {
      const partial = ref.frames !== undefined && calibrationShas.has(ref.sha256);
      out.push({
        sha256: ref.sha256,
        file: `${ref.package}/${ref.path}`,
        set: name,
        frames: partial ? parseFrameRange(ref.frames!, `${name}: ${ref.path}`) : null,
        refusedFor,
      });
    }
  }
  for (const ref of d.reserved) out.push({ sha256: ref.sha256, file: `${ref.package}/${ref.path}`, set: "reserved", frames: null, refusedFor: NOT_TEST });
  return out;
}

/** The first frame both ranges take, or null. Guarded ranges always end. */
function overlap(a: FrameRange | null, g: FrameRange): number | null {
  const start = Math.max(a?.first ?? 0, g.first);
  const end = Math.min(a?.last ?? Number.POSITIVE_INFINITY, g.last ?? Number.POSITIVE_INFINITY);
  for (let i = start; i <= end; i++) if (inRange(a, i) && inRange(g, i)) return i;
  return null;
}

/**
 * Throws when `purpose` may not read a source of `selection`, naming the file, the set it
 * belongs to and, for a partly guarded video, the first refused frame.
 */
export function checkDataPurpose(selection: DataSelection, purpose: DataPurpose, d: Datasets): void {
  if (purpose === "evaluation") return;
  const guarded = guardedEntries(d).filter((g) => g.refusedFor.includes(purpose));
  for (const src of selection.sources) {
    for (const g of guarded) {
      if (g.sha256 !== src.sha256) continue;
      const why = g.set === "reserved" ? "a reserved copy of a test file" : `in the ${g.set} set`;
      if (g.frames === null) {
        throw new Error(`${src.path}: refused for ${purpose}: this file is ${why} (${g.file} in models/datasets.json), which ${purpose} never reads`);
      }
      const hit = overlap(src.frames, g.frames);
      if (hit !== null) {
        throw new Error(
          `${src.path}: refused for ${purpose}: frames ${formatFrameRange(g.frames)} of this video are ${why} (${g.file} in models/datasets.json), ` +
            `and ${src.frames === null ? "every frame" : `range ${formatFrameRange(src.frames)}`} includes frame ${hit}`,
        );
      }
    }
  }
}

/**
 * The same check on a frame cache already built (a folder handed to the training step): its
 * index lists every source with its sha256 and frame range.
 */
export function checkFrameCachePurpose(index: FrameIndex, dir: string, purpose: DataPurpose, d: Datasets): void {
  const sources = index.sources.map((s) => ({
    kind: "video" as const,
    path: s.path,
    sha256: s.sha256,
    frames: s.frames === null ? null : parseFrameRange(s.frames, `frame cache ${dir}: ${s.path}`),
    augment: 0,
  }));
  try {
    checkDataPurpose({ name: index.set, specs: [], sources }, purpose, d);
  } catch (err) {
    throw new Error(`frame cache ${dir} (set ${index.set}): ${(err as Error).message}`, { cause: err });
  }
}
