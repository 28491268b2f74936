import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { MessageChannel } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { CameraSchema, type CameraConfig } from "../../src/config/schema.ts";
import { boxToModel, computeLetterbox } from "../../src/core/letterbox.ts";
import { CameraSource, type CameraSourceOptions } from "../../src/ingest/camera-source.ts";
import type { CameraEvent } from "../../src/core/camera-event.ts";
import type { Frame } from "../../src/core/frame.ts";
import { activeGstPipelines, reservedGstThreads } from "../../src/ingest/gst/pipeline-runner.ts";
import type { TargetSize } from "../../src/ingest/pipeline-description.ts";
import { THREADS_PER_CAMERA, threadpoolSize } from "../../src/ingest/threadpool.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);
if (!HAVE_VTEST) console.warn(`skipping vtest.avi cases: ${VTEST} is missing (run \`npm run setup\` to fetch it)`);

function hasElement(name: string): boolean {
  try {
    execFileSync("gst-inspect-1.0", ["--exists", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const LB: TargetSize = { width: 416, height: 416, resize: "letterbox" };
const STRETCH: TargetSize = { width: 416, height: 416, resize: "stretch" };

function camera(source: Record<string, unknown>, restart: Record<string, unknown> = {}): CameraConfig {
  return CameraSchema.parse({ id: "cam-1", source, restart });
}

interface Harness {
  cam: CameraSource;
  /** Every frame without pixels (a long file would not fit in memory otherwise). */
  frames: Omit<Frame, "pixels">[];
  /** The first `keep` frames, pixels included. */
  kept: Frame[];
  events: CameraEvent[];
  until(what: string, done: () => boolean, ms?: number): Promise<void>;
}

const created: CameraSource[] = [];

function harness(cfg: CameraConfig, target: TargetSize, opts: Partial<CameraSourceOptions> & { keep?: number } = {}): Harness {
  const { keep = 3, ...rest } = opts;
  const frames: Omit<Frame, "pixels">[] = [];
  const kept: Frame[] = [];
  const events: CameraEvent[] = [];
  let check: (() => void) | null = null;
  const cam = new CameraSource(cfg, target, {
    onFrame: (f) => {
      const { pixels: _pixels, ...meta } = f;
      frames.push(meta);
      if (kept.length < keep) kept.push(f);
      check?.();
    },
    onEvent: (e) => {
      events.push(e);
      check?.();
    },
    ...rest,
  });
  created.push(cam);
  const until = (what: string, done: () => boolean, ms = 8000): Promise<void> =>
    new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        check = null;
        reject(new Error(`timed out waiting for ${what}; ${frames.length} frames, events ${JSON.stringify(events)}`));
      }, ms);
      check = () => {
        if (!done()) return;
        clearTimeout(timer);
        check = null;
        resolvePromise();
      };
      check();
    });
  return { cam, frames, kept, events, until };
}

const ofType = <T extends CameraEvent["type"]>(events: CameraEvent[], type: T) =>
  events.filter((e): e is Extract<CameraEvent, { type: T }> => e.type === type);

/** Bus polls free their thread on the first message after NULL, asynchronously. */
async function expectNothingRunning(): Promise<void> {
  for (let i = 0; i < 100 && (activeGstPipelines() > 0 || reservedGstThreads() > 0); i++) await new Promise((r) => setTimeout(r, 20));
  expect(activeGstPipelines()).toBe(0);
  expect(reservedGstThreads()).toBe(0);
}

afterEach(async () => {
  await Promise.all(created.splice(0).map((c) => c.stop()));
  await expectNothingRunning();
});

function rgbAt(f: Frame, x: number, y: number): number[] {
  const o = (y * f.width + x) * 3;
  return Array.from(f.pixels.subarray(o, o + 3));
}

describe("CameraSource with a test source", () => {
  it("delivers numbered 416x416 RGB frames from 640x480 with a letterbox transform over the full source", async () => {
    const h = harness(camera({ type: "testsrc", pattern: "white", numBuffers: 10, framerate: 60 }), LB);
    h.cam.start();
    await h.until("ended", () => h.cam.stats().state === "ended");
    // A live source keeps only the newest frame, so a busy machine may skip some.
    expect(h.frames.length).toBeGreaterThanOrEqual(3);
    expect(h.frames.length).toBeLessThanOrEqual(10);
    expect(h.frames.map((f) => f.seq)).toEqual([...Array(h.frames.length).keys()]);
    for (let i = 1; i < h.frames.length; i++) expect(h.frames[i].tIngestNs > h.frames[i - 1].tIngestNs).toBe(true);
    const expected = computeLetterbox(640, 480, 416, 416, "letterbox");
    for (const f of h.frames) {
      expect(f).toMatchObject({ camera: "cam-1", width: 416, height: 416, ptsNs: null });
      expect(f.transform).toEqual(expected);
    }
    expect(boxToModel([0, 0, 640, 480], h.frames[0].transform)).toEqual([0, 52, 416, 364]);
    const first = h.kept[0];
    expect(first.pixels.length).toBe(416 * 416 * 3);
    // Black borders above and below, the white picture between them.
    for (const [y, v] of [[0, 0], [51, 0], [52, 255], [200, 255], [363, 255], [364, 0], [415, 0]]) {
      for (const c of rgbAt(first, 208, y)) expect(Math.abs(c - v)).toBeLessThan(16);
    }
    expect(h.events.map((e) => e.type)).toEqual(["running", "eos", "ended"]);
    expect(h.events[0]).toEqual({ type: "running", camera: "cam-1", sourceWidth: 640, sourceHeight: 480 });
    expect(h.events[2]).toEqual({ type: "ended", camera: "cam-1", reason: "eos" });
    expect(h.cam.stats()).toEqual({ received: h.frames.length, restarts: 0, errors: 0, loops: 0, state: "ended" });
    expect(h.cam.transform).toEqual(expected);
    await expectNothingRunning();
  });

  it("stretch fills the whole frame and scales each axis on its own", async () => {
    const h = harness(camera({ type: "testsrc", pattern: "white", numBuffers: 3, framerate: 60 }), STRETCH);
    h.cam.start();
    await h.until("ended", () => h.cam.stats().state === "ended");
    const f = h.kept[0];
    expect(f.transform).toEqual(computeLetterbox(640, 480, 416, 416, "stretch"));
    expect(boxToModel([0, 0, 640, 480], f.transform)).toEqual([0, 0, 416, 416]);
    for (const y of [0, 51, 208, 364, 415]) for (const c of rgbAt(f, 208, y)) expect(c).toBeGreaterThan(240);
  });

  it("packs rows tightly at an odd width and keeps RGB order", async () => {
    const h = harness(camera({ type: "testsrc", pattern: "smpte", numBuffers: 2, framerate: 60 }), {
      width: 321,
      height: 240,
      resize: "stretch",
    });
    h.cam.start();
    await h.until("a frame", () => h.kept.length > 0);
    const f = h.kept[0];
    // 963-byte rows, which GStreamer pads to 964.
    expect(f.pixels.length).toBe(321 * 240 * 3);
    // SMPTE bars: yellow second; a one-byte stride slip would shear the bars across rows.
    const [r, g, b] = rgbAt(f, 70, 10);
    expect(r).toBeGreaterThan(150);
    expect(g).toBeGreaterThan(150);
    expect(b).toBeLessThan(60);
    for (const x of [20, 70, 115, 160, 205, 250, 295]) {
      const top = rgbAt(f, x, 10);
      const lower = rgbAt(f, x, 140);
      for (let c = 0; c < 3; c++) expect(Math.abs(top[c] - lower[c])).toBeLessThan(25);
    }
  });

  it("hands over pixels that own their ArrayBuffer, so they can be transferred", async () => {
    // 416 wide: the binding's buffer as is; 321 wide: rows repacked into a new one.
    for (const target of [LB, { width: 321, height: 240, resize: "letterbox" } as TargetSize]) {
      const h = harness(camera({ type: "testsrc", numBuffers: 2, framerate: 60 }), target);
      h.cam.start();
      await h.until("a frame", () => h.kept.length > 0);
      await h.cam.stop();
      const { pixels } = h.kept[0];
      const size = target.width * target.height * 3;
      expect([pixels.byteOffset, pixels.length, pixels.buffer.byteLength]).toEqual([0, size, size]);
      const { port1, port2 } = new MessageChannel();
      const got = new Promise<Uint8Array>((r) => port2.once("message", (m: Uint8Array) => r(m)));
      expect(pixels.buffer).toBeInstanceOf(ArrayBuffer);
      port1.postMessage(pixels, [pixels.buffer as ArrayBuffer]);
      expect(pixels.byteLength).toBe(0); // detached: moved, not copied
      expect((await got).length).toBe(size);
      port1.close();
      port2.close();
    }
  });

  it("stop() mid-stream stops frames and leaves no pipeline running", async () => {
    const h = harness(camera({ type: "testsrc", framerate: 100 }), LB, { keep: 0 });
    h.cam.start();
    await h.until("5 frames", () => h.frames.length >= 5);
    expect(h.cam.stats().state).toBe("running");
    await h.cam.stop();
    const n = h.frames.length;
    expect(activeGstPipelines()).toBe(0);
    expect(reservedGstThreads()).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(h.frames.length).toBe(n);
    expect(h.cam.stats()).toMatchObject({ state: "stopped", received: n, restarts: 0, errors: 0 });
    expect(ofType(h.events, "error")).toEqual([]);
    await h.cam.stop(); // idempotent
  });

  it("an endless live source that ends is restarted, numbering frames on across restarts", async () => {
    const h = harness(
      camera({ type: "pipeline", pipeline: "videotestsrc num-buffers=3 is-live=true ! video/x-raw,width=320,height=240,framerate=100/1" }, {
        initialBackoffMs: 10,
        maxBackoffMs: 100,
        jitter: 0,
      }),
      LB,
    );
    h.cam.start();
    await h.until("two restarts", () => ofType(h.events, "restart").length >= 2 && h.cam.stats().state === "running");
    expect(h.frames.map((f) => f.seq)).toEqual([...Array(h.frames.length).keys()]);
    expect(h.events.slice(0, 4).map((e) => e.type)).toEqual(["running", "eos", "restart", "running"]);
    expect(ofType(h.events, "restart").map((e) => [e.attempt, e.delayMs])).toEqual([
      [1, 10],
      [2, 20],
    ]);
    expect(h.frames[0].transform).toEqual(computeLetterbox(320, 240, 416, 416, "letterbox"));
    expect(h.cam.stats().errors).toBe(0);
  });

  it("a source that delivered frames for healthyAfterMs starts the backoff over", async () => {
    const h = harness(
      camera({ type: "pipeline", pipeline: "videotestsrc num-buffers=10 is-live=true ! video/x-raw,width=320,height=240,framerate=100/1" }, {
        initialBackoffMs: 10,
        maxBackoffMs: 100,
        jitter: 0,
      }),
      LB,
      { healthyAfterMs: 30, keep: 0 },
    );
    h.cam.start();
    await h.until("three restarts", () => ofType(h.events, "restart").length >= 3);
    expect(ofType(h.events, "restart").map((e) => [e.attempt, e.delayMs])).toEqual([
      [1, 10],
      [1, 10],
      [1, 10],
    ]);
  });

  it("restarts a stalled source and says how long it waited", async () => {
    const h = harness(
      camera({ type: "testsrc", framerate: 1 }, { initialBackoffMs: 10, maxBackoffMs: 100, jitter: 0 }),
      LB,
      { stallTimeoutMs: 150 },
    );
    h.cam.start();
    await h.until("a stall and a new frame", () => ofType(h.events, "restart").length >= 1 && h.frames.length >= 2);
    expect(ofType(h.events, "error")[0].message).toBe("camera cam-1 (videotestsrc ball): no frame for 150 ms");
  });

  const pool = threadpoolSize();
  it.skipIf(pool > 12)("refuses a camera the libuv threadpool has no room for, saying what to set", async () => {
    const fit = Math.floor((pool - 1) / THREADS_PER_CAMERA);
    const running = Array.from({ length: fit }, () => harness(camera({ type: "testsrc" }), LB, { keep: 0 }));
    for (const r of running) r.cam.start();
    const extra = harness(camera({ type: "testsrc" }), LB);
    expect(() => extra.cam.start()).toThrow(
      new RegExp(`^camera cam-1 \\(videotestsrc ball\\): cannot start: UV_THREADPOOL_SIZE=${pool} .* Set UV_THREADPOOL_SIZE=\\d+ `),
    );
    for (const r of running) await r.until("a frame", () => r.frames.length > 0);
  });
});

describe("CameraSource failures", () => {
  it("a pipeline with an unknown element errors naming it, then restarts with growing backoff", async () => {
    const h = harness(
      camera({ type: "pipeline", pipeline: "videotestsrc ! nosuchelementxyz" }, { initialBackoffMs: 10, maxBackoffMs: 100, jitter: 0.5 }),
      LB,
      { random: () => 1 },
    );
    h.cam.start();
    expect(h.events).toEqual([]); // nothing from inside start()
    await h.until("five restarts", () => ofType(h.events, "restart").length >= 5);
    const errors = ofType(h.events, "error");
    expect(errors[0].message).toBe(
      'camera cam-1 (pipeline "videotestsrc ! nosuchelementxyz"): cannot build GStreamer pipeline: no element "nosuchelementxyz"',
    );
    // random() = 1 puts every delay at +50%: 10, 20, 40, 80, 100 (capped) times 1.5.
    expect(ofType(h.events, "restart").slice(0, 5).map((e) => [e.attempt, e.delayMs])).toEqual([
      [1, 15],
      [2, 30],
      [3, 60],
      [4, 120],
      [5, 150],
    ]);
    expect(h.events.slice(0, 4).map((e) => e.type)).toEqual(["error", "restart", "error", "restart"]);
    const s = h.cam.stats();
    expect(s.restarts).toBeGreaterThanOrEqual(5);
    expect(s.errors).toBeGreaterThanOrEqual(5);
    expect(s.received).toBe(0);
    expect(["starting", "restarting"]).toContain(s.state);
  });

  it("a file that does not exist ends with an error naming the path", async () => {
    const missing = join(tmpdir(), "perceptd-no-such-dir", "missing.avi");
    const h = harness(camera({ type: "file", path: missing }), LB);
    h.cam.start();
    await h.until("ended", () => h.cam.stats().state === "ended");
    expect(h.events.map((e) => e.type)).toEqual(["error", "ended"]);
    expect(ofType(h.events, "error")[0].message).toBe(
      `camera cam-1 (file ${missing}): GStreamer error in src: Resource not found. (No such file "${missing}")`,
    );
    expect(h.cam.stats()).toMatchObject({ state: "ended", errors: 1, restarts: 0, received: 0 });
  });

  it.skipIf(!hasElement("v4l2src"))("a device that cannot open reports GStreamer's reason, not silence", async () => {
    // v4l2src fails in NULL->READY, which leaves the pipeline in NULL: the case where the
    // binding's bus poll would stop before reaching the error.
    const h = harness(
      camera({ type: "v4l2", device: "/dev/perceptd-no-such-video" }, { initialBackoffMs: 10, maxBackoffMs: 100, jitter: 0 }),
      LB,
    );
    h.cam.start();
    await h.until("two restarts", () => ofType(h.events, "restart").length >= 2);
    expect(ofType(h.events, "error")[0].message).toMatch(
      /^camera cam-1 \(v4l2 \/dev\/perceptd-no-such-video\): GStreamer error in src: Cannot identify device '\/dev\/perceptd-no-such-video'/,
    );
  });
});

describe.skipIf(!HAVE_VTEST)("CameraSource with vtest.avi (768x576, 10 fps, 795 frames)", () => {
  it("unpaced: every frame, nominal pts, then eos and the run ends", async () => {
    const h = harness(camera({ type: "file", path: VTEST, realtime: false }), LB, { keep: 1 });
    h.cam.start();
    await h.until("ended", () => h.cam.stats().state === "ended");
    expect(h.frames).toHaveLength(795);
    expect(h.frames[794].seq).toBe(794);
    expect(h.frames.slice(0, 3).map((f) => f.ptsNs)).toEqual([0, 1e8, 2e8]);
    expect(h.frames[0].transform).toEqual(computeLetterbox(768, 576, 416, 416, "letterbox"));
    expect(h.events.map((e) => e.type)).toEqual(["running", "eos", "ended"]);
    expect(h.events[0]).toMatchObject({ sourceWidth: 768, sourceHeight: 576 });
    expect(h.cam.stats()).toEqual({ received: 795, restarts: 0, errors: 0, loops: 0, state: "ended" });
  });

  it("unpaced with backpressure: no frame is pulled while the consumer is not ready, and waiting is no stall", async () => {
    let release: (() => void) | null = null;
    let asked = 0;
    const h = harness(camera({ type: "file", path: VTEST, realtime: false }), LB, {
      keep: 0,
      stallTimeoutMs: 150,
      // Ready for the first three frames, then every pull waits for the test to release it.
      whenConsumerReady: () => {
        asked++;
        if (asked <= 3) return null;
        return new Promise<void>((r) => (release = r));
      },
    });
    h.cam.start();
    await h.until("3 frames", () => h.frames.length >= 3);
    await sleep(600); // four stall timeouts
    expect(h.frames.length, "frames delivered while the consumer was not ready").toBe(3);
    expect(ofType(h.events, "error"), "waiting on the consumer counted as a stall").toEqual([]);
    for (let i = 0; i < 5; i++) {
      const before = h.frames.length;
      expect(release, "the source is waiting on the consumer").not.toBeNull();
      const r = release as unknown as () => void;
      release = null;
      r();
      await h.until(`frame ${before + 1}`, () => h.frames.length === before + 1);
      await sleep(50);
      expect(h.frames.length, "one frame per release").toBe(before + 1);
    }
    expect(h.frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await h.cam.stop();
    expect(h.cam.stats().state).toBe("stopped");
  });

  it("loop: seeks back to the start and keeps delivering", async () => {
    const h = harness(camera({ type: "file", path: VTEST, realtime: false, loop: true }), LB, { keep: 0 });
    h.cam.start();
    await h.until("a loop and 20 more frames", () => h.frames.length >= 795 + 20, 9000);
    await h.cam.stop();
    expect(ofType(h.events, "loop")[0]).toEqual({ type: "loop", camera: "cam-1", loops: 1, method: "seek" });
    expect(ofType(h.events, "eos")).toEqual([]);
    expect(h.frames.map((f) => f.seq)).toEqual([...Array(h.frames.length).keys()]);
    // pts starts over with the file; seq does not.
    expect(h.frames[795]).toMatchObject({ seq: 795, ptsNs: 0 });
    expect(h.frames[796].ptsNs).toBe(1e8);
    expect(h.cam.stats()).toMatchObject({ loops: 1, restarts: 0, errors: 0, state: "stopped" });
  });

  it("realtime: paced at the file's rate", async () => {
    const h = harness(camera({ type: "file", path: VTEST }), STRETCH, { keep: 0 });
    const t0 = Date.now();
    h.cam.start();
    await h.until("6 frames", () => h.frames.length >= 6);
    // 10 fps: the 6th frame is due 0.5 s in; unpaced it would take a few milliseconds.
    expect(Date.now() - t0).toBeGreaterThan(400);
    expect(h.frames[0].ptsNs).toBeNull();
    expect(h.frames[0].transform).toEqual(computeLetterbox(768, 576, 416, 416, "stretch"));
  });
});
