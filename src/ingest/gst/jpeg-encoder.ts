// JPEG encoding through GStreamer's jpegenc (libjpeg-turbo), for the live view. The frame
// is queued on the calling thread (one copy into a GstBuffer), encoded on the appsrc's
// streaming thread, and read back by an appsink pull on the libuv threadpool, so the
// event loop never runs the encoder itself: a pure-JavaScript encoder took over ten times
// as long per frame and would have run on a thread that inference needs.
//
// The pipeline starts on the first encode, so a daemon whose view nobody watches never
// builds one. Encodes run one at a time in call order; frames of any size may follow each
// other (the caps are set per frame when the size changes).
import { type RgbImage, assertRgbImage } from "../../core/rgb-image.ts";
import { appSrcOf, pushRgb, rgbCaps } from "./appsrc.ts";
import type { GstAppSrcHandle } from "./binding.ts";
import { GstRunner, reserveGstThreads } from "./pipeline-runner.ts";

// jpegenc takes RGB as such and writes an RGB-coded JPEG that some decoders show in false
// colours; I420 in gives the usual YCbCr 4:2:0 JPEG that every viewer reads.
const LAUNCH =
  "appsrc name=src format=time block=false ! videoconvert ! video/x-raw,format=I420 ! jpegenc name=enc ! appsink name=sink sync=false enable-last-sample=false";

export interface JpegEncoderOptions {
  /** jpegenc quality, 1-100 */
  quality: number;
  /** an encode that produces nothing for this long fails and the pipeline is rebuilt; default 5000 */
  timeoutMs?: number;
}

interface Running {
  runner: GstRunner;
  src: GstAppSrcHandle;
  caps: string;
  /** the bus error that stopped it, once one did */
  failed: string | null;
  release: () => void;
}

export class GstJpegEncoder {
  private running: Running | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly timeoutMs: number;

  constructor(private readonly opts: JpegEncoderOptions) {
    if (!(Number.isInteger(opts.quality) && opts.quality >= 1 && opts.quality <= 100)) {
      throw new RangeError(`JPEG encoder: quality must be an integer in [1, 100], got ${String(opts.quality)}`);
    }
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  /** The JPEG bytes of `img`; rejects naming GStreamer's error, or after the timeout. */
  encode(img: RgbImage): Promise<Buffer> {
    assertRgbImage(img, "JPEG encoder");
    const next = this.queue.then(() => this.encodeNow(img));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async encodeNow(img: RgbImage): Promise<Buffer> {
    if (this.closed) throw new Error("JPEG encoder: closed");
    const r = this.ensureRunning();
    const caps = rgbCaps(img.width, img.height, 0);
    if (r.caps !== caps) {
      r.src.caps = caps;
      r.caps = caps;
    }
    pushRgb(r.src, img);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), this.timeoutMs)));
    const sample = await Promise.race([r.runner.pull(), timedOut]);
    clearTimeout(timer);
    if (sample === "timeout" || sample === null) {
      // Stopping makes a pull still parked in the appsink return, so its thread comes back.
      this.teardown(r);
      const why = sample === "timeout" ? `no JPEG within ${this.timeoutMs} ms` : (r.failed ?? "the pipeline stopped");
      throw new Error(`JPEG encoder: ${why}`);
    }
    return sample.buf;
  }

  private ensureRunning(): Running {
    if (this.running !== null) return this.running;
    const release = reserveGstThreads(
      1,
      (pool, reserved) =>
        `JPEG encoder: no libuv threadpool thread left for its GStreamer bus poll (${reserved} of ${pool} held by running pipelines); raise UV_THREADPOOL_SIZE`,
    );
    let runner: GstRunner;
    try {
      runner = new GstRunner(LAUNCH, "JPEG encoder", "sink");
    } catch (e) {
      release();
      throw e;
    }
    const enc = runner.findChild("enc");
    if (enc !== undefined) enc.quality = this.opts.quality;
    const r: Running = { runner, src: appSrcOf(runner, "src"), caps: "", failed: null, release };
    runner.start({
      onEos: () => undefined,
      onError: (text) => {
        r.failed = text;
        this.teardown(r);
      },
    });
    this.running = r;
    return r;
  }

  private teardown(r: Running): void {
    if (this.running === r) this.running = null;
    r.runner.stop();
    void r.runner.released().then(r.release);
  }

  /** Stops the pipeline (if one was built); encodes queued after this fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const r = this.running;
    if (r === null) return;
    this.teardown(r);
    await r.runner.released();
  }
}
