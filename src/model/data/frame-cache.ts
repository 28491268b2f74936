// The model-ready frame cache (docs/datasets.md, "perceptd-frames/1"): a data set decoded and
// fitted to one model input once, then read by pruning, recovery, evaluation, fine-tuning
// (Python: numpy.fromfile(frames.u8).reshape(count, height, width, 3)) and quantization.
//
//   <dir>/frames.u8    count x height x width x 3 uint8, NHWC, RGB, back to back
//   <dir>/index.json   what each row is; written after frames.u8, atomically
//
// A reader that finds index.json can trust frames.u8 beside it: the writer renames
// frames.u8 into place before it writes the index, and both replace a previous cache whole.
import { createHash } from "node:crypto";
import { open, readFile, rename, rm, mkdir, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { ResizeMode } from "../../core/types.ts";
import { writeFileAtomic } from "../../util/atomic-write.ts";

export const FRAME_CACHE_FORMAT = "perceptd-frames/1";
export const INDEX_FILE = "index.json";
export const FRAMES_FILE = "frames.u8";

const SourceSchema = z.object({ path: z.string(), sha256: z.string(), frames: z.string().nullable() }).strict();
const ItemSchema = z
  .object({
    source: z.number().int().min(0),
    frame: z.number().int().min(0).nullable(),
    augment: z.string().nullable(),
    seed: z.number().int().min(0).nullable(),
    /** Size of the picture before fitting (after augmentation), to map boxes to its pixels. */
    sourceWidth: z.number().int().positive(),
    sourceHeight: z.number().int().positive(),
  })
  .strict();

const IndexSchema = z
  .object({
    format: z.literal(FRAME_CACHE_FORMAT),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    channels: z.literal(3),
    layout: z.literal("NHWC"),
    dtype: z.literal("uint8"),
    colorOrder: z.literal("rgb"),
    resize: z.enum(["stretch", "letterbox"]),
    count: z.number().int().min(0),
    set: z.string(),
    sources: z.array(SourceSchema),
    items: z.array(ItemSchema),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** What the cache was built from (sources, augmentation, fitting); a different plan means a rebuild. */
    plan: z.string(),
  })
  .strict();

export type FrameSourceEntry = z.infer<typeof SourceSchema>;
export type FrameItem = z.infer<typeof ItemSchema>;
export type FrameIndex = z.infer<typeof IndexSchema>;

export interface FrameCacheHeader {
  width: number;
  height: number;
  resize: ResizeMode;
  set: string;
  sources: FrameSourceEntry[];
  plan: string;
}

/** Streams frames into <dir>/frames.u8 and writes the index last; nothing is visible until finish(). */
export class FrameCacheWriter {
  readonly dir: string;
  private readonly header: FrameCacheHeader;
  private readonly file: FileHandle;
  private readonly tmp: string;
  private readonly hash = createHash("sha256");
  private readonly items: FrameItem[] = [];
  private done = false;

  private constructor(dir: string, header: FrameCacheHeader, file: FileHandle, tmp: string) {
    this.dir = dir;
    this.header = header;
    this.file = file;
    this.tmp = tmp;
  }

  static async create(dir: string, header: FrameCacheHeader): Promise<FrameCacheWriter> {
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${FRAMES_FILE}.${process.pid}.tmp`);
    return new FrameCacheWriter(dir, header, await open(tmp, "w"), tmp);
  }

  get count(): number {
    return this.items.length;
  }

  async append(pixels: Uint8Array, item: FrameItem): Promise<void> {
    const { width, height } = this.header;
    if (this.done) throw new Error(`frame cache ${this.dir}: append after finish`);
    if (pixels.length !== width * height * 3) {
      throw new RangeError(`frame cache ${this.dir}: frame ${this.items.length} has ${pixels.length} bytes, a ${width}x${height} RGB frame has ${width * height * 3}`);
    }
    await this.file.write(pixels);
    this.hash.update(pixels);
    this.items.push(item);
  }

  /** Moves frames.u8 into place, then writes index.json; returns the index. */
  async finish(): Promise<FrameIndex> {
    if (this.done) throw new Error(`frame cache ${this.dir}: finished twice`);
    this.done = true;
    await this.file.sync();
    await this.file.close();
    // The old index goes first, so no reader pairs it with the new frames.
    await rm(join(this.dir, INDEX_FILE), { force: true });
    await rename(this.tmp, join(this.dir, FRAMES_FILE));
    const { width, height, resize, set, sources, plan } = this.header;
    const index: FrameIndex = {
      format: FRAME_CACHE_FORMAT,
      width,
      height,
      channels: 3,
      layout: "NHWC",
      dtype: "uint8",
      colorOrder: "rgb",
      resize,
      count: this.items.length,
      set,
      sources,
      items: this.items,
      sha256: this.hash.digest("hex"),
      plan,
    };
    await writeFileAtomic(join(this.dir, INDEX_FILE), JSON.stringify(index, null, 1) + "\n");
    return index;
  }

  /** Drops what was written (after an error). */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.file.close().catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}

/** Reads and checks <dir>/index.json; null when there is none (not built yet). */
export async function readFrameIndex(dir: string): Promise<FrameIndex | null> {
  const path = join(dir, INDEX_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = IndexSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path}: not a ${FRAME_CACHE_FORMAT} index: ${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  }
  const index = parsed.data;
  if (index.items.length !== index.count) throw new Error(`${path}: count ${index.count} but ${index.items.length} items`);
  return index;
}

/** An open cache: frames read on demand, one row at a time. */
export class FrameCache {
  readonly dir: string;
  readonly index: FrameIndex;
  private readonly file: FileHandle;

  private constructor(dir: string, index: FrameIndex, file: FileHandle) {
    this.dir = dir;
    this.index = index;
    this.file = file;
  }

  /** Opens a built cache; `verify` also checks frames.u8's sha256 (reads it all). */
  static async open(dir: string, opts: { verify?: boolean } = {}): Promise<FrameCache> {
    const index = await readFrameIndex(dir);
    if (index === null) throw new Error(`${dir}: no frame cache here (no ${INDEX_FILE}); build it with \`perceptd data build\``);
    const path = join(dir, FRAMES_FILE);
    const expected = index.count * index.width * index.height * 3;
    const size = (await stat(path).catch(() => null))?.size;
    if (size !== expected) {
      throw new Error(`${path}: ${size === undefined ? "missing" : `${size} bytes`}, the index describes ${index.count} frames of ${index.width}x${index.height}x3 = ${expected} bytes`);
    }
    if (opts.verify === true) {
      const got = createHash("sha256").update(await readFile(path)).digest("hex");
      if (got !== index.sha256) throw new Error(`${path}: sha256 ${got} does not match its index (${index.sha256})`);
    }
    return new FrameCache(dir, index, await open(path, "r"));
  }

  get frameBytes(): number {
    return this.index.width * this.index.height * 3;
  }

  /** Row `i` as packed RGB (a fresh buffer, the caller's to keep or transfer). */
  async frame(i: number): Promise<Uint8Array> {
    if (!Number.isInteger(i) || i < 0 || i >= this.index.count) throw new RangeError(`frame cache ${this.dir}: no frame ${i} (it has ${this.index.count})`);
    const out = new Uint8Array(this.frameBytes);
    const { bytesRead } = await this.file.read(out, 0, out.length, i * this.frameBytes);
    if (bytesRead !== out.length) throw new Error(`${join(this.dir, FRAMES_FILE)}: short read at frame ${i}`);
    return out;
  }

  async *frames(): AsyncGenerator<{ i: number; item: FrameItem; pixels: Uint8Array }> {
    for (let i = 0; i < this.index.count; i++) yield { i, item: this.index.items[i], pixels: await this.frame(i) };
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
