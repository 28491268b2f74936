import { describe, expect, it } from "vitest";
import {
  CameraStallMonitor,
  EventLoopLagMonitor,
  FreshnessMonitor,
  InferenceHangMonitor,
  InferenceOverrunMonitor,
  LoopDelayProbe,
  PublishFailureMonitor,
  SustainedCounter,
  type DelaySource,
  type InferenceHangOptions,
} from "../../src/health/monitors.ts";
import { HealthStateMachine, type HealthTransition } from "../../src/health/state.ts";

/** A state machine on a fake clock, already past start-up. */
function setup() {
  const clock = { t: 10_000 };
  const transitions: HealthTransition[] = [];
  const m = new HealthStateMachine({ clock: () => clock.t, wallClock: () => clock.t, onTransition: (t) => transitions.push(t) });
  m.markReady();
  transitions.length = 0;
  const reasons = () => m.reasons().map((r) => `${r.reason}/${r.source}`);
  return { m, clock, now: () => clock.t, transitions, reasons };
}

describe("CameraStallMonitor", () => {
  it("checks nothing before begin(), then gives each camera a start grace for its first frame", () => {
    const { m, clock, now, reasons } = setup();
    const mon = new CameraStallMonitor(m, { cameras: ["front", "rear"], stallMs: 500, startGraceMs: 3000, clock: now });
    clock.t += 60_000;
    mon.tick();
    expect(reasons()).toEqual([]);
    mon.begin();
    clock.t += 2900;
    mon.frame("front");
    mon.tick();
    expect(reasons()).toEqual([]);
    clock.t += 200; // rear: 3100 ms without a first frame; front: 200 ms since its last
    mon.tick();
    expect(reasons()).toEqual(["camera_stall/rear"]);
    expect(m.reasons()[0].detail).toBe("no first frame within 3100 ms (limit 3000 ms)");
    expect(mon.stalled()).toEqual(["rear"]);
  });

  it("raises camera_stall after stallMs without a frame and clears it on the next frame", () => {
    const { m, clock, now, reasons, transitions } = setup();
    const mon = new CameraStallMonitor(m, { cameras: ["front"], stallMs: 500, clock: now });
    mon.begin();
    mon.frame("front");
    clock.t += 500;
    mon.tick();
    expect(reasons()).toEqual([]); // exactly at the limit is not yet a stall
    clock.t += 1;
    mon.tick();
    expect(reasons()).toEqual(["camera_stall/front"]);
    clock.t += 400;
    mon.tick();
    expect(m.reasons()[0].detail).toBe("no frame for 901 ms (limit 500 ms)");
    mon.frame("front");
    expect(reasons()).toEqual([]);
    expect(transitions.map((t) => t.to)).toEqual(["degraded", "ok"]);
  });

  it("follows restart/running and forgets a camera that ended", () => {
    const { m, clock, now, reasons } = setup();
    const mon = new CameraStallMonitor(m, { cameras: ["front", "replay"], stallMs: 500, clock: now });
    mon.begin();
    mon.frame("front");
    mon.frame("replay");
    mon.event({ type: "error", camera: "front", message: "camera front: device gone" });
    mon.event({ type: "restart", camera: "front", attempt: 2, delayMs: 1000 });
    expect(reasons()).toEqual(["camera_restarting/front"]);
    expect(m.reasons()[0].detail).toBe("restart attempt 2 in 1000 ms");
    clock.t += 600;
    mon.tick();
    expect(reasons()).toEqual(["camera_restarting/front", "camera_stall/front", "camera_stall/replay"]);
    mon.event({ type: "ended", camera: "replay", reason: "eos" });
    expect(reasons()).toEqual(["camera_restarting/front", "camera_stall/front"]);
    clock.t += 10_000;
    mon.tick();
    mon.frame("replay"); // not watched any more: ignored
    expect(reasons()).toEqual(["camera_restarting/front", "camera_stall/front"]);
    mon.event({ type: "running", camera: "front", sourceWidth: 640, sourceHeight: 480 });
    mon.frame("front");
    expect(reasons()).toEqual([]);
  });

  it("a replay that ended on an error raises camera_failed (FAULT) with the error; shutdown clears stalls but keeps it", () => {
    const { m, clock, now, reasons } = setup();
    const mon = new CameraStallMonitor(m, { cameras: ["front", "replay"], stallMs: 500, clock: now });
    mon.begin();
    mon.frame("front");
    m.markReady();
    mon.event({ type: "ended", camera: "replay", reason: "error", detail: "camera replay (file x.avi): Could not determine type of stream" });
    expect(reasons()).toEqual(["camera_failed/replay"]);
    expect(m.reasons()[0].detail).toBe("camera replay (file x.avi): Could not determine type of stream");
    expect(m.state).toBe("fault");
    clock.t += 600;
    mon.tick();
    expect(reasons()).toEqual(["camera_failed/replay", "camera_stall/front"]);
    mon.stopWatching();
    expect(reasons(), "after stopWatching").toEqual(["camera_failed/replay"]);
    clock.t += 10_000;
    mon.tick();
    expect(reasons(), "nothing is watched after stopWatching").toEqual(["camera_failed/replay"]);
  });
});

describe("SustainedCounter", () => {
  it("trips at threshold hits within the window and resets at half of it (hysteresis)", () => {
    const c = new SustainedCounter(10, 4);
    const seq = (hits: boolean[]) => hits.map((h) => c.push(h));
    expect(seq([true, true, true])).toEqual([false, false, false]);
    expect(c.push(true)).toBe(true);
    expect(c.hits).toBe(4);
    // Six misses: window now 4 hits of 10; still tripped.
    expect(seq([false, false, false, false, false, false]).every(Boolean)).toBe(true);
    // The oldest hits fall out: 3 hits -> still tripped (above 4/2), 2 hits -> reset.
    expect(c.push(false)).toBe(true);
    expect(c.hits).toBe(3);
    expect(c.push(false)).toBe(false);
    expect(c.hits).toBe(2);
    expect(c.tripped).toBe(false);
  });

  it("rejects thresholds outside the window", () => {
    expect(() => new SustainedCounter(5, 6)).toThrow(RangeError);
    expect(() => new SustainedCounter(0, 1)).toThrow(RangeError);
    expect(() => new SustainedCounter(5, 0)).toThrow(RangeError);
  });
});

describe("InferenceOverrunMonitor", () => {
  it("counts every overrun but raises only when k of the last n frames overran", () => {
    const { m, reasons } = setup();
    const mon = new InferenceOverrunMonitor(m, { deadlineMs: 50, window: 10, threshold: 3 });
    expect(mon.frame("front", 49)).toBe(false);
    expect(mon.frame("front", 50)).toBe(false); // at the deadline is on time
    expect(mon.frame("front", 80)).toBe(true);
    expect(mon.frame("front", 90)).toBe(true);
    expect(mon.frame("rear", 200)).toBe(true); // another camera has its own window
    expect(reasons()).toEqual([]);
    mon.frame("front", 95);
    expect(reasons()).toEqual(["inference_overrun/front"]);
    expect(m.reasons()[0].detail).toBe("3 of the last frames over 50 ms (latest 95.0 ms)");
    expect(mon.overruns("front")).toBe(3);
    // Clears once at most 1 (3/2) overrun is left in the window of 10.
    for (let i = 0; i < 7; i++) mon.frame("front", 10); // window: 80, 90, 95 and seven on time (49 and 50 fell out)
    expect(reasons()).toEqual(["inference_overrun/front"]);
    mon.frame("front", 10); // 80 leaves the window: 2 left
    expect(reasons()).toEqual(["inference_overrun/front"]);
    mon.frame("front", 10); // 90 leaves: 1 left
    expect(reasons()).toEqual([]);
  });
});

describe("FreshnessMonitor", () => {
  it("flags results older than the budget valid=false and raises detections_stale when sustained", () => {
    const { m, reasons } = setup();
    const mon = new FreshnessMonitor(m, { budgetMs: 200, window: 5, threshold: 2 });
    const t0 = 1_000_000_000n;
    expect(mon.check("front", t0, t0 + 150_000_000n)).toEqual({ valid: true, ageMs: 150 });
    expect(mon.check("front", t0, t0 + 200_000_000n)).toEqual({ valid: true, ageMs: 200 });
    expect(mon.check("front", t0, t0 + 250_500_000n)).toEqual({ valid: false, ageMs: 250.5 });
    expect(reasons()).toEqual([]);
    expect(mon.check("front", t0, t0 + 300_000_000n).valid).toBe(false);
    expect(reasons()).toEqual(["detections_stale/front"]);
    expect(mon.stale("front")).toBe(2);
    for (let i = 0; i < 4; i++) mon.check("front", t0, t0 + 10_000_000n);
    expect(reasons()).toEqual([]);
  });
});

describe("InferenceHangMonitor", () => {
  const base: Omit<InferenceHangOptions, "clock"> = {
    workers: ["shared"],
    hangMs: 1000,
    maxReplacements: 2,
    replacementWindowMs: 60_000,
    replaceTimeoutMs: 30_000,
  };

  it("is not fooled by a worker that is busy all the time but keeps finishing frames", () => {
    const { m, clock, now, reasons } = setup();
    const mon = new InferenceHangMonitor(m, { ...base, clock: now });
    for (let i = 0; i < 50; i++) {
      expect(mon.sample([true])).toEqual([]);
      clock.t += 100;
      mon.progress(0);
    }
    clock.t += 1000;
    expect(mon.sample([true])).toEqual([]);
    expect(reasons()).toEqual([]);
  });

  it("an idle worker is never hung; busy without progress beyond the limit is", () => {
    const { m, clock, now, transitions, reasons } = setup();
    const mon = new InferenceHangMonitor(m, { ...base, clock: now });
    mon.sample([false]);
    clock.t += 5000;
    expect(mon.sample([false])).toEqual([]);
    expect(mon.sample([true])).toEqual([]); // busy from now
    clock.t += 1000;
    expect(mon.sample([true])).toEqual([]);
    clock.t += 1;
    const why = "worker shared busy on one frame for 1001 ms (limit 1000 ms)";
    expect(mon.sample([true])).toEqual([{ type: "replace", worker: 0, why }]);
    expect(mon.hangs).toBe(1);
    // The hang is a FAULT until the replacement is warm: its cameras get nothing meanwhile.
    expect(transitions.map((t) => [t.to, t.cause.kind === "ready" || t.cause.kind === "stopping" ? "" : t.cause.reason])).toEqual([["fault", "inference_hang"]]);
    expect(reasons()).toEqual(["inference_hang/worker:shared", "worker_replaced/worker:shared"]);
    // While replacing, sampling does not look at the lane.
    clock.t += 10_000;
    expect(mon.sample([true])).toEqual([]);
    expect(m.state).toBe("fault");
    mon.replacementSucceeded(0);
    expect(reasons()).toEqual([]);
    expect(m.state).toBe("ok");
    // The fresh worker starts its own clock.
    expect(mon.sample([true])).toEqual([]);
  });

  it("retries a failed replacement within the budget, then gives up with worker_failed (FAULT)", () => {
    const { m, clock, now, reasons } = setup();
    const mon = new InferenceHangMonitor(m, { ...base, clock: now });
    expect(mon.workerDied(0, "thread exited unexpectedly with code 1")).toEqual([
      { type: "replace", worker: 0, why: "worker shared died: thread exited unexpectedly with code 1" },
    ]);
    expect(mon.workerDied(0, "again")).toEqual([]); // already being replaced
    clock.t += 100;
    expect(mon.replacementFailed(0, "model file missing")).toEqual([{ type: "replace", worker: 0, why: "worker shared: replacement failed: model file missing" }]);
    clock.t += 100;
    const [last] = mon.replacementFailed(0, "model file missing");
    expect(last.type).toBe("give-up");
    expect(last.why).toBe("worker shared: replacement failed: model file missing; 2 replacement(s) in the last 60000 ms already (limit 2): giving up");
    expect(mon.gaveUp).toBe(last.why);
    expect(m.state).toBe("fault");
    expect(reasons()).toContain("worker_failed/worker:shared");
    expect(mon.replacements).toBe(2);
    // Once given up, nothing more is asked for.
    expect(mon.sample([true])).toEqual([]);
    expect(mon.workerDied(0, "x")).toEqual([]);
  });

  it("counts replacements in a sliding window over all workers", () => {
    const { m, clock, now } = setup();
    const mon = new InferenceHangMonitor(m, { ...base, workers: ["front", "rear"], maxReplacements: 1, replacementWindowMs: 10_000, clock: now });
    expect(mon.workerDied(0, "crash")[0].type).toBe("replace");
    mon.replacementSucceeded(0);
    clock.t += 10_000; // the first replacement has left the window
    expect(mon.workerDied(1, "crash")[0].type).toBe("replace");
    mon.replacementSucceeded(1);
    clock.t += 5000;
    expect(mon.workerDied(0, "crash")[0]).toMatchObject({ type: "give-up", worker: 0 });
  });

  it("gives up at once when a replacement is not warm within replaceTimeoutMs", () => {
    const { m, clock, now } = setup();
    const mon = new InferenceHangMonitor(m, { ...base, clock: now });
    mon.sample([true]);
    clock.t += 1001;
    expect(mon.sample([true])[0].type).toBe("replace");
    clock.t += 30_001;
    expect(mon.sample([false])).toEqual([
      { type: "give-up", worker: 0, why: "worker shared: replacement not warm after 30001 ms (limit 30000 ms): giving up" },
    ]);
    expect(m.state).toBe("fault");
  });

  it("with maxReplacements 0 the first hang gives up", () => {
    const { m, clock, now } = setup();
    const mon = new InferenceHangMonitor(m, { ...base, maxReplacements: 0, clock: now });
    mon.sample([true]);
    clock.t += 2000;
    const actions = mon.sample([true]);
    expect(actions).toHaveLength(1);
    expect(actions[0].type).toBe("give-up");
    // The hang itself stays raised next to worker_failed: both say why the daemon is exiting.
    expect(m.reasons().map((r) => r.reason)).toEqual(["inference_hang", "worker_failed"]);
  });

  it("rejects a worker index it does not know", () => {
    const { m, now } = setup();
    const mon = new InferenceHangMonitor(m, { ...base, clock: now });
    expect(() => mon.progress(1)).toThrow(RangeError);
  });
});

class FakeDelay implements DelaySource {
  p99Ns = 0;
  maxNs = 0;
  n = 0;
  resets = 0;
  started = false;
  percentile(p: number): number {
    expect(p).toBe(99);
    return this.p99Ns;
  }
  get max(): number {
    return this.maxNs;
  }
  get count(): number {
    return this.n;
  }
  reset(): void {
    this.resets++;
    this.n = 0;
  }
  start(): void {
    this.started = true;
  }
  stop(): void {
    this.started = false;
  }
}

describe("EventLoopLagMonitor", () => {
  it("raises event_loop_lag while a window's p99 is above the limit and resets the source each sample", () => {
    const { m, reasons } = setup();
    const src = new FakeDelay();
    const seen: number[] = [];
    const mon = new EventLoopLagMonitor(m, { limitMs: 50, sampleMs: 1000, source: src, onSample: (s) => seen.push(s.p99Ms) });
    expect(mon.sample()).toBeNull(); // no samples: no verdict
    Object.assign(src, { n: 100, p99Ns: 80e6, maxNs: 120e6 });
    expect(mon.sample()).toEqual({ p99Ms: 80, maxMs: 120, samples: 100 });
    expect(reasons()).toEqual(["event_loop_lag/main"]);
    expect(m.reasons()[0].detail).toBe("p99 80.0 ms, max 120.0 ms over 100 samples (limit 50 ms)");
    Object.assign(src, { n: 100, p99Ns: 50e6, maxNs: 60e6 });
    mon.sample();
    expect(reasons()).toEqual([]);
    expect(src.resets).toBe(2);
    expect(seen).toEqual([80, 50]);
    expect(mon.latest?.p99Ms).toBe(50);
  });

  it("measures a real blocked event loop (LoopDelayProbe)", async () => {
    const { m, reasons } = setup();
    const probe = new LoopDelayProbe(10);
    const mon = new EventLoopLagMonitor(m, { limitMs: 100, sampleMs: 60_000, source: probe });
    mon.start();
    try {
      await new Promise((r) => setTimeout(r, 100));
      const first = mon.sample(); // also the reset right before the block
      expect(first).not.toBeNull();
      const until = Date.now() + 300;
      while (Date.now() < until) {
        // busy: the loop is blocked for 300 ms
      }
      await new Promise((r) => setTimeout(r, 60));
      const s = mon.sample();
      expect(s).not.toBeNull();
      expect(s!.maxMs).toBeGreaterThan(250);
      expect(s!.p99Ms).toBeGreaterThan(250);
      expect(reasons()).toEqual(["event_loop_lag/main"]);
    } finally {
      mon.stop();
    }
  });
});

describe("PublishFailureMonitor", () => {
  it("holds publish_failure for holdMs after the last drop of a topic", () => {
    const { m, clock, now, reasons, transitions } = setup();
    const mon = new PublishFailureMonitor(m, { holdMs: 1000, clock: now });
    mon.dropped("detections");
    clock.t += 600;
    mon.dropped("detections");
    clock.t += 600;
    mon.tick();
    expect(reasons()).toEqual(["publish_failure/detections"]);
    clock.t += 400;
    mon.tick();
    expect(reasons()).toEqual([]);
    expect(transitions.map((t) => t.to)).toEqual(["degraded", "ok"]);
  });
});
