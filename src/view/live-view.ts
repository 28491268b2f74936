// The live view: the frames the daemon ran, annotated, for browsers (src/view/server.ts).
//
// Nothing happens for a camera nobody watches. While it has a client, and once a period
// (1/fps) has passed since the last drawn frame was captured, each frame is captured (one copy of the
// model input, before it goes to the inference worker) until a result arrives for one of
// the captures (matched by sequence number); that one goes to the render thread (resample
// to the source geometry, draw) and the JPEG encoder, the JPEG to every client, and
// capturing pauses for the next period. Every frame is captured while waiting, not one per
// period, because the daemon drops frames under load (a newer frame replaces the one
// waiting): one capture per period would, with a slow detector, mostly be of frames that
// never get a result. A capture is let go when the daemon drops its frame (offerDrop), so
// what is held is the frames in the inference pool: the one running and the one waiting.
import type { LetterboxTransform } from "../core/types.ts";
import type { RgbImage } from "../core/rgb-image.ts";
import { MjpegClient } from "./mjpeg.ts";
import type { OverlayAlert, OverlayObject } from "./overlay.ts";
import type { Renderer } from "./renderer.ts";

/** A frame as the daemon hands it to inference: model-input pixels and how the source was placed in them. */
export interface ViewFrame {
  camera: string;
  seq: number;
  pixels: Uint8Array;
  transform: LetterboxTransform;
}

/** What the daemon made of one frame. */
export interface ViewResult {
  camera: string;
  seq: number;
  /** called only for a frame that is drawn: its objects in source pixels and the camera's active alerts */
  scene: () => { objects: readonly OverlayObject[]; alerts: readonly OverlayAlert[] };
}

export interface JpegEncoder {
  encode(img: RgbImage): Promise<Buffer>;
  close(): Promise<void>;
}

export interface ViewHooks {
  /** a JPEG of this camera was encoded */
  onEncoded?(camera: string): void;
  /** a client of this camera was not sent a frame because it still drained the last one */
  onSkipped?(camera: string): void;
  /** the number of clients of this camera changed */
  onClients?(camera: string, clients: number): void;
  /** rendering or encoding a frame failed (the next one is tried) */
  onError?(camera: string, error: Error): void;
}

export interface LiveViewCamera {
  id: string;
  /** corridor outline in source pixels for a source of this size; null: none */
  corridor?: (width: number, height: number) => readonly (readonly [number, number])[] | null;
}

export interface LiveViewOptions {
  cameras: readonly LiveViewCamera[];
  /** most captures per camera per second */
  fps: number;
  renderer: Renderer;
  encoder: JpegEncoder;
  hooks?: ViewHooks;
  /** monotonic milliseconds; injectable for tests */
  now?: () => number;
}

export interface EncodedFrame {
  jpeg: Buffer;
  seq: number;
  /** now() when it was encoded */
  atMs: number;
}

interface Capture {
  seq: number;
  /** now() when captured */
  atMs: number;
  pixels: Uint8Array;
  transform: LetterboxTransform;
}

/** Most captures held: the frame running, the one waiting, and two queued ahead (replays); a bound should drops ever go unreported. */
const MAX_CAPTURES = 4;

interface Waiter {
  resolve: (f: EncodedFrame | null) => void;
  timer: NodeJS.Timeout;
}

class CameraView {
  readonly clients = new Set<MjpegClient>();
  waiters: Waiter[] = [];
  captures: Capture[] = [];
  busy = false;
  /** capture time of the last frame drawn: periods run from frame to frame, not from result to result */
  lastDrawnAtMs = Number.NEGATIVE_INFINITY;
  latest: EncodedFrame | null = null;
  corridorFor: { width: number; height: number; outline: readonly (readonly [number, number])[] | null } | null = null;

  constructor(readonly spec: LiveViewCamera) {}

  get demand(): number {
    return this.clients.size + this.waiters.length;
  }
}

export class LiveView {
  private readonly cams = new Map<string, CameraView>();
  private readonly periodMs: number;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: LiveViewOptions) {
    if (!(opts.fps > 0)) throw new RangeError(`live view: fps must be positive, got ${opts.fps}`);
    this.periodMs = 1000 / opts.fps;
    this.now = opts.now ?? (() => performance.now());
    for (const c of opts.cameras) this.cams.set(c.id, new CameraView(c));
  }

  get cameraIds(): string[] {
    return [...this.cams.keys()];
  }

  has(camera: string): boolean {
    return this.cams.has(camera);
  }

  /** Called with every frame before it goes to inference; copies it only when a client wants a frame now. */
  offerFrame(f: ViewFrame): void {
    const cam = this.cams.get(f.camera);
    if (cam === undefined || cam.demand === 0 || cam.busy || this.closed) return;
    const now = this.now();
    if (now - cam.lastDrawnAtMs < this.periodMs) return;
    // The oldest capture's buffer is reused when it fits, so a watched camera allocates nothing per frame.
    const old = cam.captures.length >= MAX_CAPTURES ? cam.captures.shift() : undefined;
    const pixels = old !== undefined && old.pixels.length === f.pixels.length ? old.pixels : new Uint8Array(f.pixels.length);
    pixels.set(f.pixels);
    cam.captures.push({ seq: f.seq, atMs: now, pixels, transform: { ...f.transform } });
  }

  /** Called with every frame the daemon drops (a newer one replaced it): its capture can never be drawn. */
  offerDrop(camera: string, seq: number): void {
    const cam = this.cams.get(camera);
    if (cam !== undefined && cam.captures.length > 0) cam.captures = cam.captures.filter((c) => c.seq !== seq);
  }

  /** Called with every result; renders it when it belongs to a captured frame. */
  offerResult(r: ViewResult): void {
    const cam = this.cams.get(r.camera);
    if (cam === undefined || cam.captures.length === 0) return;
    const cap = cam.captures.find((c) => c.seq === r.seq);
    // Results come in frame order: captures older than this one were dropped by the daemon.
    cam.captures = cam.captures.filter((c) => c.seq > r.seq);
    if (cap === undefined) return;
    cam.captures = [];
    cam.busy = true;
    cam.lastDrawnAtMs = cap.atMs;
    void this.renderAndSend(cam, cap, r).finally(() => (cam.busy = false));
  }

  private async renderAndSend(cam: CameraView, cap: Capture, r: ViewResult): Promise<void> {
    const { srcWidth: w, srcHeight: h } = cap.transform;
    try {
      const { objects, alerts } = r.scene();
      const img = await this.opts.renderer.render(cap.pixels, cap.transform, {
        objects,
        alerts,
        corridor: this.corridorOf(cam, w, h) ?? undefined,
        caption: `${cam.spec.id} frame ${r.seq}`,
      });
      const jpeg = await this.opts.encoder.encode(img);
      if (this.closed) return;
      this.opts.hooks?.onEncoded?.(cam.spec.id);
      const frame: EncodedFrame = { jpeg, seq: r.seq, atMs: this.now() };
      cam.latest = frame;
      const waiters = cam.waiters;
      cam.waiters = [];
      for (const wt of waiters) {
        clearTimeout(wt.timer);
        wt.resolve(frame);
      }
      for (const c of cam.clients) if (!c.send(jpeg)) this.opts.hooks?.onSkipped?.(cam.spec.id);
    } catch (e) {
      if (!this.closed) this.opts.hooks?.onError?.(cam.spec.id, e instanceof Error ? e : new Error(String(e)));
    }
  }

  private corridorOf(cam: CameraView, width: number, height: number): readonly (readonly [number, number])[] | null {
    const f = cam.spec.corridor;
    if (f === undefined) return null;
    const c = cam.corridorFor;
    if (c !== null && c.width === width && c.height === height) return c.outline;
    const outline = f(width, height);
    cam.corridorFor = { width, height, outline };
    return outline;
  }

  /** The latest frame if it is at most maxAgeMs old, otherwise the next one, or null after timeoutMs. */
  nextFrame(camera: string, maxAgeMs: number, timeoutMs: number): Promise<EncodedFrame | null> {
    const cam = this.cams.get(camera);
    if (cam === undefined || this.closed) return Promise.resolve(null);
    if (cam.latest !== null && this.now() - cam.latest.atMs <= maxAgeMs) return Promise.resolve(cam.latest);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          cam.waiters = cam.waiters.filter((w) => w !== waiter);
          resolve(null);
        }, timeoutMs),
      };
      cam.waiters.push(waiter);
    });
  }

  /** Adds an MJPEG client; it gets the latest frame at once when that is recent. */
  addStreamClient(camera: string, client: (onClose: () => void) => MjpegClient): void {
    const cam = this.cams.get(camera);
    if (cam === undefined) throw new Error(`live view: no camera ${JSON.stringify(camera)}`);
    const c = client(() => {
      cam.clients.delete(c);
      this.opts.hooks?.onClients?.(camera, cam.clients.size);
    });
    cam.clients.add(c);
    this.opts.hooks?.onClients?.(camera, cam.clients.size);
    if (cam.latest !== null && this.now() - cam.latest.atMs <= 2 * this.periodMs) c.send(cam.latest.jpeg);
  }

  /** Ends every stream and waiter; frames in flight are dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const cam of this.cams.values()) {
      for (const w of cam.waiters) {
        clearTimeout(w.timer);
        w.resolve(null);
      }
      cam.waiters = [];
      for (const c of cam.clients) c.end();
      cam.captures = [];
    }
    await Promise.all([this.opts.renderer.close(), this.opts.encoder.close()]);
  }
}
