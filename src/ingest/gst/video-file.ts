// Decoded RGB frames from a video file through GStreamer (decodebin picks the demuxer and
// decoder), for offline runs of the detector over recordings and for the tests.
import { resolve } from "node:path";
import type { RgbImage } from "../rgb-image.ts";
import {
  isAppSink,
  loadGstBinding,
  type GstAppSinkHandle,
  type GstBusMessage,
  type GstPipelineHandle,
  type GstStructureObject,
} from "./binding.ts";

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

export interface ReadVideoOptions {
  /** Stop after yielding this many frames (selected ones only). */
  maxFrames?: number;
  /** Decides per frame index whether to yield it; unselected frames are dropped unconverted. */
  select?: (index: number) => boolean;
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

/*
 * Each live pipeline parks one libuv threadpool thread in the binding's bus poll, and
 * every appsink pull needs another. With all threads parked, pulls never run, the bounded
 * appsink queues fill, no more bus messages come, and the process deadlocks (seen with 4
 * concurrent readers at the default pool size of 4; fs and dns stall with it). So refuse
 * a pipeline that would leave no thread free, with a message saying what to change.
 */
let pipelinesHoldingBusThread = 0;

function threadpoolSize(): number {
  const n = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? "", 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** Pipelines whose bus poll still occupies a libuv threadpool thread. */
export function activeGstPipelines(): number {
  return pipelinesHoldingBusThread;
}

type Terminal = { kind: "eos" } | { kind: "error"; text: string };

interface Sample {
  buf: Buffer;
  caps: GstStructureObject;
}

interface FrameFormat {
  width: number;
  height: number;
  fps: number | null;
}

function describeError(msg: GstBusMessage): string {
  const element = msg._src_element_name ?? "pipeline";
  let text = `GStreamer error in ${element}: ${msg.message ?? "unknown error"}`;
  // The debug string's first line is the C source location; a second line, when present,
  // carries the useful detail ("No such file ...").
  const lines = (msg.debug ?? "").split("\n").filter((l) => l.trim() !== "");
  if (lines.length > 1) text += ` (${lines[lines.length - 1].trim()})`;
  return text;
}

function parseFramerate(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (m === null) return null;
  const num = Number(m[1]);
  const den = Number(m[2]);
  return num > 0 && den > 0 ? num / den : null;
}

class VideoPipeline {
  private readonly pipeline: GstPipelineHandle;
  private readonly sink: GstAppSinkHandle;
  private terminal: Terminal | null = null;
  private onTerminal: (() => void) | null = null;
  private readonly path: string;
  private stopped = false;
  // True until start() parks a bus poll on the threadpool, and again once it has left.
  private busReleased = true;

  constructor(path: string) {
    this.path = path;
    const pool = threadpoolSize();
    if (pipelinesHoldingBusThread + 1 > pool - 1) {
      throw new Error(
        `${path}: cannot open another GStreamer pipeline: with ${pipelinesHoldingBusThread} already running it ` +
          `would leave no libuv threadpool thread free (UV_THREADPOOL_SIZE=${pool}); set UV_THREADPOOL_SIZE ` +
          `before node starts to at least the number of concurrent video readers + 2`,
      );
    }
    const gst = loadGstBinding();
    try {
      this.pipeline = new gst.Pipeline(LAUNCH);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw new Error(`${path}: cannot build GStreamer pipeline: ${detail}`, { cause: err });
    }
    const src = this.pipeline.findChild("src");
    const sink = this.pipeline.findChild("sink");
    if (src === undefined || !isAppSink(sink)) {
      throw new Error(`${path}: GStreamer pipeline is missing its filesrc or appsink element`);
    }
    const location = resolve(path);
    src.location = location;
    if (src.location !== location) {
      throw new Error(`${path}: could not set filesrc location (binding read back ${String(src.location)})`);
    }
    this.sink = sink;
    // Left on, the bus is flushed on the way to NULL, and the poll parked in
    // gst_bus_timed_pop could miss the state-change messages that are its only wake-up.
    this.pipeline["auto-flush-bus"] = false;
  }

  start(): void {
    this.pipeline.play();
    this.busReleased = false;
    pipelinesHoldingBusThread++;
    this.pipeline.pollBus((msg) => this.onBus(msg));
  }

  private onBus(msg: GstBusMessage): void {
    if (!this.stopped && this.terminal === null) {
      if (msg.type === "error") {
        this.settle({ kind: "error", text: describeError(msg) });
        // The streaming thread has stopped without EOS, so a pending pull would wait
        // forever; going to NULL makes the appsink return null to it.
        this.stop();
      } else if (msg.type === "eos") {
        this.settle({ kind: "eos" });
      }
    }
    // The binding re-arms the poll after this callback only while the pipeline is not
    // NULL, so the first callback at or after stop() is the last one.
    if (this.stopped && !this.busReleased) {
      this.busReleased = true;
      pipelinesHoldingBusThread--;
    }
  }

  private settle(t: Terminal): void {
    this.terminal = t;
    const wake = this.onTerminal;
    this.onTerminal = null;
    // Node drains microtasks before the binding decides whether to re-arm the poll, so a
    // consumer woken here could stop() the pipeline inside this dispatch, after onBus has
    // checked `stopped`: the thread would be freed without onBus ever seeing it. Waking
    // in a later macrotask keeps every stop() either inside onBus or outside the dispatch.
    if (wake !== null) setImmediate(wake);
  }

  pull(): Promise<Sample | null> {
    return new Promise((resolvePull) => {
      this.sink.pull((buf, caps) => resolvePull(buf === null ? null : { buf, caps }));
    });
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
    return this.pipeline.queryDuration();
  }

  formatOf(caps: GstStructureObject): FrameFormat {
    const { width, height, format } = caps;
    if (typeof width !== "number" || typeof height !== "number" || width <= 0 || height <= 0 || format !== "RGB") {
      throw new Error(`${this.path}: unexpected appsink caps ${JSON.stringify(caps)}`);
    }
    return { width, height, fps: parseFramerate(caps.framerate) };
  }

  /**
   * The appsink hands over GStreamer's default layout, whose rows are padded to a multiple
   * of 4 bytes (RGB at odd widths); the binding drops the stride, so recover it from the
   * size and repack only when there is padding.
   */
  toImage(buf: Buffer, f: FrameFormat, index: number): RgbImage {
    const row = f.width * 3;
    const stride = buf.length / f.height;
    if (!Number.isInteger(stride) || stride < row || stride > row + 3) {
      throw new Error(
        `${this.path}: frame ${index}: ${buf.length} bytes do not fit a ${f.width}x${f.height} RGB frame`,
      );
    }
    if (stride === row) {
      return { width: f.width, height: f.height, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.length) };
    }
    const data = new Uint8Array(row * f.height);
    for (let y = 0; y < f.height; y++) data.set(buf.subarray(y * stride, y * stride + row), y * row);
    return { width: f.width, height: f.height, data };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.pipeline.stop();
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
