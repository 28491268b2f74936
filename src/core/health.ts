// The daemon's health vocabulary: its states and the reasons that derive them. One
// definition for every layer: the state machine (src/health/state.ts), the HTTP /healthz
// body and the metrics use these words as they are; only the bus maps them to its wire
// enum (src/bus/codec.ts). Pure: no imports.

export const HEALTH_STATES = ["starting", "ok", "degraded", "fault", "stopping"] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

export type Severity = "degraded" | "fault";

/**
 * Every reason the daemon can be less than OK, with its severity. DEGRADED: output still
 * flows but some of it is late, missing or untrustworthy; the process must not be
 * restarted for it (a restart would not bring a camera back and would blind the healthy
 * ones for seconds). FAULT: the daemon cannot do its job and cannot fix that itself soon;
 * systemd's watchdog is no longer fed (systemd.ts), so the process is restarted.
 */
export const REASON_SEVERITY = {
  /** no frame from a camera for health.cameraStallMs (source: camera id) */
  camera_stall: "degraded",
  /** a camera's pipeline failed and is backing off before a restart (source: camera id) */
  camera_restarting: "degraded",
  /** a source that is not restarted (a replay file) ended on an error: it will not come back (source: camera id) */
  camera_failed: "fault",
  /** k of a camera's last n frames missed the per-frame inference deadline (source: camera id) */
  inference_overrun: "degraded",
  /** a worker has been inside one frame for longer than the hang limit (source: worker) */
  inference_hang: "fault",
  /** a worker is being replaced; its cameras get no detections meanwhile (source: worker) */
  worker_replaced: "degraded",
  /** a worker could not be brought back within the replacement budget (source: worker) */
  worker_failed: "fault",
  /** the main thread's event loop p99 delay is above the limit (source: "main") */
  event_loop_lag: "degraded",
  /** the bus dropped messages of a topic recently (source: topic) */
  publish_failure: "degraded",
  /** k of a camera's last n results were older than the latency budget at publish (source: camera id) */
  detections_stale: "degraded",
} as const satisfies Record<string, Severity>;

export type HealthReason = keyof typeof REASON_SEVERITY;
export const HEALTH_REASONS = Object.keys(REASON_SEVERITY) as HealthReason[];
