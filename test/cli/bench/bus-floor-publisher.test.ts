// The publisher of `bench pipeline`'s (c2), as the bench runs it: a real child process, a real
// ZeroMQ subscriber. What it sends and how it starts and stops; never how fast.
import { describe, expect, it } from "vitest";
import { BUS_FLOOR_BOUND_MSG, BUS_FLOOR_PUBLISHER, collectDetections, runNodeProcess } from "../../../src/cli/bench/daemon-process.ts";

function start(rate: string) {
  return runNodeProcess("bus floor publisher", ["--import", "tsx", BUS_FLOOR_PUBLISHER, rate]);
}

describe("bus-floor-publisher", () => {
  it("publishes detections messages the daemon's way, in sequence, and exits 0 on SIGTERM", async () => {
    const proc = start("50");
    try {
      const bound = await proc.waitForLog((l) => l.msg === BUS_FLOOR_BOUND_MSG, 30_000);
      const endpoints = bound.endpoints as string[];
      expect(endpoints, "the bound line names a tcp endpoint with the port picked").toEqual([expect.stringMatching(/^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/)]);
      const sub = await collectDetections(endpoints[0]);
      const deadline = Date.now() + 20_000;
      while (sub.messages.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      sub.close();
      expect(sub.error(), "every message decoded (CRC, schema, data id)").toBeNull();
      const got = sub.messages.slice(0, 10);
      expect(got, "10 messages within 20 s at 50/s").toHaveLength(10);
      for (const [i, m] of got.entries()) {
        expect(m).toMatchObject({ camera: "bench", model: "bus-floor", width: 768, height: 576, valid: true });
        expect(m.detections.map((d) => d.label), "six people, like a vtest.avi frame").toEqual(Array(6).fill("person"));
        expect(m.tIngestNs > 0n && m.tIngestNs <= m.tPublishNs, "tIngestNs <= tPublishNs").toBe(true);
        // A late joiner misses the first few; from there on nothing is skipped.
        if (i > 0) expect(m.seq - got[i - 1].seq, `frame seq step at message ${i}`).toBe(1);
        if (i > 0) expect(m.counter - got[i - 1].counter, `counter step at message ${i}`).toBe(1n);
      }
      expect(await proc.stop(), "exit status after SIGTERM").toBe(0);
      expect(proc.logs.find((l) => l.msg === "bus floor stopped")?.published, "the stop line counts what was published").toBeGreaterThanOrEqual(10);
    } finally {
      proc.kill();
    }
  }, 60_000);

  it("refuses a rate that is not frames per second in (0, 1000], naming it", async () => {
    for (const bad of ["abc", "0", "-5", "1001"]) {
      const proc = start(bad);
      expect(await proc.exited, `exit status for rate ${bad}`).toBe(1);
      const fatal = proc.logs.find((l) => l.level === "fatal");
      expect(fatal?.msg, `the fatal line for rate ${bad}`).toBe(`bus-floor-publisher: rate must be frames/s in (0, 1000], got "${bad}"`);
    }
  }, 60_000);
});
