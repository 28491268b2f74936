// Overlay for `perceptd detect --out annotated.png`: a quick visual check of what the
// detector saw, drawn in plain TypeScript so the CLI needs no canvas or font library.
import type { Detection } from "../infer/types.ts";
import { assertRgbImage, type RgbImage } from "../ingest/rgb-image.ts";

type Rgb = readonly [number, number, number];

// Saturated, mutually distinct colours (the Ultralytics palette's first twelve), indexed
// by class id so the same class keeps its colour across frames.
const PALETTE: readonly Rgb[] = [
  [255, 56, 56], [255, 157, 151], [255, 112, 31], [255, 178, 29], [207, 210, 49], [72, 249, 10],
  [146, 204, 23], [61, 219, 134], [26, 147, 52], [0, 212, 187], [44, 153, 168], [0, 194, 255],
];

/*
 * 3x5 bitmap font: five octal digits per glyph, one per row from the top, bit 4 = left
 * column. Labels are lowercased; characters outside the set draw as blanks.
 */
const FONT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 .%";
const FONT_ROWS =
  "25755656563444365556746477464434553557557222711152556554444757755655552555265644" +
  "25563656553421672222555575555255775552555522271247755572622771747717175571174717" +
  "74757711117575775717000000000251245";
const GLYPH_W = 3;
const GLYPH_H = 5;

function glyphRows(ch: string): string {
  const i = FONT_CHARS.indexOf(ch);
  return i < 0 ? "00000" : FONT_ROWS.slice(i * GLYPH_H, i * GLYPH_H + GLYPH_H);
}

function colourFor(classId: number): Rgb {
  const n = PALETTE.length;
  return PALETTE[((Math.trunc(classId) % n) + n) % n];
}

function fillRect(img: RgbImage, x0: number, y0: number, x1: number, y1: number, c: Rgb): void {
  // Inclusive-exclusive [x0, x1) x [y0, y1), clipped to the image.
  const xa = Math.max(0, x0);
  const xb = Math.min(img.width, x1);
  const ya = Math.max(0, y0);
  const yb = Math.min(img.height, y1);
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

function labelText(d: Detection): string {
  const pct = Math.round(Math.min(1, Math.max(0, d.score)) * 100);
  return `${d.label.toLowerCase()} ${pct}%`;
}

/** A copy of `img` with each detection's box (2 px, inside the box) and a label tag. */
export function drawDetections(img: RgbImage, dets: readonly Detection[]): RgbImage {
  assertRgbImage(img, "drawDetections");
  const out: RgbImage = { width: img.width, height: img.height, data: img.data.slice() };
  const { width: w, height: h } = out;
  // 3x5 glyphs are unreadable at 1x on camera frames but too big on thumbnails.
  const scale = Math.min(w, h) >= 240 ? 2 : 1;
  const thick = 2;

  for (const det of dets) {
    const [bx1, by1, bx2, by2] = det.box;
    if (![bx1, by1, bx2, by2].every(Number.isFinite)) continue;
    // Continuous box edges -> the pixel columns/rows they cover.
    const left = Math.max(0, Math.round(Math.min(bx1, bx2)));
    const top = Math.max(0, Math.round(Math.min(by1, by2)));
    const right = Math.min(w, Math.round(Math.max(bx1, bx2)));
    const bottom = Math.min(h, Math.round(Math.max(by1, by2)));
    if (right <= left || bottom <= top) continue;
    const c = colourFor(det.classId);
    fillRect(out, left, top, right, top + thick, c);
    fillRect(out, left, bottom - thick, right, bottom, c);
    fillRect(out, left, top, left + thick, bottom, c);
    fillRect(out, right - thick, top, right, bottom, c);

    const text = labelText(det);
    const tagW = (text.length * (GLYPH_W + 1) - 1) * scale + 2 * scale;
    const tagH = GLYPH_H * scale + 2 * scale;
    // Above the box when there is room, otherwise just inside its top edge.
    const tagY = top - tagH >= 0 ? top - tagH : top;
    const tagX = Math.max(0, Math.min(left, w - tagW));
    fillRect(out, tagX, tagY, tagX + tagW, tagY + tagH, c);
    const luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    const ink: Rgb = luma > 140 ? [0, 0, 0] : [255, 255, 255];
    drawText(out, text, tagX + scale, tagY + scale, scale, ink);
  }
  return out;
}
