// `perceptd detect VIDEO --out annotated.mp4`: every frame of the run drawn with the live
// view's overlay (src/view/overlay.ts) and encoded by GStreamer (src/ingest/gst/video-writer.ts);
// and `--from-bus ENDPOINT`, which draws a recording with what a running daemon published
// for it, matched by frame sequence number.
import { BusClient } from "../bus/client/index.ts";
import type { Alert } from "../bus/codec.ts";
import { overlayAlerts, overlayObjects } from "../daemon/view-scene.ts";
import { probeVideo, readVideoFrames } from "../ingest/gst/video-file.ts";
import { VideoWriter, type VideoWriteSummary } from "../ingest/gst/video-writer.ts";
import type { RgbImage } from "../core/rgb-image.ts";
import { drawScene, type OverlayAlert, type OverlayObject, type OverlayScene } from "../view/overlay.ts";

/** Opens the writer on the first frame, when the size is known. */
export class AnnotatedVideo {
  private writer: VideoWriter | null = null;

  constructor(
    readonly path: string,
    private readonly fps: number,
  ) {}

  /** Draws `scene` on `image` (in place) and appends it. */
  async write(image: RgbImage, scene: OverlayScene): Promise<void> {
    this.writer ??= await VideoWriter.open(this.path, { width: image.width, height: image.height, fps: this.fps });
    await this.writer.write(drawScene(image, scene));
  }

  /** Null when no frame was written. */
  async finish(): Promise<VideoWriteSummary | null> {
    return this.writer === null ? null : this.writer.finish();
  }

  async abort(): Promise<void> {
    await this.writer?.abort();
  }
}

/** What the daemon published for one frame, ready to draw. */
export interface PublishedFrame {
  seq: number;
  camera: string;
  width: number;
  height: number;
  objects: OverlayObject[];
  alerts: OverlayAlert[];
}

export interface BusFramesOptions {
  endpoint: string;
  /** only this camera's messages; default: the first camera heard */
  camera?: string;
  /** give up waiting for the daemon after this long without a detections message */
  silenceMs: number;
}

/**
 * The daemon's detections, by frame sequence number, as they arrive. The alert set in force
 * when a frame's detections arrived goes with them (one SUB socket keeps the publisher's
 * order, so it is the set the daemon had published by then).
 */
export class BusFrames {
  private readonly client: BusClient;
  private readonly frames = new Map<number, PublishedFrame>();
  private alerts: Alert[] = [];
  private highest = -1;
  private lastAt = performance.now();
  private wake: (() => void) | null = null;
  private ended: Error | null = null;
  camera: string | undefined;
  received = 0;

  constructor(private readonly opts: BusFramesOptions) {
    this.camera = opts.camera;
    this.client = new BusClient({ endpoints: [opts.endpoint], topics: ["detections", "alerts"] });
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for await (const ev of this.client) {
        if (ev.kind !== "message") continue;
        if (ev.topic === "alerts") {
          this.alerts = ev.body.alerts;
          continue;
        }
        if (ev.topic !== "detections") continue;
        const camera = ev.header.cameraId;
        this.camera ??= camera;
        if (camera !== this.camera) continue;
        const mine = this.alerts.filter((a) => a.cameraId === camera);
        const seq = Number(ev.header.frameSeq);
        this.frames.set(seq, {
          seq,
          camera,
          width: ev.body.frameWidthPx,
          height: ev.body.frameHeightPx,
          objects: overlayObjects(ev.body.detections, mine),
          alerts: overlayAlerts(mine),
        });
        this.received++;
        this.highest = Math.max(this.highest, seq);
        this.lastAt = performance.now();
        this.wake?.();
      }
    } catch (e) {
      this.ended = e instanceof Error ? e : new Error(String(e));
      this.wake?.();
    }
  }

  /**
   * The result published for frame `seq`, or, when the daemon dropped that frame, the last
   * one before it (held); null before the first. Waits while the daemon has not got this far,
   * until silenceMs pass without a message.
   */
  async forFrame(seq: number): Promise<{ frame: PublishedFrame | null; exact: boolean }> {
    while (this.highest < seq && this.ended === null && performance.now() - this.lastAt < this.opts.silenceMs) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    if (this.ended !== null) throw new Error(`--from-bus ${this.opts.endpoint}: ${this.ended.message}`);
    const exact = this.frames.get(seq);
    let held: PublishedFrame | null = exact ?? null;
    if (held === null) for (const f of this.frames.values()) if (f.seq < seq && (held === null || f.seq > held.seq)) held = f;
    // What is older than the frame handed out is never asked for again.
    for (const k of this.frames.keys()) if (k < (held?.seq ?? seq)) this.frames.delete(k);
    return { frame: held, exact: exact !== undefined };
  }

  /** The bus went quiet for silenceMs (the daemon stopped, or never published here). */
  get silent(): boolean {
    return performance.now() - this.lastAt >= this.opts.silenceMs;
  }

  close(): void {
    this.client.close();
  }
}

export interface FromBusOptions extends BusFramesOptions {
  input: string;
  out: string;
  /** selected frame indices; default all */
  select?: (index: number) => boolean;
  /** last selected index, to stop decoding early */
  last?: number;
  progress?: (text: string) => void;
  /** the corridor of a camera for a frame of this size, to draw; from the daemon's config */
  corridor?: (camera: string, width: number, height: number) => readonly (readonly [number, number])[] | null;
}

export interface FromBusSummary extends VideoWriteSummary {
  camera: string | undefined;
  /** frames drawn with their own published detections */
  exact: number;
  /** frames the daemon dropped, drawn with the last detections before them */
  held: number;
  /** frames before the first published one, or after the bus went quiet: drawn bare */
  bare: number;
}

/** Draws the recording `input` with what the daemon at `endpoint` published for it. */
export async function annotateFromBus(opts: FromBusOptions): Promise<FromBusSummary> {
  const fps = (await probeVideo(opts.input)).fps ?? 10;
  const bus = new BusFrames(opts);
  const video = new AnnotatedVideo(opts.out, fps);
  const counts = { exact: 0, held: 0, bare: 0 };
  let first = true;
  try {
    for await (const f of readVideoFrames(opts.input, { select: opts.select })) {
      const { frame, exact } = await bus.forFrame(f.index);
      if (first && bus.received === 0) {
        throw new Error(`--from-bus ${opts.endpoint}: no detections${opts.camera ? ` of camera ${opts.camera}` : ""} within ${opts.silenceMs} ms; is a daemon replaying this recording and publishing there?`);
      }
      first = false;
      if (frame !== null && (frame.width !== f.image.width || frame.height !== f.image.height)) {
        throw new Error(`--from-bus: camera ${frame.camera} publishes ${frame.width}x${frame.height} frames, ${opts.input} is ${f.image.width}x${f.image.height}: not the same recording`);
      }
      const cam = frame?.camera ?? bus.camera ?? "";
      let caption = `${cam} frame ${f.index}`;
      if (frame === null) {
        counts.bare++;
        caption += bus.silent ? " (bus quiet)" : " (no result)";
      } else if (exact) counts.exact++;
      else {
        counts.held++;
        caption += ` (held from ${frame.seq})`;
      }
      const corridor = opts.corridor?.(cam, f.image.width, f.image.height) ?? undefined;
      await video.write(f.image, { objects: frame?.objects ?? [], alerts: frame?.alerts ?? [], caption, corridor });
      opts.progress?.(`${opts.input}: frame ${f.index}, ${counts.exact} with their own detections, ${counts.held} held, ${counts.bare} bare`);
      if (opts.last !== undefined && f.index >= opts.last) break;
    }
    const summary = await video.finish();
    if (summary === null) throw new Error(`${opts.input}: no frames selected`);
    return { ...summary, camera: bus.camera, ...counts };
  } catch (e) {
    await video.abort();
    throw e;
  } finally {
    bus.close();
  }
}
