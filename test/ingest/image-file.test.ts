import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import jpeg from "jpeg-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImageFile, writePng } from "../../src/ingest/image-file.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-image-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 255) / (width - 1);
      data[o + 1] = (y * 255) / (height - 1);
      data[o + 2] = 90;
    }
  }
  return { width, height, data };
}

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/** Minimal PNG encoder for the formats writePng never produces (grey, alpha, 16-bit). */
function encodePng(width: number, height: number, colorType: number, bitDepth: number, rows: Buffer[]): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const raw = Buffer.concat(rows.map((r) => Buffer.concat([Buffer.from([0]), r])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  const o = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(o, o + 3));
}

describe("writePng / readImageFile (PNG)", () => {
  it("round-trips an RGB image exactly", async () => {
    const img = gradient(37, 21);
    const path = join(dir, "round.png");
    await writePng(path, img);
    const back = await readImageFile(path);
    expect(back.width).toBe(37);
    expect(back.height).toBe(21);
    expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
  });

  it("writes atomically: no temp file is left beside the target", async () => {
    const sub = await mkdtemp(join(dir, "atomic-"));
    await writePng(join(sub, "a.png"), gradient(8, 8));
    await writePng(join(sub, "a.png"), gradient(9, 9));
    expect(await readdir(sub)).toEqual(["a.png"]);
    expect((await readImageFile(join(sub, "a.png"))).width).toBe(9);
  });

  it("rejects an image whose buffer does not match its size", async () => {
    const bad = { width: 4, height: 4, data: new Uint8Array(10) };
    await expect(writePng(join(dir, "bad.png"), bad)).rejects.toThrow(/bad\.png.*48 bytes/);
  });

  it("drops alpha from RGBA", async () => {
    const path = join(dir, "rgba.png");
    await writeFile(path, encodePng(2, 1, 6, 8, [Buffer.from([10, 20, 30, 0, 40, 50, 60, 128])]));
    const img = await readImageFile(path);
    expect(Array.from(img.data)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it("expands 8-bit grey and grey+alpha to RGB", async () => {
    const grey = join(dir, "grey.png");
    await writeFile(grey, encodePng(2, 1, 0, 8, [Buffer.from([7, 250])]));
    expect(Array.from((await readImageFile(grey)).data)).toEqual([7, 7, 7, 250, 250, 250]);
    const greyAlpha = join(dir, "grey-alpha.png");
    await writeFile(greyAlpha, encodePng(1, 1, 4, 8, [Buffer.from([99, 3])]));
    expect(Array.from((await readImageFile(greyAlpha)).data)).toEqual([99, 99, 99]);
  });

  it("rescales 16-bit samples to 8-bit", async () => {
    const path = join(dir, "grey16.png");
    const row = Buffer.alloc(6);
    row.writeUInt16BE(0x0000, 0);
    row.writeUInt16BE(0xffff, 2);
    row.writeUInt16BE(0x8080, 4);
    await writeFile(path, encodePng(3, 1, 0, 16, [row]));
    expect(Array.from((await readImageFile(path)).data)).toEqual([0, 0, 0, 255, 255, 255, 128, 128, 128]);

    const rgb16 = join(dir, "rgb16.png");
    const px = Buffer.alloc(6);
    px.writeUInt16BE(0xffff, 0);
    px.writeUInt16BE(0x0101 * 17, 2);
    px.writeUInt16BE(0, 4);
    await writeFile(rgb16, encodePng(1, 1, 2, 16, [px]));
    expect(Array.from((await readImageFile(rgb16)).data)).toEqual([255, 17, 0]);
  });

  it("detects the format from content, not the extension", async () => {
    const path = join(dir, "actually-png.jpg");
    await writePng(path, gradient(5, 4));
    expect((await readImageFile(path)).width).toBe(5);
  });
});

describe("readImageFile (JPEG)", () => {
  it("decodes a jpeg-js encoded image close to the original", async () => {
    const src = gradient(64, 48);
    const rgba = Buffer.alloc(64 * 48 * 4);
    for (let i = 0; i < 64 * 48; i++) {
      rgba[i * 4] = src.data[i * 3];
      rgba[i * 4 + 1] = src.data[i * 3 + 1];
      rgba[i * 4 + 2] = src.data[i * 3 + 2];
      rgba[i * 4 + 3] = 255;
    }
    const path = join(dir, "photo.jpeg");
    await writeFile(path, jpeg.encode({ width: 64, height: 48, data: rgba }, 95).data);
    const img = await readImageFile(path);
    expect([img.width, img.height, img.data.length]).toEqual([64, 48, 64 * 48 * 3]);
    let err = 0;
    for (let i = 0; i < img.data.length; i++) err += Math.abs(img.data[i] - src.data[i]);
    expect(err / img.data.length).toBeLessThan(3);
    expect(pixel(img, 63, 0)[0]).toBeGreaterThan(240);
    expect(pixel(img, 0, 47)[1]).toBeGreaterThan(240);
  });
});

describe("readImageFile errors name the file and the problem", () => {
  async function pngBytes(): Promise<Buffer> {
    const path = join(dir, "source.png");
    await writePng(path, gradient(40, 30));
    return readFile(path);
  }

  it("missing file", async () => {
    const path = join(dir, "nope.png");
    await expect(readImageFile(path)).rejects.toThrow(`${path}: cannot read image file`);
  });

  it("empty file", async () => {
    const path = join(dir, "empty.png");
    await writeFile(path, Buffer.alloc(0));
    await expect(readImageFile(path)).rejects.toThrow(`${path}: empty file`);
  });

  it("unknown format", async () => {
    const path = join(dir, "notes.png");
    await writeFile(path, "GIF89a is not supported, nor is text\n");
    await expect(readImageFile(path)).rejects.toThrow(`${path}: unknown image format (first bytes 47 49 46 38`);
  });

  it("truncated PNG", async () => {
    const bytes = await pngBytes();
    const path = join(dir, "truncated.png");
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(readImageFile(path)).rejects.toThrow(new RegExp(`^${escape(path)}: truncated PNG: IDAT chunk`));
    await writeFile(path, bytes.subarray(0, bytes.length - 12));
    await expect(readImageFile(path)).rejects.toThrow(`${path}: truncated PNG: no IEND chunk`);
  });

  it("corrupt PNG (damaged compressed data)", async () => {
    const bytes = Buffer.from(await pngBytes());
    const idat = bytes.indexOf("IDAT", 0, "latin1");
    for (let i = idat + 10; i < idat + 40; i++) bytes[i] ^= 0x5a;
    const path = join(dir, "corrupt.png");
    await writeFile(path, bytes);
    await expect(readImageFile(path)).rejects.toThrow(`${path}: corrupt PNG:`);
  });

  it("truncated JPEG", async () => {
    const rgba = Buffer.alloc(32 * 32 * 4, 128);
    const bytes = jpeg.encode({ width: 32, height: 32, data: rgba }, 90).data;
    const path = join(dir, "truncated.jpg");
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await expect(readImageFile(path)).rejects.toThrow(`${path}: truncated or corrupt JPEG (no end-of-image marker)`);
  });

  it("corrupt JPEG (damaged headers)", async () => {
    const rgba = Buffer.alloc(32 * 32 * 4, 128);
    const bytes = Buffer.from(jpeg.encode({ width: 32, height: 32, data: rgba }, 90).data);
    bytes.fill(0, 4, 60);
    const path = join(dir, "corrupt.jpg");
    await writeFile(path, bytes);
    await expect(readImageFile(path)).rejects.toThrow(`${path}: corrupt JPEG:`);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
