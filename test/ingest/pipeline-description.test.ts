import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { SourceSchema, type SourceConfig } from "../../src/config/schema.ts";
import { boxToModel, computeLetterbox } from "../../src/core/letterbox.ts";
import {
  describePipeline,
  describeSource,
  framerateFraction,
  tailTransform,
  waitsForConsumer,
  type TargetSize,
} from "../../src/ingest/pipeline-description.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);

const LB: TargetSize = { width: 416, height: 416, resize: "letterbox" };
const STRETCH: TargetSize = { width: 416, height: 416, resize: "stretch" };

const src = (s: Record<string, unknown>): SourceConfig => SourceSchema.parse(s);

const TAIL_LB =
  "tee name=perceptd_tee ! videoconvert ! videoscale add-borders=true ! videoconvert ! " +
  "video/x-raw,format=RGB,width=416,height=416,pixel-aspect-ratio=1/1 ! " +
  "appsink name=perceptd_sink max-buffers=1 drop=true sync=false enable-last-sample=false " +
  "perceptd_tee. ! fakesink name=perceptd_probe sync=false async=false enable-last-sample=true";

describe("describePipeline", () => {
  it("testsrc: live videotestsrc at the configured size, letterboxed to the target", () => {
    const d = describePipeline(src({ type: "testsrc", numBuffers: 5 }), LB);
    expect(d.description).toBe(
      `videotestsrc name=src pattern=ball num-buffers=5 is-live=true ! video/x-raw,width=640,height=480,framerate=30/1 ! ${TAIL_LB}`,
    );
    expect(d).toMatchObject({ live: true, restartOnEos: false, paced: false, everyFrame: false, properties: [] });
    expect(describePipeline(src({ type: "testsrc" }), LB).restartOnEos).toBe(true);
  });

  it("stretch turns videoscale's default borders off", () => {
    const d = describePipeline(src({ type: "testsrc" }), STRETCH);
    expect(d.description).toContain("videoscale add-borders=false !");
    expect(d.description).not.toContain("add-borders=true");
  });

  it("file: location as a property; paced files sync and drop, unpaced ones deliver every frame", () => {
    const path = `/data/we!rd "name" ! fakesink.avi`;
    const paced = describePipeline(src({ type: "file", path }), LB);
    expect(paced.description.startsWith("filesrc name=src ! decodebin ! tee name=perceptd_tee ! ")).toBe(true);
    expect(paced.description).not.toContain("we!rd");
    expect(paced.properties).toEqual([{ element: "src", name: "location", value: path }]);
    expect(paced.description).toContain("max-buffers=1 drop=true sync=true");
    expect(paced).toMatchObject({ live: false, restartOnEos: false, paced: true, everyFrame: false });

    const fast = describePipeline(src({ type: "file", path, realtime: false }), LB);
    expect(fast.description).toContain("max-buffers=1 drop=false sync=false");
    expect(fast).toMatchObject({ live: false, paced: false, everyFrame: true });
  });

  it("v4l2: raw or MJPEG at the configured size through decodebin, device as a property", () => {
    const d = describePipeline(src({ type: "v4l2", device: "/dev/video2", width: 1280, height: 720, framerate: 30 }), LB);
    expect(d.description).toBe(
      'v4l2src name=src ! capsfilter caps="video/x-raw,width=1280,height=720,framerate=30/1;' +
        `image/jpeg,width=1280,height=720,framerate=30/1" ! decodebin ! ${TAIL_LB}`,
    );
    expect(d.properties).toEqual([{ element: "src", name: "device", value: "/dev/video2" }]);
    expect(d).toMatchObject({ live: true, restartOnEos: true, paced: false });
    expect(describePipeline(src({ type: "v4l2" }), LB).description).toContain('caps="video/x-raw;image/jpeg" ! decodebin !');
  });

  it("csi: nvarguscamerasrc in NVMM; nvvidconv after the tee scales to the letterbox content and copies only that out", () => {
    const d = describePipeline(src({ type: "csi", sensorId: 1, width: 1920, height: 1080, framerate: 29.97 }), LB);
    // 1920x1080 into 416x416 keeps 416x234 of content; the CPU tail only pads it.
    expect(d.description).toBe(
      "nvarguscamerasrc name=src sensor-id=1 ! video/x-raw(memory:NVMM),format=NV12,width=1920,height=1080," +
        "framerate=30000/1001 ! " +
        TAIL_LB.replace("tee name=perceptd_tee ! ", "tee name=perceptd_tee ! nvvidconv ! video/x-raw,format=BGRx,width=416,height=234,pixel-aspect-ratio=1/1 ! "),
    );
    // The probe branch hangs off the tee before nvvidconv: it reads the source size from the NVMM caps.
    expect(d.description.indexOf("tee name=perceptd_tee")).toBeLessThan(d.description.indexOf("nvvidconv"));
  });

  it("csi: stretch scales to the model size on the VIC; letterbox without a configured size copies the full frame", () => {
    expect(describePipeline(src({ type: "csi" }), STRETCH).description).toContain(
      "sensor-id=0 ! video/x-raw(memory:NVMM),format=NV12 ! tee name=perceptd_tee ! nvvidconv ! video/x-raw,format=BGRx,width=416,height=416,pixel-aspect-ratio=1/1 ! videoconvert ! videoscale add-borders=false",
    );
    expect(describePipeline(src({ type: "csi" }), LB).description).toContain(
      "sensor-id=0 ! video/x-raw(memory:NVMM),format=NV12 ! tee name=perceptd_tee ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! videoscale add-borders=true",
    );
  });

  it("rtsp and file with decoder jetson: parsebin to nvv4l2decoder (H.264 or H.265), nvvidconv out of NVMM after the tee", () => {
    const rtsp = describePipeline(src({ type: "rtsp", url: "rtsp://cam/x", decoder: "jetson" }), STRETCH);
    expect(rtsp.description).toMatch(
      /^rtspsrc name=src latency=200 ! application\/x-rtp,media=video ! parsebin ! nvv4l2decoder ! tee name=perceptd_tee ! nvvidconv ! video\/x-raw,format=BGRx,width=416,height=416,pixel-aspect-ratio=1\/1 ! videoconvert ! /,
    );
    const file = describePipeline(src({ type: "file", path: "/v/a.mp4", decoder: "jetson" }), LB);
    expect(file.description).toMatch(/^filesrc name=src ! parsebin ! nvv4l2decoder ! tee name=perceptd_tee ! nvvidconv ! video\/x-raw,format=BGRx ! videoconvert ! /);
    expect(file.properties).toEqual([{ element: "src", name: "location", value: "/v/a.mp4" }]);
    // software (the default) keeps decodebin and no NVMM element anywhere
    for (const s of [src({ type: "rtsp", url: "rtsp://cam/x" }), src({ type: "file", path: "/v/a.mp4", decoder: "software" })]) {
      const d = describePipeline(s, LB).description;
      expect(d).toContain("! decodebin ! tee name=perceptd_tee ! videoconvert");
      expect(d).not.toMatch(/nvv4l2decoder|nvvidconv/);
    }
    expect(() => src({ type: "rtsp", url: "rtsp://cam/x", decoder: "nvdec" })).toThrow(/decoder/);
  });

  it("rtsp: video stream only, URL as a property, protocols unless auto", () => {
    const url = "rtsp://user:p!ss@cam.local:554/stream?x=1 2";
    const d = describePipeline(src({ type: "rtsp", url, protocols: "tcp", latencyMs: 100 }), LB);
    expect(d.description).toBe(`rtspsrc name=src latency=100 protocols=tcp ! application/x-rtp,media=video ! decodebin ! ${TAIL_LB}`);
    expect(d.properties).toEqual([{ element: "src", name: "location", value: url }]);
    expect(describePipeline(src({ type: "rtsp", url }), LB).description).toMatch(/^rtspsrc name=src latency=200 ! /);
    expect(d).toMatchObject({ live: true, restartOnEos: true });
  });

  it("pipeline: the user's source, then the tail; live as configured", () => {
    const d = describePipeline(src({ type: "pipeline", pipeline: "  videotestsrc pattern=snow ! " }), LB);
    expect(d.description).toBe(`videotestsrc pattern=snow ! ${TAIL_LB}`);
    expect(d).toMatchObject({ live: true, restartOnEos: true, properties: [] });
    const offline = describePipeline(src({ type: "pipeline", pipeline: "videotestsrc num-buffers=3", live: false }), LB);
    expect(offline).toMatchObject({ live: false, restartOnEos: false, everyFrame: true });
    expect(offline.description).toContain("drop=false sync=false");
  });

  it("refuses pattern names that would splice in pipeline syntax, and bad targets", () => {
    expect(() => describePipeline(src({ type: "testsrc", pattern: "ball ! fakesink" }), LB)).toThrow(
      'testsrc pattern "ball ! fakesink" is not a videotestsrc pattern name',
    );
    expect(() => describePipeline(src({ type: "testsrc" }), { ...LB, width: 0 })).toThrow(/target width must be an integer/);
    expect(() => describePipeline(src({ type: "testsrc" }), { ...LB, resize: "crop" as "stretch" })).toThrow(/resize must be/);
  });
});

describe("waitsForConsumer", () => {
  it("is true exactly for the sources whose pipeline delivers every frame (unpaced files, non-live expert pipelines)", () => {
    const cases: [Record<string, unknown>, boolean][] = [
      [{ type: "file", path: "/x.avi", realtime: false }, true],
      [{ type: "file", path: "/x.avi" }, false],
      [{ type: "pipeline", pipeline: "videotestsrc num-buffers=3", live: false }, true],
      [{ type: "pipeline", pipeline: "videotestsrc num-buffers=3", live: true }, false],
      [{ type: "testsrc" }, false],
      [{ type: "v4l2", device: "/dev/video0" }, false],
      [{ type: "rtsp", url: "rtsp://127.0.0.1/x" }, false],
    ];
    for (const [cfg, expected] of cases) {
      const source = src(cfg);
      expect(waitsForConsumer(source), JSON.stringify(cfg)).toBe(expected);
      expect(describePipeline(source, LB).everyFrame, `${JSON.stringify(cfg)}: the description agrees`).toBe(expected);
    }
  });
});

describe("framerateFraction", () => {
  it("writes whole, NTSC and other rates as caps fractions", () => {
    expect([30, 1, 29.97, 59.94, 23.976, 12.5, 7.3].map(framerateFraction)).toEqual([
      "30/1",
      "1/1",
      "30000/1001",
      "60000/1001",
      "24000/1001",
      "25/2",
      "73/10",
    ]);
  });
});

describe("describeSource", () => {
  it("names sources and masks RTSP credentials", () => {
    expect(describeSource(src({ type: "rtsp", url: "rtsp://admin:secret@10.0.0.2/live" }))).toBe("rtsp rtsp://***@10.0.0.2/live");
    expect(describeSource(src({ type: "file", path: "a.mp4" }))).toBe("file a.mp4");
    expect(describeSource(src({ type: "v4l2" }))).toBe("v4l2 /dev/video0");
  });
});

describe("tailTransform", () => {
  it("equals computeLetterbox where GStreamer's geometry agrees, and maps the full source", () => {
    const t = tailTransform({ width: 640, height: 480 }, LB);
    expect(t).toEqual(computeLetterbox(640, 480, 416, 416, "letterbox"));
    expect(boxToModel([0, 0, 640, 480], t)).toEqual([0, 52, 416, 364]);
    expect(tailTransform({ width: 768, height: 576 }, LB)).toEqual(computeLetterbox(768, 576, 416, 416, "letterbox"));
    const s = tailTransform({ width: 640, height: 480 }, STRETCH);
    expect(s).toEqual(computeLetterbox(640, 480, 416, 416, "stretch"));
    expect(boxToModel([0, 0, 640, 480], s)).toEqual([0, 0, 416, 416]);
  });

  it("rounds the content size down as videoscale does (measured: 350x200 -> 416x237 at y=89)", () => {
    const t = tailTransform({ width: 350, height: 200 }, LB);
    expect(t.padY).toBe(89);
    expect(Math.round(t.scaleY * 200)).toBe(237);
    expect(t.scaleX).toBeCloseTo(416 / 350, 12);
    expect(t.padX).toBe(0);
    // Portrait, and a wide target.
    expect(tailTransform({ width: 200, height: 350 }, LB)).toMatchObject({ padX: 89, padY: 0 });
    const wide = tailTransform({ width: 640, height: 480 }, { width: 300, height: 200, resize: "letterbox" });
    expect([wide.padX, wide.padY, Math.round(wide.scaleX * 640)]).toEqual([17, 0, 266]);
  });

  it("keeps the display aspect ratio of non-square source pixels", () => {
    // 720x576 with 16:15 pixels is 4:3 on screen, so it fills 416x312 like 640x480 does.
    const t = tailTransform({ width: 720, height: 576, parN: 16, parD: 15 }, LB);
    const box = boxToModel([0, 0, 720, 576], t);
    [0, 52, 416, 364].forEach((v, i) => expect(box[i]).toBeCloseTo(v, 9));
    expect(t.scaleX).not.toBe(t.scaleY);
  });
});

/**
 * Runs a description with gst-launch-1.0 until buffers have prerolled into the appsink
 * (non-live sources) or caps are negotiated at the appsink (live sources, which do not
 * preroll); resolves with the tool's output, rejects on an error. It cannot run to EOS:
 * appsink holds EOS back until its queue is pulled empty (wait-on-eos), and nothing pulls.
 */
function gstLaunch(description: string, target: TargetSize, until: "prerolled" | "negotiated"): Promise<string> {
  const negotiated = (out: string): boolean =>
    out
      .split("\n")
      .some(
        (l) =>
          l.includes("perceptd_sink.GstPad:sink: caps = video/x-raw") &&
          l.includes(`width=(int)${target.width},`) &&
          l.includes(`height=(int)${target.height},`) &&
          /format=\(string\)RGB\b/.test(l),
      );
  return new Promise((resolvePromise, reject) => {
    // gst-launch escapes the spaces inside each argument, so pass one token per argument.
    const child = spawn("gst-launch-1.0", ["-v", ...description.split(/\s+/)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      if (err === null) resolvePromise(out);
      else reject(err);
    };
    const timer = setTimeout(() => finish(new Error(`gst-launch timed out:\n${out}`)), 8000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (/ERROR|erroneous pipeline/.test(out)) finish(new Error(`gst-launch failed:\n${out}`));
      else if (until === "prerolled" && out.includes("Pipeline is PREROLLED")) finish(null);
      else if (until === "negotiated" && negotiated(out)) finish(null);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => finish(new Error(`gst-launch exited with ${String(code)}:\n${out}`)));
  });
}

describe("descriptions run in gst-launch-1.0", () => {
  it("testsrc, both resize modes and an odd width, negotiates down to the appsink", async () => {
    for (const t of [LB, STRETCH, { width: 321, height: 240, resize: "letterbox" } as TargetSize]) {
      const d = describePipeline(src({ type: "testsrc", numBuffers: 3, framerate: 60 }), t);
      await gstLaunch(d.description, t, "negotiated");
    }
  });

  it("an expert pipeline prerolls", async () => {
    const d = describePipeline(src({ type: "pipeline", pipeline: "videotestsrc num-buffers=3 ! video/x-raw,width=320,height=180" }), LB);
    await gstLaunch(d.description, LB, "prerolled");
  });

  it.skipIf(!HAVE_VTEST)("a file, paced and unpaced, prerolls", async () => {
    for (const realtime of [true, false]) {
      const d = describePipeline(src({ type: "file", path: VTEST, realtime }), LB);
      // gst-launch cannot set properties after parsing; the fixture's path has no spaces.
      const withLocation = d.description.replace("filesrc name=src", `filesrc name=src location=${VTEST}`);
      await gstLaunch(withLocation, LB, "prerolled");
    }
  });
});
