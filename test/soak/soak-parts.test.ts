// The soak's pure parts: durations, windows, robust slopes, budgets, fault plans, tegrastats
// lines, plot ticks. The whole soak against the real daemon is soak-cli.test.ts.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SoakSchema } from "../../src/config/schema.ts";
import { judge, type VerdictInput } from "../../src/soak/budgets.ts";
import { formatDuration, parseDuration } from "../../src/soak/duration.ts";
import { faultOutcome, readFaultPlan } from "../../src/soak/fault-plan.ts";
import { parseTegrastats } from "../../src/soak/machine-probes.ts";
import { percentiles, theilSen } from "../../src/soak/stats.ts";
import { missingCount } from "../../src/soak/subscriber.ts";
import { lineChart, niceTicks } from "../../src/soak/svg-charts.ts";
import { windowBounds, type SoakWindow } from "../../src/soak/windows.ts";

const dir = await mkdtemp(join(tmpdir(), "perceptd-soak-parts-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("durations", () => {
  it("reads what people write and refuses the rest, naming it", () => {
    expect(parseDuration("130s")).toBe(130_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("90")).toBe(90_000);
    expect(() => parseDuration("2x")).toThrow(/"2x" is not a duration: expected a number with a unit/);
    expect(() => parseDuration("1h 30m")).toThrow(/not a duration/);
    expect(formatDuration(130_000)).toBe("2 min 10 s");
    expect(formatDuration(7_200_000)).toBe("2 h");
  });
});

describe("windows", () => {
  it("cuts whole windows; a remainder of half a window or more is its own, a shorter one joins the last", () => {
    expect(windowBounds(130_000, 60_000)).toEqual([
      [0, 60_000],
      [60_000, 130_000],
    ]);
    expect(windowBounds(150_000, 60_000)).toEqual([
      [0, 60_000],
      [60_000, 120_000],
      [120_000, 150_000],
    ]);
    expect(windowBounds(20_000, 60_000)).toEqual([[0, 20_000]]);
    expect(windowBounds(0, 60_000)).toEqual([]);
  });
});

describe("statistics", () => {
  it("nearest-rank percentiles and the mean", () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(p).toMatchObject({ count: 100, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 });
    expect(percentiles([])).toBeNull();
  });

  it("Theil-Sen finds the slope through outliers that tilt a least-squares line", () => {
    const x = Array.from({ length: 50 }, (_, i) => i);
    const y = x.map((v) => 100 + 2 * v);
    y[10] = 900; // a burst
    y[40] = -500;
    const fit = theilSen(x, y);
    expect(fit?.slope).toBeCloseTo(2, 6);
    expect(fit?.intercept).toBeCloseTo(100, 6);
    expect(theilSen([1, 1], [2, 3])).toBeNull();
    expect(() => theilSen([1, 2], [1])).toThrow(/2 x values but 1 y values/);
  });

  it("reads how many messages a counter gap lost", () => {
    expect(missingCount("counter 12 after 8: 3 messages missing")).toBe(3);
    expect(missingCount("counter 9 after 7: 1 message missing")).toBe(1);
    expect(missingCount("counter 2 after 8: went back (reordered, or the publisher restarted)")).toBe(0);
  });
});

function window(index: number, p99: number): SoakWindow {
  return { index, e2e: { count: 100, mean: p99 / 2, p50: p99 / 2, p90: p99 * 0.8, p99, max: p99 * 1.2 } } as SoakWindow;
}

function verdictInput(over: Partial<VerdictInput> = {}): VerdictInput {
  return {
    budgets: SoakSchema.parse({}),
    windows: [window(0, 40), window(1, 45)],
    samples: [],
    t0: 0,
    durationMs: 120_000,
    measuredMs: 120_000,
    end: { kind: "completed" },
    faults: [],
    totals: { gaps: 0, errors: 0, repeated: 0, healthMessages: 1200, healthOk: 1200, ingested: 1200, dropped: 0 },
    ...over,
  };
}

describe("budgets", () => {
  it("pass when every budget holds; the RSS slope is not judged without samples", () => {
    const r = judge(verdictInput());
    expect(r.filter((x) => x.status === "fail")).toEqual([]);
    expect(r.find((x) => x.id === "rss-slope")?.status).toBe("not judged");
    expect(r.find((x) => x.id === "e2e-p99-drift")).toMatchObject({ status: "pass", value: 5 });
  });

  it("name what failed, with the figure and the limit", () => {
    const r = judge(
      verdictInput({
        budgets: SoakSchema.parse({ e2eP99MaxMs: 0.1 }),
        windows: [window(0, 40), window(1, 90)],
        totals: { gaps: 3, errors: 1, repeated: 0, healthMessages: 1000, healthOk: 900, ingested: 1000, dropped: 50 },
        end: { kind: "daemon-exited", code: "SIGKILL" },
      }),
    );
    const failed = Object.fromEntries(r.filter((x) => x.status === "fail").map((x) => [x.id, `${x.limit} | ${x.measured}`]));
    expect(failed).toEqual({
      duration: "2 min | 2 min: ended early: the daemon exited (killed by SIGKILL)",
      "e2e-p99": "<= 0.1 ms | 90.0 ms (window 2)",
      "e2e-p99-drift": "<= +20 ms | +50.0 ms (40.0 -> 90.0)",
      "counter-gaps": "<= 0 | 3",
      "bus-errors": "<= 0 | 1 (1 failed CRC/decoding/id checks, 0 repeated)",
      "health-ok": ">= 99.0 % | 90.00 % of 1000",
      "dropped-frames": "<= 1.0 % | 5.00 % (50 of 1000)",
    });
  });

  it("an RSS slope over a long enough span is judged", () => {
    const samples = Array.from({ length: 400 }, (_, i) => ({ at: i * 2000, daemon: { rssBytes: (300 + (i * 2000 * 100) / 3_600_000) * 1024 * 1024 } })) as unknown as VerdictInput["samples"];
    const row = judge(verdictInput({ samples })).find((x) => x.id === "rss-slope");
    expect(row?.status).toBe("fail");
    expect(row?.value).toBeCloseTo(100, 3);
  });
});

describe("fault plans", () => {
  it("reads a plan, sorted, the camera defaulting to the first", async () => {
    const p = join(dir, "ok.yaml");
    await writeFile(p, "faults:\n  - { at: 60s, action: inference-hang, for: 7s }\n  - { at: 30, action: camera-stall, for: 3s }\n");
    expect(await readFaultPlan(p, ["front", "rear"], 120_000)).toEqual([
      { atMs: 30_000, action: "camera-stall", forMs: 3000, camera: "front" },
      { atMs: 60_000, action: "inference-hang", forMs: 7000, camera: undefined },
    ]);
  });

  it("refuses what cannot happen, naming each entry", async () => {
    const p = join(dir, "bad.yaml");
    await writeFile(p, "faults:\n  - { at: 200s, action: camera-stall, for: 3s, camera: side }\n  - { at: 1s, action: inference-hang, for: 1s, camera: front }\n");
    const err = await readFaultPlan(p, ["front"], 120_000).catch((e: Error) => e.message);
    expect(err).toMatch(/faults\.0\.camera: "side" is not a camera of the config \(front\)/);
    expect(err).toMatch(/faults\.0\.at: 200 s is not before the end of the soak/);
    expect(err).toMatch(/faults\.1\.camera: only camera-stall takes a camera/);
    await expect(readFaultPlan(join(dir, "none.yaml"), ["front"], 1000)).rejects.toThrow(/cannot read it: ENOENT/);
  });

  it("times a fault from the health messages: to the first not OK, and from its end to OK", () => {
    const f = { atMs: 0, action: "camera-stall" as const, forMs: 3000 };
    const health = [
      { at: 1000, state: "STATE_OK", reasons: [] },
      { at: 1600, state: "STATE_DEGRADED", reasons: ["camera_stall (front): no frame for 520 ms"] },
      { at: 3900, state: "STATE_DEGRADED", reasons: [] },
      { at: 4300, state: "STATE_OK", reasons: [] },
    ];
    expect(faultOutcome(f, 1000, health)).toMatchObject({ toDegradedMs: 600, degradedState: "STATE_DEGRADED", backToOkMs: 300 });
    expect(faultOutcome(f, 1000, health.slice(0, 3)).backToOkMs).toBeNull();
    // The daemon's own STOPPING at the end, or what follows the next fault, is not this fault's doing.
    const calm = [{ at: 1000, state: "STATE_OK", reasons: [] }, { at: 9000, state: "STATE_STOPPING", reasons: [] }, { at: 9500, state: "STATE_FAULT", reasons: ["x"] }];
    expect(faultOutcome(f, 1000, calm, 9200)).toMatchObject({ toDegradedMs: null, backToOkMs: null });
  });
});

describe("tegrastats", () => {
  it("reads GPU and memory-controller load, temperatures and rails from a JetPack 6 line", () => {
    const line =
      "12-07-2026 13:00:00 RAM 2448/30536MB (lfb 1x4MB) SWAP 0/15268MB (cached 0MB) CPU [2%@729,1%@729,0%@729,0%@729] EMC_FREQ 13%@2133 GR3D_FREQ 61%@[305,305] cpu@44.5C soc2@43.2C tj@45.1C VDD_GPU_SOC 2361mW/2361mW VDD_CPU_CV 393mW/393mW VIN_SYS_5V0 3520mW/3520mW";
    expect(parseTegrastats(line)).toEqual({
      gpuPct: 61,
      emcPct: 13,
      tempsC: { cpu: 44.5, soc2: 43.2, tj: 45.1 },
      powerMw: { VDD_GPU_SOC: 2361, VDD_CPU_CV: 393, VIN_SYS_5V0: 3520 },
    });
    expect(parseTegrastats("tegrastats: interval 1000 ms")).toBeNull();
  });
});

describe("plots", () => {
  it("round ticks, and a chart with nothing to draw says so", () => {
    expect(niceTicks(0, 9.3)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0, 130, 8)).toEqual([0, 20, 40, 60, 80, 100, 120, 140]);
    const empty = lineChart({ title: "t", yLabel: "y", series: [{ name: "a", color: "#f00", points: [[0, NaN]] }], empty: "nothing here" });
    expect(empty).toMatch(/nothing here/);
    expect(empty).not.toMatch(/polyline/);
  });
});
