import { describe, expect, it } from "vitest";
import { DEFAULT_KIND_RULES } from "../../src/config/hazard-schema.ts";
import { AlertManager, alertRulesIssue, type AlertObservation, type AlertRules, type AlertUpdate } from "../../src/perception/alerts.ts";
import { FRAME_NS, noise } from "./synthetic.ts";

// Pedestrians: info within 30 m, warning within 12 m or 4 s, critical within 5 m or 2 s.
const RULES: AlertRules = { kinds: DEFAULT_KIND_RULES, raiseFrames: 2, clearFrames: 4, hysteresis: 0.15 };
const NO_HYSTERESIS: AlertRules = { ...RULES, raiseFrames: 1, clearFrames: 1, hysteresis: 0 };

function obs(frame: number, rangeM: number | undefined, extra: Partial<AlertObservation> = {}): AlertObservation {
  return { trackId: 1, classId: 0, label: "person", confirmed: true, measured: true, inCorridor: true, rangeM, tNs: BigInt(frame) * FRAME_NS, firstSeenNs: 0n, ...extra };
}

function manager(rules: AlertRules): AlertManager {
  let id = 100n;
  return new AlertManager(rules, () => id++);
}

/** Changes of the level a track holds (raise, step, clear), as "frame:level". */
function flips(updates: AlertUpdate[]): string[] {
  const out: string[] = [];
  updates.forEach((u, f) => {
    for (const e of u.events) out.push(`${f}:${e.type === "cleared" ? "none" : e.alert.level}`);
  });
  return out;
}

describe("AlertManager", () => {
  it("a pedestrian standing on the 12 m warning threshold, its distance jittering by 0.3 m: flickers without hysteresis, not with it", () => {
    const n = noise(11, 0.3);
    const ranges = Array.from({ length: 100 }, () => 12 + n());
    const without = manager(NO_HYSTERESIS);
    const withH = manager(RULES);
    const a = ranges.map((r, f) => without.update([obs(f, r)]));
    const b = ranges.map((r, f) => withH.update([obs(f, r)]));
    // Without: every crossing of 12 m is a level change.
    expect(flips(a).length, `flips without hysteresis: ${flips(a).join(" ")}`).toBeGreaterThan(20);
    // With: raised to warning once and held (12.3 m < 12 * 1.15).
    expect(flips(b)).toEqual([`${firstTwoBelow(ranges, 12)}:warning`]);
  });

  it("raises after raiseFrames, clears after clearFrames: the lag is bounded, a one-frame blip changes nothing", () => {
    const m = manager(RULES);
    const seq = [40, 10, 40, 10, 10, 10, 40, 10, 40, 40, 40, 40, 40];
    const u = seq.map((r, f) => m.update([obs(f, r)]));
    // 40 m at frame 6 is one frame: no clear; frames 8-11 are four: cleared at 11.
    expect(flips(u)).toEqual(["4:warning", "11:none"]);
    const raised = u[4].events[0];
    expect(raised.type).toBe("raised");
    expect(raised.alert).toMatchObject({ alertId: 100n, kind: "pedestrian", level: "warning", trackId: 1, rangeM: 10, tRaisedNs: 4n * FRAME_NS });
    const cleared = u[11].events[0];
    expect(cleared).toMatchObject({ type: "cleared", reason: "below_thresholds", alert: { alertId: 100n } });
    expect(u[11].active).toEqual([]);
    // Active in between, with one id throughout.
    for (let f = 4; f < 11; f++) expect(u[f].active.map((a) => a.alertId), `frame ${f}`).toEqual([100n]);
  });

  it("escalates by TTC or distance, keeps its id across levels, and takes a new id when raised again", () => {
    const m = manager({ ...RULES, raiseFrames: 1, clearFrames: 1 });
    const levels = [
      m.update([obs(0, 25)]),
      m.update([obs(1, 20, { ttcS: 3.5 })]),
      m.update([obs(2, 20, { ttcS: 1.5 })]),
      m.update([obs(3, 40)]),
      m.update([obs(4, 25)]),
    ];
    expect(flips(levels)).toEqual(["0:info", "1:warning", "2:critical", "3:none", "4:info"]);
    expect(levels.slice(0, 3).map((u) => u.active[0].alertId)).toEqual([100n, 100n, 100n]);
    expect(levels[4].active[0].alertId).toBe(101n);
  });

  it("alerts only confirmed tracks in the corridor, of a kind with thresholds; a lost track clears at once", () => {
    const m = manager({ ...RULES, raiseFrames: 1 });
    expect(m.update([obs(0, 3, { confirmed: false })]).active).toEqual([]);
    expect(m.update([obs(1, 3, { inCorridor: false })]).active).toEqual([]);
    expect(m.update([obs(2, 3, { label: "umbrella", classId: 25 })]).active).toEqual([]);
    expect(m.update([obs(3, 3)]).active.map((a) => a.level)).toEqual(["critical"]);
    const coasting = m.update([obs(4, 60, { measured: false })]);
    expect(coasting.events, "a coasting track holds its alert").toEqual([]);
    expect(coasting.active[0].measured).toBe(false);
    const lost = m.update([]);
    expect(lost.events).toMatchObject([{ type: "cleared", reason: "track_lost" }]);
    expect(lost.active).toEqual([]);
  });

  it("maps kinds from labels", () => {
    const m = manager(RULES);
    expect(["person", "bicycle", "motorcycle", "car", "bus", "truck", "dog"].map((l) => m.kindOf(l))).toEqual(["pedestrian", "cyclist", "cyclist", "vehicle", "vehicle", "vehicle", null]);
    const withDogs = manager({ ...RULES, kinds: { ...RULES.kinds, obstacle: { ...RULES.kinds.obstacle, classes: ["dog"] } } });
    expect(withDogs.kindOf("dog")).toBe("obstacle");
  });

  it("rejects rules that cannot work, naming them", () => {
    expect(alertRulesIssue({ ...RULES, raiseFrames: 0 })).toBe("raiseFrames must be an integer >= 1, got 0");
    expect(alertRulesIssue({ ...RULES, kinds: { ...RULES.kinds, obstacle: { classes: ["person"] } } })).toBe('class "person" is listed under both pedestrian and obstacle');
    expect(alertRulesIssue({ ...RULES, kinds: { ...RULES.kinds, vehicle: { classes: ["car"], warning: { rangeM: 5 }, critical: { rangeM: 8 } } } })).toBe(
      "vehicle: critical.rangeM (8) exceeds warning.rangeM (5): a more severe level needs a tighter threshold",
    );
  });
});

/** Index of the second of the first two consecutive values at or below `t` (when a raise after 2 frames happens). */
function firstTwoBelow(xs: number[], t: number): number {
  for (let i = 1; i < xs.length; i++) if (xs[i - 1] <= t && xs[i] <= t) return i;
  return -1;
}
