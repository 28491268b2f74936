// Drives the real daemon from outside, as an integrator would: a YAML config in a temp
// folder, `node bin/perceptd.js run`, JSON logs on stdout, a real ZeroMQ subscriber. The
// process plumbing lives in src/soak/daemon-process.ts, the one copy that `perceptd soak`
// and `bench pipeline` use too; a daemon is ready when `await d.ready()` resolves (its
// READY=1 on a NOTIFY_SOCKET of its own, with where its bus and metrics listen).
import { join } from "node:path";
import { REPO_ROOT } from "../../src/soak/daemon-process.ts";
import { readManifest } from "../../src/infer/manifest.ts";

export {
  collectDetections,
  freePort,
  freeUdpPort,
  removeConfig,
  runDaemon,
  writeConfig,
  type DaemonReady,
  type LogLine,
  type RunningDaemon,
} from "../../src/soak/daemon-process.ts";

export const REPO = REPO_ROOT;

/** Polls until pick() returns something; the event timestamps carry the timing, not the poll. */
export async function until<T>(pick: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const hit = pick();
    if (hit !== undefined) return hit;
    if (performance.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
export const VTEST = join(REPO, ".cache/fixtures/vtest.avi");

const manifest = await readManifest();
/** The model a config without `model.name` runs: the manifest's default, read rather than repeated here. */
export const DEFAULT_MODEL = manifest.default;
/** Its file name inside models/. */
export const DEFAULT_MODEL_FILE = manifest.models[DEFAULT_MODEL].file;

/** `s` as a literal inside a regular expression. */
export function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function baseConfig(busPort: number, camera: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: "info", format: "json" },
    cameras: [{ id: "cam0", source: camera }],
    bus: { endpoints: [`tcp://127.0.0.1:${busPort}`] },
    metrics: { enabled: true, host: "127.0.0.1", port: 0 },
    inference: { warmupRuns: 1 },
    status: { mode: "off" },
    // A shared 2-core test machine can take 100-250 ms per frame under load; these tests
    // check the pipeline, not the health thresholds (test/daemon/faults.test.ts does that),
    // so the thresholds sit far above what load alone can reach.
    health: { inferenceDeadlineMs: 5000, latencyBudgetMs: 10_000, eventLoopLagMs: 2000, cameraStallMs: 5000 },
    ...extra,
  };
}
