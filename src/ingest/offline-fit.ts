// Still pictures (image files, augmented frames) fitted to a model input by the daemon's own
// conversion tail: one long-lived pipeline, `appsrc ! <the tail of describePipeline>`, fed
// one packed RGB picture at a time. Videos go through the daemon's file pipeline itself
// (fitVideoFrames in src/ingest/gst/video-file.ts); both use fitChain (frame-fit.ts), so
// calibration, evaluation and the frame cache see exactly the pixels the daemon would.
//
// One pipeline for all pictures rather than one per file: the GStreamer binding never frees
// a pipeline (about 1 MB each), and a corpus has hundreds of pictures. appsrc renegotiates
// when its caps change between pictures of different sizes.
import type { LetterboxTransform } from "../core/types.ts";
import type { FitTarget } from "./frame-fit.ts";
import type { GstAppSrcHandle } from "./gst/binding.ts";
import { appSrcOf, pushRgb } from "./gst/appsrc.ts";
import { GstRunner, packRgb, reserveGstThreads } from "./gst/pipeline-runner.ts";
import { describePipeline, ELEMENTS, tailTransform } from "./pipeline-description.ts";
import { assertRgbImage, type RgbImage } from "../core/rgb-image.ts";

export interface FittedPicture {
  /** target.width x target.height packed RGB: the model's input picture. */
  image: RgbImage;
  /** Where the source picture sits in `image`. */
  transform: LetterboxTransform;
}

const FEED = "perceptd_feed";

function capsOf(img: RgbImage): string {
  return `video/x-raw,format=RGB,width=${img.width},height=${img.height},framerate=0/1,pixel-aspect-ratio=1/1`;
}

export class PictureFitter {
  readonly target: FitTarget;
  private readonly runner: GstRunner;
  private readonly feed: GstAppSrcHandle;
  private readonly releaseThreads: () => void;
  private caps: string;
  private failure: string | null = null;
  private busy = false;
  private closed = false;

  private constructor(target: FitTarget, first: RgbImage) {
    this.target = target;
    this.caps = capsOf(first);
    this.releaseThreads = reserveGstThreads(
      1,
      (pool, reserved) =>
        `cannot open a GStreamer pipeline to fit pictures: ${reserved} of ${pool} libuv threadpool threads are held by running ` +
        `pipelines; set UV_THREADPOOL_SIZE higher before node starts`,
    );
    try {
      const d = describePipeline({ type: "pipeline", pipeline: `appsrc name=${FEED} format=time caps=${this.caps}`, live: false }, target);
      this.runner = new GstRunner(d.description, "picture fitter", ELEMENTS.sink, d.properties);
      this.feed = appSrcOf(this.runner, FEED);
      this.runner.start({ onEos: () => undefined, onError: (text) => (this.failure = text) });
    } catch (err) {
      this.releaseThreads();
      throw err;
    }
  }

  /** A fitter for `target`; `first` only sets the initial caps (any picture will do). */
  static open(target: FitTarget, first: RgbImage = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3) }): PictureFitter {
    return new PictureFitter(target, first);
  }

  /** `img` fitted to the target; `where` names the picture in errors. One call at a time. */
  async fit(img: RgbImage, where: string): Promise<FittedPicture> {
    assertRgbImage(img, where);
    if (this.closed) throw new Error(`${where}: the picture fitter is closed`);
    if (this.busy) throw new Error(`${where}: PictureFitter.fit called while another picture is being fitted`);
    if (this.failure !== null) throw new Error(`${where}: the picture fitter failed earlier: ${this.failure}`);
    this.busy = true;
    try {
      const caps = capsOf(img);
      if (caps !== this.caps) {
        this.feed.caps = caps;
        this.caps = caps;
      }
      pushRgb(this.feed, img);
      const sample = await this.runner.pull();
      if (sample === null) {
        // An error reaches onError in a later macrotask than the pull's null.
        await new Promise((r) => setImmediate(r));
        throw new Error(`${where}: GStreamer could not fit the picture to ${this.target.width}x${this.target.height}: ${this.failure ?? "pipeline stopped"}`);
      }
      const { width, height } = this.target;
      const data = packRgb(sample.buf, width, height, where);
      return { image: { width, height, data }, transform: tailTransform({ width: img.width, height: img.height }, this.target) };
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.runner.stop();
    await this.runner.released();
    this.releaseThreads();
  }
}
