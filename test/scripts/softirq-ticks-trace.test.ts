// The ftrace reader behind scripts/softirq-ticks.ts, on trace text in the kernel's format.
import { describe, expect, it } from "vitest";
import { lostEntries, parseTrace, summarise, type TraceEvent } from "../../scripts/softirq-ticks-trace.ts";

// Lines as the kernel writes them with irq-info on (task-pid, [cpu], flags, timestamp).
const TRACE = `# tracer: nop
#
# entries-in-buffer/entries-written: 9/12   #P:2
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
          <idle>-0       [001] d.h1. 100.000000: local_timer_entry: vector=236
          <idle>-0       [001] ..s1. 100.000010: softirq_entry: vec=7 [action=SCHED]
          <idle>-0       [001] d.H1. 100.000030: local_timer_entry: vector=236
          <idle>-0       [001] ..s1. 100.000050: softirq_exit: vec=7 [action=SCHED]
          <idle>-0       [000] d.H1. 100.004000: local_timer_entry: vector=236
 multiqueue0:src-19092   [000] ..s2. 100.005000: softirq_entry: vec=3 [action=NET_RX]
 multiqueue0:src-19092   [000] ..s2. 100.005200: softirq_exit: vec=3 [action=NET_RX]
     node-19087  [001] d.H2. 100.006000: local_timer_entry: vector=236
     node-19087  [001] d.h2. 100.008000: local_timer_entry: vector=236
`;

const isTimer = (e: TraceEvent): boolean => e.event === "local_timer_entry";

describe("parseTrace", () => {
  it("reads task, pid, CPU, flags, time and event, task names with dashes and colons included", () => {
    const events = parseTrace(TRACE);
    expect(events, "every event line, no header line").toHaveLength(9);
    expect(events[0]).toEqual({ task: "<idle>", pid: 0, cpu: 1, flags: "d.h1.", ts: 100, event: "local_timer_entry", detail: "vector=236" });
    expect(events[5]).toMatchObject({ task: "multiqueue0:src", pid: 19092, cpu: 0, event: "softirq_entry", detail: "vec=3 [action=NET_RX]" });
  });

  it("counts the events the ring buffer lost", () => {
    expect(lostEntries(TRACE)).toBe(3);
    expect(lostEntries("# entries-in-buffer/entries-written: 5/5   #P:2\n")).toBe(0);
  });
});

describe("summarise", () => {
  const s = summarise(parseTrace(TRACE), isTimer);

  it("times each softirq handler from its CPU's entry to exit, by vector", () => {
    expect(s.vectors.SCHED.runs).toBe(1);
    expect(s.vectors.SCHED.totalMs).toBeCloseTo(0.04, 6);
    expect(s.vectors.NET_RX.maxUs).toBeCloseTo(200, 3);
    expect(s.handlersMs).toBeCloseTo(0.24, 6);
    expect(s.cpus).toBe(2);
    expect(s.spanS).toBeCloseTo(0.008, 6);
  });

  it("sorts timer interrupts that found the CPU serving softirqs by whether a handler was running and whose task it was", () => {
    expect(s.timerIrqs).toEqual({ total: 5, inSoftirq: 3, insideHandler: 1, onIdleTask: 2 });
  });

  it("ignores an exit whose entry came before the trace began", () => {
    const t = summarise(parseTrace("  <idle>-0  [000] ..s1. 5.000100: softirq_exit: vec=7 [action=SCHED]\n"), isTimer);
    expect(t.vectors).toEqual({});
    expect(t.handlersMs).toBe(0);
  });
});
