// Deterministic augmentation of calibration pictures: horizontal flip, random scale and
// crop, brightness/contrast/saturation, grayscale, blur, noise and JPEG re-encoding. The
// plan (which operations, with which parameters) is drawn from a seed alone, so a cache
// index can record it per item and a rebuild gives the same bytes; the picture is
// augmented at source size, before it is fitted to the model input like any frame.
import jpeg from "jpeg-js";
import type { RgbImage } from "../../core/rgb-image.ts";
import { mulberry32 } from "../../util/prng.ts";

export interface AugmentPlan {
  flip: boolean;
  /** Crop window as fractions of the picture: side scale and top-left corner. */
  crop: { scale: number; x: number; y: number } | null;
  /** Multipliers; 1 leaves the picture as it is. */
  brightness: number;
  contrast: number;
  saturation: number;
  grayscale: boolean;
  /** Gaussian sigma in pixels, or 0. */
  blur: number;
  /** Gaussian noise sigma in 8-bit levels, or 0. */
  noise: number;
  /** JPEG quality of a re-encoding, or 0. */
  jpegQuality: number;
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** The operations for `seed`; probabilities and ranges are those of common detector training recipes. */
export function planAugment(seed: number): AugmentPlan {
  const r = mulberry32(seed);
  const between = (lo: number, hi: number): number => lo + (hi - lo) * r();
  const flip = r() < 0.5;
  const crop = r() < 0.7 ? { scale: round2(between(0.55, 0.95)), x: r(), y: r() } : null;
  if (crop !== null) {
    crop.x = round2(crop.x * (1 - crop.scale));
    crop.y = round2(crop.y * (1 - crop.scale));
  }
  const colour = r() < 0.8;
  const brightness = colour ? round2(between(0.65, 1.35)) : 1;
  const contrast = colour ? round2(between(0.65, 1.35)) : 1;
  const saturation = colour ? round2(between(0.5, 1.5)) : 1;
  const grayscale = r() < 0.1;
  const blur = r() < 0.2 ? round2(between(0.6, 1.8)) : 0;
  const noise = r() < 0.25 ? Math.round(between(3, 12)) : 0;
  const jpegQuality = r() < 0.3 ? Math.round(between(25, 85)) : 0;
  return { flip, crop, brightness, contrast, saturation, grayscale, blur, noise, jpegQuality };
}

/** The plan as the short text a cache index records, e.g. "flip,crop(0.8@0.1,0.05),jpeg(60)". */
export function describeAugment(p: AugmentPlan): string {
  const parts: string[] = [];
  if (p.flip) parts.push("flip");
  if (p.crop !== null) parts.push(`crop(${p.crop.scale}@${p.crop.x},${p.crop.y})`);
  if (p.brightness !== 1 || p.contrast !== 1 || p.saturation !== 1) parts.push(`color(b${p.brightness},c${p.contrast},s${p.saturation})`);
  if (p.grayscale) parts.push("gray");
  if (p.blur > 0) parts.push(`blur(${p.blur})`);
  if (p.noise > 0) parts.push(`noise(${p.noise})`);
  if (p.jpegQuality > 0) parts.push(`jpeg(${p.jpegQuality})`);
  return parts.length === 0 ? "none" : parts.join(",");
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : (v + 0.5) | 0;
}

function flipImage(img: RgbImage): RgbImage {
  const { width, height, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3;
      const d = row + (width - 1 - x) * 3;
      out[d] = data[s];
      out[d + 1] = data[s + 1];
      out[d + 2] = data[s + 2];
    }
  }
  return { width, height, data: out };
}

function cropImage(img: RgbImage, c: NonNullable<AugmentPlan["crop"]>): RgbImage {
  const w = Math.max(8, Math.round(img.width * c.scale));
  const h = Math.max(8, Math.round(img.height * c.scale));
  const x0 = Math.min(img.width - w, Math.round(img.width * c.x));
  const y0 = Math.min(img.height - h, Math.round(img.height * c.y));
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + w) * 3), y * w * 3);
  return { width: w, height: h, data: out };
}

/** Brightness, contrast about the mean grey, saturation about each pixel's grey; grayscale last. */
function colourImage(img: RgbImage, p: AugmentPlan): RgbImage {
  const d = img.data;
  const out = new Uint8Array(d.length);
  let sum = 0;
  for (let i = 0; i < d.length; i += 3) sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
  const mean = (sum / (d.length / 3)) * p.brightness;
  const sat = p.grayscale ? 0 : p.saturation;
  for (let i = 0; i < d.length; i += 3) {
    let r = d[i] * p.brightness;
    let g = d[i + 1] * p.brightness;
    let b = d[i + 2] * p.brightness;
    r = mean + (r - mean) * p.contrast;
    g = mean + (g - mean) * p.contrast;
    b = mean + (b - mean) * p.contrast;
    const grey = 0.299 * r + 0.587 * g + 0.114 * b;
    out[i] = clampByte(grey + (r - grey) * sat);
    out[i + 1] = clampByte(grey + (g - grey) * sat);
    out[i + 2] = clampByte(grey + (b - grey) * sat);
  }
  return { width: img.width, height: img.height, data: out };
}

function gaussianKernel(sigma: number): Float32Array {
  const radius = Math.max(1, Math.ceil(sigma * 2.5));
  const k = new Float32Array(radius * 2 + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += k[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  return k;
}

/** Separable Gaussian blur, edges clamped. */
function blurImage(img: RgbImage, sigma: number): RgbImage {
  const { width, height, data } = img;
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) acc += k[i + r] * data[(y * width + Math.min(width - 1, Math.max(0, x + i))) * 3 + c];
        tmp[(y * width + x) * 3 + c] = acc;
      }
    }
  }
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let i = -r; i <= r; i++) acc += k[i + r] * tmp[(Math.min(height - 1, Math.max(0, y + i)) * width + x) * 3 + c];
        out[(y * width + x) * 3 + c] = clampByte(acc);
      }
    }
  }
  return { width, height, data: out };
}

/** Gaussian noise (Box-Muller) from the item's own stream, so it is reproducible. */
function noiseImage(img: RgbImage, sigma: number, seed: number): RgbImage {
  const r = mulberry32(seed ^ 0x9e3779b9);
  const d = img.data;
  const out = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * sigma;
    out[i] = clampByte(d[i] + m * Math.cos(2 * Math.PI * v));
    if (i + 1 < d.length) out[i + 1] = clampByte(d[i + 1] + m * Math.sin(2 * Math.PI * v));
  }
  return { width: img.width, height: img.height, data: out };
}

function jpegImage(img: RgbImage, quality: number): RgbImage {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let i = 0, o = 0; i < img.data.length; i += 3, o += 4) {
    rgba[o] = img.data[i];
    rgba[o + 1] = img.data[i + 1];
    rgba[o + 2] = img.data[i + 2];
    rgba[o + 3] = 255;
  }
  const encoded = jpeg.encode({ data: rgba, width: img.width, height: img.height }, quality);
  const decoded = jpeg.decode(encoded.data, { useTArray: true, formatAsRGBA: false });
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}

/** Applies `plan` to a copy of `img` (geometry, colour, blur, noise, then JPEG). */
export function augment(img: RgbImage, plan: AugmentPlan, seed: number): RgbImage {
  let out = img;
  if (plan.flip) out = flipImage(out);
  if (plan.crop !== null) out = cropImage(out, plan.crop);
  if (plan.brightness !== 1 || plan.contrast !== 1 || plan.saturation !== 1 || plan.grayscale) out = colourImage(out, plan);
  if (plan.blur > 0) out = blurImage(out, plan.blur);
  if (plan.noise > 0) out = noiseImage(out, plan.noise, seed);
  if (plan.jpegQuality > 0) out = jpegImage(out, plan.jpegQuality);
  return out === img ? { width: img.width, height: img.height, data: img.data.slice() } : out;
}
