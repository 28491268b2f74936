// From assessed objects to alerts: kinds, levels, hysteresis, persistence.
//
// - Kind: from the object's class label (pedestrian: person; cyclist: bicycle, motorcycle;
//   vehicle: car, bus, truck; obstacle: whatever classes the config lists). Other classes
//   never alert.
// - Level: the highest of critical, warning, info whose time-to-collision or distance
//   threshold the object is within (either is enough; a threshold left out is not used).
//   An object in the corridor whose distance is unknown (no camera model) is info.
// - Hysteresis: a level already held is kept until the object is beyond its thresholds by
//   the hysteresis fraction (e.g. 15 %: a 10 m warning clears beyond 11.5 m), so an object
//   standing on a threshold does not flip with every frame's noise.
// - Persistence: a raise (or a step up) needs raiseFrames consecutive frames that ask for
//   it; a clear (or a step down) needs clearFrames consecutive frames. The lag an alert can
//   have is therefore bounded by those numbers of frames, and a one-frame blip changes nothing.
// - Clear is explicit: an alert leaves the active set through a "cleared" event, for a
//   reason (below thresholds, out of the corridor, track lost), never by being forgotten.
// - Ids: one alert per track while active; a new id for every raise, never reused.
//
// Pure: no I/O, no clocks.

export const ALERT_KIND_NAMES = ["pedestrian", "cyclist", "vehicle", "obstacle"] as const;
export type AlertKindName = (typeof ALERT_KIND_NAMES)[number];

/** Ascending severity; index + 1 is the severity rank. */
export const ALERT_LEVEL_NAMES = ["info", "warning", "critical"] as const;
export type AlertLevelName = (typeof ALERT_LEVEL_NAMES)[number];

export interface LevelThresholds {
  /** at or below this time to collision */
  ttcS?: number;
  /** at or below this distance */
  rangeM?: number;
}

export interface KindRules {
  classes: string[];
  info?: LevelThresholds;
  warning?: LevelThresholds;
  critical?: LevelThresholds;
}

export interface AlertRules {
  kinds: Record<AlertKindName, KindRules>;
  /** consecutive frames asking for a higher level before it is raised */
  raiseFrames: number;
  /** consecutive frames asking for a lower level (or none) before it is lowered or cleared */
  clearFrames: number;
  /** fraction by which a held level's thresholds are widened before it is left */
  hysteresis: number;
}

/** What the hazard assessment knows about one tracked object this frame. */
export interface AlertObservation {
  trackId: number;
  classId: number;
  label: string;
  /** a confirmed track (tentative ones never alert) */
  confirmed: boolean;
  /** the track was updated by a detection this frame (false: coasting on its prediction) */
  measured: boolean;
  /** inside the corridor (its own hysteresis already applied) */
  inCorridor: boolean;
  rangeM?: number;
  ttcS?: number;
  /** ingest time of this frame */
  tNs: bigint;
  /** ingest time of the frame the object was first detected in */
  firstSeenNs: bigint;
}

export interface ActiveAlert {
  alertId: bigint;
  kind: AlertKindName;
  level: AlertLevelName;
  trackId: number;
  classId: number;
  label: string;
  rangeM?: number;
  ttcS?: number;
  /** false while the track coasts without a detection */
  measured: boolean;
  /** ingest time of the frame that raised it */
  tRaisedNs: bigint;
  /** ingest time of the frame the current figures are from */
  tSourceNs: bigint;
  /** ingest time of the frame the object was first detected in (alert latency starts there) */
  firstSeenNs: bigint;
}

export type ClearReason = "below_thresholds" | "track_lost";

/** Events carry a copy of the alert as it was at the event. */
export type AlertEvent =
  | { type: "raised"; alert: ActiveAlert }
  | { type: "level"; alert: ActiveAlert; from: AlertLevelName }
  | { type: "cleared"; alert: ActiveAlert; reason: ClearReason };

export interface AlertUpdate {
  /** every active alert, by alert id */
  active: ActiveAlert[];
  /** raised, level changes and clears of this frame, in that order */
  events: AlertEvent[];
}

interface TrackAlertState {
  alert: ActiveAlert | null;
  up: number;
  down: number;
}

const rank = (l: AlertLevelName | null): number => (l === null ? 0 : ALERT_LEVEL_NAMES.indexOf(l) + 1);

export class AlertManager {
  private readonly states = new Map<number, TrackAlertState>();
  private readonly kindOfLabel = new Map<string, AlertKindName>();

  constructor(
    private readonly rules: AlertRules,
    private readonly nextAlertId: () => bigint,
  ) {
    const issue = alertRulesIssue(rules);
    if (issue) throw new Error(`alerts: ${issue}`);
    for (const k of ALERT_KIND_NAMES) for (const c of rules.kinds[k].classes) this.kindOfLabel.set(c, k);
  }

  kindOf(label: string): AlertKindName | null {
    return this.kindOfLabel.get(label) ?? null;
  }

  /** The level an observation asks for, given the level its track holds now. */
  desiredLevel(o: AlertObservation, held: AlertLevelName | null): AlertLevelName | null {
    const kind = this.kindOf(o.label);
    if (kind === null || !o.confirmed || !o.inCorridor) return null;
    const rules = this.rules.kinds[kind];
    for (const level of [...ALERT_LEVEL_NAMES].reverse()) {
      const t = rules[level];
      if (!t) continue;
      const widen = rank(held) >= rank(level) ? 1 + this.rules.hysteresis : 1;
      const byTtc = t.ttcS !== undefined && o.ttcS !== undefined && o.ttcS <= t.ttcS * widen;
      const byRange = t.rangeM !== undefined && o.rangeM !== undefined && o.rangeM <= t.rangeM * widen;
      if (byTtc || byRange) return level;
    }
    // Neither distance nor TTC known (no camera model, or no usable box edge): being in the
    // corridor is all there is to say, which is what info is for.
    if (o.rangeM === undefined && o.ttcS === undefined && rules.info) return "info";
    return null;
  }

  /**
   * One frame: an observation for every live track (tentative and coasting ones included). A
   * track with no observation has ended; its alert, if any, is cleared as track_lost.
   */
  update(observations: readonly AlertObservation[]): AlertUpdate {
    const events: AlertEvent[] = [];
    for (const o of observations) {
      const kind = this.kindOf(o.label);
      if (kind === null) continue;
      let st = this.states.get(o.trackId);
      if (!st) this.states.set(o.trackId, (st = { alert: null, up: 0, down: 0 }));
      const a = st.alert;
      if (a) {
        a.measured = o.measured;
        a.rangeM = o.rangeM;
        a.ttcS = o.ttcS;
        if (o.measured) a.tSourceNs = o.tNs;
      }
      // A coasting track holds its alert as it is: no detection, no evidence either way.
      if (!o.measured) continue;
      const held = a?.level ?? null;
      const want = this.desiredLevel(o, held);
      if (rank(want) > rank(held)) {
        st.down = 0;
        if (++st.up < this.rules.raiseFrames) continue;
        st.up = 0;
        if (a === null) {
          const alert: ActiveAlert = {
            alertId: this.nextAlertId(),
            kind,
            level: want!,
            trackId: o.trackId,
            classId: o.classId,
            label: o.label,
            rangeM: o.rangeM,
            ttcS: o.ttcS,
            measured: true,
            tRaisedNs: o.tNs,
            tSourceNs: o.tNs,
            firstSeenNs: o.firstSeenNs,
          };
          st.alert = alert;
          events.push({ type: "raised", alert: { ...alert } });
        } else {
          a.level = want!;
          events.push({ type: "level", alert: { ...a }, from: held! });
        }
      } else if (rank(want) < rank(held)) {
        st.up = 0;
        if (++st.down < this.rules.clearFrames) continue;
        st.down = 0;
        if (want === null) {
          st.alert = null;
          events.push({ type: "cleared", alert: { ...a! }, reason: "below_thresholds" });
        } else {
          a!.level = want;
          events.push({ type: "level", alert: { ...a! }, from: held! });
        }
      } else {
        st.up = 0;
        st.down = 0;
      }
    }
    const live = new Set(observations.map((o) => o.trackId));
    for (const [id, st] of this.states) {
      if (live.has(id)) continue;
      if (st.alert) events.push({ type: "cleared", alert: { ...st.alert }, reason: "track_lost" });
      this.states.delete(id);
    }
    events.sort((x, y) => EVENT_ORDER[x.type] - EVENT_ORDER[y.type]);
    return { active: this.active(), events };
  }

  active(): ActiveAlert[] {
    const out: ActiveAlert[] = [];
    for (const st of this.states.values()) if (st.alert) out.push(st.alert);
    return out.sort((a, b) => (a.alertId < b.alertId ? -1 : 1));
  }
}

const EVENT_ORDER = { raised: 0, level: 1, cleared: 2 } as const;

/** What is wrong with a rule set, or null; the config schema reports the same with line numbers. */
export function alertRulesIssue(r: AlertRules): string | null {
  if (!Number.isInteger(r.raiseFrames) || r.raiseFrames < 1) return `raiseFrames must be an integer >= 1, got ${r.raiseFrames}`;
  if (!Number.isInteger(r.clearFrames) || r.clearFrames < 1) return `clearFrames must be an integer >= 1, got ${r.clearFrames}`;
  if (!(r.hysteresis >= 0 && r.hysteresis <= 1)) return `hysteresis must be within [0, 1], got ${r.hysteresis}`;
  const owner = new Map<string, AlertKindName>();
  for (const k of ALERT_KIND_NAMES) {
    for (const c of r.kinds[k].classes) {
      const prev = owner.get(c);
      if (prev) return `class "${c}" is listed under both ${prev} and ${k}`;
      owner.set(c, k);
    }
    const issue = levelOrderIssue(r.kinds[k]);
    if (issue) return `${k}: ${issue}`;
  }
  return null;
}

/** A more severe level must not have a wider threshold than a milder one (it would never be the milder one's). */
export function levelOrderIssue(k: KindRules): string | null {
  for (const key of ["ttcS", "rangeM"] as const) {
    let prev: { level: AlertLevelName; v: number } | null = null;
    for (const level of ALERT_LEVEL_NAMES) {
      const v = k[level]?.[key];
      if (v === undefined) continue;
      if (prev && v > prev.v) return `${level}.${key} (${v}) exceeds ${prev.level}.${key} (${prev.v}): a more severe level needs a tighter threshold`;
      prev = { level, v };
    }
  }
  return null;
}
