// Annotated video out through GStreamer: RGB frames -> H.264 (openh264enc) -> MP4 or
// Matroska, for `perceptd detect VIDEO --out annotated.mp4`.
//
// openh264enc, because of what scripts/setup.sh installs from Debian: x264enc is in
// gstreamer1.0-plugins-ugly, which it does not install; gstreamer1.0-plugins-bad brings
// openh264enc (Debian builds libopenh264 from source), and H.264 plays in every browser and
// player, which MPEG-4 part 2 (avenc_mpeg4) and VP8 in MP4 do not.
//
// The container comes out of an appsink and is written here, to a temporary file renamed
// over the target at the end, so an interrupted run never leaves a truncated video under
// the requested name. mp4mux writes its index first (faststart) and so never seeks back,
// which an appsink could not do.
import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { type RgbImage, assertRgbImage } from "../../core/rgb-image.ts";
import { appSrcOf, pushRgb, rgbCaps } from "./appsrc.ts";
import type { GstAppSrcHandle } from "./binding.ts";
import { GstRunner, reserveGstThreads } from "./pipeline-runner.ts";

export const VIDEO_CONTAINERS = { ".mp4": "mp4mux faststart=true", ".mkv": "matroskamux" } as const;

export interface VideoWriterOptions {
  width: number;
  height: number;
  /** frames per second recorded in the container */
  fps: number;
}

export interface VideoWriteSummary {
  frames: number;
  bytes: number;
}

// Frames queued in the appsrc before write() waits for the encoder: enough to keep it busy,
// few enough that a slow encoder holds only a few frames of memory.
const QUEUED_FRAMES = 4;

/** Whether `path` names a container the writer can produce (by its extension). */
export function isVideoPath(path: string): boolean {
  return extname(path).toLowerCase() in VIDEO_CONTAINERS;
}

export class VideoWriter {
  private frames = 0;
  private bytes = 0;
  private failed: string | null = null;
  private ended: Promise<void>;
  private drained: Promise<void>;
  private writes: Promise<void> = Promise.resolve();
  private finished = false;
  private readonly frameBytes: number;

  private constructor(
    readonly path: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
    private readonly runner: GstRunner,
    private readonly src: GstAppSrcHandle,
    private readonly release: () => void,
    private readonly opts: VideoWriterOptions,
  ) {
    this.frameBytes = opts.width * opts.height * 3;
    let eos!: () => void;
    const gotEos = new Promise<void>((r) => (eos = r));
    runner.start({
      onEos: eos,
      onError: (text) => {
        this.failed = text;
        eos();
      },
    });
    this.drained = this.drain();
    this.ended = Promise.all([gotEos, this.drained]).then(() => undefined);
    // Awaited by finish() or abort(); a write error before then is not an unhandled rejection.
    this.ended.catch(() => undefined);
  }

  /** Opens the temporary file and starts the pipeline; throws naming the path or GStreamer's complaint. */
  static async open(path: string, opts: VideoWriterOptions): Promise<VideoWriter> {
    const mux = VIDEO_CONTAINERS[extname(path).toLowerCase() as keyof typeof VIDEO_CONTAINERS];
    if (mux === undefined) throw new Error(`${path}: video output must end in ${Object.keys(VIDEO_CONTAINERS).join(" or ")}`);
    if (!(opts.width > 0 && opts.height > 0 && Number.isInteger(opts.width) && Number.isInteger(opts.height))) {
      throw new RangeError(`${path}: frame size must be positive integers, got ${opts.width}x${opts.height}`);
    }
    if (!(opts.fps > 0 && opts.fps <= 1000)) throw new RangeError(`${path}: fps must be in (0, 1000], got ${opts.fps}`);
    // About 0.1 bit per pixel at the frame rate: thin box outlines and small text stay sharp.
    const bitrate = Math.round(Math.min(50e6, Math.max(1e6, opts.width * opts.height * opts.fps * 0.1)));
    const launch =
      `appsrc name=src format=time block=false ! videoconvert ! openh264enc bitrate=${bitrate} gop-size=${Math.max(1, Math.round(opts.fps * 2))} ` +
      `! h264parse ! ${mux} ! appsink name=sink sync=false enable-last-sample=false`;
    const release = reserveGstThreads(
      2,
      (pool, reserved) => `${path}: no libuv threadpool threads left for the video encoder (${reserved} of ${pool} held); raise UV_THREADPOOL_SIZE`,
    );
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
    let fh: FileHandle | undefined;
    let runner: GstRunner | undefined;
    try {
      fh = await open(tmp, "w");
      runner = new GstRunner(launch, `${path}: video encoder`, "sink");
      const src = appSrcOf(runner, "src");
      src.caps = rgbCaps(opts.width, opts.height, opts.fps);
      return new VideoWriter(path, tmp, fh, runner, src, release, opts);
    } catch (e) {
      runner?.stop();
      await fh?.close();
      await unlink(tmp).catch(() => undefined);
      release();
      throw e;
    }
  }

  /** Queues one frame (the size given at open), waiting while the encoder is behind. */
  async write(img: RgbImage): Promise<void> {
    assertRgbImage(img, this.path);
    if (img.width !== this.opts.width || img.height !== this.opts.height) {
      throw new Error(`${this.path}: frame ${this.frames} is ${img.width}x${img.height}, the video is ${this.opts.width}x${this.opts.height}`);
    }
    while (this.failed === null && Number(this.src["current-level-bytes"]) > QUEUED_FRAMES * this.frameBytes) await sleep(5);
    if (this.failed !== null) throw new Error(`${this.path}: ${this.failed}`);
    pushRgb(this.src, img, BigInt(Math.round((this.frames * 1e9) / this.opts.fps)));
    this.frames++;
  }

  /** Ends the stream, waits for the container's last bytes and renames the file into place. */
  async finish(): Promise<VideoWriteSummary> {
    if (this.finished) throw new Error(`${this.path}: video already finished`);
    this.finished = true;
    try {
      if (this.frames === 0) throw new Error(`${this.path}: no frames to write`);
      this.runner.endOfStream();
      await this.ended;
      if (this.failed !== null) throw new Error(`${this.path}: ${this.failed}`);
      await this.fh.sync();
      await this.fh.close();
      await rename(this.tmp, this.path);
      return { frames: this.frames, bytes: this.bytes };
    } catch (e) {
      await this.discard();
      throw e;
    } finally {
      this.stopPipeline();
    }
  }

  /** Stops without writing the target (an interrupted run); the temporary file is removed. */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    // No EOS comes after a stop; the appsink hands the parked pull back instead.
    this.stopPipeline();
    await this.drained.catch(() => undefined);
    await this.discard();
  }

  private async drain(): Promise<void> {
    for (;;) {
      const sample = await this.runner.pull();
      if (sample === null) break;
      this.bytes += sample.buf.length;
      this.writes = this.writes.then(() => this.fh.write(sample.buf).then(() => undefined));
    }
    await this.writes;
  }

  private stopPipeline(): void {
    this.runner.stop();
    void this.runner.released().then(this.release);
  }

  private async discard(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
