// `perceptd detect VIDEO --out x.mp4` and `--from-bus`: the real CLI writing annotated
// H.264 through GStreamer, decoded back with GStreamer; and a real daemon publishing the
// detections that --from-bus draws.
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import { VideoWriter } from "../../src/ingest/gst/video-writer.ts";
import type { RgbImage } from "../../src/core/rgb-image.ts";
import { colourForClass, CORRIDOR_COLOUR } from "../../src/view/overlay.ts";
import { baseConfig, freePort, runDaemon, VTEST, writeConfig } from "../daemon/harness.ts";
import { longestRun } from "../view/pixels.ts";
import { perceptd } from "./run-cli.ts";

const HAVE_VTEST = existsSync(VTEST);
const PERSON = [colourForClass(0)];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "perceptd-detect-video-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function decodeAll(path: string): Promise<RgbImage[]> {
  const frames: RgbImage[] = [];
  for await (const f of readVideoFrames(path)) frames.push(f.image);
  return frames;
}

describe.skipIf(!HAVE_VTEST)("perceptd detect --out VIDEO", () => {
  it("writes every selected frame annotated as H.264 in MP4, decodable by GStreamer", async () => {
    const out = join(dir, "people.mp4");
    const r = await perceptd("detect", VTEST, "--frames", "0-29", "--classes", "person", "--out", out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`annotated video written to ${out}: 30 frames, H\\.264, [\\d.]+ MB`));
    const frames = await decodeAll(out);
    expect(frames.length, "frames GStreamer decodes from the video").toBe(30);
    expect([frames[0].width, frames[0].height]).toEqual([768, 576]);
    // Person boxes drawn on it: raw vtest frames have no such run (see longestRun).
    expect(longestRun({ ...frames[20], channels: 3 }, PERSON)).toBeGreaterThanOrEqual(50);
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp")), "temporary files left behind").toEqual([]);
  });

  it("refuses a video name for an image input", async () => {
    const png = join(dir, "frame.png");
    await perceptd("detect", VTEST, "--frames", "3", "--out", png);
    const r = await perceptd("detect", png, "--out", join(dir, "x.mkv"));
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd()).toMatch(/an annotated video needs a video input; .*frame\.png is an image \(use a \.png name\)$/);
  });
});

describe.skipIf(!HAVE_VTEST)("perceptd detect --from-bus", () => {
  it("draws a recording with what a running daemon published for each frame", async () => {
    // The first 40 frames of vtest.avi, replayed unpaced so the daemon takes every frame.
    const clip = join(dir, "clip.mkv");
    const w = await VideoWriter.open(clip, { width: 768, height: 576, fps: 10 });
    for await (const f of readVideoFrames(VTEST, { maxFrames: 40 })) await w.write(f.image);
    await w.finish();

    const port = await freePort();
    const out = join(dir, "from-bus.mkv");
    const config = baseConfig(port, { type: "file", path: clip, realtime: false });
    (config.cameras as Record<string, unknown>[])[0].corridor = { type: "image", polygon: [[300, 200], [470, 200], [470, 420], [300, 420]] };
    const cfg = await writeConfig(config);
    // The subscriber connects (and retries) while the daemon starts.
    const detect = perceptd("detect", clip, "--out", out, "--from-bus", `tcp://127.0.0.1:${port}`, "--bus-timeout", "60", "--config", cfg);
    const d = runDaemon(["run", "--config", cfg]);
    try {
      expect(await d.exited, `daemon exit; stderr: ${d.stderr()}`).toBe(0);
      const r = await detect;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`annotated video written to ${out}: 40 frames, H\\.264, [\\d.]+ MB, camera cam0 from tcp://127\\.0\\.0\\.1:${port}`));
      const m = /(\d+) frames with their own detections, (\d+) dropped by the daemon .*, (\d+) with none/.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      expect(Number(m![1]), "frames drawn with their own detections (the daemon took every frame)").toBe(40);
      const frames = await decodeAll(out);
      expect(frames.length).toBe(40);
      expect(longestRun({ ...frames[20], channels: 3 }, PERSON), "person boxes drawn from the bus").toBeGreaterThanOrEqual(50);
      expect(longestRun({ ...frames[20], channels: 3 }, [CORRIDOR_COLOUR]), "the corridor from --config (edges of 170 and 220 px)").toBeGreaterThanOrEqual(150);
    } finally {
      d.kill();
    }
  }, 180_000);

  it("says so when nothing is published at the endpoint", async () => {
    const port = await freePort();
    const r = await perceptd("detect", VTEST, "--frames", "0-5", "--out", join(dir, "none.mp4"), "--from-bus", `tcp://127.0.0.1:${port}`, "--bus-timeout", "1");
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd()).toMatch(new RegExp(`^perceptd: --from-bus tcp://127\\.0\\.0\\.1:${port}: no detections within 1000 ms; is a daemon replaying this recording and publishing there\\?$`));
    expect((await readdir(dir)).some((f) => f.startsWith("none.mp4") || f.startsWith(".none.mp4")), "no video left behind").toBe(false);
  });
});
