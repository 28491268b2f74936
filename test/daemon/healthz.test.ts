// /healthz of the real daemon through every state it passes: what a load balancer, a
// container HEALTHCHECK (curl -f) or a probe script sees. DEGRADED answers 200 (the daemon
// still publishes; restarting it would leave nothing), STARTING, FAULT and STOPPING 503.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HEALTHZ_STATUS_CODE } from "../../src/metrics/server.ts";
import type { HealthState } from "../../src/core/health.ts";
import { PHASE_LOG } from "../../src/daemon/log-messages.ts";
import { baseConfig, freePort, removeConfig, runDaemon, until, writeConfig } from "./harness.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Answer {
  code: number;
  status: HealthState;
  reasons: string[];
}

/** Asks /healthz every 25 ms until stop(), keeping every answer (connection errors: the server is not up, or gone). */
function pollHealthz(url: string): { answers: Answer[]; failures: string[]; stop: () => Promise<void> } {
  const answers: Answer[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { status: HealthState; details?: { reasons?: string[] } };
        answers.push({ code: res.status, status: body.status, reasons: body.details?.reasons ?? [] });
      } catch (e) {
        // not listening (yet, or any more)
        failures.push(e instanceof Error ? `${e.message} ${String(e.cause)}` : String(e));
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    answers,
    failures,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe("/healthz of the running daemon", () => {
  it("answers 503 while STARTING, 200 when OK, 200 when DEGRADED (camera_stall), 503 when FAULT (inference_hang)", async () => {
    const faults = await mkdtemp(join(tmpdir(), "perceptd-healthz-"));
    cleanups.push(() => rm(faults, { recursive: true, force: true }));
    const port = await freePort();
    const config = baseConfig(port, { type: "testsrc", pattern: "ball", width: 320, height: 240, framerate: 15 }, {
      // Warm-up long enough to be asked during it.
      inference: { warmupRuns: 20 },
      health: { inferenceDeadlineMs: 10_000, latencyBudgetMs: 10_000, eventLoopLagMs: 1000, cameraStallMs: 500, inferenceHangMs: 1000 },
    });
    const path = await writeConfig(config);
    cleanups.push(() => removeConfig(path));
    const d = runDaemon(["run", "--config", path], { PERCEPTD_TEST_FAULT_DIR: faults });
    cleanups.push(() => d.kill());

    // The metrics server is up before the model loads; its URL is in this line.
    const bound = await d.waitForLog((l) => l.msg === PHASE_LOG.busBound);
    const poll = pollHealthz(String(bound.metrics));
    cleanups.push(() => poll.stop());
    const seen = (status: HealthState) => () => (poll.answers.some((a) => a.status === status) ? true : undefined);
    const what = () => `${poll.answers.length} answers so far, the last: ${JSON.stringify(poll.answers.slice(-3))}; failures: ${poll.failures.slice(-3).join("; ")}`;

    await d.ready();
    await until(seen("ok"), 60_000, what);

    await writeFile(join(faults, "camera-stall.cam0"), "2000");
    await until(seen("degraded"), 20_000, what);
    const degraded = poll.answers.find((a) => a.status === "degraded");
    expect(degraded?.reasons.some((r) => r.startsWith("camera_stall (cam0)")), JSON.stringify(degraded)).toBe(true);
    const okAgain = poll.answers.length;
    await until(() => (poll.answers.slice(okAgain).some((a) => a.status === "ok") ? true : undefined), 30_000, what);

    await writeFile(join(faults, "inference-hang"), "3000");
    await until(seen("fault"), 30_000, what);
    const fault = poll.answers.find((a) => a.status === "fault");
    expect(fault?.reasons.some((r) => r.startsWith("inference_hang")), JSON.stringify(fault)).toBe(true);

    expect(await d.stop(10_000), `exit code; stderr: ${d.stderr()}`).toBe(0);
    await poll.stop();

    const states = new Set(poll.answers.map((a) => a.status));
    for (const s of ["starting", "ok", "degraded", "fault"] as const) expect(states.has(s), `${s} was seen`).toBe(true);
    // Every answer, in every state (stopping too, when a poll caught it), with its state's code.
    for (const a of poll.answers) expect(a.code, `/healthz while ${a.status}`).toBe(HEALTHZ_STATUS_CODE[a.status]);
    expect(HEALTHZ_STATUS_CODE).toEqual({ starting: 503, ok: 200, degraded: 200, fault: 503, stopping: 503 });
  });
});
