// What the daemon saw, drawn onto a frame: boxes coloured by class with track id, score,
// range and time to collision, the corridor, the alerts by level, and a caption. One module
// for the PNG and video of `perceptd detect --out` and for the live view, in plain
// TypeScript so none of them needs a canvas or font library.
//
// Pure: no I/O. Coordinates in a scene are source-frame pixels (where the bus's boxes and
// the corridor polygon live); the image drawn on may be the source frame itself or a
// rendering of it at another size, and `sourceWidth`/`sourceHeight` map one to the other.
import type { Box, Detection } from "../core/types.ts";
import { assertRgbImage, type RgbImage } from "../core/rgb-image.ts";

export type Rgb = readonly [number, number, number];
export type AlertLevel = "info" | "warning" | "critical";

/** A detection and what the daemon knows about it; absent fields are unknown and not drawn. */
export interface OverlayObject extends Detection {
  trackId?: number | bigint;
  rangeM?: number;
  ttcS?: number;
  /** the object is in an active alert at this level */
  alert?: AlertLevel;
}

export interface OverlayAlert {
  level: AlertLevel;
  /** e.g. "pedestrian #12 7.9m ttc 1.8s" */
  text: string;
}

export interface OverlayScene {
  objects: readonly OverlayObject[];
  /** corridor outline in source pixels, closed (last vertex joins the first) */
  corridor?: readonly (readonly [number, number])[];
  /** top-left line, e.g. "demo #1234" */
  caption?: string;
  /** active alerts, listed under the caption */
  alerts?: readonly OverlayAlert[];
  /** size of the frame the coordinates refer to; default: the image's own size */
  sourceWidth?: number;
  sourceHeight?: number;
}

// Saturated, mutually distinct colours (the Ultralytics palette's first twelve), indexed
// by class id so the same class keeps its colour across frames.
const PALETTE: readonly Rgb[] = [
  [255, 56, 56], [255, 157, 151], [255, 112, 31], [255, 178, 29], [207, 210, 49], [72, 249, 10],
  [146, 204, 23], [61, 219, 134], [26, 147, 52], [0, 212, 187], [44, 153, 168], [0, 194, 255],
];

/** Alert levels in the colours a dashboard uses for them; critical is a deeper red than the person class. */
export const ALERT_COLOURS: Readonly<Record<AlertLevel, Rgb>> = {
  info: [64, 160, 255],
  warning: [255, 200, 0],
  critical: [200, 0, 0],
};

/** Not a class colour, so the corridor never reads as a box. */
export const CORRIDOR_COLOUR: Rgb = [255, 0, 255];
const CAPTION_BACKGROUND: Rgb = [0, 0, 0];

export function colourForClass(classId: number): Rgb {
  const n = PALETTE.length;
  return PALETTE[((Math.trunc(classId) % n) + n) % n];
}

/*
 * 3x5 bitmap font: five octal digits per glyph, one per row from the top, bit 4 = left
 * column. Labels are lowercased; characters outside the set draw as blanks.
 */
const FONT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 .%#-:/+";
const FONT_ROWS =
  "25755656563444365556746477464434553557557222711152556554444757755655552555265644" +
  "25563656553421672222555575555255775552555522271247755572622771747717175571174717" +
  "74757711117575775717000000000251245" +
  "57575" + // #
  "00700" + // -
  "02020" + // :
  "11244" + // /
  "02720"; // +
const GLYPH_W = 3;
const GLYPH_H = 5;

function glyphRows(ch: string): string {
  const i = FONT_CHARS.indexOf(ch);
  return i < 0 ? "00000" : FONT_ROWS.slice(i * GLYPH_H, i * GLYPH_H + GLYPH_H);
}

function fillRect(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
  // Inclusive-exclusive [x0, x1) x [y0, y1), clipped to the image.
  const xa = Math.max(0, Math.round(x0));
  const xb = Math.min(img.width, Math.round(x1));
  const ya = Math.max(0, Math.round(y0));
  const yb = Math.min(img.height, Math.round(y1));
  const d = img.data;
  for (let y = ya; y < yb; y++) {
    for (let x = xa, o = (y * img.width + xa) * 3; x < xb; x++, o += 3) {
      d[o] = c[0];
      d[o + 1] = c[1];
      d[o + 2] = c[2];
    }
  }
}

function drawText(img: RgbImage, text: string, x: number, y: number, scale: number, c: Rgb): void {
  for (let k = 0; k < text.length; k++) {
    const rows = glyphRows(text[k]);
    const gx = x + k * (GLYPH_W + 1) * scale;
    for (let r = 0; r < GLYPH_H; r++) {
      const bits = rows.charCodeAt(r) - 48;
      for (let col = 0; col < GLYPH_W; col++) {
        if ((bits >> (GLYPH_W - 1 - col)) & 1) {
          fillRect(img, gx + col * scale, y + r * scale, gx + (col + 1) * scale, y + (r + 1) * scale, c);
        }
      }
    }
  }
}

function inkOn(c: Rgb): Rgb {
  const luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
  return luma > 140 ? [0, 0, 0] : [255, 255, 255];
}

interface Tag {
  w: number;
  h: number;
}

function tagSize(text: string, scale: number): Tag {
  return { w: (text.length * (GLYPH_W + 1) - 1) * scale + 2 * scale, h: GLYPH_H * scale + 2 * scale };
}

/** A filled tag with `text`, its top-left corner at (x, y). */
function drawTag(img: RgbImage, text: string, x: number, y: number, scale: number, bg: Rgb): void {
  const { w, h } = tagSize(text, scale);
  fillRect(img, x, y, x + w, y + h, bg);
  drawText(img, text.toLowerCase(), x + scale, y + scale, scale, inkOn(bg));
}

function outline(img: RgbImage, left: number, top: number, right: number, bottom: number, thick: number, c: Rgb): void {
  fillRect(img, left, top, right, top + thick, c);
  fillRect(img, left, bottom - thick, right, bottom, c);
  fillRect(img, left, top, left + thick, bottom, c);
  fillRect(img, right - thick, top, right, bottom, c);
}

/** A straight segment `thick` pixels wide: squares stamped at every pixel step along it. */
function drawLine(img: RgbImage, x0: number, y0: number, x1: number, y1: number, thick: number, c: Rgb): void {
  const steps = Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0)));
  // A corridor vertex far outside the frame would make millions of steps; nothing is drawn
  // beyond a few frame sizes anyway, so such lines are clipped by their step count.
  if (!Number.isFinite(steps) || steps > 100_000) return;
  const half = thick / 2;
  for (let i = 0; i <= steps; i++) {
    const t = steps === 0 ? 0 : i / steps;
    const x = x0 + (x1 - x0) * t;
    const y = y0 + (y1 - y0) * t;
    fillRect(img, x - half, y - half, x + half, y + half, c);
  }
}

/** One line of what is known about an object: "person id12 87% 9.4m ttc 3.1s" ("#" would read as "h" in 3x5 glyphs). */
export function objectLabel(o: OverlayObject): string {
  const pct = Math.round(Math.min(1, Math.max(0, o.score)) * 100);
  const parts = [o.label.toLowerCase()];
  if (o.trackId !== undefined) parts.push(`id${String(o.trackId)}`);
  parts.push(`${pct}%`);
  if (o.rangeM !== undefined && Number.isFinite(o.rangeM)) parts.push(`${o.rangeM.toFixed(1)}m`);
  if (o.ttcS !== undefined && Number.isFinite(o.ttcS)) parts.push(`ttc ${o.ttcS.toFixed(1)}s`);
  return parts.join(" ");
}

/** Sizes that read on a camera frame: 3x5 glyphs are unreadable at 1x there, too big on thumbnails. */
function metricsFor(w: number, h: number): { scale: number; thick: number } {
  const short = Math.min(w, h);
  return { scale: short >= 720 ? 3 : short >= 240 ? 2 : 1, thick: Math.max(2, Math.round(short / 200)) };
}

function toPixels(box: Box, sx: number, sy: number, w: number, h: number): [number, number, number, number] | null {
  const [bx1, by1, bx2, by2] = box;
  if (![bx1, by1, bx2, by2].every(Number.isFinite)) return null;
  // Continuous box edges -> the pixel columns/rows they cover.
  const left = Math.max(0, Math.round(Math.min(bx1, bx2) * sx));
  const top = Math.max(0, Math.round(Math.min(by1, by2) * sy));
  const right = Math.min(w, Math.round(Math.max(bx1, bx2) * sx));
  const bottom = Math.min(h, Math.round(Math.max(by1, by2) * sy));
  return right <= left || bottom <= top ? null : [left, top, right, bottom];
}

/**
 * Draws `scene` onto `img` in place and returns it. Objects in an alert get a second,
 * outer outline in the level's colour and their tag in that colour too, drawn last so
 * they stay on top. The caption and the alert list come last of all, at the top left.
 */
export function drawScene(img: RgbImage, scene: OverlayScene): RgbImage {
  assertRgbImage(img, "drawScene");
  const { width: w, height: h } = img;
  const sx = w / (scene.sourceWidth ?? w);
  const sy = h / (scene.sourceHeight ?? h);
  if (!(sx > 0 && sy > 0 && Number.isFinite(sx) && Number.isFinite(sy))) {
    throw new RangeError(`drawScene: source size must be positive, got ${String(scene.sourceWidth)}x${String(scene.sourceHeight)}`);
  }
  const { scale, thick } = metricsFor(w, h);

  const poly = scene.corridor ?? [];
  for (let i = 0; i < poly.length && poly.length >= 2; i++) {
    const [ax, ay] = poly[i];
    const [bx, by] = poly[(i + 1) % poly.length];
    drawLine(img, ax * sx, ay * sy, bx * sx, by * sy, thick, CORRIDOR_COLOUR);
  }

  const ordered = [...scene.objects].sort((a, b) => alertRank(a.alert) - alertRank(b.alert));
  for (const o of ordered) {
    const px = toPixels(o.box, sx, sy, w, h);
    if (px === null) continue;
    const [left, top, right, bottom] = px;
    const c = colourForClass(o.classId);
    if (o.alert !== undefined) outline(img, left - 2 * thick, top - 2 * thick, right + 2 * thick, bottom + 2 * thick, 2 * thick, ALERT_COLOURS[o.alert]);
    outline(img, left, top, right, bottom, thick, c);
    // The level shows as the ring's and the tag's colour, and is spelled out in the alert list.
    const text = objectLabel(o);
    const tag = tagSize(text, scale);
    const ring = o.alert === undefined ? 0 : 2 * thick;
    // Above the box when there is room, otherwise just inside its top edge.
    const tagY = top - ring - tag.h >= 0 ? top - ring - tag.h : top;
    const tagX = Math.max(0, Math.min(left - ring, w - tag.w));
    drawTag(img, text, tagX, tagY, scale, o.alert === undefined ? c : ALERT_COLOURS[o.alert]);
  }

  let y = 0;
  if (scene.caption !== undefined && scene.caption !== "") {
    drawTag(img, scene.caption, 0, y, scale, CAPTION_BACKGROUND);
    y += tagSize(scene.caption, scale).h;
  }
  for (const a of scene.alerts ?? []) {
    const text = `${a.level} ${a.text}`;
    drawTag(img, text, 0, y, scale, ALERT_COLOURS[a.level]);
    y += tagSize(text, scale).h;
  }
  return img;
}

function alertRank(level: AlertLevel | undefined): number {
  return level === undefined ? 0 : level === "info" ? 1 : level === "warning" ? 2 : 3;
}

/** A copy of `img` with each detection's box and a label tag (the input stays as it was). */
export function drawDetections(img: RgbImage, dets: readonly OverlayObject[]): RgbImage {
  assertRgbImage(img, "drawDetections");
  return drawScene({ width: img.width, height: img.height, data: img.data.slice() }, { objects: dets });
}
