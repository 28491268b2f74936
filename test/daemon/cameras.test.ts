// Many cameras on the real daemon: a config with 8 or 12 cameras runs (bin/perceptd.js sizes
// the libuv threadpool for the most a config may list before node's pool starts); a pool
// set too small in the environment is refused before anything starts (exit 78); and a
// camera that cannot start takes the daemon down promptly instead of leaving the others
// running in a process whose bus and metrics are closed.
import { afterEach, describe, expect, it } from "vitest";
import { baseConfig, freePort, removeConfig, runDaemon, until, writeConfig, type RunningDaemon } from "./harness.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const QUIET_HOST = { inferenceDeadlineMs: 10_000, latencyBudgetMs: 10_000, eventLoopLagMs: 2000, cameraStallMs: 10_000 };

function cameras(n: number, pattern = (_i: number) => "ball"): Record<string, unknown>[] {
  // Small and slow: twelve cameras' inference has to fit a loaded 2-core machine.
  return Array.from({ length: n }, (_, i) => ({ id: `cam${i + 1}`, source: { type: "testsrc", pattern: pattern(i), width: 160, height: 120, framerate: 2 } }));
}

async function start(n: number, env: NodeJS.ProcessEnv = {}, pattern?: (i: number) => string): Promise<RunningDaemon> {
  const port = await freePort();
  const path = await writeConfig({ ...baseConfig(port, { type: "testsrc" }, { health: QUIET_HOST }), cameras: cameras(n, pattern) });
  cleanups.push(() => removeConfig(path));
  const d = runDaemon(["run", "--config", path], env);
  cleanups.push(() => d.kill());
  return d;
}

describe("many cameras", () => {
  it.each([8, 12])("%i cameras: every one runs, the daemon stays up and stops with exit 0", async (n) => {
    // The environment of the test runner may carry its own size; the daemon's default is what is tested.
    const d = await start(n, { UV_THREADPOOL_SIZE: undefined });
    await d.ready();
    await until(() => (d.logs.filter((l) => /^camera cam\d+: running$/.test(String(l.msg))).length === n ? true : undefined), 60_000, () => `all ${n} cameras running; logs: ${JSON.stringify(d.logs.slice(-3))}`);
    expect(d.logs.some((l) => /UV_THREADPOOL_SIZE/.test(String(l.msg))), "no threadpool warning").toBe(false);
    expect(d.logs.filter((l) => /^camera cam\d+: error$/.test(String(l.msg))), "no camera failed").toEqual([]);
    expect(await d.stop(10_000), `exit; stderr: ${d.stderr()}`).toBe(0);
  });

  it("a threadpool set too small in the environment: exit 78 naming the size needed, nothing started", async () => {
    const d = await start(8, { UV_THREADPOOL_SIZE: "16" });
    expect(await d.exited).toBe(78);
    expect(d.stderr()).toMatch(/cameras: 8 camera\(s\) need a libuv threadpool of 20 .* but UV_THREADPOOL_SIZE=16 gives 16: unset it .* or set it to 20 or more/);
    expect(d.logs, "nothing started: no log line").toEqual([]);
  });

  it("more cameras than a config may list: exit 78 naming cameras", async () => {
    const d = await start(17);
    expect(await d.exited).toBe(78);
    expect(d.stderr()).toMatch(/cameras: .*16/);
  });

  it("a camera that cannot start after others did: the daemon stops them and exits 1 promptly, not alive without its bus", async () => {
    // The third camera's pattern is no videotestsrc pattern: its pipeline cannot be described.
    const d = await start(3, {}, (i) => (i === 2 ? "no pattern!" : "ball"));
    const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r("still running after 60 s"), 60_000))]);
    expect(code, `stderr: ${d.stderr()}`).toBe(1);
    expect(d.stderr()).toMatch(/testsrc pattern "no pattern!" is not a videotestsrc pattern name/);
  });
});
