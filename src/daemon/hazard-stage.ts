// The daemon's hazard stage: one HazardAssessor per camera (src/perception/hazard.ts), the
// alert topic's timer, and the alert metrics. The daemon hands it every result; it returns
// the detections with track id, distance, time to collision and corridor membership, and
// publishes the alert set:
//
// - at alerts.publishHz on its own timer, whether or not frames arrive (alerts are state);
// - at once when an alert is raised, changes level or clears;
// - with valid=false (in the header and in every alert) whenever the daemon's health is not
//   OK (STARTING, DEGRADED, FAULT, STOPPING): the topic keeps talking and says it cannot be
//   trusted, so silence is never mistaken for "no hazard". An alert whose track is coasting
//   on its prediction (no detection this frame) is also not valid.
import type { Logger } from "pino";
import type { Alert, AlertKind, AlertLevel, PublishedDetection } from "../bus/codec.ts";
import type { BusPublisher } from "../bus/publisher.ts";
import type { CameraConfig, Config } from "../config/schema.ts";
import type { HealthState } from "../core/health.ts";
import type { Detection } from "../core/types.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { ActiveAlert, AlertEvent, AlertKindName, AlertLevelName } from "../perception/alerts.ts";
import { DEFAULT_KNOWN_HEIGHTS_M } from "../perception/geometry.ts";
import { HazardAssessor, type HazardConfig } from "../perception/hazard.ts";

const KIND: Record<AlertKindName, AlertKind> = { pedestrian: "KIND_PEDESTRIAN", cyclist: "KIND_CYCLIST", vehicle: "KIND_VEHICLE", obstacle: "KIND_OBSTACLE" };
const LEVEL: Record<AlertLevelName, AlertLevel> = { info: "LEVEL_INFO", warning: "LEVEL_WARNING", critical: "LEVEL_CRITICAL" };

/** The perception settings of one camera, from the daemon's config. */
export function hazardConfigOf(camera: CameraConfig, config: Pick<Config, "tracking" | "alerts">): HazardConfig {
  const a = config.alerts;
  const g = camera.geometry;
  return {
    camera: g && {
      imageWidthPx: g.imageWidthPx,
      imageHeightPx: g.imageHeightPx,
      fx: g.fx,
      fy: g.fy,
      cx: g.cx,
      cy: g.cy,
      horizontalFovDeg: g.horizontalFovDeg,
      heightM: g.heightM,
      pitchDeg: g.pitchDeg,
      yawDeg: g.yawDeg,
      rollDeg: g.rollDeg,
    },
    corridor: camera.corridor,
    tracker: config.tracking,
    alerts: { kinds: a.kinds, raiseFrames: a.raiseFrames, clearFrames: a.clearFrames, hysteresis: a.hysteresis },
    range: { knownHeightsM: { ...DEFAULT_KNOWN_HEIGHTS_M, ...g?.knownHeightsM } },
    rangeFilter: { minClosingSpeedMps: a.minClosingSpeedMps },
  };
}

export interface HazardStageOptions {
  config: Config;
  bus: Pick<BusPublisher, "publishMessage">;
  metrics: Metrics;
  logger: Logger;
  /** the daemon's health state now */
  health: () => HealthState;
}

/**
 * The time the tracker and the range filters run on, per camera. A live camera's frames are
 * timed by their arrival (ingest). A source that delivers every frame (an unpaced replay)
 * arrives as fast as the daemon takes it, in bursts: two frames a tenth of a millisecond
 * apart, then a pause of hundreds. Timed by arrival, the velocity of every track explodes
 * and its prediction flies off, so tracks break into hundreds of new ids. Such frames carry
 * their media time (ptsNs), which is what the scene moved in. It restarts at 0 when a
 * replay loops: the clock then steps one second past the last time, a cut the tracks coast
 * through and lose.
 */
export class SceneClock {
  private readonly last = new Map<string, { ptsNs: number; sceneNs: bigint; offsetNs: bigint }>();

  /** The scene time of one frame of `camera`, in ns. */
  at(camera: string, tIngestNs: bigint, ptsNs: number | null): bigint {
    if (ptsNs === null) return tIngestNs;
    const pts = BigInt(ptsNs);
    const prev = this.last.get(camera);
    let offsetNs = prev?.offsetNs ?? tIngestNs - pts;
    if (prev !== undefined && ptsNs <= prev.ptsNs) offsetNs = prev.sceneNs + SCENE_CUT_NS - pts;
    const sceneNs = offsetNs + pts;
    this.last.set(camera, { ptsNs, sceneNs, offsetNs });
    return sceneNs;
  }
}

/** How far the scene clock steps when a replay's media time goes back (it looped). */
const SCENE_CUT_NS = 1_000_000_000n;

export class HazardStage {
  private readonly assessors = new Map<string, HazardAssessor>();
  private readonly log: Logger;
  private nextAlertId = 1n;
  private timer: NodeJS.Timeout | undefined;
  /** alerts raised but not yet on the bus, with their object's first-seen ingest time, for the latency histogram */
  private readonly unsent = new Map<bigint, bigint>();
  private lastIngestNs = 0n;
  private readonly clock = new SceneClock();
  /** ingest time minus scene time of the frame being assessed: maps the tracker's times onto the ingest clock */
  private sceneToIngestNs = 0n;

  /** Throws, naming the camera, when a camera's perception settings are inconsistent. */
  constructor(private readonly opts: HazardStageOptions) {
    this.log = opts.logger.child({ component: "hazard" });
    for (const cam of opts.config.cameras) this.assessors.set(cam.id, new HazardAssessor(cam.id, hazardConfigOf(cam, opts.config), () => this.nextAlertId++));
  }

  /** Starts the fixed-rate alert message. */
  start(): void {
    const periodMs = 1000 / this.opts.config.alerts.publishHz;
    this.timer ??= setInterval(() => this.publish(), periodMs);
    this.publish();
  }

  /** Stops the timer and sends the last alert set (not valid: the daemon is stopping). */
  stop(): void {
    this.dispose();
    this.publish();
  }

  /** Stops the timer without a last message (a start that failed). */
  dispose(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One result of one camera: assesses it and returns its detections annotated for the bus. */
  assess(
    camera: string,
    detections: readonly Detection[],
    frame: { width: number; height: number },
    tIngestNs: bigint,
    ptsNs: number | null,
  ): PublishedDetection[] {
    const a = this.assessors.get(camera);
    if (!a) return [...detections];
    const sceneNs = this.clock.at(camera, tIngestNs, ptsNs);
    this.sceneToIngestNs = tIngestNs - sceneNs;
    const r = a.assess(detections, frame, sceneNs);
    if (tIngestNs > this.lastIngestNs) this.lastIngestNs = tIngestNs;
    for (const e of r.alerts.events) this.record(camera, e);
    if (r.alerts.events.length > 0) this.publish();
    return detections.map((d, i) => {
      const x = r.detections[i];
      return {
        ...d,
        ...(x.trackId !== undefined ? { trackId: BigInt(x.trackId) } : {}),
        ...(x.rangeM !== undefined && Number.isFinite(x.rangeM) ? { rangeM: x.rangeM } : {}),
        ...(x.ttcS !== undefined && Number.isFinite(x.ttcS) ? { ttcS: x.ttcS } : {}),
        ...(x.inCorridor ? { inCorridor: true } : {}),
      };
    });
  }

  /** The alert set now, as it goes on the bus. */
  current(valid: boolean): Alert[] {
    const out: Alert[] = [];
    for (const [camera, a] of this.assessors) for (const x of a.activeAlerts()) out.push(toBus(camera, x, valid));
    return out.sort((x, y) => (x.alertId < y.alertId ? -1 : 1));
  }

  private publish(): void {
    const valid = this.opts.health() === "ok";
    const alerts = this.current(valid);
    try {
      this.opts.bus.publishMessage("alerts", { alerts }, { tIngestMonoNs: this.lastIngestNs, valid });
    } catch (e) {
      this.log.error({ err: e }, "alerts message could not be encoded");
      return;
    }
    if (this.unsent.size === 0) return;
    const now = process.hrtime.bigint();
    for (const x of alerts) {
      const first = this.unsent.get(x.alertId);
      if (first === undefined) continue;
      this.unsent.delete(x.alertId);
      this.opts.metrics.alertLatency.observe({ camera: x.cameraId, kind: kindName(x.kind) }, Number(now - first) / 1e9);
    }
  }

  private record(camera: string, e: AlertEvent): void {
    const m = this.opts.metrics;
    const { alert } = e;
    // alertLevel, not level: pino's own "level" key would be written twice and a JSON reader
    // (journald's, jq) would take the alert's level for the log line's.
    const fields = { camera, alert: String(alert.alertId), track: alert.trackId, kind: alert.kind, alertLevel: alert.level, rangeM: round(alert.rangeM), ttcS: round(alert.ttcS) };
    switch (e.type) {
      case "raised":
        m.alertsRaised.inc({ camera, kind: alert.kind, level: alert.level });
        // First sight -> the raising frame in scene time, then that frame's own ingest -> publish.
        this.unsent.set(alert.alertId, alert.firstSeenNs + this.sceneToIngestNs);
        this.log.info(fields, `alert raised: ${alert.level} ${alert.kind}`);
        break;
      case "level":
        if (rankOf(alert.level) > rankOf(e.from)) m.alertsRaised.inc({ camera, kind: alert.kind, level: alert.level });
        else m.alertsCleared.inc({ camera, kind: alert.kind, level: e.from });
        this.log.info({ ...fields, from: e.from }, `alert ${e.from} -> ${alert.level}: ${alert.kind}`);
        break;
      case "cleared":
        m.alertsCleared.inc({ camera, kind: alert.kind, level: alert.level });
        // Cleared before any alerts message carried it (the raise publishes at once, so only
        // when that message failed to encode): no latency to record.
        this.unsent.delete(alert.alertId);
        this.log.info({ ...fields, reason: e.reason }, `alert cleared: ${alert.kind} (${e.reason})`);
        break;
    }
  }
}

function toBus(camera: string, a: ActiveAlert, valid: boolean): Alert {
  return {
    alertId: a.alertId,
    kind: KIND[a.kind],
    level: LEVEL[a.level],
    valid: valid && a.measured,
    cameraId: camera,
    trackId: BigInt(a.trackId),
    classId: a.classId,
    label: a.label,
    ...(a.rangeM !== undefined && Number.isFinite(a.rangeM) ? { rangeM: a.rangeM } : {}),
    ...(a.ttcS !== undefined && Number.isFinite(a.ttcS) ? { ttcS: a.ttcS } : {}),
    tRaisedMonoNs: a.tRaisedNs,
    tSourceIngestMonoNs: a.tSourceNs,
  };
}

function kindName(k: AlertKind): AlertKindName {
  return (Object.keys(KIND) as AlertKindName[]).find((n) => KIND[n] === k) ?? "obstacle";
}

const rankOf = (l: AlertLevelName): number => ["info", "warning", "critical"].indexOf(l);

function round(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.round(v * 100) / 100;
}
