// Real labels in COCO's JSON format (images, annotations, categories), for users who have
// ground truth for their footage. Each labelled image is tied to a picture to run the model on:
//   1. a `file_name` naming an existing file (relative to the labels file's folder) is read
//      as a JPEG/PNG image;
//   2. otherwise it is a frame of the video: the image's `frame_index` if it has one, else the
//      last number in its file name ("frame_000120.jpg" and "vtest-120.png" are frame 120).
// Categories are matched to model classes by name; boxes are COCO [x, y, width, height] in
// source pixels. Crowd annotations (iscrowd = 1) are left out, not treated as ignore regions.
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { z } from "zod";
import type { Box } from "../../core/types.ts";
import { formatZodIssues } from "../../infer/manifest.ts";

const CocoSchema = z.object({
  images: z.array(
    z
      .object({
        id: z.number().int(),
        file_name: z.string(),
        width: z.number().int().positive().optional(),
        height: z.number().int().positive().optional(),
        frame_index: z.number().int().nonnegative().optional(),
      })
      .loose(),
  ),
  annotations: z.array(
    z
      .object({
        image_id: z.number().int(),
        category_id: z.number().int(),
        bbox: z.tuple([z.number(), z.number(), z.number().nonnegative(), z.number().nonnegative()]),
        iscrowd: z.number().int().optional(),
      })
      .loose(),
  ),
  categories: z.array(z.object({ id: z.number().int(), name: z.string() }).loose()).min(1),
});

export interface LabelledBox {
  label: string;
  box: Box;
}

export type LabelSource = { kind: "image"; path: string } | { kind: "frame"; index: number };

export interface LabelledImage {
  id: number;
  fileName: string;
  source: LabelSource;
  width?: number;
  height?: number;
  boxes: LabelledBox[];
}

export interface CocoLabels {
  path: string;
  images: LabelledImage[];
  /** Crowd annotations left out. */
  crowd: number;
}

const LAST_NUMBER = /(\d+)(?!.*\d)/;

async function isFile(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => null);
  return info !== null && info.isFile();
}

export async function readCocoLabels(path: string): Promise<CocoLabels> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read COCO labels ${path}: ${(e as Error).message}`, { cause: e });
  }
  const parsed = CocoSchema.safeParse(raw);
  if (!parsed.success) throw new Error(formatZodIssues(`COCO labels ${path}`, parsed.error));
  const coco = parsed.data;

  const categories = new Map(coco.categories.map((c) => [c.id, c.name]));
  const images = new Map<number, LabelledImage>();
  for (const img of coco.images) {
    if (images.has(img.id)) throw new Error(`COCO labels ${path}: image id ${img.id} appears twice`);
    const file = resolve(dirname(path), img.file_name);
    let source: LabelSource;
    if (await isFile(file)) source = { kind: "image", path: file };
    else if (img.frame_index !== undefined) source = { kind: "frame", index: img.frame_index };
    else {
      const m = LAST_NUMBER.exec(basename(img.file_name));
      if (m === null) {
        throw new Error(
          `COCO labels ${path}: image ${img.id} "${img.file_name}" is neither a file next to the labels nor a video frame ` +
            `(no frame_index and no number in its name)`,
        );
      }
      source = { kind: "frame", index: Number(m[1]) };
    }
    images.set(img.id, { id: img.id, fileName: img.file_name, source, width: img.width, height: img.height, boxes: [] });
  }
  let crowd = 0;
  coco.annotations.forEach((a, i) => {
    const img = images.get(a.image_id);
    if (img === undefined) throw new Error(`COCO labels ${path}: annotations[${i}] names image_id ${a.image_id}, which is not in images`);
    const label = categories.get(a.category_id);
    if (label === undefined) throw new Error(`COCO labels ${path}: annotations[${i}] names category_id ${a.category_id}, which is not in categories`);
    if (a.iscrowd === 1) {
      crowd++;
      return;
    }
    const [x, y, w, h] = a.bbox;
    img.boxes.push({ label, box: [x, y, x + w, y + h] });
  });
  const frames = new Map<number, number>();
  for (const img of images.values()) {
    if (img.source.kind !== "frame") continue;
    const other = frames.get(img.source.index);
    if (other !== undefined) throw new Error(`COCO labels ${path}: images ${other} and ${img.id} both label video frame ${img.source.index}`);
    frames.set(img.source.index, img.id);
  }
  return { path, images: [...images.values()], crowd };
}
