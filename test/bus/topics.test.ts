import { describe, expect, it } from "vitest";
import { HealthSchema } from "../../src/config/schema.ts";
import { AlertsSchema } from "../../src/config/hazard-schema.ts";
import { TOPICS, fixedRateHz, minFreshHz } from "../../src/bus/topics.ts";

describe("topic rates", () => {
  it("gives the nominal rate of fixed-rate topics and refuses a per-frame one", () => {
    expect(fixedRateHz("health")).toBe(10);
    expect(fixedRateHz("alerts")).toBe(5);
    expect(() => fixedRateHz("detections")).toThrow(/detections is published per frame/);
  });

  it("puts the freshness floor where one period is shorter than staleAfterMs and the next rate down is not", () => {
    for (const name of ["health", "alerts"] as const) {
      const hz = minFreshHz(name);
      expect(1000 / hz, `${name} period at ${hz} Hz`).toBeLessThan(TOPICS[name].staleAfterMs);
      expect(1000 / (hz - 1), `${name} period at ${hz - 1} Hz`).toBeGreaterThanOrEqual(TOPICS[name].staleAfterMs);
    }
  });

  it("is where the config takes its publish-rate defaults and floors from", () => {
    expect(HealthSchema.parse({}).publishHz).toBe(fixedRateHz("health"));
    expect(AlertsSchema.parse({}).publishHz).toBe(fixedRateHz("alerts"));
    expect(HealthSchema.safeParse({ publishHz: minFreshHz("health") - 0.5 }).success).toBe(false);
    expect(AlertsSchema.safeParse({ publishHz: minFreshHz("alerts") - 0.5 }).success).toBe(false);
  });
});
