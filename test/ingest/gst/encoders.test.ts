// The GStreamer encoders fed through an appsrc: JPEG stills for the live view, H.264 video
// for `perceptd detect --out`. Decoded back with GStreamer and jpeg-js, never trusted blind.
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import jpeg from "jpeg-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GstJpegEncoder } from "../../../src/ingest/gst/jpeg-encoder.ts";
import { reservedGstThreads } from "../../../src/ingest/gst/pipeline-runner.ts";
import { readVideoFrames } from "../../../src/ingest/gst/video-file.ts";
import { VideoWriter } from "../../../src/ingest/gst/video-writer.ts";
import type { RgbImage } from "../../../src/core/rgb-image.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-encoders-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Left half red, right half blue, a white bar that moves with `i`. */
function frame(width: number, height: number, i = 0): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const bar = Math.abs(x - ((i * 7) % width)) < 4;
      data.set(bar ? [255, 255, 255] : x < width / 2 ? [220, 30, 30] : [30, 30, 220], o);
    }
  }
  return { width, height, data };
}

describe("GstJpegEncoder", () => {
  it("encodes frames of changing sizes, odd widths too, into JPEGs that decode to the same picture", async () => {
    const enc = new GstJpegEncoder({ quality: 80 });
    try {
      for (const [w, h] of [[320, 240], [161, 121], [320, 240]]) {
        const bytes = await enc.encode(frame(w, h));
        const img = jpeg.decode(bytes, { useTArray: true });
        expect([img.width, img.height], `JPEG size for a ${w}x${h} frame`).toEqual([w, h]);
        const at = (x: number, y: number): number[] => Array.from(img.data.subarray((y * w + x) * 4, (y * w + x) * 4 + 3));
        const [r1, , b1] = at(Math.floor(w / 4), Math.floor(h / 2));
        const [r2, , b2] = at(Math.floor((3 * w) / 4), Math.floor(h / 2));
        expect(r1 > 150 && b1 < 100, `left half should stay red, got ${at(Math.floor(w / 4), Math.floor(h / 2))}`).toBe(true);
        expect(b2 > 150 && r2 < 100, `right half should stay blue, got ${at(Math.floor((3 * w) / 4), Math.floor(h / 2))}`).toBe(true);
      }
    } finally {
      await enc.close();
    }
    expect(reservedGstThreads(), "threadpool threads still reserved after close").toBe(0);
  });

  it("builds no pipeline until the first encode", async () => {
    const enc = new GstJpegEncoder({ quality: 70 });
    expect(reservedGstThreads()).toBe(0);
    await enc.close();
    await expect(enc.encode(frame(16, 16))).rejects.toThrow(/closed/);
  });

  it("rejects a quality outside [1, 100]", () => {
    expect(() => new GstJpegEncoder({ quality: 0 })).toThrow(/quality must be an integer in \[1, 100\]/);
  });
});

describe("VideoWriter", () => {
  for (const ext of [".mp4", ".mkv"]) {
    it(`writes H.264 in ${ext} that GStreamer decodes back to every frame`, async () => {
      const path = join(dir, `out${ext}`);
      const w = await VideoWriter.open(path, { width: 160, height: 120, fps: 10 });
      for (let i = 0; i < 25; i++) await w.write(frame(160, 120, i));
      const summary = await w.finish();
      expect(summary.frames).toBe(25);
      expect((await stat(path)).size).toBe(summary.bytes);
      let n = 0;
      let first: RgbImage | null = null;
      for await (const f of readVideoFrames(path)) {
        first ??= f.image;
        n++;
      }
      expect(n, `frames decoded from ${path}`).toBe(25);
      const px = (x: number): number[] => Array.from(first!.data.subarray((60 * 160 + x) * 3, (60 * 160 + x) * 3 + 3));
      expect(px(40)[0] > 150 && px(120)[2] > 150, `colours after the round trip: ${px(40)} / ${px(120)}`).toBe(true);
      // Nothing left behind but the video itself.
      expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
      expect(reservedGstThreads()).toBe(0);
    });
  }

  it("refuses a frame of another size and a name it cannot write", async () => {
    await expect(VideoWriter.open(join(dir, "x.avi"), { width: 16, height: 16, fps: 10 })).rejects.toThrow(/must end in \.mp4 or \.mkv/);
    const w = await VideoWriter.open(join(dir, "size.mp4"), { width: 160, height: 120, fps: 10 });
    await expect(w.write(frame(80, 60))).rejects.toThrow(/frame 0 is 80x60, the video is 160x120/);
    await w.abort();
    expect((await readdir(dir)).some((f) => f.startsWith(".size.mp4"))).toBe(false);
  });
});
