// One preprocessing path: what the daemon's camera pipeline hands the model and what
// calibration, evaluation and the frame cache feed it offline are the same bytes.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CameraSchema } from "../../src/config/schema.ts";
import { LETTERBOX_PAD_RGB } from "../../src/core/letterbox.ts";
import type { FitTarget } from "../../src/ingest/frame-fit.ts";
import { toModelInputData } from "../../src/infer/input-tensor.ts";
import { PictureFitter } from "../../src/ingest/offline-fit.ts";
import { CameraSource } from "../../src/ingest/camera-source.ts";
import type { Frame } from "../../src/core/frame.ts";
import { fitVideoFrames, readVideoFrames } from "../../src/ingest/gst/video-file.ts";
import { readImageFile, writePng } from "../../src/ingest/image-file.ts";
import { readManifest, DEFAULT_MANIFEST_PATH } from "../../src/infer/manifest.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);
const FRAMES = 12;

/** The first `n` frames as the daemon's CameraSource delivers them for an unpaced file. */
async function daemonFrames(path: string, target: FitTarget, n: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const cam = new CameraSource(CameraSchema.parse({ id: "cam", source: { type: "file", path, realtime: false } }), target, {
    onFrame: (f) => {
      if (frames.length < n) frames.push(f);
      if (frames.length === n) done();
    },
    onEvent: (e) => {
      if (e.type === "ended" || e.type === "error") done();
    },
  });
  cam.start();
  await finished;
  await cam.stop();
  return frames;
}

function firstDifference(a: Uint8Array, b: Uint8Array): string {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `byte ${i}: ${a[i]} vs ${b[i]}`;
  return "none";
}

describe.skipIf(!HAVE_VTEST)("the daemon's pipeline and the offline path give the same model input (vtest.avi)", () => {
  for (const target of [
    { width: 416, height: 416, resize: "stretch" },
    { width: 416, height: 416, resize: "letterbox" },
  ] satisfies FitTarget[]) {
    it(`${target.resize}: the first ${FRAMES} frames are byte-identical, tensors included`, async () => {
      const daemon = await daemonFrames(VTEST, target, FRAMES);
      const offline = [];
      for await (const f of fitVideoFrames(VTEST, { fit: target, maxFrames: FRAMES })) offline.push(f);
      expect(daemon.length, "frames from the daemon's CameraSource").toBe(FRAMES);
      expect(offline.length, "frames from fitVideoFrames").toBe(FRAMES);
      const manifest = await readManifest(DEFAULT_MANIFEST_PATH);
      const spec = manifest.models["nanodet-u8"].input;
      for (let i = 0; i < FRAMES; i++) {
        expect(offline[i].transform, `frame ${i}: transform`).toEqual(daemon[i].transform);
        const same = Buffer.compare(Buffer.from(offline[i].image.data), Buffer.from(daemon[i].pixels)) === 0;
        expect(same, `frame ${i}: offline pixels differ from the daemon's (${firstDifference(offline[i].image.data, daemon[i].pixels)})`).toBe(true);
        const a = toModelInputData({ width: 416, height: 416, data: daemon[i].pixels }, spec);
        const b = toModelInputData(offline[i].image, spec);
        expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(b.data.buffer)), `frame ${i}: input tensor`).toBe(0);
      }
    });
  }

  it("letterbox pads are the daemon's colour (black), not the old offline grey", async () => {
    const target: FitTarget = { width: 416, height: 416, resize: "letterbox" };
    for await (const f of fitVideoFrames(VTEST, { fit: target, maxFrames: 1 })) {
      expect(f.transform.padY, "768x576 into 416x416 pads top and bottom").toBeGreaterThan(0);
      const top = f.image.data.subarray(0, 416 * 3 * f.transform.padY);
      expect([...new Set(top)]).toEqual([...new Set(LETTERBOX_PAD_RGB)]);
    }
  });
});

describe.skipIf(!HAVE_VTEST)("PictureFitter: pictures through the daemon's conversion tail", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "perceptd-fit-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a PNG fed by appsrc gives the bytes the daemon's file pipeline gives for it", async () => {
    // A real frame saved losslessly: the file pipeline decodes it to RGB, as appsrc is fed.
    let frame = null;
    for await (const f of readVideoFrames(VTEST, { select: (i) => i === 40, maxFrames: 1 })) frame = f.image;
    const png = join(dir, "frame40.png");
    await writePng(png, frame!);
    for (const target of [
      { width: 416, height: 416, resize: "stretch" },
      { width: 320, height: 320, resize: "letterbox" },
    ] satisfies FitTarget[]) {
      const [viaDaemon] = await daemonFrames(png, target, 1);
      const fitter = PictureFitter.open(target);
      try {
        const viaAppsrc = await fitter.fit(await readImageFile(png), png);
        expect(viaAppsrc.transform).toEqual(viaDaemon.transform);
        expect(firstDifference(viaAppsrc.image.data, viaDaemon.pixels), `${target.resize} ${target.width}x${target.height}`).toBe("none");
      } finally {
        await fitter.close();
      }
    }
  });

  it("fits pictures of different sizes one after another in one pipeline", async () => {
    const fitter = PictureFitter.open({ width: 64, height: 48, resize: "letterbox" });
    try {
      const sizes = [
        [100, 50],
        [33, 77],
        [64, 48],
      ];
      for (const [w, h] of sizes) {
        const img = { width: w, height: h, data: new Uint8Array(w * h * 3).fill(200) };
        const out = await fitter.fit(img, `${w}x${h}`);
        expect(out.image.width * out.image.height * 3).toBe(out.image.data.length);
        expect(out.transform.srcWidth).toBe(w);
        // the centre is picture, grey 200 (give or take colour conversion rounding)
        const c = (24 * 64 + 32) * 3;
        expect(Math.abs(out.image.data[c] - 200), `${w}x${h}: centre pixel`).toBeLessThanOrEqual(2);
      }
    } finally {
      await fitter.close();
    }
  });
});
