// A pinhole camera above a flat ground plane: image pixels to ground coordinates.
//
// Frames: the ground frame has its origin on the ground directly below the camera, x to the
// right, y forward (the camera's heading with yaw 0), z up; metres. The camera sits at
// (0, 0, heightM), pitched down by pitchDeg, turned right by yawDeg and rolled clockwise
// (seen from behind the camera) by rollDeg. Lens distortion is not modelled: undistort the
// video first, or accept errors that grow towards the image corners.
//
// Pure: no I/O.

export interface CameraModelParams {
  /** the frame size the intrinsics are given for; other frame sizes scale them */
  imageWidthPx: number;
  imageHeightPx: number;
  /** focal lengths and principal point, pixels; or horizontalFovDeg instead */
  fx?: number;
  fy?: number;
  cx?: number;
  cy?: number;
  /** horizontal field of view: square pixels, principal point at the image centre */
  horizontalFovDeg?: number;
  /** height of the optical centre above the ground */
  heightM: number;
  /** positive: looking down */
  pitchDeg: number;
  /** positive: turned right */
  yawDeg?: number;
  /** positive: rolled clockwise as seen from behind the camera */
  rollDeg?: number;
}

type Vec3 = [number, number, number];

export interface GroundPoint {
  /** lateral offset, metres, right positive */
  x: number;
  /** forward distance, metres */
  y: number;
  /** horizontal distance from the camera's foot point */
  range: number;
}

/** Problems with a camera model, each with the key it is about, for the config schema's messages. */
export interface CameraModelIssue {
  key: keyof CameraModelParams;
  message: string;
}

export class CameraModel {
  readonly width: number;
  readonly height: number;
  readonly fx: number;
  readonly fy: number;
  readonly cx: number;
  readonly cy: number;
  readonly heightM: number;
  private readonly right: Vec3;
  private readonly down: Vec3;
  private readonly forward: Vec3;

  constructor(p: CameraModelParams) {
    const issues = cameraModelIssues(p);
    if (issues.length > 0) throw new Error(`camera model: ${issues.map((i) => `${i.key}: ${i.message}`).join("; ")}`);
    const intr = intrinsics(p);
    this.width = p.imageWidthPx;
    this.height = p.imageHeightPx;
    this.fx = intr.fx;
    this.fy = intr.fy;
    this.cx = intr.cx;
    this.cy = intr.cy;
    this.heightM = p.heightM;
    const axes = cameraAxes(p.pitchDeg, p.yawDeg ?? 0, p.rollDeg ?? 0);
    this.right = axes.right;
    this.down = axes.down;
    this.forward = axes.forward;
  }

  /** The same camera delivering frames of another size (a scaled capture of the same lens). */
  scaledTo(width: number, height: number): CameraModel {
    if (width === this.width && height === this.height) return this;
    const sx = width / this.width;
    const sy = height / this.height;
    return new CameraModel({
      imageWidthPx: width,
      imageHeightPx: height,
      fx: this.fx * sx,
      fy: this.fy * sy,
      cx: this.cx * sx,
      cy: this.cy * sy,
      heightM: this.heightM,
      ...anglesOf(this.forward, this.right),
    });
  }

  /** Viewing ray of a pixel in ground-frame coordinates (not normalised). */
  ray(u: number, v: number): Vec3 {
    const xn = (u - this.cx) / this.fx;
    const yn = (v - this.cy) / this.fy;
    return [0, 1, 2].map((i) => xn * this.right[i] + yn * this.down[i] + this.forward[i]) as Vec3;
  }

  /** Where a pixel's ray meets the ground; null at or above the horizon. */
  groundPoint(u: number, v: number): GroundPoint | null {
    const d = this.ray(u, v);
    // Rays this close to the horizon meet the ground kilometres away: no usable distance.
    if (d[2] > -1e-6) return null;
    const t = this.heightM / -d[2];
    const x = t * d[0];
    const y = t * d[1];
    return { x, y, range: Math.hypot(x, y) };
  }

  /**
   * Where a pixel's ray meets the horizontal plane at heightM above the ground (the top of an
   * object of known height); null where the ray does not reach that plane ahead.
   */
  pointAtHeight(u: number, v: number, heightM: number): GroundPoint | null {
    const d = this.ray(u, v);
    const dz = heightM - this.heightM;
    if (Math.abs(d[2]) < 1e-9 || Math.sign(d[2]) !== Math.sign(dz)) return null;
    const t = dz / d[2];
    const x = t * d[0];
    const y = t * d[1];
    return { x, y, range: Math.hypot(x, y) };
  }

  /** Image row of the horizon at column u (may lie outside the image). */
  horizonRow(u: number): number {
    return horizonRow(this.right, this.down, this.forward, (u - this.cx) / this.fx, this.cy, this.fy);
  }

  /** Pixel of a ground point; null when it is behind the camera. */
  project(p: { x: number; y: number }, zM = 0): { u: number; v: number } | null {
    const rel: Vec3 = [p.x, p.y, zM - this.heightM];
    const zc = dot(rel, this.forward);
    if (zc <= 1e-9) return null;
    return { u: this.cx + (this.fx * dot(rel, this.right)) / zc, v: this.cy + (this.fy * dot(rel, this.down)) / zc };
  }
}

/**
 * Everything wrong with a set of parameters: missing or contradictory intrinsics, a height
 * that is not positive, and a horizon at or below the bottom of the image (the camera would
 * see no ground at all: usually a pitch with the wrong sign or in radians). A horizon above
 * the top of the image is allowed: a camera looking steeply down sees only ground.
 */
export function cameraModelIssues(p: CameraModelParams): CameraModelIssue[] {
  const issues: CameraModelIssue[] = [];
  const explicit = (["fx", "fy", "cx", "cy"] as const).filter((k) => p[k] !== undefined);
  if (p.horizontalFovDeg !== undefined && explicit.length > 0)
    issues.push({ key: "horizontalFovDeg", message: `give either horizontalFovDeg or fx, fy, cx, cy, not both (also set: ${explicit.join(", ")})` });
  else if (p.horizontalFovDeg === undefined && explicit.length < 4)
    issues.push({
      key: explicit.length === 0 ? "horizontalFovDeg" : (["fx", "fy", "cx", "cy"] as const).find((k) => p[k] === undefined)!,
      message: explicit.length === 0 ? "intrinsics missing: give horizontalFovDeg, or fx, fy, cx and cy" : `intrinsics incomplete: fx, fy, cx and cy go together (missing: ${(["fx", "fy", "cx", "cy"] as const).filter((k) => p[k] === undefined).join(", ")})`,
    });
  if (!(p.heightM > 0)) issues.push({ key: "heightM", message: `mounting height must be positive, got ${p.heightM}` });
  if (!(p.imageWidthPx > 0) || !(p.imageHeightPx > 0)) issues.push({ key: "imageWidthPx", message: "image size must be positive" });
  if (!(Math.abs(p.pitchDeg) < 89.9)) issues.push({ key: "pitchDeg", message: `must be within (-89.9, 89.9) degrees, got ${p.pitchDeg}` });
  if (issues.length > 0) return issues;

  const { fx, fy, cx, cy } = intrinsics(p);
  const { right, down, forward } = cameraAxes(p.pitchDeg, p.yawDeg ?? 0, p.rollDeg ?? 0);
  const rows = [0, p.imageWidthPx].map((u) => horizonRow(right, down, forward, (u - cx) / fx, cy, fy));
  const lowest = Math.min(...rows);
  if (!(lowest < p.imageHeightPx))
    issues.push({
      key: "pitchDeg",
      message: `the horizon falls at image row ${Number.isFinite(lowest) ? lowest.toFixed(0) : lowest}, at or below the bottom (row ${p.imageHeightPx}): the camera would see no ground (pitch is positive looking down, in degrees)`,
    });
  return issues;
}

function intrinsics(p: CameraModelParams): { fx: number; fy: number; cx: number; cy: number } {
  if (p.horizontalFovDeg !== undefined) {
    const f = p.imageWidthPx / 2 / Math.tan((p.horizontalFovDeg * Math.PI) / 360);
    return { fx: f, fy: f, cx: p.imageWidthPx / 2, cy: p.imageHeightPx / 2 };
  }
  return { fx: p.fx!, fy: p.fy!, cx: p.cx!, cy: p.cy! };
}

function cameraAxes(pitchDeg: number, yawDeg: number, rollDeg: number): { right: Vec3; down: Vec3; forward: Vec3 } {
  const th = (pitchDeg * Math.PI) / 180;
  const ph = (rollDeg * Math.PI) / 180;
  const ps = (yawDeg * Math.PI) / 180;
  const r0: Vec3 = [1, 0, 0];
  const d0: Vec3 = [0, -Math.sin(th), -Math.cos(th)];
  const f0: Vec3 = [0, Math.cos(th), -Math.sin(th)];
  const r1 = add(scale(r0, Math.cos(ph)), scale(d0, Math.sin(ph)));
  const d1 = add(scale(r0, -Math.sin(ph)), scale(d0, Math.cos(ph)));
  const yaw = (v: Vec3): Vec3 => [v[0] * Math.cos(ps) + v[1] * Math.sin(ps), -v[0] * Math.sin(ps) + v[1] * Math.cos(ps), v[2]];
  return { right: yaw(r1), down: yaw(d1), forward: yaw(f0) };
}

/** Pitch, yaw and roll back from the axes (for scaledTo). */
function anglesOf(forward: Vec3, right: Vec3): { pitchDeg: number; yawDeg: number; rollDeg: number } {
  const deg = 180 / Math.PI;
  const pitch = Math.asin(-forward[2]);
  const yaw = Math.atan2(forward[0], forward[1]);
  // right = cos(roll) * r0 + sin(roll) * d0, with r0 horizontal: its z is sin(roll) * d0.z
  const d0z = -Math.cos(pitch);
  const roll = Math.asin(Math.max(-1, Math.min(1, right[2] / d0z)));
  return { pitchDeg: pitch * deg, yawDeg: yaw * deg, rollDeg: roll * deg };
}

function horizonRow(right: Vec3, down: Vec3, forward: Vec3, xn: number, cy: number, fy: number): number {
  // ray z = xn * right.z + yn * down.z + forward.z = 0
  if (Math.abs(down[2]) < 1e-12) return Number.NEGATIVE_INFINITY;
  const yn = -(xn * right[2] + forward[2]) / down[2];
  return cy + fy * yn;
}

const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const scale = (a: Vec3, k: number): Vec3 => [a[0] * k, a[1] * k, a[2] * k];
