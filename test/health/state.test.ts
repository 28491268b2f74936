import { describe, expect, it } from "vitest";
import { HEALTH_REASONS, REASON_SEVERITY, type HealthReason } from "../../src/core/health.ts";
import { HealthStateMachine, describeReason, statusLine, type HealthTransition, type ReasonChange } from "../../src/health/state.ts";

function machine(now = { t: 1000 }) {
  const transitions: HealthTransition[] = [];
  const changes: ReasonChange[] = [];
  const m = new HealthStateMachine({
    clock: () => now.t,
    wallClock: () => 1_700_000_000_000 + now.t,
    onTransition: (t) => transitions.push(t),
    onReasonChange: (c) => changes.push(c),
  });
  return { m, now, transitions, changes };
}

describe("HealthStateMachine", () => {
  it("starts in STARTING and goes to OK when ready with nothing raised", () => {
    const { m, now, transitions } = machine();
    expect(m.state).toBe("starting");
    now.t = 1500;
    m.markReady();
    expect(m.state).toBe("ok");
    expect(transitions).toEqual([{ from: "starting", to: "ok", cause: { kind: "ready" }, reasons: [], tMs: 1500, wallTimeMs: 1_700_000_001_500 }]);
    expect(m.snapshot()).toEqual({ state: "ok", sinceMs: 1500, reasons: [] });
  });

  it("keeps reasons raised during start-up and shows them once ready", () => {
    const { m, transitions } = machine();
    m.raise("camera_stall", "front", "no first frame within 5000 ms");
    expect(m.state).toBe("starting");
    expect(transitions).toEqual([]);
    m.markReady();
    expect(m.state).toBe("degraded");
    expect(transitions.map((t) => [t.from, t.to])).toEqual([["starting", "degraded"]]);
    expect(transitions[0].reasons).toEqual([{ reason: "camera_stall", source: "front", severity: "degraded", sinceMs: 1000, detail: "no first frame within 5000 ms" }]);
  });

  it("a FAULT reason shows even while STARTING", () => {
    const { m } = machine();
    m.raise("inference_hang", "worker:shared");
    expect(m.state).toBe("fault");
    m.clear("inference_hang", "worker:shared");
    expect(m.state).toBe("starting");
  });

  it("OK <-> DEGRADED follows the reasons, with every transition reported with its cause and time", () => {
    const { m, now, transitions } = machine();
    m.markReady();
    now.t = 2000;
    expect(m.raise("camera_stall", "front", "no frame for 600 ms")).toBe(true);
    now.t = 2500;
    expect(m.clear("camera_stall", "front")).toBe(true);
    expect(m.state).toBe("ok");
    expect(transitions.slice(1)).toEqual([
      {
        from: "ok",
        to: "degraded",
        cause: { kind: "raised", reason: "camera_stall", source: "front", detail: "no frame for 600 ms" },
        reasons: [{ reason: "camera_stall", source: "front", severity: "degraded", sinceMs: 2000, detail: "no frame for 600 ms" }],
        tMs: 2000,
        wallTimeMs: 1_700_000_002_000,
      },
      { from: "degraded", to: "ok", cause: { kind: "cleared", reason: "camera_stall", source: "front" }, reasons: [], tMs: 2500, wallTimeMs: 1_700_000_002_500 },
    ]);
  });

  it("derives the state from all active reasons: each source counts, the worst severity wins", () => {
    const { m, transitions, changes } = machine();
    m.markReady();
    m.raise("camera_stall", "front");
    m.raise("camera_stall", "rear");
    expect(transitions.map((t) => t.to)).toEqual(["ok", "degraded"]); // the second camera is not a transition
    expect(changes.map((c) => [c.change.kind, c.change.source, c.state])).toEqual([
      ["raised", "front", "degraded"],
      ["raised", "rear", "degraded"],
    ]);
    m.raise("inference_hang", "worker:shared");
    expect(m.state).toBe("fault");
    m.clear("camera_stall", "front");
    expect(m.state).toBe("fault");
    m.clear("inference_hang", "worker:shared");
    expect(m.state).toBe("degraded"); // rear is still stalled
    m.clear("camera_stall", "rear");
    expect(m.state).toBe("ok");
    expect(transitions.map((t) => `${t.from}->${t.to}`)).toEqual(["starting->ok", "ok->degraded", "degraded->fault", "fault->degraded", "degraded->ok"]);
  });

  it("a repeated raise refreshes the detail but keeps the first time and reports nothing", () => {
    const { m, now, changes } = machine();
    m.markReady();
    m.raise("camera_stall", "front", "no frame for 600 ms");
    now.t = 3000;
    expect(m.raise("camera_stall", "front", "no frame for 2600 ms")).toBe(false);
    expect(m.reasons()).toEqual([{ reason: "camera_stall", source: "front", severity: "degraded", sinceMs: 1000, detail: "no frame for 2600 ms" }]);
    expect(changes).toHaveLength(1);
    expect(m.clear("camera_stall", "rear")).toBe(false);
    expect(changes).toHaveLength(1);
  });

  it("STOPPING is final: later reasons are kept but the state stays", () => {
    const { m, transitions } = machine();
    m.markReady();
    m.raise("camera_stall", "front");
    m.markStopping();
    expect(m.state).toBe("stopping");
    m.raise("worker_failed", "worker:shared");
    m.clear("camera_stall", "front");
    m.markReady();
    expect(m.state).toBe("stopping");
    expect(transitions.map((t) => t.to)).toEqual(["ok", "degraded", "stopping"]);
    expect(transitions[2].cause).toEqual({ kind: "stopping" });
    expect(m.reasons().map((r) => r.reason)).toEqual(["worker_failed"]);
  });

  it("clearSource drops every reason of one source", () => {
    const { m } = machine();
    m.markReady();
    m.raise("camera_stall", "front");
    m.raise("camera_restarting", "front");
    m.raise("camera_stall", "rear");
    expect(m.clearSource("front")).toBe(2);
    expect(m.reasons().map((r) => `${r.reason}/${r.source}`)).toEqual(["camera_stall/rear"]);
  });

  it("counts active sources per reason, every reason present", () => {
    const { m } = machine();
    m.raise("camera_stall", "front");
    m.raise("camera_stall", "rear");
    m.raise("event_loop_lag", "main");
    const counts = m.reasonCounts();
    expect(Object.keys(counts).sort()).toEqual([...HEALTH_REASONS].sort());
    expect(counts.camera_stall).toBe(2);
    expect(counts.event_loop_lag).toBe(1);
    expect(counts.inference_hang).toBe(0);
  });

  it("refuses a reason it has no severity for", () => {
    const { m } = machine();
    expect(() => m.raise("bogus" as HealthReason, "x")).toThrow(/unknown health reason "bogus"/);
  });

  it("gives every reason a severity, and only hangs, given-up workers and failed replays are FAULT", () => {
    const faults = HEALTH_REASONS.filter((r) => REASON_SEVERITY[r] === "fault");
    expect(faults.sort()).toEqual(["camera_failed", "inference_hang", "worker_failed"]);
  });
});

describe("descriptions", () => {
  it("describes reasons in one line each", () => {
    const a = { reason: "camera_stall" as const, source: "front", severity: "degraded" as const, sinceMs: 0, detail: "no frame for 600 ms" };
    expect(describeReason(a)).toBe("camera_stall (front): no frame for 600 ms");
    expect(describeReason({ ...a, detail: undefined })).toBe("camera_stall (front)");
    expect(statusLine("ok", [])).toBe("ok");
    expect(statusLine("degraded", [a, { ...a, source: "rear" }])).toBe("degraded: camera_stall (front), camera_stall (rear)");
  });
});
