// The status line's rolling percentiles and frame rate.
import { describe, expect, it } from "vitest";
import { LatencyWindow, RateMeter } from "../../src/daemon/latency-window.ts";

/** Nearest-rank percentile of `xs`, written the obvious way, as the reference. */
function nearestRank(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

describe("LatencyWindow", () => {
  it("is NaN when empty and exact for a single sample", () => {
    const w = new LatencyWindow(4);
    expect(w.percentile(0.5)).toBeNaN();
    w.add(12.5);
    expect(w.size).toBe(1);
    expect(w.percentile(0)).toBe(12.5);
    expect(w.percentile(0.99)).toBe(12.5);
  });

  it("gives nearest-rank percentiles of the last `capacity` samples only, after the ring wraps", () => {
    const w = new LatencyWindow(50);
    const all: number[] = [];
    let x = 7;
    for (let i = 0; i < 173; i++) {
      x = (x * 48271) % 2147483647; // a fixed pseudo-random sequence
      const ms = (x % 10000) / 100;
      all.push(ms);
      w.add(ms);
      if (i % 17 === 0 || i === 172) {
        const last = all.slice(-50);
        for (const q of [0, 0.1, 0.5, 0.9, 0.99, 1]) {
          expect(w.percentile(q), `q=${q} after ${i + 1} samples`).toBe(nearestRank(last, q));
        }
      }
    }
    expect(w.size).toBe(50);
  });

  it("sees a sample added between two reads (the sorted copy is not stale)", () => {
    const w = new LatencyWindow(8);
    for (const v of [5, 1, 3]) w.add(v);
    expect(w.percentile(1)).toBe(5);
    w.add(40);
    expect(w.percentile(1)).toBe(40);
    expect(w.percentile(0)).toBe(1);
  });

  it("rejects a capacity that is not a positive integer", () => {
    expect(() => new LatencyWindow(0)).toThrow(/capacity must be a positive integer, got 0/);
    expect(() => new LatencyWindow(2.5)).toThrow(/got 2.5/);
  });
});

describe("RateMeter", () => {
  it("counts events per second over its window on the clock it is given", () => {
    let now = 0;
    const r = new RateMeter(2000, () => now);
    expect(r.perSecond()).toBe(0);
    for (let i = 0; i < 21; i++) {
      r.tick();
      now += 100; // 10 events a second
    }
    now -= 100;
    expect(r.perSecond()).toBeCloseTo(10, 6);
    now += 5000; // long after the last event: nothing left in the window
    expect(r.perSecond()).toBe(0);
  });
});
