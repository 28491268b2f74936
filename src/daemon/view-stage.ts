// The daemon's end of the live view (src/view/): builds it from the config, hands it frames
// and results, and answers /state.json from what the daemon last published on the bus, so
// the page shows what a subscriber would see.
import type { Logger } from "pino";
import type { Alert, HealthBody, PublishedDetection } from "../bus/codec.ts";
import type { CameraConfig, Config } from "../config/schema.ts";
import type { Frame } from "../core/frame.ts";
import { GstJpegEncoder } from "../ingest/gst/jpeg-encoder.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { CameraModel } from "../perception/camera-model.ts";
import { corridorOutline } from "../perception/corridor.ts";
import { LiveView, type LiveViewCamera } from "../view/live-view.ts";
import { Renderer } from "../view/renderer.ts";
import { startViewServer, type ViewServer } from "../view/server.ts";
import { LatencyWindow } from "./latency-window.ts";
import { alertKindName, alertLevelName, overlayAlerts, overlayObjects } from "./view-scene.ts";

/** Longer side of the rendered frames: enough for labels to read, small enough to encode fast. */
const MAX_SIDE = 960;

export interface ViewStageOptions {
  config: Config;
  metrics: Metrics;
  logger: Logger;
  /** the alert set now (the hazard stage's) */
  alerts: () => Alert[];
}

interface CameraFigures {
  e2e: LatencyWindow;
  objects: Record<string, number>;
}

export class ViewStage {
  private lastHealth: HealthBody | null = null;
  private readonly figures = new Map<string, CameraFigures>();
  private server: ViewServer | null = null;

  private constructor(
    private readonly view: LiveView,
    private readonly alerts: () => Alert[],
    cameras: readonly string[],
  ) {
    for (const c of cameras) this.figures.set(c, { e2e: new LatencyWindow(), objects: {} });
  }

  /** Null when view.enabled is false. Throws when the port cannot be bound. */
  static async start(opts: ViewStageOptions): Promise<ViewStage | null> {
    const { config, logger } = opts;
    const v = config.view;
    if (!v.enabled) return null;
    const log = logger.child({ component: "view" });
    if (!isLoopback(v.host)) {
      log.warn({ host: v.host }, `live view bound to ${v.host}: anyone who can reach it sees the cameras (no authentication); bind 127.0.0.1 and tunnel instead unless this network is trusted`);
    }
    const hooks = opts.metrics.viewHooks();
    const view = new LiveView({
      cameras: config.cameras.map(viewCamera),
      fps: v.fps,
      renderer: new Renderer(MAX_SIDE),
      encoder: new GstJpegEncoder({ quality: v.quality }),
      hooks: { ...hooks, onError: (camera, err) => log.warn({ camera, err: err.message }, "live view: a frame could not be drawn or encoded") },
    });
    const stage = new ViewStage(view, opts.alerts, view.cameraIds);
    try {
      stage.server = await startViewServer({ host: v.host, port: v.port, view, state: () => stage.state() });
    } catch (e) {
      await view.close();
      throw e;
    }
    log.info({ url: stage.server.url }, "live view serving");
    return stage;
  }

  /** The server's base URL, e.g. http://127.0.0.1:9465 (the real port when 0 was asked). */
  get url(): string | null {
    return this.server?.url ?? null;
  }

  /** Every frame, before it goes to inference (which takes its pixels). */
  offerFrame(f: Frame): void {
    this.view.offerFrame(f);
  }

  /** Every frame the inference pool drops. */
  offerDrop(f: Frame): void {
    this.view.offerDrop(f.camera, f.seq);
  }

  /** Every result, as published. */
  offerResult(camera: string, seq: number, detections: readonly PublishedDetection[], e2eMs: number): void {
    const fig = this.figures.get(camera);
    if (fig !== undefined) {
      fig.e2e.add(e2eMs);
      const objects: Record<string, number> = {};
      for (const d of detections) objects[d.label] = (objects[d.label] ?? 0) + 1;
      fig.objects = objects;
    }
    this.view.offerResult({
      camera,
      seq,
      scene: () => {
        const alerts = this.alerts().filter((a) => a.cameraId === camera);
        return { objects: overlayObjects(detections, alerts), alerts: overlayAlerts(alerts) };
      },
    });
  }

  /** The health message just published. */
  health(body: HealthBody): void {
    this.lastHealth = body;
  }

  /** The body of /state.json. */
  state(): object {
    const h = this.lastHealth;
    const alerts = this.alerts();
    return {
      health:
        h === null
          ? null
          : {
              state: h.state.replace(/^STATE_/, ""),
              reasons: h.reasons,
              fps: h.fps,
              e2eP50Ms: h.latencyE2eP50Ms,
              e2eP99Ms: h.latencyE2eP99Ms,
              model: h.model,
              executionProvider: h.executionProvider,
              uptimeS: h.uptimeS,
              framesDropped: h.framesDropped,
            },
      cameras: this.view.cameraIds.map((id) => {
        const cam = h?.cameras.find((c) => c.cameraId === id);
        const fig = this.figures.get(id);
        const finite = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) ? v : null);
        return {
          id,
          state: cam?.state.replace(/^STATE_/, "").toLowerCase() ?? "unknown",
          fps: cam?.fps ?? null,
          restarts: cam?.restarts ?? 0,
          e2eP50Ms: finite(fig?.e2e.percentile(0.5)),
          e2eP99Ms: finite(fig?.e2e.percentile(0.99)),
          objects: fig?.objects ?? {},
          alerts: alerts
            .filter((a) => a.cameraId === id)
            .map((a) => ({ alertId: a.alertId, level: alertLevelName(a.level) ?? "info", kind: alertKindName(a.kind), trackId: a.trackId, label: a.label, rangeM: a.rangeM ?? null, ttcS: a.ttcS ?? null, valid: a.valid })),
        };
      }),
    };
  }

  async close(): Promise<void> {
    await this.view.close();
    await this.server?.close();
  }
}

function viewCamera(c: CameraConfig): LiveViewCamera {
  const corridor = corridorDrawing(c);
  return corridor === null ? { id: c.id } : { id: c.id, corridor };
}

/** The camera's corridor as a polygon in pixels of a frame of a given size, for drawing; null without a corridor. */
export function corridorDrawing(c: CameraConfig): ((width: number, height: number) => [number, number][] | null) | null {
  const spec = c.corridor;
  if (spec === undefined) return null;
  const geometry = c.geometry;
  return (width, height) => {
    if (spec.type === "image") return corridorOutline(spec);
    if (geometry === undefined) return null;
    const model = new CameraModel(geometry).scaledTo(width, height);
    return corridorOutline(spec, (p) => model.project(p));
  };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
