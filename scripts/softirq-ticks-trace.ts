// Reads the kernel's ftrace text output for scripts/softirq-ticks.ts and sums what it says
// about softirq time: how long the softirq handlers really ran, and what the timer
// interrupts found each CPU doing. Kept apart from the script so that it can be tested
// without root or tracefs.

/** One line of the ftrace "trace" file with irq-info on (the kernel's default). */
export interface TraceEvent {
  task: string;
  pid: number;
  cpu: number;
  /**
   * irq-info flags, e.g. "d.h2." (irqs off, need-resched, hardirq/softirq, preempt depth,
   * migrate-disable). The third character is "h" for a hard interrupt, "H" for a hard
   * interrupt that arrived while the CPU was serving softirqs, "s" for softirq context.
   */
  flags: string;
  /** seconds, the trace clock */
  ts: number;
  event: string;
  detail: string;
}

// "<task>-<pid> [<cpu>] <flags> <ts>: <event>: <detail>". Task names may hold spaces and
// dashes, so the pid is the last "-digits" before the CPU column.
const LINE = /^\s*(.+)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(\S{4,5})\s+(\d+\.\d+):\s+(\w+):\s?(.*)$/;

/** The events of an ftrace "trace" file; header and unparsable lines are skipped. */
export function parseTrace(text: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    events.push({ task: m[1].trim(), pid: Number(m[2]), cpu: Number(m[3]), flags: m[4], ts: Number(m[5]), event: m[6], detail: m[7] });
  }
  return events;
}

/** The header's "entries-in-buffer/entries-written: A/B": B > A means the ring buffer overflowed. */
export function lostEntries(text: string): number {
  const m = /entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/.exec(text);
  return m === null ? 0 : Math.max(0, Number(m[2]) - Number(m[1]));
}

export interface SoftirqVector {
  runs: number;
  totalMs: number;
  maxUs: number;
}

export interface TimerIrqs {
  total: number;
  /** arrived while the CPU was serving softirqs (flag "H"): the ticks /proc/stat charges to softirq */
  inSoftirq: number;
  /** of inSoftirq: while a traced softirq handler was running */
  insideHandler: number;
  /** of inSoftirq: on the idle task (pid 0) */
  onIdleTask: number;
}

export interface SoftirqSummary {
  spanS: number;
  cpus: number;
  /** handler run time by vector name (SCHED, TIMER, RCU, NET_RX, ...) */
  vectors: Record<string, SoftirqVector>;
  handlersMs: number;
  timerIrqs: TimerIrqs;
}

/**
 * Pairs each CPU's softirq_entry with its softirq_exit for the handlers' run time, and
 * classifies every timer interrupt (isTimer picks them out: local_timer_entry on x86,
 * irq_handler_entry of arch_timer on arm64) by the context its flags and the open handler
 * say it interrupted.
 */
export function summarise(events: TraceEvent[], isTimer: (e: TraceEvent) => boolean): SoftirqSummary {
  const open = new Map<number, { vector: string; ts: number }>();
  const vectors: Record<string, SoftirqVector> = {};
  const timerIrqs: TimerIrqs = { total: 0, inSoftirq: 0, insideHandler: 0, onIdleTask: 0 };
  const cpus = new Set<number>();
  for (const e of events) {
    cpus.add(e.cpu);
    if (e.event === "softirq_entry") {
      open.set(e.cpu, { vector: /action=(\w+)/.exec(e.detail)?.[1] ?? "?", ts: e.ts });
    } else if (e.event === "softirq_exit") {
      const o = open.get(e.cpu);
      if (o === undefined) continue; // entered before the trace began
      open.delete(e.cpu);
      const v = (vectors[o.vector] ??= { runs: 0, totalMs: 0, maxUs: 0 });
      const s = e.ts - o.ts;
      v.runs += 1;
      v.totalMs += s * 1e3;
      v.maxUs = Math.max(v.maxUs, s * 1e6);
    } else if (isTimer(e)) {
      timerIrqs.total += 1;
      if (e.flags[2] === "H") {
        timerIrqs.inSoftirq += 1;
        if (open.has(e.cpu)) timerIrqs.insideHandler += 1;
        if (e.pid === 0) timerIrqs.onIdleTask += 1;
      }
    }
  }
  const spanS = events.length < 2 ? 0 : events[events.length - 1].ts - events[0].ts;
  const handlersMs = Object.values(vectors).reduce((a, v) => a + v.totalMs, 0);
  return { spanS, cpus: cpus.size, vectors, handlersMs, timerIrqs };
}
