// Decoded RGB frames from a video file through GStreamer (decodebin picks the demuxer and
// decoder), for offline runs of the detector over recordings and for the tests.
import { resolve } from "node:path";
import type { FitTarget } from "../frame-fit.ts";
import type { LetterboxTransform } from "../../core/types.ts";
import { describePipeline, ELEMENTS, tailTransform } from "../pipeline-description.ts";
import type { RgbImage } from "../../core/rgb-image.ts";
import { GstRunner, packRgb, parseFramerate, reserveGstThreads, type RunnerSample } from "./pipeline-runner.ts";
import type { GstStructureObject } from "./binding.ts";
import { readProbe } from "./probe.ts";

// Moved to pipeline-runner.ts, where the camera sources share the accounting.
export { activeGstPipelines } from "./pipeline-runner.ts";

export interface VideoFrame {
  /** 0-based position among the decoded frames, counting unselected ones. */
  index: number;
  /**
   * index / framerate in nanoseconds: the binding does not expose buffer timestamps, so
   * this is derived from the caps' nominal rate. null when the rate is unknown or variable.
   */
  ptsNs: number | null;
  image: RgbImage;
}

/** A frame fitted to a model input by the daemon's own pipeline (ReadVideoOptions.fit). */
export interface FittedVideoFrame extends VideoFrame {
  /** Where the source frame sits in `image`, to map boxes back to source pixels. */
  transform: LetterboxTransform;
}

export interface ReadVideoOptions {
  /** Stop after yielding this many frames (selected ones only). */
  maxFrames?: number;
  /** Decides per frame index whether to yield it; unselected frames are dropped unconverted. */
  select?: (index: number) => boolean;
}

export interface FitVideoOptions extends ReadVideoOptions {
  /** The model input: frames come out of the daemon's file pipeline fitted to it. */
  fit: FitTarget;
}

export interface VideoInfo {
  width: number;
  height: number;
  fps: number | null;
  /** Container duration x fps, rounded; absent when either is unknown. An estimate, not a count. */
  frames?: number;
}

// The location is set as a property after parsing instead of being spliced into this
// string, so no file name can change the pipeline. max-buffers bounds how far decoding
// runs ahead of a slow consumer (appsink's default queue is unbounded).
const LAUNCH =
  "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! " +
  "appsink name=sink sync=false max-buffers=3 drop=false";

// How long to wait for EOS or an error on the bus after the appsink runs dry; both are
// posted right after the last buffer, so this only trips when GStreamer misbehaves.
const TERMINAL_TIMEOUT_MS = 10_000;
/** How long the probe branch may take to see the first frame after the appsink did. */
const PROBE_TIMEOUT_MS = 5_000;

type Terminal = { kind: "eos" } | { kind: "error"; text: string };

interface FrameFormat {
  width: number;
  height: number;
  fps: number | null;
}

class VideoPipeline {
  private readonly runner: GstRunner;
  private terminal: Terminal | null = null;
  private onTerminal: (() => void) | null = null;
  private readonly path: string;
  private readonly releaseThreads: () => void;
  private stopped = false;

  /** With `fit`: the daemon's description for an unpaced file source (describePipeline). */
  constructor(path: string, fit?: FitTarget) {
    this.path = path;
    // A reader's pulls are short (decoding runs ahead), so it reserves only its bus poll's
    // thread and shares the free ones for pulls.
    this.releaseThreads = reserveGstThreads(
      1,
      (pool, reserved) =>
        `${path}: cannot open another GStreamer pipeline: with ${reserved} threadpool thread(s) already held by ` +
        `running pipelines it would leave no libuv threadpool thread free (UV_THREADPOOL_SIZE=${pool}); set ` +
        `UV_THREADPOOL_SIZE before node starts to at least the number of concurrent video readers + 2`,
    );
    try {
      if (fit === undefined) {
        this.runner = new GstRunner(LAUNCH, path, "sink", [{ element: "src", name: "location", value: resolve(path) }]);
      } else {
        const d = describePipeline({ type: "file", path: resolve(path), loop: false, realtime: false }, fit);
        this.runner = new GstRunner(d.description, path, ELEMENTS.sink, d.properties);
      }
    } catch (err) {
      this.releaseThreads();
      throw err;
    }
  }

  start(): void {
    this.runner.start({
      onEos: () => this.settle({ kind: "eos" }),
      onError: (text) => this.settle({ kind: "error", text }),
    });
  }

  private settle(t: Terminal): void {
    if (this.terminal !== null) return;
    this.terminal = t;
    const wake = this.onTerminal;
    this.onTerminal = null;
    if (wake !== null) wake();
  }

  pull(): Promise<RunnerSample | null> {
    return this.runner.pull();
  }

  /** After the appsink ran dry: returns on EOS, throws on a GStreamer error. */
  async finish(): Promise<void> {
    if (this.terminal === null) {
      await new Promise<void>((resolveWait) => {
        const timer = setTimeout(() => {
          this.onTerminal = null;
          resolveWait();
        }, TERMINAL_TIMEOUT_MS);
        this.onTerminal = () => {
          clearTimeout(timer);
          resolveWait();
        };
      });
    }
    const t = this.terminal;
    if (t === null) {
      throw new Error(
        `${this.path}: GStreamer stopped delivering frames without EOS or an error within ${TERMINAL_TIMEOUT_MS} ms`,
      );
    }
    if (t.kind === "error") throw new Error(`${this.path}: ${t.text}`);
  }

  durationSeconds(): number {
    return this.runner.durationSeconds();
  }

  formatOf(caps: GstStructureObject): FrameFormat {
    const { width, height, format } = caps;
    if (typeof width !== "number" || typeof height !== "number" || width <= 0 || height <= 0 || format !== "RGB") {
      throw new Error(`${this.path}: unexpected appsink caps ${JSON.stringify(caps)}`);
    }
    return { width, height, fps: parseFramerate(caps.framerate) };
  }

  toImage(buf: Buffer, f: FrameFormat, index: number): RgbImage {
    return { width: f.width, height: f.height, data: packRgb(buf, f.width, f.height, `${this.path}: frame ${index}`) };
  }

  /**
   * The source frame size from the probe branch (fitted pipelines only). The tee feeds the
   * probe right after the appsink on the same thread, so it is there within moments of the
   * first sample.
   */
  async sourceSize(fit: FitTarget): Promise<LetterboxTransform> {
    const probe = this.runner.findChild(ELEMENTS.probe);
    if (probe === undefined) throw new Error(`${this.path}: GStreamer pipeline has no ${ELEMENTS.probe} element`);
    const deadline = Date.now() + PROBE_TIMEOUT_MS;
    for (;;) {
      const source = readProbe(probe);
      if (source !== null) {
        probe["enable-last-sample"] = false;
        return tailTransform(source, fit);
      }
      if (Date.now() > deadline) throw new Error(`${this.path}: could not read the source frame size within ${PROBE_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.runner.stop();
    void this.runner.released().then(this.releaseThreads);
  }
}

function checkMaxFrames(path: string, maxFrames: number | undefined): number {
  if (maxFrames === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isInteger(maxFrames) || maxFrames < 0) {
    throw new RangeError(`${path}: maxFrames must be a non-negative integer, got ${String(maxFrames)}`);
  }
  return maxFrames;
}

/**
 * Yields decoded frames in order until EOS, `maxFrames`, or the consumer stops; the
 * pipeline is torn down in every case. A GStreamer error (missing file, not a video,
 * undecodable data) rejects with an Error naming the file and GStreamer's message; up to
 * a few already-decoded frames queued before the error are dropped.
 */
export async function* readVideoFrames(path: string, opts: ReadVideoOptions = {}): AsyncGenerator<VideoFrame> {
  const limit = checkMaxFrames(path, opts.maxFrames);
  if (limit === 0) return;
  const select = opts.select;
  const pipe = new VideoPipeline(path);
  try {
    pipe.start();
    let yielded = 0;
    for (let index = 0; ; index++) {
      const sample = await pipe.pull();
      if (sample === null) {
        await pipe.finish();
        return;
      }
      if (select !== undefined && !select(index)) continue;
      const format = pipe.formatOf(sample.caps);
      const ptsNs = format.fps === null ? null : Math.round((index * 1e9) / format.fps);
      yield { index, ptsNs, image: pipe.toImage(sample.buf, format, index) };
      if (++yielded >= limit) return;
    }
  } finally {
    pipe.stop();
  }
}

/**
 * As readVideoFrames, but each frame comes out of the daemon's own file pipeline
 * (describePipeline, unpaced), fitted to `opts.fit` exactly as a camera frame is, with the
 * transform from its source size: what calibration and evaluation feed a model.
 */
export async function* fitVideoFrames(path: string, opts: FitVideoOptions): AsyncGenerator<FittedVideoFrame> {
  const limit = checkMaxFrames(path, opts.maxFrames);
  if (limit === 0) return;
  const select = opts.select;
  const pipe = new VideoPipeline(path, opts.fit);
  try {
    pipe.start();
    let transform: LetterboxTransform | null = null;
    let yielded = 0;
    for (let index = 0; ; index++) {
      const sample = await pipe.pull();
      if (sample === null) {
        await pipe.finish();
        return;
      }
      transform ??= await pipe.sourceSize(opts.fit);
      if (select !== undefined && !select(index)) continue;
      const format = pipe.formatOf(sample.caps);
      const ptsNs = format.fps === null ? null : Math.round((index * 1e9) / format.fps);
      yield { index, ptsNs, image: pipe.toImage(sample.buf, format, index), transform };
      if (++yielded >= limit) return;
    }
  } finally {
    pipe.stop();
  }
}

/** Size and nominal rate from the first decoded frame's caps; decodes one frame. */
export async function probeVideo(path: string): Promise<VideoInfo> {
  const pipe = new VideoPipeline(path);
  try {
    pipe.start();
    const sample = await pipe.pull();
    if (sample === null) {
      await pipe.finish();
      throw new Error(`${path}: contains no video frames`);
    }
    const { width, height, fps } = pipe.formatOf(sample.caps);
    const duration = pipe.durationSeconds();
    const info: VideoInfo = { width, height, fps };
    if (fps !== null && duration > 0) info.frames = Math.round(duration * fps);
    return info;
  } finally {
    pipe.stop();
  }
}
