// The hazard assessment of one camera: tracker -> ground geometry -> corridor -> alerts, one
// frame at a time. The daemon holds one per camera and feeds it every result in order.
//
// - Every camera gets tracking (detections carry track ids).
// - A camera with a camera model gets distance, closing speed and time to collision.
// - A camera with a corridor gets alerts; without one nothing is a candidate and no alert
//   is ever raised (an alert everywhere in view would be noise, not a decision).
//
// Pure: no I/O, no clocks; times are the frames' ingest times.
import type { Box, Detection } from "../core/types.ts";
import { AlertManager, type ActiveAlert, type AlertKindName, type AlertObservation, type AlertRules, type AlertUpdate } from "./alerts.ts";
import { CameraModel, type CameraModelParams } from "./camera-model.ts";
import { Corridor, type CorridorSpec } from "./corridor.ts";
import {
  DEFAULT_RANGE_FILTER,
  DEFAULT_RANGE_OPTIONS,
  GroundVelocityFilter,
  positionOfBox,
  RangeFilter,
  type ObjectPosition,
  type RangeFilterConfig,
  type RangeOptions,
} from "./geometry.ts";
import { Tracker, type Track, type TrackerConfig } from "./tracker.ts";

export interface HazardConfig {
  camera?: CameraModelParams;
  corridor?: CorridorSpec;
  tracker?: Partial<TrackerConfig>;
  alerts: AlertRules;
  range?: Partial<RangeOptions>;
  rangeFilter?: Partial<RangeFilterConfig>;
}

/** What the assessment adds to one detection (absent: unknown). */
export interface DetectionAssessment {
  /** the confirmed track the detection belongs to; absent for tentative tracks and unassociated detections */
  trackId?: number;
  rangeM?: number;
  ttcS?: number;
  inCorridor: boolean;
}

export interface TrackAssessment {
  id: number;
  classId: number;
  label: string;
  confirmed: boolean;
  /** updated by a detection this frame */
  measured: boolean;
  box: Box;
  velocityPxPerS: { x: number; y: number };
  /** smoothed ground position and velocity (x right, y forward; m, m/s); absent without a camera model */
  ground?: { x: number; y: number; vx: number; vy: number; method: ObjectPosition["method"] };
  rangeM?: number;
  closingSpeedMps?: number;
  ttcS?: number;
  inCorridor: boolean;
  kind: AlertKindName | null;
  firstSeenNs: bigint;
}

export interface HazardResult {
  /** one per input detection, same order */
  detections: DetectionAssessment[];
  tracks: TrackAssessment[];
  alerts: AlertUpdate;
}

interface PerTrack {
  range: RangeFilter;
  ground: GroundVelocityFilter;
  inCorridor: boolean;
  last?: TrackAssessment;
}

export class HazardAssessor {
  private readonly tracker: Tracker;
  private readonly baseCamera: CameraModel | null;
  private camera: CameraModel | null;
  private readonly corridor: Corridor | null;
  private readonly alertManager: AlertManager;
  private readonly rangeOpts: RangeOptions;
  private readonly rangeFilterCfg: RangeFilterConfig;
  private readonly perTrack = new Map<number, PerTrack>();

  /**
   * nextAlertId: shared by every camera's assessor in a daemon, so alert ids are unique
   * across cameras for the whole run. Throws on an invalid configuration, naming it.
   */
  constructor(
    readonly cameraId: string,
    private readonly cfg: HazardConfig,
    nextAlertId: () => bigint,
    /** with it off (figures scripts only): no corridor margin; the alert rules carry their own hysteresis */
    private readonly corridorHysteresis = true,
  ) {
    this.tracker = new Tracker(cfg.tracker);
    this.baseCamera = cfg.camera ? new CameraModel(cfg.camera) : null;
    this.camera = this.baseCamera;
    this.corridor = cfg.corridor ? new Corridor(cfg.corridor) : null;
    if (this.corridor?.needsGround && !this.baseCamera) throw new Error(`camera ${cameraId}: a ground corridor needs a camera model (geometry)`);
    this.alertManager = new AlertManager(cfg.alerts, nextAlertId);
    this.rangeOpts = { ...DEFAULT_RANGE_OPTIONS, ...cfg.range };
    this.rangeFilterCfg = { ...DEFAULT_RANGE_FILTER, ...cfg.rangeFilter };
  }

  get hasGeometry(): boolean {
    return this.baseCamera !== null;
  }

  get hasCorridor(): boolean {
    return this.corridor !== null;
  }

  /** Alerts active after the last assess(), by alert id. */
  activeAlerts(): ActiveAlert[] {
    return this.alertManager.active();
  }

  /** One processed frame: its detections (in source-frame pixels), its size, its ingest time. */
  assess(detections: readonly Detection[], frame: { width: number; height: number }, tNs: bigint): HazardResult {
    const resized = this.camera && (this.camera.width !== frame.width || this.camera.height !== frame.height);
    if (this.baseCamera && resized && frame.width > 0 && frame.height > 0) this.camera = this.baseCamera.scaledTo(frame.width, frame.height);
    const step = this.tracker.step(detections, tNs);
    // Geometry measures the detection's own box: the range filter smooths, and measuring the
    // tracker's already smoothed box would smooth twice and make the speed lag.
    const measuredBox = new Map<number, Box>();
    step.assigned.forEach((t, i) => {
      if (t) measuredBox.set(t.id, detections[i].box);
    });
    const tracks = step.tracks.map((t) => this.assessTrack(t, measuredBox.get(t.id) ?? t.box, tNs));
    for (const id of [...this.perTrack.keys()]) if (!step.tracks.some((t) => t.id === id)) this.perTrack.delete(id);
    const byId = new Map(tracks.map((t) => [t.id, t]));

    const dets: DetectionAssessment[] = detections.map((d, i) => {
      const track = step.assigned[i];
      const t = track ? byId.get(track.id) : undefined;
      if (t?.confirmed) return { trackId: t.id, rangeM: t.rangeM, ttcS: t.ttcS, inCorridor: t.inCorridor };
      // Not (yet) a confirmed track: the raw distance of this box, no speed.
      const pos = this.camera ? positionOfBox(this.camera, d.box, d.label, this.rangeOpts) : null;
      return { rangeM: pos?.range, inCorridor: this.corridor ? this.corridor.contains({ box: d.box, ground: pos }) : false };
    });

    const observations: AlertObservation[] = tracks.map((t) => ({
      trackId: t.id,
      classId: t.classId,
      label: t.label,
      confirmed: t.confirmed,
      measured: t.measured,
      inCorridor: t.inCorridor,
      rangeM: t.rangeM,
      ttcS: t.ttcS,
      tNs,
      firstSeenNs: t.firstSeenNs,
    }));
    const alerts = this.alertManager.update(observations);
    return { detections: dets, tracks, alerts };
  }

  private assessTrack(t: Track, box: Box, tNs: bigint): TrackAssessment {
    let pt = this.perTrack.get(t.id);
    if (!pt) this.perTrack.set(t.id, (pt = { range: new RangeFilter(this.rangeFilterCfg), ground: new GroundVelocityFilter(this.rangeFilterCfg), inCorridor: false }));
    const measured = t.misses === 0;
    const out: TrackAssessment = {
      id: t.id,
      classId: t.classId,
      label: t.label,
      confirmed: t.status === "confirmed",
      measured,
      box: t.box,
      velocityPxPerS: t.velocityPxPerS,
      inCorridor: false,
      kind: this.alertManager.kindOf(t.label),
      firstSeenNs: t.firstSeenNs,
    };
    const pos = this.camera ? positionOfBox(this.camera, box, t.label, this.rangeOpts) : null;
    if (pos && measured) {
      const g = pt.ground.update(pos.x, pos.y, tNs);
      const r = pt.range.update(pos.range, tNs);
      out.ground = { ...g, method: pos.method };
      out.rangeM = r.rangeM;
      out.closingSpeedMps = r.closingSpeedMps;
      out.ttcS = r.ttcS;
    } else if (pt.last) {
      // Coasting, or no usable edge this frame: the last estimate stands.
      out.ground = pt.last.ground;
      out.rangeM = pt.last.rangeM;
      out.closingSpeedMps = pt.last.closingSpeedMps;
      out.ttcS = pt.last.ttcS;
    }
    if (this.corridor) {
      const ground = out.ground ? { x: out.ground.x, y: out.ground.y, range: Math.hypot(out.ground.x, out.ground.y) } : null;
      pt.inCorridor = this.corridor.contains({ box, ground }, pt.inCorridor, this.corridorHysteresis);
      out.inCorridor = pt.inCorridor;
    }
    pt.last = out;
    return out;
  }
}
