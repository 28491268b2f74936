// The publishing warm-up the daemon runs before its first frame: a real throwaway publisher.
import { describe, expect, it } from "vitest";
import { BusPublisher } from "../../src/bus/publisher.ts";
import { warmUpBus } from "../../src/bus/warmup.ts";

describe("warmUpBus", () => {
  it("sends every warm-up message through zeromq.js, none dropped at the queue", async () => {
    const w = await warmUpBus(500);
    expect(w.messages).toBe(500);
    expect(w.sent, "messages handed to send (fewer: the batches outran the publisher's queue)").toBe(500);
    expect(Number.isFinite(w.ms) && w.ms > 0, `ms ${w.ms}`).toBe(true);
  });

  it("leaves a real publisher's counters where they were", async () => {
    const bus = await BusPublisher.bind(["tcp://127.0.0.1:0"], { sendHighWaterMark: 10 });
    try {
      await warmUpBus(100);
      expect(bus.stats().nextCounter.detections, "the daemon's first detections message still carries counter 0").toBe("0");
      expect(bus.stats().sent).toBe(0);
    } finally {
      await bus.close();
    }
  });

  it("refuses a message count that is not a positive integer", async () => {
    await expect(warmUpBus(0)).rejects.toThrow("bus warm-up: messages must be an integer >= 1, got 0");
    await expect(warmUpBus(1.5)).rejects.toThrow(/got 1\.5/);
  });
});
