// Multi-object tracker over per-frame detections, in the manner of SORT and ByteTrack.
//
// - Motion model: constant velocity per box parameter (centre x, centre y, width, height),
//   smoothed by an alpha-beta filter rather than a Kalman filter. An alpha-beta filter is a
//   Kalman filter with fixed gains; at camera rates the gains of a tracking Kalman filter
//   settle within a few frames anyway, and fixed gains keep the state small, the behaviour
//   easy to reason about and the tuning to two numbers. Time steps come from ingest times,
//   so dropped frames predict further instead of breaking association.
// - Association: greedy by IoU between predicted track boxes and detections, highest IoU
//   first, one class only (a person's track never turns into a bicycle's). Greedy rather
//   than Hungarian: with boxes of one class rarely overlapping more than one track at a
//   usable IoU, both give the same pairs almost always, and greedy needs no matrix solver.
// - ByteTrack's second pass: detections scoring below highScore are not discarded but
//   offered, after the first pass, to confirmed tracks that are still unmatched, so an
//   object that is briefly occluded (and so scores low) keeps its track. Low-score
//   detections never start a track.
// - Life cycle: a track is tentative until minHits hits (then confirmed); a tentative track
//   dies at its first miss; a confirmed one after maxMisses consecutive misses. Ids count up
//   from 1 and are never reused.
//
// Pure: no I/O, no clocks; time is whatever the caller passes (nanoseconds).
import type { Box, Detection } from "../core/types.ts";

export interface TrackerConfig {
  /** detections at or above this score are matched first and may start tracks */
  highScore: number;
  /** least IoU between a predicted track box and a detection for them to be associated */
  matchIou: number;
  /** least IoU in the second pass (low-score detections) */
  lowMatchIou: number;
  /** ByteTrack's second pass on (off only to measure what it brings) */
  secondPass: boolean;
  /** hits (associated frames, the first included) before a track is confirmed */
  minHits: number;
  /** consecutive frames without a detection after which a confirmed track is lost */
  maxMisses: number;
  /** alpha-beta gains: how far a measurement pulls the position and the velocity */
  alpha: number;
  beta: number;
}

export const DEFAULT_TRACKER_CONFIG: TrackerConfig = {
  highScore: 0.5,
  matchIou: 0.3,
  lowMatchIou: 0.2,
  secondPass: true,
  minHits: 3,
  maxMisses: 5,
  alpha: 0.6,
  beta: 0.2,
};

export type TrackStatus = "tentative" | "confirmed";

export interface Track {
  readonly id: number;
  readonly classId: number;
  readonly label: string;
  status: TrackStatus;
  /** smoothed box (after this frame's update, or predicted when missed) */
  box: Box;
  /** velocity of the box centre, pixels per second */
  velocityPxPerS: { x: number; y: number };
  /** score of the last associated detection */
  score: number;
  hits: number;
  /** consecutive frames without an associated detection (0: updated this frame) */
  misses: number;
  /** time of the first detection of this object */
  firstSeenNs: bigint;
  lastUpdateNs: bigint;
}

export interface TrackerStep {
  /** for each input detection, the track it was associated with or started (null: none) */
  assigned: (Track | null)[];
  /** tracks alive after this frame (tentative included), ids ascending */
  tracks: readonly Track[];
  /** tracks that ended this frame, confirmed ones only */
  lost: readonly Track[];
}

interface State {
  track: Track;
  // centre x, centre y, width, height and their rates per second
  x: [number, number, number, number];
  v: [number, number, number, number];
}

export class Tracker {
  private readonly cfg: TrackerConfig;
  private states: State[] = [];
  private nextId = 1;
  private lastNs: bigint | null = null;

  constructor(cfg: Partial<TrackerConfig> = {}) {
    this.cfg = { ...DEFAULT_TRACKER_CONFIG, ...cfg };
    checkTrackerConfig(this.cfg);
  }

  /** Associates one frame's detections (all scores; the tracker splits them) taken at tNs. */
  step(detections: readonly Detection[], tNs: bigint): TrackerStep {
    const dt = this.lastNs === null ? 0 : Math.max(0, Number(tNs - this.lastNs) / 1e9);
    this.lastNs = tNs;
    for (const s of this.states) predict(s, dt);

    const assigned: (Track | null)[] = detections.map(() => null);
    const high = indices(detections, (d) => d.score >= this.cfg.highScore);
    const low = indices(detections, (d) => d.score < this.cfg.highScore);
    const unmatched = new Set(this.states);

    // First pass: every track against the confident detections.
    for (const [s, di] of greedy([...unmatched], high, detections, this.cfg.matchIou)) {
      this.update(s, detections[di], tNs);
      assigned[di] = s.track;
      unmatched.delete(s);
    }
    // Second pass: confirmed tracks still unmatched against the weak detections.
    const confirmed = this.cfg.secondPass ? [...unmatched].filter((s) => s.track.status === "confirmed") : [];
    for (const [s, di] of greedy(confirmed, low, detections, this.cfg.lowMatchIou)) {
      this.update(s, detections[di], tNs);
      assigned[di] = s.track;
      unmatched.delete(s);
    }

    const lost: Track[] = [];
    for (const s of unmatched) {
      s.track.misses++;
      const dead = s.track.status === "tentative" || s.track.misses > this.cfg.maxMisses;
      if (dead) {
        if (s.track.status === "confirmed") lost.push(s.track);
        this.states = this.states.filter((x) => x !== s);
      }
    }
    // New tracks from confident detections nobody claimed.
    for (const di of high) {
      if (assigned[di] !== null) continue;
      const s = this.start(detections[di], tNs);
      assigned[di] = s.track;
    }
    return { assigned, tracks: this.states.map((s) => s.track), lost };
  }

  get tracks(): readonly Track[] {
    return this.states.map((s) => s.track);
  }

  private start(d: Detection, tNs: bigint): State {
    const track: Track = {
      id: this.nextId++,
      classId: d.classId,
      label: d.label,
      status: this.cfg.minHits <= 1 ? "confirmed" : "tentative",
      box: [...d.box],
      velocityPxPerS: { x: 0, y: 0 },
      score: d.score,
      hits: 1,
      misses: 0,
      firstSeenNs: tNs,
      lastUpdateNs: tNs,
    };
    const s: State = { track, x: toCxcywh(d.box), v: [0, 0, 0, 0] };
    this.states.push(s);
    return s;
  }

  private update(s: State, d: Detection, tNs: bigint): void {
    const z = toCxcywh(d.box);
    const dt = Number(tNs - s.track.lastUpdateNs) / 1e9;
    // The second hit is the first with a velocity to measure: take it whole, instead of
    // letting beta creep up to it over several frames.
    const firstMotion = s.track.hits === 1 && dt > 0;
    for (let i = 0; i < 4; i++) {
      const r = z[i] - s.x[i];
      if (firstMotion) {
        s.v[i] = r / dt;
        s.x[i] = z[i];
        continue;
      }
      s.x[i] += this.cfg.alpha * r;
      if (dt > 0) s.v[i] += (this.cfg.beta * r) / dt;
    }
    const t = s.track;
    t.hits++;
    t.misses = 0;
    t.score = d.score;
    t.lastUpdateNs = tNs;
    if (t.status === "tentative" && t.hits >= this.cfg.minHits) t.status = "confirmed";
    syncTrack(s);
  }
}

function predict(s: State, dt: number): void {
  for (let i = 0; i < 4; i++) s.x[i] += s.v[i] * dt;
  // A shrinking box must not turn inside out while it coasts.
  s.x[2] = Math.max(1, s.x[2]);
  s.x[3] = Math.max(1, s.x[3]);
  syncTrack(s);
}

function syncTrack(s: State): void {
  const [cx, cy, w, h] = s.x;
  s.track.box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
  s.track.velocityPxPerS = { x: s.v[0], y: s.v[1] };
}

function toCxcywh(b: Box): [number, number, number, number] {
  return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]];
}

export function iou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

function indices<T>(xs: readonly T[], keep: (x: T) => boolean): number[] {
  const out: number[] = [];
  xs.forEach((x, i) => {
    if (keep(x)) out.push(i);
  });
  return out;
}

/** Pairs (track, detection index) by descending IoU, each used once, same class only. */
function greedy(states: State[], dets: number[], detections: readonly Detection[], minIou: number): [State, number][] {
  const pairs: { s: State; di: number; iou: number }[] = [];
  for (const s of states)
    for (const di of dets) {
      if (detections[di].classId !== s.track.classId) continue;
      const v = iou(s.track.box, detections[di].box);
      if (v >= minIou) pairs.push({ s, di, iou: v });
    }
  // Ties broken by track id, so the outcome does not depend on iteration order.
  pairs.sort((a, b) => b.iou - a.iou || a.s.track.id - b.s.track.id);
  const usedS = new Set<State>();
  const usedD = new Set<number>();
  const out: [State, number][] = [];
  for (const p of pairs) {
    if (usedS.has(p.s) || usedD.has(p.di)) continue;
    usedS.add(p.s);
    usedD.add(p.di);
    out.push([p.s, p.di]);
  }
  return out;
}

/** Throws naming the first setting out of range; the config schema checks the same bounds with line numbers. */
export function checkTrackerConfig(c: TrackerConfig): void {
  const unit = (k: "highScore" | "matchIou" | "lowMatchIou" | "alpha" | "beta", lo: number, hi: number): void => {
    const v = c[k];
    if (!(v >= lo && v <= hi)) throw new Error(`tracker: ${k} must be within [${lo}, ${hi}], got ${v}`);
  };
  unit("highScore", 0, 1);
  unit("matchIou", 0.01, 1);
  unit("lowMatchIou", 0.01, 1);
  unit("alpha", 0.01, 1);
  unit("beta", 0, 1);
  if (!Number.isInteger(c.minHits) || c.minHits < 1) throw new Error(`tracker: minHits must be an integer >= 1, got ${c.minHits}`);
  if (!Number.isInteger(c.maxMisses) || c.maxMisses < 0) throw new Error(`tracker: maxMisses must be an integer >= 0, got ${c.maxMisses}`);
}
