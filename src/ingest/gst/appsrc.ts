// Frames into GStreamer through an appsrc: the JPEG encoder of the live view and the video
// writer of `perceptd detect --out` feed their pipelines this way.
import type { RgbImage } from "../../core/rgb-image.ts";
import { isAppSrc, type GstAppSrcHandle } from "./binding.ts";
import type { GstRunner } from "./pipeline-runner.ts";

/** Caps of packed RGB frames; fps 0 for frames without a rate (stills). */
export function rgbCaps(width: number, height: number, fps: number): string {
  const [num, den] = fps > 0 ? fractionOf(fps) : [0, 1];
  return `video/x-raw,format=RGB,width=${width},height=${height},framerate=${num}/${den}`;
}

/** 29.97 -> 30000/1001 and 25 -> 25/1, so a container records the rate the source had. */
function fractionOf(fps: number): [number, number] {
  if (Number.isInteger(fps)) return [fps, 1];
  const ntsc = (fps * 1001) / 1000;
  if (Math.abs(ntsc - Math.round(ntsc)) < 1e-3) return [Math.round(ntsc) * 1000, 1001];
  return [Math.round(fps * 1000), 1000];
}

export function appSrcOf(runner: GstRunner, name: string): GstAppSrcHandle {
  const el = runner.findChild(name);
  if (!isAppSrc(el)) throw new Error(`${runner.where}: GStreamer pipeline has no appsrc named ${name}`);
  return el;
}

/**
 * GStreamer's RGB rows start on 4-byte boundaries; our images are packed. Rows are padded
 * (one copy) only when width * 3 is not a multiple of 4; otherwise the pixels go as they are.
 */
export function gstRgbBytes(img: RgbImage): Buffer {
  const row = img.width * 3;
  const stride = (row + 3) & ~3;
  if (stride === row) return Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  const out = Buffer.alloc(stride * img.height);
  for (let y = 0; y < img.height; y++) out.set(img.data.subarray(y * row, (y + 1) * row), y * stride);
  return out;
}

/** Queues one frame; `ptsNs` stamps it for containers that need timestamps. */
export function pushRgb(src: GstAppSrcHandle, img: RgbImage, ptsNs?: bigint): void {
  if (ptsNs === undefined) {
    src.push(gstRgbBytes(img));
    return;
  }
  const pts = Buffer.alloc(8);
  pts.writeBigUInt64BE(ptsNs);
  src.push(gstRgbBytes(img), pts);
}
