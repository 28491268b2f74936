import { describe, expect, it } from "vitest";
import { RestartSchema } from "../../src/config/schema.ts";
import { nextBackoffMs } from "../../src/ingest/backoff.ts";

const mid = () => 0.5; // no jitter either way

describe("nextBackoffMs", () => {
  it("doubles from initialBackoffMs and stops at maxBackoffMs", () => {
    const cfg = { initialBackoffMs: 500, maxBackoffMs: 30_000, jitter: 0.2 };
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((a) => nextBackoffMs(cfg, a, mid));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  it("spreads each delay by up to ±jitter of itself", () => {
    const cfg = { initialBackoffMs: 1000, maxBackoffMs: 60_000, jitter: 0.2 };
    expect(nextBackoffMs(cfg, 1, () => 0)).toBe(800);
    expect(nextBackoffMs(cfg, 1, () => 1)).toBe(1200);
    expect(nextBackoffMs(cfg, 3, () => 0.25)).toBe(3600);
    // At the ceiling the spread stays, so cameras that failed together do not retry together.
    expect(nextBackoffMs(cfg, 20, () => 0)).toBe(48_000);
    expect(nextBackoffMs(cfg, 20, () => 1)).toBe(72_000);
  });

  it("keeps random draws within the jitter band", () => {
    const cfg = { initialBackoffMs: 100, maxBackoffMs: 1000, jitter: 0.5 };
    for (let i = 0; i < 200; i++) {
      const d = nextBackoffMs(cfg, 2);
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(300);
    }
  });

  it("uses the schema defaults as documented", () => {
    const cfg = RestartSchema.parse({});
    expect(nextBackoffMs(cfg, 1, mid)).toBe(500);
    expect(nextBackoffMs(cfg, 100, mid)).toBe(30_000);
  });

  it("survives very long outages without overflowing", () => {
    const cfg = { initialBackoffMs: 10, maxBackoffMs: 3_600_000, jitter: 0 };
    expect(nextBackoffMs(cfg, 5000, mid)).toBe(3_600_000);
    expect(nextBackoffMs({ ...cfg, initialBackoffMs: 0 }, 5000, mid)).toBe(0);
  });

  it("refuses attempts below 1 and random values outside [0, 1]", () => {
    const cfg = RestartSchema.parse({});
    expect(() => nextBackoffMs(cfg, 0, mid)).toThrow(/attempt must be an integer >= 1, got 0/);
    expect(() => nextBackoffMs(cfg, 1.5, mid)).toThrow(/attempt must be an integer >= 1/);
    expect(() => nextBackoffMs(cfg, 1, () => 2)).toThrow(/random\(\) must return a number in \[0, 1\], got 2/);
    expect(() => nextBackoffMs({ ...cfg, jitter: 1.5 }, 1, mid)).toThrow(/jitter must be within \[0, 1\]/);
  });
});
