// The region in which objects are hazard candidates: either a strip of ground ahead of the
// camera (width and range, in the ground frame of camera-model.ts) or a polygon in the image.
// A ground corridor needs the camera model; an image polygon works without one.
//
// Both take a margin for hysteresis: an object inside stays inside until it is further out
// than the margin, so one walking along the edge does not flip in and out with every
// frame's jitter of its box.
//
// Pure: no I/O.
import type { Box } from "../core/types.ts";
import type { GroundPoint } from "./camera-model.ts";

export type CorridorSpec =
  | {
      type: "ground";
      /** full width, centred on offsetM */
      widthM: number;
      /** nearest and furthest forward distance (y) */
      minRangeM: number;
      maxRangeM: number;
      /** lateral position of the centre line, right positive */
      offsetM: number;
      /** hysteresis: an object inside leaves only when this far outside */
      marginM: number;
    }
  | {
      type: "image";
      /** vertices in source-frame pixels, in order (either winding); the bottom centre of a box is tested */
      polygon: [number, number][];
      marginPx: number;
    };

export interface CorridorInput {
  box: Box;
  /** ground position (camera model); absent without one or when not estimated */
  ground?: GroundPoint | null;
}

export class Corridor {
  constructor(readonly spec: CorridorSpec) {
    const issue = corridorIssue(spec);
    if (issue) throw new Error(`corridor: ${issue}`);
  }

  get needsGround(): boolean {
    return this.spec.type === "ground";
  }

  /**
   * Whether the object is inside. wasInside: the answer for this object last frame; with
   * hysteresis on, an object inside is judged against the corridor grown by the margin.
   */
  contains(o: CorridorInput, wasInside = false, hysteresis = true): boolean {
    const grow = hysteresis && wasInside;
    const s = this.spec;
    if (s.type === "ground") {
      if (!o.ground) return false;
      const m = grow ? s.marginM : 0;
      const { x, y } = o.ground;
      return Math.abs(x - s.offsetM) <= s.widthM / 2 + m && y >= s.minRangeM - m && y <= s.maxRangeM + m;
    }
    const u = (o.box[0] + o.box[2]) / 2;
    const v = o.box[3];
    if (pointInPolygon(u, v, s.polygon)) return true;
    return grow && distanceToPolygon(u, v, s.polygon) <= s.marginPx;
  }
}

/** What is wrong with a corridor, or null. */
export function corridorIssue(s: CorridorSpec): string | null {
  if (s.type === "ground") {
    if (!(s.widthM > 0)) return `widthM must be positive, got ${s.widthM}`;
    if (!(s.maxRangeM > s.minRangeM)) return `maxRangeM (${s.maxRangeM}) must exceed minRangeM (${s.minRangeM})`;
    if (!(s.marginM >= 0)) return `marginM must be >= 0, got ${s.marginM}`;
    return null;
  }
  if (s.polygon.length < 3) return `polygon needs at least 3 vertices, got ${s.polygon.length}`;
  if (Math.abs(polygonArea(s.polygon)) < 1) return "polygon has no area (vertices on one line?)";
  if (!(s.marginPx >= 0)) return `marginPx must be >= 0, got ${s.marginPx}`;
  return null;
}

function pointInPolygon(x: number, y: number, poly: readonly [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function distanceToPolygon(x: number, y: number, poly: readonly [number, number][]): number {
  let best = Infinity;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) best = Math.min(best, distanceToSegment(x, y, poly[j], poly[i]));
  return best;
}

function distanceToSegment(x: number, y: number, a: readonly [number, number], b: readonly [number, number]): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / len2));
  return Math.hypot(x - (a[0] + t * dx), y - (a[1] + t * dy));
}

function polygonArea(poly: readonly [number, number][]): number {
  let a = 0;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) a += poly[j][0] * poly[i][1] - poly[i][0] * poly[j][1];
  return a / 2;
}

/**
 * The corridor as a polygon in image pixels, for drawing: an image corridor's own vertices,
 * or a ground strip's four corners through `project` (ground point -> pixel; straight
 * ground edges stay straight in a pinhole image). Null when a corner does not project (it
 * lies behind the camera), or for a ground corridor without a projection.
 */
export function corridorOutline(spec: CorridorSpec, project?: (p: { x: number; y: number }) => { u: number; v: number } | null): [number, number][] | null {
  if (spec.type === "image") return spec.polygon.map(([x, y]) => [x, y]);
  if (project === undefined) return null;
  const half = spec.widthM / 2;
  const corners = [
    { x: spec.offsetM - half, y: spec.minRangeM },
    { x: spec.offsetM + half, y: spec.minRangeM },
    { x: spec.offsetM + half, y: spec.maxRangeM },
    { x: spec.offsetM - half, y: spec.maxRangeM },
  ];
  const out: [number, number][] = [];
  for (const c of corners) {
    const p = project(c);
    if (p === null) return null;
    out.push([p.u, p.v]);
  }
  return out;
}
