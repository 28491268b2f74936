// Decodes a data selection and fits every frame to a model input the way the daemon does:
// video frames through the daemon's own file pipeline, pictures and augmented copies
// through the same conversion tail fed by appsrc (src/ingest/offline-fit.ts). Yields frames
// with what they are (source, frame, augmentation, seed) for the frame cache's index.
import type { FitTarget } from "../../ingest/frame-fit.ts";
import { PictureFitter } from "../../ingest/offline-fit.ts";
import type { LetterboxTransform } from "../../core/types.ts";
import { fitVideoFrames, readVideoFrames } from "../../ingest/gst/video-file.ts";
import { readImageFile } from "../../ingest/image-file.ts";
import type { RgbImage } from "../../core/rgb-image.ts";
import { augment, describeAugment, planAugment } from "./augment.ts";
import type { FrameItem } from "./frame-cache.ts";
import { formatFrameRange, inRange, type DataSelection, type DataSource } from "./spec.ts";
import { fnv1a } from "../../util/prng.ts";

export interface LoadedFrame {
  item: FrameItem;
  /** The model input picture, target.width x target.height packed RGB. */
  image: RgbImage;
  transform: LetterboxTransform;
}

export interface LoadProgress {
  frames: number;
  source: number;
  sources: number;
  path: string;
}

/** The seed of augmented copy `copy` (1-based) of a frame: from the file's content, not its name. */
export function augmentSeed(sha256: string, frame: number | null, copy: number): number {
  return fnv1a(`${sha256}|${frame ?? "-"}|${copy}`);
}

async function* copiesOf(
  picture: RgbImage,
  src: DataSource,
  sourceIndex: number,
  frame: number | null,
  fitter: PictureFitter,
  where: string,
): AsyncGenerator<LoadedFrame> {
  for (let copy = 1; copy <= src.augment; copy++) {
    const seed = augmentSeed(src.sha256, frame, copy);
    const plan = planAugment(seed);
    const augmented = augment(picture, plan, seed);
    const fitted = await fitter.fit(augmented, `${where} (augmented copy ${copy})`);
    yield {
      item: { source: sourceIndex, frame, augment: describeAugment(plan), seed, sourceWidth: augmented.width, sourceHeight: augmented.height },
      ...fitted,
    };
  }
}

async function* videoFrames(src: DataSource, sourceIndex: number, target: FitTarget, fitter: PictureFitter): AsyncGenerator<LoadedFrame> {
  const range = src.frames;
  let highest = -1;
  let taken = 0;
  const select = (i: number): boolean => {
    highest = i;
    return inRange(range, i);
  };
  for await (const f of fitVideoFrames(src.path, { fit: target, select })) {
    taken++;
    yield {
      item: { source: sourceIndex, frame: f.index, augment: null, seed: null, sourceWidth: f.transform.srcWidth, sourceHeight: f.transform.srcHeight },
      image: f.image,
      transform: f.transform,
    };
    if (range?.last !== null && range !== null && f.index >= range.last) break;
  }
  if (range !== null && range.last !== null && highest < range.last) {
    throw new Error(`${src.path}: frame range ${formatFrameRange(range)} goes past the end of the video: it has ${highest + 1} frames (0-${highest})`);
  }
  if (taken === 0) throw new Error(`${src.path}: frame range ${range === null ? "(all)" : formatFrameRange(range)} selects no frame of the video (it has ${highest + 1})`);
  if (src.augment === 0) return;
  const last = range?.last ?? highest;
  for await (const f of readVideoFrames(src.path, { select: (i) => inRange(range, i) })) {
    yield* copiesOf(f.image, src, sourceIndex, f.index, fitter, `${src.path} frame ${f.index}`);
    if (f.index >= last) break;
  }
}

async function* pictureFrames(src: DataSource, sourceIndex: number, fitter: PictureFitter): AsyncGenerator<LoadedFrame> {
  const picture = await readImageFile(src.path);
  const fitted = await fitter.fit(picture, src.path);
  yield { item: { source: sourceIndex, frame: null, augment: null, seed: null, sourceWidth: picture.width, sourceHeight: picture.height }, ...fitted };
  yield* copiesOf(picture, src, sourceIndex, null, fitter, src.path);
}

/** Every frame of `selection`, in source order; originals of a source before its augmented copies. */
export async function* loadFrames(selection: DataSelection, target: FitTarget, onProgress?: (p: LoadProgress) => void): AsyncGenerator<LoadedFrame> {
  const fitter = PictureFitter.open(target);
  let frames = 0;
  try {
    for (const [i, src] of selection.sources.entries()) {
      onProgress?.({ frames, source: i + 1, sources: selection.sources.length, path: src.path });
      const gen = src.kind === "video" ? videoFrames(src, i, target, fitter) : pictureFrames(src, i, fitter);
      for await (const f of gen) {
        frames++;
        yield f;
        onProgress?.({ frames, source: i + 1, sources: selection.sources.length, path: src.path });
      }
    }
  } finally {
    await fitter.close();
  }
}
