// The daemon's log messages that mark its phases, declared once: the daemon writes them and
// the tests that drive it from outside look for them by these names, never by retyped text.
// Readiness itself is not one of them: it is READY=1 on the notify socket (READY_FIELDS in
// src/health/systemd.ts), which is what the test harness and `perceptd soak` wait for.
export const PHASE_LOG = {
  /** the bus is bound; fields: endpoints, metrics, model, busWarmupMs */
  busBound: "bus bound; loading model",
  /** the workers are warm; fields: provider, tried, warmupMs, layout, workers (name, cameras, intraOpThreads) */
  modelWarm: "model warm",
  /** a stop began; field: reason (StopReason) */
  stopping: "stopping",
  /** the stop finished; fields: the frame counts */
  stopped: "stopped",
  /** SIGHUP took a new configuration; fields: applied, needsRestart (key paths) */
  reloaded: "SIGHUP: configuration reloaded",
  /** SIGHUP found the file invalid and kept the running configuration; field: err */
  reloadRejected: "SIGHUP: new configuration rejected; keeping the running one",
} as const;
