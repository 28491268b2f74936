// The E2E state machine alone, on an injected clock: no sockets, no waiting.
import { describe, expect, it } from "vitest";
import { E2EMonitor } from "../../src/bus/client/e2e.ts";

function monitor(staleAfterMs = 300): { m: E2EMonitor; advance: (ms: number) => void } {
  let t = 1000;
  const m = new E2EMonitor({ staleAfterMs, now: () => t });
  return { m, advance: (ms) => (t += ms) };
}

describe("E2E monitor", () => {
  it("is OK for the first message whatever its counter, then for each +1", () => {
    const { m } = monitor();
    expect(m.state).toBe("NO_NEW_DATA");
    expect(m.received(41n).state).toBe("OK");
    expect(m.received(42n).state).toBe("OK");
    expect(m.state).toBe("OK");
    expect(m.reference).toBe(42n);
  });

  it("reports a skipped counter as WRONG_SEQUENCE, says how many are missing, and resynchronizes", () => {
    const { m } = monitor();
    m.received(0n);
    expect(m.received(3n)).toEqual({ state: "WRONG_SEQUENCE", detail: "counter 3 after 0: 2 messages missing" });
    expect(m.received(4n).state, "in sequence again from the new reference").toBe("OK");
    expect(m.received(6n).detail).toBe("counter 6 after 4: 1 message missing");
  });

  it("reports a counter going back (reordering, publisher restart) as WRONG_SEQUENCE, then follows the new sequence", () => {
    const { m } = monitor();
    m.received(1000n);
    expect(m.received(0n)).toEqual({ state: "WRONG_SEQUENCE", detail: "counter 0 after 1000: went back (reordered, or the publisher restarted)" });
    expect(m.received(1n).state).toBe("OK");
  });

  it("reports the same counter again as REPEATED, which is not new data", () => {
    const { m, advance } = monitor(300);
    m.received(7n);
    advance(200);
    expect(m.received(7n)).toEqual({ state: "REPEATED", detail: "counter 7 again" });
    expect(m.state).toBe("REPEATED");
    advance(100);
    // 300 ms since the last *new* message, though a repeat came 100 ms ago
    expect(m.poll()?.state).toBe("NO_NEW_DATA");
    expect(m.received(8n).state, "the reference did not move on the repeat").toBe("OK");
  });

  it("reports a bad frame as ERROR without moving the reference or the staleness clock", () => {
    const { m, advance } = monitor(300);
    m.received(1n);
    advance(250);
    expect(m.failed("crc: mismatch")).toEqual({ state: "ERROR", detail: "crc: mismatch" });
    expect(m.state).toBe("ERROR");
    expect(m.reference).toBe(1n);
    advance(50);
    expect(m.poll()?.state, "a corrupted message is no sign of life").toBe("NO_NEW_DATA");
    expect(m.received(2n).state).toBe("OK");
  });

  it("goes NO_NEW_DATA when nothing valid came within staleAfterMs, once per silence", () => {
    const { m, advance } = monitor(300);
    m.received(1n);
    expect(m.deadline()).toBe(1300);
    advance(299);
    expect(m.poll()).toBeNull();
    expect(m.state).toBe("OK");
    advance(1);
    expect(m.poll()).toEqual({ state: "NO_NEW_DATA", detail: "no new data for 300 ms (stale after 300 ms)" });
    expect(m.state).toBe("NO_NEW_DATA");
    expect(m.deadline(), "reported; no deadline until data comes").toBeNull();
    advance(5000);
    expect(m.poll(), "not reported again for the same silence").toBeNull();
    expect(m.silentForMs()).toBe(5300);
    expect(m.received(2n).state).toBe("OK");
    expect(m.deadline()).toBe(6300 + 300);
    advance(300);
    expect(m.poll()?.state, "a new silence is reported again").toBe("NO_NEW_DATA");
  });

  it("goes NO_NEW_DATA when nothing ever arrives, staleAfterMs after it started", () => {
    const { m, advance } = monitor(500);
    advance(499);
    expect(m.poll()).toBeNull();
    advance(1);
    expect(m.poll()?.state).toBe("NO_NEW_DATA");
  });

  it("a message after a silence is judged by its counter: lost messages in between show", () => {
    const { m, advance } = monitor(300);
    m.received(1n);
    advance(1000);
    m.poll();
    expect(m.received(5n).state).toBe("WRONG_SEQUENCE");
  });

  it("rejects a staleness timeout that is not positive", () => {
    expect(() => new E2EMonitor({ staleAfterMs: 0 })).toThrow(/staleAfterMs must be > 0/);
  });
});
