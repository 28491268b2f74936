// GStreamer launch descriptions for camera sources, and the geometry of what they produce.
// Pure: no native modules, so configs can be checked and pipelines logged anywhere.
//
// Every description is a source part (per source type) followed by one shared tail that
// hands the model exactly width x height packed RGB:
//
//   <source> ! tee name=perceptd_tee
//     ! videoconvert ! videoscale add-borders=<letterbox> ! videoconvert
//     ! video/x-raw,format=RGB,width=W,height=H,pixel-aspect-ratio=1/1
//     ! appsink name=perceptd_sink max-buffers=1 drop=<!everyFrame> sync=<paced>
//   perceptd_tee. ! fakesink name=perceptd_probe sync=false async=false enable-last-sample=true
//
// The fakesink branch exists to learn the source frame size, which the appsink's caps no
// longer show: the CameraSource reads its last-sample caps once per (re)start and then
// switches enable-last-sample off so it holds no buffer. Its tee pad must come second: a
// sink in PAUSED blocks the streaming thread until PLAYING even with async=false, and a
// tee pushes to its pads in order on one thread, so a first-branch fakesink would keep the
// appsink from ever prerolling (non-live sources deadlock in PAUSED).
import type { SourceSpec } from "./source-spec.ts";
import type { LetterboxTransform, ResizeMode } from "../core/types.ts";
import { fitChain } from "./frame-fit.ts";
import { computeLetterbox } from "../core/letterbox.ts";

export interface TargetSize {
  width: number;
  height: number;
  resize: ResizeMode;
}

/** A property set on a named element after parsing, for values that must not be parsed. */
export interface PipelineProperty {
  element: string;
  name: string;
  value: string | number | boolean;
}

export interface PipelineDescription {
  /** gst_parse_launch syntax. */
  description: string;
  /**
   * The source runs on its own clock (camera, stream, live test source): frames are not
   * synchronised, and an error is a fault to restart from rather than the end of the run.
   */
  live: boolean;
  /**
   * End of stream is a fault to restart from (a camera or stream that went away), rather
   * than the end of the run (a file, or a testsrc given numBuffers). Files that loop seek
   * back instead; that is the CameraSource's business, not the description's.
   */
  restartOnEos: boolean;
  /**
   * User-supplied strings (paths, device nodes, URLs) set through the binding instead of
   * being spliced into `description`, so no quote or '!' in them can change the pipeline.
   */
  properties: PipelineProperty[];
  /** The appsink syncs to the pipeline clock (a file played at its own frame rate). */
  paced: boolean;
  /**
   * The appsink drops nothing (drop=false): every decoded frame is delivered in order and
   * decoding waits for the consumer. Only for non-live, unpaced sources; everything else
   * keeps just the newest frame, because a stale frame is worth less than a missing one.
   */
  everyFrame: boolean;
}

/** Names of the elements the tail adds; CameraSource finds them with findChild. */
export const ELEMENTS = {
  /** Our own source element (absent for `pipeline` sources). */
  source: "src",
  tee: "perceptd_tee",
  sink: "perceptd_sink",
  probe: "perceptd_probe",
} as const;

function requireDimension(what: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0 || value > 8192) {
    throw new RangeError(`describePipeline: ${what} must be an integer in 1..8192, got ${String(value)}`);
  }
}

/**
 * A frame rate as a caps fraction. Cameras announce NTSC rates as exact fractions
 * (30000/1001), so a configured 29.97 must become that, not 2997/100, or caps negotiation
 * with the device fails.
 */
export function framerateFraction(fps: number): string {
  if (!Number.isFinite(fps) || fps <= 0) throw new RangeError(`framerate must be a positive number, got ${String(fps)}`);
  if (Number.isInteger(fps)) return `${fps}/1`;
  const ntsc = Math.round((fps * 1001) / 1000);
  if (Math.abs((ntsc * 1000) / 1001 - fps) < 0.005) return `${ntsc * 1000}/1001`;
  // Anything else to a thousandth of a frame per second, reduced.
  let num = Math.round(fps * 1000);
  let den = 1000;
  const g = gcd(num, den);
  num /= g;
  den /= g;
  return `${num}/${den}`;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** "n/d" (as the binding renders fractions) to a pair, or null. */
export function parseFraction(value: unknown): [number, number] | null {
  if (typeof value !== "string") return null;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (m === null) return null;
  const n = Number(m[1]);
  const d = Number(m[2]);
  return n > 0 && d > 0 ? [n, d] : null;
}

function rawFields(s: { width?: number; height?: number; framerate?: number }): string {
  let f = "";
  if (s.width !== undefined) f += `,width=${s.width}`;
  if (s.height !== undefined) f += `,height=${s.height}`;
  if (s.framerate !== undefined) f += `,framerate=${framerateFraction(s.framerate)}`;
  return f;
}

// videotestsrc's enum nicks and numbers; anything else could inject pipeline syntax.
const PATTERN = /^[a-z0-9][a-z0-9-]*$/;

/**
 * The conversion tail: the model-input fitting (src/ingest/frame-fit.ts, shared with the
 * offline path so calibration and evaluation see the daemon's very pixels). Scaling in the
 * source's own format is about 2.5x cheaper than converting the full frame first (1080p
 * I420 to 416x416 on one core: about 2 ms against 4.7 ms per frame).
 */
function tail(target: TargetSize, paced: boolean, everyFrame: boolean, afterTee = ""): string {
  return (
    `tee name=${ELEMENTS.tee} ! ${afterTee === "" ? "" : `${afterTee} ! `}${fitChain(target)} ! ` +
    `appsink name=${ELEMENTS.sink} max-buffers=1 drop=${!everyFrame} sync=${paced} enable-last-sample=false ` +
    `${ELEMENTS.tee}. ! fakesink name=${ELEMENTS.probe} sync=false async=false enable-last-sample=true`
  );
}

/**
 * Whether the source delivers every frame and waits for the consumer (PipelineDescription's
 * everyFrame): a file played unpaced, or an expert pipeline that is not live.
 */
export function waitsForConsumer(source: SourceSpec): boolean {
  switch (source.type) {
    case "file":
      return !source.realtime;
    case "pipeline":
      return !source.live;
    default:
      return false;
  }
}

/**
 * Jetson: the one hop out of NVMM (device) memory, placed just before the CPU tail. nvvidconv
 * converts on the VIC and, where the size the model wants is known (always for stretch; for
 * letterbox when the source size is configured), scales there too, so only a model-sized
 * frame is copied to system memory and the CPU tail merely pads it (letterbox) and drops the
 * x of BGRx. nvvidconv cannot add borders, hence the padding on the CPU. It comes after the
 * tee so the probe still reads the source size, from the NVMM caps.
 */
function nvmmToSystem(target: TargetSize, sourceSize: { width?: number; height?: number }): string {
  let size: { w: number; h: number } | undefined;
  if (target.resize === "stretch") size = { w: target.width, h: target.height };
  else if (sourceSize.width !== undefined && sourceSize.height !== undefined) {
    const t = tailTransform({ width: sourceSize.width, height: sourceSize.height }, target);
    size = { w: Math.round(t.scaleX * sourceSize.width), h: Math.round(t.scaleY * sourceSize.height) };
  }
  return size === undefined ? "nvvidconv ! video/x-raw,format=BGRx" : `nvvidconv ! video/x-raw,format=BGRx,width=${size.w},height=${size.h},pixel-aspect-ratio=1/1`;
}

// parsebin hands nvv4l2decoder the parsed H.264/H.265 stream whichever it is; decodebin
// would plug the same decoder but then offer its NVMM output to videoconvert, which cannot
// take it.
const JETSON_DECODE = "parsebin ! nvv4l2decoder";

export function describePipeline(source: SourceSpec, target: TargetSize): PipelineDescription {
  requireDimension("target width", target.width);
  requireDimension("target height", target.height);
  if (target.resize !== "stretch" && target.resize !== "letterbox") {
    throw new RangeError(`describePipeline: resize must be "stretch" or "letterbox", got ${JSON.stringify(target.resize)}`);
  }
  const src = ELEMENTS.source;
  let head: string;
  let live = true;
  let paced = false;
  let restartOnEos = true;
  let afterTee = "";
  const properties: PipelineProperty[] = [];
  switch (source.type) {
    case "file":
      head = `filesrc name=${src} ! ${source.decoder === "jetson" ? JETSON_DECODE : "decodebin"}`;
      if (source.decoder === "jetson") afterTee = nvmmToSystem(target, {});
      properties.push({ element: src, name: "location", value: source.path });
      live = false;
      restartOnEos = false;
      paced = source.realtime;
      break;
    case "v4l2": {
      // USB cameras often offer large sizes or high rates only as MJPEG, and the config
      // does not say which format a camera uses. Offering both in one capsfilter lets
      // v4l2src pick raw when the camera can (first choice, no decode cost) and MJPEG
      // otherwise; decodebin passes raw through and plugs a JPEG decoder for MJPEG. A
      // fixed jpegdec would refuse raw-only cameras, a raw-only filter MJPEG-only modes.
      const fields = rawFields(source);
      head = `v4l2src name=${src} ! capsfilter caps="video/x-raw${fields};image/jpeg${fields}" ! decodebin`;
      properties.push({ element: src, name: "device", value: source.device });
      break;
    }
    case "csi":
      // nvarguscamerasrc only produces NV12 in NVMM memory.
      head = `nvarguscamerasrc name=${src} sensor-id=${source.sensorId} ! video/x-raw(memory:NVMM),format=NV12${rawFields(source)}`;
      afterTee = nvmmToSystem(target, source);
      break;
    case "rtsp":
      // The capsfilter makes delayed linking take the video stream only; an audio stream
      // linked to the same decodebin would stall or fail the whole source.
      head =
        `rtspsrc name=${src} latency=${source.latencyMs}` +
        (source.protocols === "auto" ? "" : ` protocols=${source.protocols}`) +
        ` ! application/x-rtp,media=video ! ${source.decoder === "jetson" ? JETSON_DECODE : "decodebin"}`;
      if (source.decoder === "jetson") afterTee = nvmmToSystem(target, {});
      properties.push({ element: src, name: "location", value: source.url });
      break;
    case "testsrc":
      if (!PATTERN.test(source.pattern)) {
        throw new RangeError(`describePipeline: testsrc pattern ${JSON.stringify(source.pattern)} is not a videotestsrc pattern name`);
      }
      head =
        `videotestsrc name=${src} pattern=${source.pattern}` +
        (source.numBuffers === undefined ? "" : ` num-buffers=${source.numBuffers}`) +
        ` is-live=true ! video/x-raw${rawFields(source)}`;
      // numBuffers asks for a finite stream, as the schema says; an endless one that ends
      // anyway has failed like a camera.
      restartOnEos = source.numBuffers === undefined;
      break;
    case "pipeline":
      head = source.pipeline.trim().replace(/!\s*$/, "").trimEnd();
      live = source.live;
      restartOnEos = source.live;
      break;
    default: {
      const unknown: never = source;
      throw new RangeError(`describePipeline: unknown source type ${JSON.stringify((unknown as { type?: unknown }).type)}`);
    }
  }
  const everyFrame = waitsForConsumer(source);
  return { description: `${head} ! ${tail(target, paced, everyFrame, afterTee)}`, live, restartOnEos, properties, paced, everyFrame };
}

/**
 * Text with the user and password of every RTSP URL in it replaced by *** (for logs, the bus,
 * metrics and --check-config): a URL of its own, or one inside an expert pipeline.
 */
export function maskRtspCredentials(text: string): string {
  return text.replace(/(rtsps?:\/\/)[^@/\s"']*@/g, "$1***@");
}

/** How a source appears in messages; RTSP credentials are masked. */
export function describeSource(source: SourceSpec): string {
  switch (source.type) {
    case "file":
      return `file ${source.path}`;
    case "v4l2":
      return `v4l2 ${source.device}`;
    case "csi":
      return `csi sensor-id=${source.sensorId}`;
    case "rtsp":
      return `rtsp ${maskRtspCredentials(source.url)}`;
    case "testsrc":
      return `videotestsrc ${source.pattern}`;
    case "pipeline": {
      const p = maskRtspCredentials(source.pipeline);
      return `pipeline "${p.length > 60 ? `${p.slice(0, 57)}...` : p}"`;
    }
    default: {
      const unknown: never = source;
      return String((unknown as { type?: unknown }).type);
    }
  }
}

/** The source frame as the probe branch saw it. */
export interface SourceFrame {
  width: number;
  height: number;
  /** pixel-aspect-ratio, 1/1 when the caps do not say */
  parN?: number;
  parD?: number;
}

function floorDiv(a: number, b: number): number {
  return (a - (a % b)) / b;
}

/**
 * The transform the tail applies to a source frame. Stretch is computeLetterbox's. For
 * letterbox this mirrors videoscale's add-borders arithmetic rather than computeLetterbox:
 * GStreamer rounds the scaled content size down (computeLetterbox rounds to nearest) and
 * keeps the display aspect ratio, so a non-square source pixel aspect ratio gives different
 * x and y scales. For square pixels and sizes whose ratio divides evenly (640x480, 1280x720,
 * 768x576 into 416x416) the result equals computeLetterbox's exactly; otherwise the scaled
 * content differs by at most one pixel, and this one is what the pixels really are.
 */
export function tailTransform(source: SourceFrame, target: TargetSize): LetterboxTransform {
  const { width: srcW, height: srcH } = source;
  const { width: dstW, height: dstH } = target;
  if (target.resize === "stretch") return computeLetterbox(srcW, srcH, dstW, dstH, "stretch");
  const base = computeLetterbox(srcW, srcH, dstW, dstH, "letterbox");
  const parN = source.parN ?? 1;
  const parD = source.parD ?? 1;
  // Display aspect ratio n/d of the source; the output has square pixels, so content of
  // full width is dstW * d / n high (rounded down), else full height and dstH * n / d wide.
  const n = srcW * parN;
  const d = srcH * parD;
  let contentW = dstW;
  let contentH = dstH;
  if (n * dstH !== d * dstW) {
    const toH = floorDiv(dstW * d, n);
    if (toH <= dstH) contentH = toH;
    else contentW = floorDiv(dstH * n, d);
  }
  const padX = floorDiv(dstW - contentW, 2);
  const padY = floorDiv(dstH - contentH, 2);
  return { ...base, scaleX: contentW / srcW, scaleY: contentH / srcH, padX, padY };
}
