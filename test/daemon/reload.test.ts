// SIGHUP end to end: the real daemon, a real config file rewritten in place, the effect
// observed on the bus. Frames already in flight when the signal lands may still carry the
// old settings, so each check skips a few messages after the reload: counts, not clocks.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { baseConfig, collectDetections, freePort, removeConfig, runDaemon, until, VTEST, writeConfig } from "./harness.ts";
import { PHASE_LOG } from "../../src/daemon/log-messages.ts";

/** Messages in flight when a reload lands: the worker's frame, a queued one, the bus's queue. */
const IN_FLIGHT = 5;

describe("perceptd run: SIGHUP", () => {
  it.skipIf(!existsSync(VTEST))("applies a changed score threshold on the bus, reports restart-only keys, and keeps the running settings when the file is invalid", async () => {
    const port = await freePort();
    const sub = await collectDetections(`tcp://127.0.0.1:${port}`);
    const camera = { type: "file", path: VTEST, loop: true, realtime: true };
    const config = baseConfig(port, camera, { model: { scoreThreshold: 0.3 } });
    const cfg = await writeConfig(config);
    const d = runDaemon(["run", "--config", cfg]);
    try {
      await d.ready(120_000);
      const scoresFrom = (i: number): number[] => sub.messages.slice(i).flatMap((m) => m.detections.map((x) => x.score));
      // Before: the low threshold lets through detections that the new one will drop.
      await until(() => (scoresFrom(0).some((s) => s <= 0.6) && sub.messages.length >= 10 ? true : undefined), 60_000, () => `detections scoring 0.3..0.6 (got ${sub.messages.length} messages)`);

      await writeFile(cfg, stringify({ ...config, model: { scoreThreshold: 0.6 }, health: { ...(config.health as object), publishHz: 20 } }));
      d.child.kill("SIGHUP");
      const reloaded = await d.waitForLog((l) => l.msg === PHASE_LOG.reloaded);
      expect(reloaded.applied).toEqual(["model.scoreThreshold"]);
      expect(reloaded.needsRestart).toEqual(["health.publishHz"]);
      const warning = await d.waitForLog((l) => l.level === "warn" && Array.isArray(l.keys));
      expect(warning.keys, "a warning names the restart-only key").toEqual(["health.publishHz"]);
      const afterReload = sub.messages.length + IN_FLIGHT;
      await until(() => (sub.messages.length >= afterReload + 20 ? true : undefined), 60_000, () => `20 messages after the reload (got ${sub.messages.length - afterReload})`);
      const raised = scoresFrom(afterReload);
      expect(raised.length, "people are still detected above the new threshold").toBeGreaterThan(0);
      expect(Math.min(...raised), "every detection after the reload scores above 0.6").toBeGreaterThan(0.6);

      await writeFile(cfg, stringify({ ...config, model: { scoreThreshold: 2 } }));
      d.child.kill("SIGHUP");
      const rejected = await d.waitForLog((l) => l.msg === PHASE_LOG.reloadRejected);
      expect(String(rejected.err)).toMatch(/model\.scoreThreshold/);
      const afterReject = sub.messages.length + IN_FLIGHT;
      await until(() => (sub.messages.length >= afterReject + 20 ? true : undefined), 60_000, () => `20 messages after the rejected reload (got ${sub.messages.length - afterReject})`);
      const kept = scoresFrom(afterReject);
      expect(kept.length).toBeGreaterThan(0);
      expect(Math.min(...kept), "the running threshold (0.6) still holds").toBeGreaterThan(0.6);

      expect(await d.stop(), `exit code; stderr: ${d.stderr()}`).toBe(0);
    } finally {
      d.kill();
      sub.close();
      await removeConfig(cfg);
    }
  }, 240_000);
});
