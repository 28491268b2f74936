// Is /proc/stat's softirq time real softirq work? On a kernel without
// CONFIG_IRQ_TIME_ACCOUNTING, /proc/stat does not time interrupts: each timer tick charges
// its whole period to whatever the CPU was doing when it arrived, and to softirq if the CPU
// was serving softirqs. This script traces the softirq handlers' real run time and what
// every timer interrupt found, beside /proc/stat's count over the same window, so that the
// pipeline bench's "kernel interrupts and softirqs" figure can be read for what it is.
//
//   npx tsx scripts/softirq-ticks.ts [--seconds 10]
//
// Run it as root beside the workload (`perceptd run --config ...`, or
// `perceptd bench pipeline` and read the window of the scenario in question). It traces
// in its own ftrace instance, so it leaves the global trace settings alone, and removes
// the instance when done.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { systemCpuNs, type SystemCpuNs } from "../src/util/system-cpu.ts";
import { lostEntries, parseTrace, summarise, type TraceEvent } from "./softirq-ticks-trace.ts";

const TRACEFS_ROOTS = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
/** per-CPU ring buffer; a busy CPU writes about 1500 of these events a second */
const BUFFER_KB = 32768;

/** /proc/stat's interrupt time over a window, ms. */
interface ProcStatIrq {
  irqMs: number;
  softirqMs: number;
}

function procStat(): SystemCpuNs {
  const now = systemCpuNs();
  if (now === null) throw new Error("softirq-ticks: cannot read the cpu line of /proc/stat");
  return now;
}

function tracefsRoot(): string {
  const root = TRACEFS_ROOTS.find((r) => existsSync(path.join(r, "instances")));
  if (root === undefined) {
    throw new Error(`softirq-ticks: no tracefs at ${TRACEFS_ROOTS.join(" or ")}; mount it (mount -t tracefs nodev /sys/kernel/tracing) and run as root`);
  }
  return root;
}

/** The timer interrupt's trace event on this architecture, and how to recognise it. */
function timerEvent(root: string): { event: string; filter?: string; isTimer: (e: TraceEvent) => boolean } {
  if (existsSync(path.join(root, "events/irq_vectors/local_timer_entry"))) {
    return { event: "irq_vectors:local_timer_entry", isTimer: (e) => e.event === "local_timer_entry" };
  }
  // arm64 and others: the per-CPU timer is an ordinary interrupt.
  return {
    event: "irq:irq_handler_entry",
    filter: 'name ~ "arch_timer*"',
    isTimer: (e) => e.event === "irq_handler_entry" && /name=arch_timer/.test(e.detail),
  };
}

function seconds(text: string | undefined): number {
  if (text === undefined) return 10;
  const v = Number(text);
  if (!(Number.isFinite(v) && v > 0 && v <= 600)) throw new Error(`softirq-ticks: --seconds must be a number above 0 and at most 600, got "${text}"`);
  return v;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    console.log("usage: npx tsx scripts/softirq-ticks.ts [--seconds 10]   (as root, beside the workload)");
    return;
  }
  const window = seconds(values.seconds);
  const root = tracefsRoot();
  const timer = timerEvent(root);
  const instance = path.join(root, "instances", `perceptd-softirq-ticks-${process.pid}`);
  try {
    mkdirSync(instance);
  } catch (err) {
    throw new Error(`softirq-ticks: cannot create the ftrace instance ${instance} (${(err as Error).message}); run as root`);
  }
  const removeInstance = (): void => {
    try {
      writeFileSync(path.join(instance, "tracing_on"), "0");
      rmdirSync(instance);
    } catch {
      // already gone
    }
  };
  process.once("SIGINT", () => {
    removeInstance();
    process.exit(130);
  });
  try {
    const w = (file: string, text: string): void => writeFileSync(path.join(instance, file), text);
    w("tracing_on", "0");
    w("buffer_size_kb", String(BUFFER_KB));
    w("set_event", ["irq:softirq_entry", "irq:softirq_exit", timer.event].join("\n") + "\n");
    if (timer.filter !== undefined) w(`events/${timer.event.replace(":", "/")}/filter`, timer.filter);
    console.log(`tracing softirqs and timer interrupts for ${window} s on ${os.availableParallelism()} CPU(s)...`);
    const before = procStat();
    w("tracing_on", "1");
    await sleep(window * 1e3);
    w("tracing_on", "0");
    const after = procStat();
    const text = readFileSync(path.join(instance, "trace"), "utf8");
    report(summarise(parseTrace(text), timer.isTimer), {
        irqMs: (after.interruptNs - after.softirqNs - (before.interruptNs - before.softirqNs)) / 1e6,
        softirqMs: (after.softirqNs - before.softirqNs) / 1e6,
      }, window, lostEntries(text));
  } finally {
    removeInstance();
  }
}

function report(s: ReturnType<typeof summarise>, stat: ProcStatIrq, window: number, lost: number): void {
  const corePct = (ms: number): string => `${((ms / (window * 1e3)) * 100).toFixed(2)} % of a core`;
  const statMs = stat.softirqMs;
  console.log(`/proc/stat charged: softirq ${statMs.toFixed(0)} ms (${corePct(statMs)}), hard interrupts ${stat.irqMs.toFixed(0)} ms`);
  const byTime = Object.entries(s.vectors).sort((a, b) => b[1].totalMs - a[1].totalMs);
  console.log(`softirq handlers, traced: ${s.handlersMs.toFixed(1)} ms (${corePct(s.handlersMs)})`);
  for (const [name, v] of byTime) {
    console.log(`  ${name.padEnd(8)} ${String(v.runs).padStart(7)} runs ${v.totalMs.toFixed(2).padStart(9)} ms   longest ${v.maxUs.toFixed(0)} us`);
  }
  const t = s.timerIrqs;
  console.log(
    `timer interrupts: ${t.total}; ${t.inSoftirq} found the CPU serving softirqs (these are the ticks /proc/stat charges to softirq): ` +
      `${t.insideHandler} inside a running handler, ${t.inSoftirq - t.insideHandler} outside any; ${t.onIdleTask} on the idle task`,
  );
  // Each of those ticks is charged one kernel tick period (1/HZ): the ratio checks that they are what /proc/stat counted.
  if (t.inSoftirq > 0) console.log(`  /proc/stat's softirq ms per such tick: ${(statMs / t.inSoftirq).toFixed(2)} (one tick period: 4 ms at HZ=250, 1 ms at HZ=1000)`);
  if (lost > 0) console.log(`warning: the trace buffer overflowed and lost ${lost} events; use a shorter --seconds`);
  if (statMs >= 50 && statMs > 3 * s.handlersMs) {
    console.log(
      `so: /proc/stat's softirq time here is mostly not softirq work (${statMs.toFixed(0)} ms charged, ${s.handlersMs.toFixed(1)} ms of handlers run)` +
        (t.onIdleTask > t.inSoftirq / 2 ? "; most of the charged ticks arrived on the idle task outside any handler, so that time was the CPU idling" : ""),
    );
  } else {
    console.log("so: /proc/stat's softirq time is within 3x of the handlers' traced run time (or under 50 ms): no sign of mis-charged ticks");
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
