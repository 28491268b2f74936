// The whole machine's busy CPU time, for the benchmarks' and scripts' "was anything else
// running?" checks.
import { readFileSync } from "node:fs";
import os from "node:os";
import { gunzipSync } from "node:zlib";

export interface SystemCpuNs {
  /** every CPU's time not idle and not waiting for I/O */
  busyNs: number;
  /**
   * The part of busyNs /proc/stat charges to interrupt and softirq handling (timers,
   * scheduler balancing, loopback networking). It belongs to no process. Where the kernel
   * is built without CONFIG_IRQ_TIME_ACCOUNTING (interruptTimeAccounting() says
   * "tick-sampled") it is not timed but sampled at each timer tick, and can be mostly idle
   * time: on the 2-core build VM, /proc/stat charged 8-17 % of a core to softirq during the
   * pipeline bench's paced scenario while the softirq handlers ran for under 0.5 %; the
   * ticks that made up the rest arrived on the idle task (scripts/softirq-ticks.ts).
   */
  interruptNs: number;
  /** the part of interruptNs charged to softirqs, the rest being hard interrupts */
  softirqNs: number;
}

/** Whole-machine CPU time from /proc/stat's "cpu" line, in ns; null where unreadable (not Linux). */
export function systemCpuNs(): SystemCpuNs | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n").find((l) => l.startsWith("cpu "));
    if (line === undefined) return null;
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null;
    const busyTicks = f.reduce((a, x) => a + x, 0) - f[3] - f[4];
    // /proc/stat counts in USER_HZ, which the kernel ABI fixes at 100 on the architectures
    // this runs on (x86-64, arm64), whatever the kernel's internal HZ.
    return { busyNs: busyTicks * 1e7, interruptNs: (f[5] + f[6]) * 1e7, softirqNs: f[6] * 1e7 };
  } catch {
    return null;
  }
}

/** Whole-machine busy time from /proc/stat's "cpu" line, in ns; null where unreadable (not Linux). */
export function systemBusyNs(): number | null {
  return systemCpuNs()?.busyNs ?? null;
}

/**
 * How the kernel accounts interrupt and softirq time in /proc/stat: "precise" where it is
 * built with CONFIG_IRQ_TIME_ACCOUNTING (timed at every entry and exit), "tick-sampled"
 * where not (each timer tick charges its whole period to what the CPU was doing).
 */
export type InterruptTimeAccounting = "precise" | "tick-sampled";

/** The accounting a kernel config file's text declares; null if it does not say. */
export function interruptTimeAccountingFromConfig(configText: string): InterruptTimeAccounting | null {
  if (/^CONFIG_IRQ_TIME_ACCOUNTING=y$/m.test(configText)) return "precise";
  if (/^# CONFIG_IRQ_TIME_ACCOUNTING is not set$/m.test(configText)) return "tick-sampled";
  // Architectures that cannot time interrupts do not offer the option at all.
  if (/^CONFIG_TICK_CPU_ACCOUNTING=y$/m.test(configText) && !/^CONFIG_HAVE_IRQ_TIME_ACCOUNTING=y$/m.test(configText)) return "tick-sampled";
  return null;
}

/** The running kernel's accounting, from /proc/config.gz or /boot/config-<release>; null if neither is readable. */
export function interruptTimeAccounting(): InterruptTimeAccounting | null {
  const sources: (() => string)[] = [
    () => gunzipSync(readFileSync("/proc/config.gz")).toString("utf8"),
    () => readFileSync(`/boot/config-${os.release()}`, "utf8"),
  ];
  for (const read of sources) {
    try {
      const found = interruptTimeAccountingFromConfig(read());
      if (found !== null) return found;
    } catch {
      // not there on this machine: try the next
    }
  }
  return null;
}
