// Hazard alerts end to end: the real daemon (harness.ts) replaying vtest.avi with a camera
// model and a corridor over the walkway, read by a real ZeroMQ subscriber (BusClient) the
// way an ECU reads it. Behaviour only, no timing assertions beyond generous bounds: the
// figures (alert latency, flips at a corridor edge) come from scripts/alert-figures.ts.
import { existsSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { BusClient } from "../../src/bus/client/index.ts";
import type { Alert, Header, WireHealthState, PublishedDetection } from "../../src/bus/codec.ts";
import { baseConfig, freePort, removeConfig, runDaemon, until, VTEST, writeConfig, type RunningDaemon } from "./harness.ts";

interface Seen {
  /** performance.now() when received */
  at: number;
  header: Header;
}
interface AlertsSeen extends Seen {
  alerts: Alert[];
}
interface HealthSeen extends Seen {
  state: WireHealthState;
}
interface DetectionsSeen extends Seen {
  detections: PublishedDetection[];
}

/** Everything one subscriber received, in arrival order (one SUB socket: the publisher's order). */
class Watch {
  readonly alerts: AlertsSeen[] = [];
  readonly health: HealthSeen[] = [];
  readonly detections: DetectionsSeen[] = [];
  readonly order: (AlertsSeen | HealthSeen)[] = [];
  readonly errors: string[] = [];
  private readonly client: BusClient;

  constructor(endpoint: string) {
    this.client = new BusClient({ endpoints: [endpoint], topics: ["alerts", "health", "detections"] });
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for await (const ev of this.client) {
        if (ev.kind === "error") this.errors.push(`${ev.topic}: ${ev.detail}`);
        if (ev.kind !== "message") continue;
        if (ev.topic === "alerts") {
          const m = { at: ev.at, header: ev.header, alerts: ev.body.alerts };
          this.alerts.push(m);
          this.order.push(m);
        } else if (ev.topic === "health") {
          const m = { at: ev.at, header: ev.header, state: ev.body.state };
          this.health.push(m);
          this.order.push(m);
        } else if (ev.topic === "detections") this.detections.push({ at: ev.at, header: ev.header, detections: ev.body.detections });
      }
    } catch (e) {
      this.errors.push(`receive loop: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  close(): void {
    this.client.close();
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** config/demo.yaml's camera and corridor (see there for how they were found). */
const HAZARD_CAMERA = {
  geometry: { imageWidthPx: 768, imageHeightPx: 576, horizontalFovDeg: 66, heightM: 4.9, pitchDeg: 25.6 },
  corridor: { type: "image", polygon: [[300, 200], [470, 200], [470, 420], [300, 420]], marginPx: 8 },
};
const PEDESTRIAN_THRESHOLDS = { kinds: { pedestrian: { info: { rangeM: 30 }, warning: { ttcS: 4, rangeM: 12 }, critical: { ttcS: 2, rangeM: 8 } } } };

async function start(port: number, health: Record<string, unknown> = {}): Promise<{ d: RunningDaemon; watch: Watch }> {
  const cfg = baseConfig(port, { type: "file", path: VTEST, realtime: true, loop: true }, { alerts: PEDESTRIAN_THRESHOLDS });
  const cams = cfg.cameras as Record<string, unknown>[];
  cfg.cameras = [{ ...cams[0], ...HAZARD_CAMERA }];
  cfg.health = { ...(cfg.health as Record<string, unknown>), ...health };
  const path = await writeConfig(cfg);
  const watch = new Watch(`tcp://127.0.0.1:${port}`);
  const d = runDaemon(["run", "--config", path]);
  cleanups.push(() => removeConfig(path), () => d.kill(), () => watch.close());
  return { d, watch };
}

describe.skipIf(!existsSync(VTEST))("alerts on the bus (vtest.avi, corridor over the walkway)", () => {
  it("raises pedestrian alerts for people walking through the corridor, clears them after they leave, re-sends the set at ~5 Hz", async () => {
    const port = await freePort();
    const { d, watch } = await start(port);
    await d.ready();

    // An alert for a walking person, valid, with its track and distance.
    const first = await until(
      () => watch.alerts.find((m) => m.header.valid && m.alerts.length > 0),
      40_000,
      () => `a valid alert; ${watch.alerts.length} alerts messages so far, errors: ${watch.errors.join("; ")}`,
    );
    const a = first.alerts[0];
    expect(a).toMatchObject({ kind: "KIND_PEDESTRIAN", label: "person", classId: 0, cameraId: "cam0", valid: true });
    expect(["LEVEL_INFO", "LEVEL_WARNING", "LEVEL_CRITICAL"]).toContain(a.level);
    expect(a.trackId > 0n, "track id").toBe(true);
    expect(a.rangeM, "distance from the camera model (the walkway is 8-20 m away)").toBeGreaterThan(5);
    expect(a.rangeM).toBeLessThan(25);
    expect(a.tSourceIngestMonoNs >= a.tRaisedMonoNs, "figures from the raising frame or later").toBe(true);

    // ... and the same alert leaves the set again while the daemon runs on (the person walked out).
    const gone = await until(
      () => watch.alerts.find((m) => m.at > first.at && m.header.valid && !m.alerts.some((x) => x.alertId === a.alertId)),
      40_000,
      () => `alert ${a.alertId} cleared; last set: ${JSON.stringify(watch.alerts.at(-1)?.alerts.map((x) => `${x.alertId}`))}`,
    );
    expect(watch.alerts.filter((m) => m.at > first.at && m.at < gone.at).every((m) => m.alerts.some((x) => x.alertId === a.alertId)), "one id, without gaps, while active").toBe(true);

    // State, not events: re-sent at the fixed rate whether or not anything changed.
    const t0 = first.at;
    const t1 = Math.max(gone.at, t0 + 3000);
    await until(() => (performance.now() > t1 + 100 ? true : undefined), 10_000, () => "time");
    const inWindow = watch.alerts.filter((m) => m.at >= t0 && m.at < t1).length;
    expect((inWindow * 1000) / (t1 - t0), "alerts messages per second").toBeGreaterThan(4);
    const counters = watch.alerts.map((m) => m.header.counter);
    for (let i = 1; i < counters.length; i++) expect(counters[i], "no alerts message lost").toBe(counters[i - 1] + 1n);

    // Detections carry what the assessment knows.
    const tracked = watch.detections.flatMap((m) => m.detections).filter((x) => x.trackId !== undefined);
    expect(tracked.length, "detections with a track id").toBeGreaterThan(10);
    expect(tracked.some((x) => x.rangeM !== undefined && x.inCorridor), "a tracked detection in the corridor with a distance").toBe(true);

    const metrics = await (await fetch(`${(await d.ready()).metricsUrl ?? ""}/metrics`)).text();
    const raised = metrics.split("\n").filter((l) => l.startsWith('perceptd_alerts_raised_total{camera="cam0",kind="pedestrian"'));
    expect(raised.reduce((s, l) => s + Number(l.split(" ").pop()), 0), "alerts raised (metric)").toBeGreaterThan(0);
    const latencyCount = metrics.split("\n").find((l) => l.startsWith('perceptd_alert_latency_seconds_count{camera="cam0",kind="pedestrian"}'));
    expect(Number(latencyCount?.split(" ").pop()), "alert latency observations").toBeGreaterThan(0);

    expect(await d.stop(5000)).toBe(0);
    // The last alerts message says the set is no longer to be trusted (the daemon is stopping).
    await until(() => (watch.alerts.at(-1)?.header.valid === false ? true : undefined), 2000, () => "a last alerts message with valid=false");
    expect(watch.errors).toEqual([]);
  }, 150_000);

  it("DEGRADED health: the alert topic keeps talking, with valid=false in the header and in every alert", async () => {
    const port = await freePort();
    // Every detection older than a 1 ms latency budget at publish: detections_stale, DEGRADED,
    // for as long as the daemon runs (the thresholds behind it are health.overrunWindow/Threshold).
    const { d, watch } = await start(port, { latencyBudgetMs: 1, overrunWindow: 10, overrunThreshold: 3 });
    await d.ready();
    const degradedAt = await until(
      () => watch.order.findIndex((m) => "state" in m && m.state === "STATE_DEGRADED") + 1 || undefined,
      30_000,
      () => `DEGRADED health; last: ${watch.health.at(-1)?.state}`,
    );
    // Messages after the first DEGRADED health message were sent after the state changed (one
    // socket, one connection: ZeroMQ keeps the publisher's order).
    const withAlert = await until(
      () => watch.order.slice(degradedAt).find((m): m is AlertsSeen => "alerts" in m && m.alerts.length > 0),
      40_000,
      () => "an alerts message with an alert while DEGRADED",
    );
    // Two seconds more of it (10 messages at 5 Hz).
    const alertsAfter = (): AlertsSeen[] => watch.order.slice(degradedAt).filter((m): m is AlertsSeen => "alerts" in m);
    await until(() => (alertsAfter().filter((m) => m.at > withAlert.at).length >= 10 ? true : undefined), 10_000, () => "10 more alerts messages");
    const after = alertsAfter();
    for (const m of after) {
      expect(m.header.valid, `alerts #${m.header.counter} while DEGRADED`).toBe(false);
      for (const x of m.alerts) expect(x.valid, `alert ${x.alertId} while DEGRADED`).toBe(false);
    }
    expect(withAlert.alerts[0].kind).toBe("KIND_PEDESTRIAN");
    expect(watch.health.slice(-3).map((h) => h.state)).toEqual(["STATE_DEGRADED", "STATE_DEGRADED", "STATE_DEGRADED"]);
    await d.stop(5000);
  }, 150_000);
});
