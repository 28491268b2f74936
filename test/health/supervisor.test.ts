import { afterEach, describe, expect, it, vi } from "vitest";
import { HealthSchema, type HealthConfig } from "../../src/config/schema.ts";
import type { DelaySource } from "../../src/health/monitors.ts";
import type { HealthSnapshot, HealthTransition } from "../../src/health/state.ts";
import { EXIT_HEALTH_GAVE_UP, HealthSupervisor, type ReplacementEvent } from "../../src/health/supervisor.ts";
import { SystemdNotifier, type NotifyTransport } from "../../src/health/systemd.ts";

const quietLoop: DelaySource = { percentile: () => 0, max: 0, count: 0, reset: () => undefined, start: () => undefined, stop: () => undefined };

function harness(config: Partial<HealthConfig> = {}, replaceWorker: (i: number) => Promise<unknown> = () => Promise.resolve()) {
  const clock = { t: 0 };
  const sent: string[] = [];
  const transport: NotifyTransport = { send: (m) => void sent.push(m) };
  const notifier = SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: "@test", WATCHDOG_USEC: "1000000" }, pid: 1, transport });
  const transitions: HealthTransition[] = [];
  const published: HealthSnapshot[] = [];
  const replacements: ReplacementEvent[] = [];
  const gaveUp: string[] = [];
  const busy = [false];
  const sup = new HealthSupervisor({
    config: HealthSchema.parse({ ...config }),
    cameras: ["front"],
    notifier,
    clock: () => clock.t,
    wallClock: () => clock.t,
    lagSource: quietLoop,
    onTransition: (t) => transitions.push(t),
    onPublish: (s) => published.push(s),
    onReplacement: (e) => replacements.push(e),
    onGiveUp: (why) => gaveUp.push(why),
  });
  const attach = () => sup.attachInference({ workers: [{ name: "shared" }], busy: () => busy, replaceWorker });
  return { sup, clock, sent, transitions, published, replacements, gaveUp, busy, attach };
}

const flush = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe("HealthSupervisor", () => {
  it("walks start-up to OK: watchdog from the start, READY=1 with its status, STOPPING=1 at the end", () => {
    const h = harness();
    h.sup.start();
    expect(h.sent).toEqual(["WATCHDOG=1"]); // fed while still STARTING (model loading)
    h.attach();
    h.sup.camerasStarted();
    h.sup.frame("front");
    h.sup.markReady();
    expect(h.sup.state).toBe("ok");
    h.sup.markStopping("signal");
    h.sup.close();
    expect(h.sent).toEqual(["WATCHDOG=1", "STATUS=ok", "READY=1\nSTATUS=ok", "STATUS=stopping", "STOPPING=1\nSTATUS=stopping: signal"]);
    expect(h.transitions.map((t) => `${t.from}->${t.to}`)).toEqual(["starting->ok", "ok->stopping"]);
  });

  it("turns a camera stall into DEGRADED on the tick and publishes every tick", () => {
    const h = harness({ cameraStallMs: 500 });
    h.attach();
    h.sup.camerasStarted();
    h.sup.frame("front");
    h.sup.markReady();
    h.clock.t = 400;
    h.sup.tick();
    h.clock.t = 600;
    h.sup.tick();
    expect(h.published.map((p) => p.state)).toEqual(["ok", "degraded"]);
    expect(h.published[1].reasons[0]).toMatchObject({ reason: "camera_stall", source: "front" });
    expect(h.sent).toContain("STATUS=degraded: camera_stall (front)");
    h.sup.frame("front");
    expect(h.sup.state).toBe("ok");
  });

  it("replaces a hung worker, keeps feeding the watchdog, and is OK again once the new worker is warm", async () => {
    let resolveReplace!: () => void;
    const calls: number[] = [];
    const h = harness({ inferenceHangMs: 1000 }, (i) => {
      calls.push(i);
      return new Promise<void>((r) => (resolveReplace = r));
    });
    h.attach();
    h.sup.camerasStarted();
    h.sup.frame("front");
    h.sup.markReady();
    h.busy[0] = true;
    h.sup.tick();
    h.clock.t = 1001;
    h.sup.frame("front");
    h.sup.tick();
    expect(calls).toEqual([0]);
    expect(h.replacements).toEqual([{ outcome: "started", worker: 0, name: "shared", why: "worker shared busy on one frame for 1001 ms (limit 1000 ms)" }]);
    expect(h.transitions.map((t) => t.to)).toEqual(["ok", "fault"]);
    // FAULT until the replacement is warm: the tick that saw the hang did not feed the watchdog.
    expect(h.sent.filter((m) => m === "WATCHDOG=1")).toHaveLength(1);
    expect(h.published.at(-1)?.state, "the health message of the tick that saw the hang").toBe("fault");
    resolveReplace();
    await flush();
    expect(h.replacements.at(-1)).toEqual({ outcome: "succeeded", worker: 0, name: "shared" });
    expect(h.sup.state).toBe("ok");
    h.clock.t = 20_000;
    h.sup.tick();
    expect(h.sent.filter((m) => m === "WATCHDOG=1"), "fed again once OK").toHaveLength(2);
    expect(h.gaveUp).toEqual([]);
  });

  it("gives up once the replacement budget is spent: FAULT, no more watchdog pings, onGiveUp once", async () => {
    const h = harness({ maxWorkerReplacements: 1 }, () => Promise.reject(new Error("model file missing")));
    h.attach();
    h.sup.camerasStarted();
    h.sup.frame("front");
    h.sup.markReady();
    h.sup.inferenceError({ worker: 0, fatal: true, error: new Error("thread exited unexpectedly with code 1") });
    await flush();
    expect(h.replacements.map((e) => e.outcome)).toEqual(["started", "failed"]);
    expect(h.gaveUp).toHaveLength(1);
    expect(h.gaveUp[0]).toMatch(/replacement failed: model file missing; 1 replacement\(s\) .* giving up$/);
    expect(h.sup.state).toBe("fault");
    // The FAULT went out before onGiveUp (whose stop turns the state to STOPPING).
    expect(h.published.at(-1)?.state).toBe("fault");
    expect(h.published.at(-1)?.reasons.map((r) => r.reason)).toContain("worker_failed");
    const pings = h.sent.filter((m) => m === "WATCHDOG=1").length;
    h.clock.t = 10_000;
    h.sup.tick();
    h.sup.inferenceError({ worker: 0, fatal: true, error: new Error("again") });
    expect(h.sent.filter((m) => m === "WATCHDOG=1").length).toBe(pings);
    expect(h.gaveUp).toHaveLength(1);
    expect(EXIT_HEALTH_GAVE_UP).not.toBe(78); // 78 would stop systemd from restarting
  });

  it("judges results: overrun flag, progress for the worker, freshness verdict", () => {
    const h = harness({ inferenceDeadlineMs: 30, latencyBudgetMs: 100, inferenceHangMs: 1000 });
    h.attach();
    h.busy[0] = true;
    h.sup.tick();
    h.clock.t = 900;
    expect(h.sup.result({ camera: "front", timings: { preprocessMs: 5, inferenceMs: 20, decodeMs: 4 } }, 0)).toBe(false);
    expect(h.sup.result({ camera: "front", timings: { preprocessMs: 5, inferenceMs: 25, decodeMs: 4 } }, 0)).toBe(true);
    h.clock.t = 1800; // 1800 ms busy, but the last result was at 900
    h.sup.tick();
    expect(h.replacements).toEqual([]);
    expect(h.sup.checkFreshness("front", 0n, 99_000_000n)).toEqual({ valid: true, ageMs: 99 });
    expect(h.sup.checkFreshness("front", 0n, 101_000_000n)).toEqual({ valid: false, ageMs: 101 });
  });

  it("holds publish_failure after bus drops", () => {
    const h = harness();
    h.sup.markReady();
    h.sup.busDropped("detections");
    expect(h.sup.state).toBe("degraded");
    h.clock.t = 1000;
    h.sup.tick();
    expect(h.sup.state).toBe("ok");
  });

  it("ticks at publishHz on its own timer until closed", () => {
    vi.useFakeTimers();
    const h = harness({ publishHz: 10 });
    h.sup.start();
    vi.advanceTimersByTime(1000);
    expect(h.published).toHaveLength(10);
    h.sup.close();
    vi.advanceTimersByTime(1000);
    expect(h.published).toHaveLength(10);
  });
});

describe("health config", () => {
  it("has defaults for every key and rejects a threshold beyond its window", () => {
    const c = HealthSchema.parse({});
    expect(c).toMatchObject({ cameraStallMs: 500, publishHz: 10, systemdWatchdog: "auto", overrunWindow: 30, overrunThreshold: 5 });
    expect(HealthSchema.safeParse({ overrunWindow: 3, overrunThreshold: 4 }).success).toBe(false);
    expect(HealthSchema.safeParse({ publishHz: 2 }).success).toBe(false);
    expect(HealthSchema.safeParse({ cameraStalMs: 500 }).success).toBe(false); // a typo is an error
  });
});
