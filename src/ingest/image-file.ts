// Still images for `perceptd detect <image>` and for writing annotated output. Pure JS
// codecs (jpeg-js, pngjs) so this path works where GStreamer is not installed.
import { randomBytes } from "node:crypto";
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { assertRgbImage, type RgbImage } from "../core/rgb-image.ts";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

type ImageFormat = "jpeg" | "png";

// Extensions lie (camera dumps, renamed uploads); the first bytes do not.
function sniffFormat(bytes: Buffer): ImageFormat | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return "png";
  return null;
}

/**
 * Walks the chunk list before decoding, because pngjs reports a short file as
 * "There are some read requests waiting on finished stream", which tells the user nothing.
 * Returns a description of the first structural problem, or null.
 */
function pngStructureProblem(bytes: Buffer): string | null {
  let offset = 8;
  while (offset < bytes.length) {
    if (offset + 8 > bytes.length) return `truncated PNG: chunk header at byte ${offset} is cut off`;
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString("latin1", offset + 4, offset + 8);
    const end = offset + 12 + length;
    if (end > bytes.length) {
      return `truncated PNG: ${type} chunk at byte ${offset} needs ${length} bytes, file ends ${end - bytes.length} bytes early`;
    }
    if (type === "IEND") return null;
    offset = end;
  }
  return "truncated PNG: no IEND chunk";
}

function decodePng(bytes: Buffer): RgbImage {
  // pngjs expands palette/grey and rescales 16-bit to 8-bit, always handing back RGBA.
  const png = PNG.sync.read(bytes);
  const { width, height } = png;
  const rgba = png.data;
  const data = new Uint8Array(width * height * 3);
  // Alpha is dropped rather than composited, as PIL's convert("RGB") and OpenCV's
  // imread(IMREAD_COLOR) do, so detections match what those reference pipelines see.
  for (let i = 0, o = 0; o < data.length; i += 4, o += 3) {
    data[o] = rgba[i];
    data[o + 1] = rgba[i + 1];
    data[o + 2] = rgba[i + 2];
  }
  return { width, height, data };
}

function hasEoiMarker(bytes: Buffer): boolean {
  // Some encoders pad after EOI with zeros; ignore those before looking.
  let end = bytes.length;
  while (end > 2 && bytes[end - 1] === 0) end--;
  return end >= 2 && bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9;
}

function decodeJpeg(path: string, bytes: Buffer): RgbImage {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    // jpeg-js says "marker was not found" for a short file; the missing EOI is the real story.
    const problem = hasEoiMarker(bytes) ? "corrupt JPEG" : "truncated or corrupt JPEG (no end-of-image marker)";
    throw new Error(`${path}: ${problem}: ${detail}`, { cause: err });
  }
  const { width, height, data } = decoded;
  if (width <= 0 || height <= 0 || data.length !== width * height * 3) {
    throw new Error(`${path}: corrupt JPEG: decoded ${width}x${height} with ${data.length} bytes of pixels`);
  }
  return { width, height, data };
}

/** Reads a JPEG or PNG (detected by content, not extension) as packed 8-bit RGB. */
export async function readImageFile(path: string): Promise<RgbImage> {
  const bytes = await readFile(path).catch((err: unknown) => {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`${path}: cannot read image file: ${detail}`, { cause: err });
  });
  if (bytes.length === 0) throw new Error(`${path}: empty file, expected a JPEG or PNG image`);
  const format = sniffFormat(bytes);
  if (format === null) {
    const head = bytes.subarray(0, 8).toString("hex").replace(/(..)(?!$)/g, "$1 ");
    throw new Error(`${path}: unknown image format (first bytes ${head}), expected JPEG or PNG`);
  }
  if (format === "jpeg") return decodeJpeg(path, bytes);

  const problem = pngStructureProblem(bytes);
  if (problem !== null) throw new Error(`${path}: ${problem}`);
  try {
    return decodePng(bytes);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`${path}: corrupt PNG: ${detail}`, { cause: err });
  }
}

/**
 * Writes an 8-bit RGB PNG. A temp file in the same folder is renamed over the target,
 * so a reader (a dashboard polling annotated.png) never sees a half-written file and a
 * crash never leaves one behind under the real name.
 */
export async function writePng(path: string, img: RgbImage): Promise<void> {
  assertRgbImage(img, `writePng ${path}`);
  const png = new PNG();
  png.width = img.width;
  png.height = img.height;
  png.data = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const encoded = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });

  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, encoded);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    const detail = err instanceof Error ? err.message : String(err);
    throw new Error(`${path}: cannot write PNG: ${detail}`, { cause: err });
  }
}
