// Distance to a detected object, and its closing speed and time to collision.
//
// Distance comes from the bottom edge of the box: the object stands on the ground, so the
// ray through the middle of the bottom edge meets the ground where the object is (a flat
// ground and a correctly calibrated camera assumed; see camera-model.ts and the README's
// "Hazard assessment" for how the error grows with distance). When the bottom edge is cut
// off by the frame, the ray through it meets the ground short of the object; then the top
// edge is used with the class's typical height instead (the top of a 1.7 m person is on
// the plane z = 1.7 m), and the direction still comes from the bottom-centre ray. Where that
// is ill-conditioned (a camera at about the object's height, as on a car looking at
// people), the frame's bottom row gives an upper bound instead (see RangeMethod).
//
// Closing speed is the rate of change of the smoothed distance (an alpha-beta filter on
// range); time to collision is distance / closing speed while the object closes faster
// than a minimum speed, undefined otherwise.
//
// Pure: no I/O.
import type { Box } from "../core/types.ts";
import type { CameraModel, GroundPoint } from "./camera-model.ts";

/** Typical heights (metres) of COCO classes, for the cut-off-bottom fallback; config may add or override. */
export const DEFAULT_KNOWN_HEIGHTS_M: Readonly<Record<string, number>> = {
  person: 1.7,
  bicycle: 1.1,
  motorcycle: 1.3,
  car: 1.5,
  bus: 3.2,
  truck: 3.0,
  dog: 0.6,
  horse: 1.6,
  cow: 1.5,
};

/**
 * How a distance was found: ground (bottom edge on the ground plane), known-height (bottom
 * cut off; top edge at the class's typical height), frame-bottom (bottom cut off and the
 * top edge unusable: the ground distance of the frame's bottom row, which the object is
 * nearer than; an upper bound, so a hazard is never placed further away than it can be).
 */
export type RangeMethod = "ground" | "known-height" | "frame-bottom";

export interface ObjectPosition extends GroundPoint {
  method: RangeMethod;
}

export interface RangeOptions {
  /** a box edge within this many pixels of the frame's edge is taken as cut off */
  edgeMarginPx: number;
  /** distances beyond this are dropped as meaningless (rays near the horizon) */
  maxRangeM: number;
  knownHeightsM: Readonly<Record<string, number>>;
  /**
   * the known-height fallback needs the camera this far above or below the object's top:
   * the distance it gives is off by the same fraction as the class height is off from the
   * object's real height relative to this difference (a 1.7 m person who is 1.5 m tall,
   * seen by a camera 1.4 m up: 0.2 / 0.3, 67 %), so below it the frame-bottom bound is used
   */
  minHeightDifferenceM: number;
}

export const DEFAULT_RANGE_OPTIONS: RangeOptions = {
  edgeMarginPx: 2,
  maxRangeM: 150,
  knownHeightsM: DEFAULT_KNOWN_HEIGHTS_M,
  minHeightDifferenceM: 1,
};

/** Ground position of the object in a box, or null when neither edge gives one. */
export function positionOfBox(camera: CameraModel, box: Box, label: string, opts: RangeOptions = DEFAULT_RANGE_OPTIONS): ObjectPosition | null {
  const [x1, y1, x2, y2] = box;
  const u = (x1 + x2) / 2;
  const bottomCut = y2 >= camera.height - opts.edgeMarginPx;
  const foot = camera.groundPoint(u, Math.min(y2, camera.height));
  if (!bottomCut) {
    if (foot === null || foot.range > opts.maxRangeM) return null;
    return { ...foot, method: "ground" };
  }
  const h = opts.knownHeightsM[label];
  const topCut = y1 <= opts.edgeMarginPx;
  const bound = foot && foot.range <= opts.maxRangeM ? { ...foot, method: "frame-bottom" as const } : null;
  if (h === undefined || topCut || Math.abs(camera.heightM - h) < opts.minHeightDifferenceM) return bound;
  const top = camera.pointAtHeight(u, y1, h);
  if (top === null || top.range > opts.maxRangeM) return bound;
  // Direction from the foot ray where it exists (the object's footprint), scaled to the range
  // the top edge gives.
  const dir = foot && foot.range > 1e-6 ? foot : top;
  const k = top.range / dir.range;
  return { x: dir.x * k, y: dir.y * k, range: top.range, method: "known-height" };
}

export interface RangeFilterConfig {
  /** alpha-beta gains on range */
  alpha: number;
  beta: number;
  /** closing slower than this (m/s) gives no time to collision */
  minClosingSpeedMps: number;
}

// Gains chosen on synthetic approaches with 1 px of box jitter (test/perception/): for a car
// camera a pixel of the bottom edge is 0.17 m of range at 12 m and a metre at 30 m, and the
// speed (a difference of ranges) must average that out to give a TTC good to 10 %: with
// these, the worst frame of 29 noisy approaches was 9.6 % off from 15 m in (0.3/0.05: 20 %).
// The price is a speed that settles about 1.5 s (15 frames) after an object starts or
// stops closing; at 30 fps, a third of that.
export const DEFAULT_RANGE_FILTER: RangeFilterConfig = { alpha: 0.2, beta: 0.02, minClosingSpeedMps: 0.2 };

export interface RangeEstimate {
  /** smoothed distance, metres */
  rangeM: number;
  /** positive while the object comes closer, m/s; 0 until two measurements */
  closingSpeedMps: number;
  /** undefined while not closing faster than minClosingSpeedMps */
  ttcS: number | undefined;
}

/**
 * Gains of the k-th update (k from 1): those of a least-squares line through all k
 * measurements so far (alpha = 2(2k-1)/(k(k+1)), beta = 6/(k(k+1))) until they fall to the
 * steady ones. A fixed-gain filter started from the first two measurements takes their
 * difference, noise and all, as the speed and needs seconds to forget it; the growing-memory
 * start is as good as a line fit can be from the second measurement on.
 */
function gains(k: number, steady: { alpha: number; beta: number }): { alpha: number; beta: number } {
  return { alpha: Math.max(steady.alpha, (2 * (2 * k - 1)) / (k * (k + 1))), beta: Math.max(steady.beta, 6 / (k * (k + 1))) };
}

/** One constant-velocity alpha-beta filter in one coordinate, times in nanoseconds. */
class AlphaBeta {
  x = 0;
  v = 0;
  n = 0;
  private lastNs = 0n;

  constructor(private readonly steady: { alpha: number; beta: number }) {}

  update(z: number, tNs: bigint): void {
    if (this.n === 0) {
      this.x = z;
      this.v = 0;
    } else {
      const dt = Number(tNs - this.lastNs) / 1e9;
      // Two measurements at one time: nothing to learn about speed; average them.
      if (dt <= 0) {
        this.x = (this.x + z) / 2;
        return;
      }
      const { alpha, beta } = gains(this.n + 1, this.steady);
      const pred = this.x + this.v * dt;
      const res = z - pred;
      this.x = pred + alpha * res;
      this.v += (beta * res) / dt;
    }
    this.n++;
    this.lastNs = tNs;
  }
}

/**
 * Smoothed range and its rate for one tracked object. Measurements come with their time, so
 * dropped frames stretch the step instead of distorting the speed.
 */
export class RangeFilter {
  private readonly f: AlphaBeta;

  constructor(private readonly cfg: RangeFilterConfig = DEFAULT_RANGE_FILTER) {
    this.f = new AlphaBeta(cfg);
  }

  update(rangeM: number, tNs: bigint): RangeEstimate {
    this.f.update(rangeM, tNs);
    return this.estimate();
  }

  estimate(): RangeEstimate {
    const closing = this.f.n >= 2 ? -this.f.v : 0;
    const ttcS = closing > this.cfg.minClosingSpeedMps ? Math.max(0, this.f.x) / closing : undefined;
    return { rangeM: this.f.x, closingSpeedMps: closing, ttcS };
  }
}

/** Smoothed ground position and velocity of one tracked object (x right, y forward), the same filter per axis. */
export class GroundVelocityFilter {
  private readonly fx: AlphaBeta;
  private readonly fy: AlphaBeta;

  constructor(gainsSteady: { alpha: number; beta: number } = DEFAULT_RANGE_FILTER) {
    this.fx = new AlphaBeta(gainsSteady);
    this.fy = new AlphaBeta(gainsSteady);
  }

  update(x: number, y: number, tNs: bigint): { x: number; y: number; vx: number; vy: number } {
    this.fx.update(x, tNs);
    this.fy.update(y, tNs);
    return { x: this.fx.x, y: this.fy.x, vx: this.fx.v, vy: this.fy.v };
  }
}
