// The live view's capture rules on their own, with the real render thread and the real
// GStreamer JPEG encoder and an injected clock: nothing is copied without a client, a
// frame the daemon dropped is never waited for, and at most view.fps frames are drawn.
import jpeg from "jpeg-js";
import { afterEach, describe, expect, it } from "vitest";
import { computeLetterbox } from "../../src/core/letterbox.ts";
import { GstJpegEncoder } from "../../src/ingest/gst/jpeg-encoder.ts";
import { LiveView, type ViewFrame } from "../../src/view/live-view.ts";
import { Renderer } from "../../src/view/renderer.ts";

const T = computeLetterbox(64, 48, 32, 32, "stretch");

function frame(seq: number): ViewFrame {
  return { camera: "c", seq, pixels: new Uint8Array(32 * 32 * 3).fill(seq), transform: T };
}

let view: LiveView | null = null;
afterEach(async () => {
  await view?.close();
  view = null;
});

function make(now: () => number): { view: LiveView; encoded: number[] } {
  const encoded: number[] = [];
  view = new LiveView({
    cameras: [{ id: "c" }],
    fps: 5,
    renderer: new Renderer(960),
    encoder: new GstJpegEncoder({ quality: 70 }),
    hooks: { onEncoded: () => encoded.push(1), onError: (_c, e) => encoded.push(Number.NaN) && console.error(e) },
    now,
  });
  return { view, encoded };
}

const result = (seq: number) => ({ camera: "c", seq, scene: () => ({ objects: [], alerts: [] }) });

describe("LiveView captures", () => {
  it("copies and encodes nothing while nobody asks for a frame", async () => {
    const { view: v, encoded } = make(() => 0);
    for (let seq = 0; seq < 5; seq++) {
      v.offerFrame(frame(seq));
      v.offerResult(result(seq));
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(encoded).toEqual([]);
  });

  it("draws the frame whose result comes, letting go of frames the daemon dropped", async () => {
    let t = 1000;
    const { view: v, encoded } = make(() => t);
    const next = v.nextFrame("c", 0, 10_000);
    // A slow detector: frame 1 runs while frames 2-10 arrive, each replacing the one
    // waiting before it (dropped), then frame 1's result comes.
    for (let seq = 1; seq <= 10; seq++) {
      v.offerFrame(frame(seq));
      if (seq >= 3) v.offerDrop("c", seq - 1);
    }
    v.offerResult(result(1));
    const f = await next;
    expect(f?.seq, "the frame drawn: the one that was running all along").toBe(1);
    const img = jpeg.decode(f!.jpeg, { useTArray: true });
    expect([img.width, img.height], "drawn on the source geometry").toEqual([64, 48]);
    expect(encoded).toEqual([1]);
    // The view is busy with that frame until its send finishes, a tick after the waiter hears.
    await new Promise((r) => setImmediate(r));

    // Within the same period (1/5 s) nothing more is captured; after it, the next frame is.
    t += 100;
    const again = v.nextFrame("c", 0, 10_000);
    v.offerFrame(frame(11));
    v.offerResult(result(11));
    t += 150;
    v.offerFrame(frame(12));
    v.offerResult(result(12));
    expect((await again)?.seq).toBe(12);
    expect(encoded).toEqual([1, 1]);
  }, 30_000);

  it("answers null when no frame comes in time", async () => {
    const { view: v } = make(() => 0);
    expect(await v.nextFrame("c", 0, 50)).toBeNull();
    expect(await v.nextFrame("nope", 0, 50)).toBeNull();
  });
});
