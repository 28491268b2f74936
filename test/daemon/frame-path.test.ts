// One frame path: the daemon (its GStreamer file pipeline, its inference worker, the bus)
// and the offline Detector that `perceptd detect` and `perceptd eval` use
// (src/infer/frame-processor.ts in both) give the very same detections for the same
// decoded frames. The offline side reads the clip through fitVideoFrames, the daemon's own
// file pipeline, so both see identical model inputs; what is compared is everything after.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { baseConfig, collectDetections, DEFAULT_MODEL, freePort, runDaemon, VTEST, writeConfig } from "./harness.ts";
import { Detector } from "../../src/infer/detector.ts";
import { readManifest, resolveModel, DEFAULT_MANIFEST_PATH } from "../../src/infer/manifest.ts";
import { fitVideoFrames } from "../../src/ingest/gst/video-file.ts";
import type { Detection } from "../../src/core/types.ts";

const FRAMES = 40;

/** The fields the detector decides, boxes at the bus's float32 precision. */
function wire(dets: readonly Detection[]): Detection[] {
  return dets.map((d) => ({ classId: d.classId, label: d.label, score: Math.fround(d.score), box: d.box.map(Math.fround) as Detection["box"] }));
}

describe("one frame path", () => {
  it.skipIf(!existsSync(VTEST))("gives the daemon's bus and the offline Detector identical detections on the same decoded frames", async () => {
    const dir = await mkdtemp(join(tmpdir(), "perceptd-frame-path-"));
    try {
      const clip = join(dir, `vtest-${FRAMES}.avi`);
      execFileSync("gst-launch-1.0", ["-q", "filesrc", `location=${VTEST}`, "!", "decodebin", "!", "videoconvert", "!", "identity", `eos-after=${FRAMES}`, "!", "jpegenc", "!", "avimux", "!", "filesink", `location=${clip}`]);
      // maxDetections below the people in a vtest frame, so the cap is exercised too.
      const post = { scoreThreshold: 0.3, iouThreshold: 0.5, maxDetections: 5 };

      const port = await freePort();
      const sub = await collectDetections(`tcp://127.0.0.1:${port}`);
      const cfg = await writeConfig(baseConfig(port, { type: "file", path: clip, realtime: false }, { model: post, inference: { warmupRuns: 1, replayWorkers: 1 } }));
      const d = runDaemon(["run", "--config", cfg]);
      expect(await d.exited, `exit code; stderr: ${d.stderr()}`).toBe(0);
      sub.close();
      const bySeq = new Map(sub.messages.map((m) => [m.seq, m.detections]));
      // The subscriber may miss the first messages while it connects; every later frame is there.
      expect(bySeq.size, "frames published and received").toBeGreaterThan(FRAMES / 2);

      const model = resolveModel(await readManifest(), DEFAULT_MANIFEST_PATH, DEFAULT_MODEL);
      const detector = await Detector.create(model, { executionProviders: ["cpu"], ...post });
      try {
        const { width, height, resize } = model.entry.input;
        let compared = 0;
        let capped = 0;
        for await (const f of fitVideoFrames(clip, { fit: { width, height, resize } })) {
          const published = bySeq.get(f.index);
          if (published === undefined) continue;
          const offline = (await detector.detectFitted(f.image, f.transform)).detections;
          expect(wire(published), `frame ${f.index}`).toEqual(wire(offline));
          compared++;
          if (offline.length === post.maxDetections) capped++;
        }
        expect(compared).toBe(bySeq.size);
        expect(capped, "frames where the cap decided what was published").toBeGreaterThan(0);
      } finally {
        await detector.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
