// `perceptd soak` as a bench engineer runs it: the real CLI, the real daemon as its child
// (demo config: vtest.avi paced like a camera), real ZeroMQ, real /metrics, and the report
// rendered by headless Chromium. Short soaks (5 s windows) keep the test time modest; the
// budgets that decide them are set so that they cannot hold, whatever the machine's load.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { SOAK_SCHEMA, type SoakResult } from "../../src/soak/result.ts";
import { perceptd } from "../cli/run-cli.ts";
import { freePort, VTEST } from "../daemon/harness.ts";

const CHROMIUM = "/usr/bin/chromium";
/** The first soak's folder, the second one's --baseline (when the first ran). */
let firstSoak: string | null = null;
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "perceptd-soak-test-"));
  dirs.push(d);
  return d;
}

/** The demo config on ports of its own, with a short warm-up; `extra` are more --set overrides. */
async function demoArgs(extra: string[] = []): Promise<string[]> {
  const port = await freePort();
  return ["--config", "config/demo.yaml", "--set", "metrics.port=0", "--set", `bus.endpoints=["tcp://127.0.0.1:${port}"]`, "--set", "soak.warmupS=2", ...extra];
}

async function readResult(dir: string): Promise<SoakResult> {
  return JSON.parse(await readFile(join(dir, "soak.json"), "utf8")) as SoakResult;
}

/** Pixels in an image that are neither near-white nor grey: plotted data, not axes or text. */
function colouredPixels(png: PNG): number {
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 40) n++;
  }
  return n;
}

describe.skipIf(!existsSync(VTEST))("perceptd soak", () => {
  it.skipIf(!existsSync(CHROMIUM))(
    "soaks the demo config: writes soak.json, windows.csv and a report Chromium renders with non-blank plots; an impossible budget exits 1 naming it",
    async () => {
      const out = await tempDir();
      const run = await perceptd("soak", ...(await demoArgs(["--set", "soak.e2eP99MaxMs=0.1"])), "--duration", "20s", "--window", "5s", "--out", out);
      expect(run.code, `exit code; stderr: ${run.stderr.slice(-2000)}`).toBe(1);
      expect(run.stderr).toMatch(/budgets failed: .*e2e p99, worst window/);
      expect(run.stdout).toMatch(/\| e2e p99, worst window +\| <= 0\.1 ms +\| [\d.]+ ms \(window \d\) +\| FAIL/);

      const r = await readResult(out);
      firstSoak = out;
      expect(r.schema).toBe(SOAK_SCHEMA);
      expect(r.end).toEqual({ kind: "completed" });
      expect(r.windows.length, "20 s in 5 s windows").toBe(4);
      for (const w of r.windows) {
        expect(w.e2e?.count ?? 0, `detections in window ${w.index + 1}`).toBeGreaterThan(10);
        expect(w.topics.health.messages, `health messages in window ${w.index + 1} (10 Hz)`).toBeGreaterThan(20);
        expect(w.stages.inference?.count ?? 0, `inference timings from /metrics in window ${w.index + 1}`).toBeGreaterThan(10);
        expect(w.rssMB ?? 0, "daemon RSS (MB)").toBeGreaterThan(50);
      }
      expect(r.verdict.pass).toBe(false);
      expect(r.verdict.results.find((x) => x.id === "e2e-p99")?.status).toBe("fail");
      expect(r.verdict.results.find((x) => x.id === "counter-gaps")).toMatchObject({ status: "pass", value: 0 });
      expect(r.versions.model.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(r.versions.executionProvider).toBe("cpu");
      expect(r.warmup.readyAfterS ?? 0).toBeGreaterThan(0);

      const csv = (await readFile(join(out, "windows.csv"), "utf8")).trim().split("\n");
      expect(csv.length, "header + one row per window").toBe(5);
      expect(csv[0]).toMatch(/^window,start_s,end_s,e2e_count,e2e_p50_ms,/);

      const html = await readFile(join(out, "report.html"), "utf8");
      expect(html, "self-contained: no script, nothing fetched").not.toMatch(/<script|<link|src="http|@import|url\(/i);
      let browser: Browser | undefined;
      try {
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        const page = await browser.newPage({ viewport: { width: 960, height: 1200 } });
        await page.goto(`file://${join(out, "report.html")}`);
        const figures = await page.locator("figure svg").all();
        expect(figures.length, "plots in the report").toBeGreaterThanOrEqual(7);
        const titles = await page.locator("figure svg").evaluateAll((els) => els.map((e) => e.getAttribute("aria-label") ?? ""));
        for (const [i, svg] of figures.entries()) {
          const png = PNG.sync.read(await svg.screenshot());
          expect(png.width, `plot "${titles[i]}" width`).toBeGreaterThan(500);
          // Temperatures: a VM has no thermal zones, and the plot says so in grey.
          if (titles[i] === "Temperatures") continue;
          expect(colouredPixels(png), `plot "${titles[i]}": coloured (data) pixels`).toBeGreaterThan(300);
        }
      } finally {
        await browser?.close();
      }
    },
    120_000,
  );

  it("a camera stall in the fault plan: DEGRADED on the bus and back, health budget fails, exit 1 naming it", async () => {
    const out = await tempDir();
    const plan = join(out, "plan.yaml");
    await writeFile(plan, "faults:\n  - { at: 3s, action: camera-stall, for: 3s }\n");
    // Thresholds a loaded 2-core machine trips by itself are raised, so the stall is what the health budget sees.
    const relaxed = ["--set", "health.inferenceDeadlineMs=10000", "--set", "health.latencyBudgetMs=10000", "--set", "health.eventLoopLagMs=2000"];
    const baseline = firstSoak === null ? [] : ["--baseline", firstSoak];
    const run = await perceptd("soak", ...(await demoArgs(relaxed)), "--duration", "12s", "--window", "4s", "--faults", plan, ...baseline, "--out", out);
    expect(run.code, `exit code; stderr: ${run.stderr.slice(-2000)}`).toBe(1);
    expect(run.stderr).toMatch(/budgets failed: .*health messages saying OK/);
    const r = await readResult(out);
    expect(r.faults).toHaveLength(1);
    const f = r.faults[0];
    expect(f.degradedState).toBe("STATE_DEGRADED");
    expect(f.degradedReasons.some((x) => x.startsWith("camera_stall (demo)")), f.degradedReasons.join("; ")).toBe(true);
    // How long it took is the soak's figure to report, not this test's to bound: only that it was seen.
    expect(f.toDegradedMs, "stall -> DEGRADED on the bus, measured").not.toBeNull();
    expect(f.backToOkMs, "back to OK after the stall ended").not.toBeNull();
    expect(r.verdict.results.find((x) => x.id === "fault-recovery")?.status).toBe("pass");
    expect(r.verdict.results.find((x) => x.id === "health-ok")?.status).toBe("fail");
    if (firstSoak !== null) {
      // With --baseline: the earlier soak's figures and the differences in the verdict, its curves in the plots.
      expect(r.baseline?.dir).toBe(firstSoak);
      expect(r.verdict.results.find((x) => x.id === "counter-gaps")?.baseline).toEqual({ measured: "0", difference: "+0.00" });
      expect(run.stdout).toMatch(/\| budget +\| limit +\| measured +\| baseline +\| difference +\| result +\|/);
      const html = await readFile(join(out, "report.html"), "utf8");
      expect(html).toMatch(/baseline p99/);
      expect(html).toMatch(/baseline RSS/);
    }
  }, 90_000);

  it("a daemon that dies mid-soak ends the soak at once with a verdict naming the exit", async () => {
    const out = await tempDir();
    const plan = join(out, "plan.yaml");
    // An inference hang with no replacement allowed: the daemon gives up and exits 70.
    await writeFile(plan, "faults:\n  - { at: 2s, action: inference-hang, for: 3s }\n");
    const args = await demoArgs(["--set", "health.inferenceHangMs=500", "--set", "health.maxWorkerReplacements=0"]);
    const run = await perceptd("soak", ...args, "--duration", "60s", "--window", "5s", "--faults", plan, "--out", out);
    expect(run.code, `exit code; stderr: ${run.stderr.slice(-2000)}`).toBe(1);
    expect(run.stderr).toMatch(/budgets failed: soak duration/);
    const r = await readResult(out);
    expect(r.end).toEqual({ kind: "daemon-exited", code: 70 });
    expect(r.verdict.results[0]).toMatchObject({ id: "duration", status: "fail" });
    expect(r.verdict.results[0].measured).toMatch(/the daemon exited \(code 70: the health monitors gave up\)/);
    expect(existsSync(join(out, "report.html"))).toBe(true);
  }, 90_000);

  it("a replay that ends before the duration ends the soak early, and the verdict says so", async () => {
    const out = await tempDir();
    const cfg = join(out, "short.yaml");
    const port = await freePort();
    // 60 frames at 15 fps: the daemon exits 0 about 4 s after it starts.
    await writeFile(
      cfg,
      [
        "cameras:",
        "  - id: clip",
        "    source: { type: testsrc, pattern: ball, width: 320, height: 240, framerate: 15, numBuffers: 60 }",
        `bus: { endpoints: ["tcp://127.0.0.1:${port}"] }`,
        "metrics: { port: 0 }",
        "soak: { warmupS: 1 }",
        "",
      ].join("\n"),
    );
    const run = await perceptd("soak", "--config", cfg, "--duration", "60s", "--window", "5s", "--out", out);
    expect(run.code, `exit code; stderr: ${run.stderr.slice(-2000)}`).toBe(1);
    const r = await readResult(out);
    expect(r.end).toEqual({ kind: "replay-ended", code: 0 });
    expect(r.measuredS).toBeLessThan(30);
    expect(r.verdict.results[0].measured).toMatch(/ended early: every camera's source ended \(a replay without loop: true\) and the daemon exited 0/);
  }, 60_000);

  it("bad flags, a bad fault plan and a bad soak: section: clear errors, exit 2 or 78, nothing started", async () => {
    const out = await tempDir();
    const bad = await perceptd("soak", "--duration", "2x", "--out", out);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/option '-d, --duration <time>' argument '2x' is invalid\. "2x" is not a duration: expected a number with a unit, e\.g\. 500ms, 130s/);

    const window = await perceptd("soak", "--duration", "10s", "--window", "1m", "--out", out);
    expect(window.code).toBe(2);
    expect(window.stderr).toMatch(/--window \(1 min\) is longer than --duration \(10 s\)/);

    const cfg = join(out, "bad-soak.yaml");
    await writeFile(cfg, ["cameras:", "  - id: a", "    source: { type: testsrc }", "soak:", "  minHealthOkFraction: 2", "  e2eP99MaxMS: 50", ""].join("\n"));
    const config = await perceptd("soak", "--config", cfg, "--duration", "10s", "--window", "5s", "--out", out);
    expect(config.code).toBe(78);
    expect(config.stderr).toMatch(/bad-soak\.yaml:5:\d+ soak\.minHealthOkFraction: .*1/);
    expect(config.stderr).toMatch(/unknown key "e2eP99MaxMS" in soak, did you mean e2eP99MaxMs\?/);

    const plan = join(out, "plan.yaml");
    await writeFile(plan, "faults:\n  - { at: 20s, action: camera-explode, for: 1s }\n  - { at: 1s, action: camera-stall, for: 1s, camera: nope }\n");
    const faults = await perceptd("soak", "--config", "config/demo.yaml", "--duration", "10s", "--window", "5s", "--faults", plan, "--out", out);
    expect(faults.code).toBe(2);
    expect(faults.stderr).toMatch(/--faults .*plan\.yaml: invalid plan:\n {2}faults\.0\.action: .*camera-stall/);
    expect(existsSync(join(out, "soak.json")), "nothing written").toBe(false);
  }, 60_000);
});
