// The whole machine's busy CPU time, for the benchmarks' and scripts' "was anything else
// running?" checks.
import { readFileSync } from "node:fs";

export interface SystemCpuNs {
  /** every CPU's time not idle and not waiting for I/O */
  busyNs: number;
  /**
   * The part of busyNs the kernel spent in interrupt and softirq handling (timers,
   * scheduler balancing, loopback networking). It belongs to no process: it is done for
   * whatever runs, and the workload being measured can raise it by itself (on the 2-core
   * build VM, 8-17 % of a core during the pipeline bench's paced and overloaded scenarios,
   * under 1 % during its unpaced one, with nothing else running).
   */
  interruptNs: number;
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
    return { busyNs: busyTicks * 1e7, interruptNs: (f[5] + f[6]) * 1e7 };
  } catch {
    return null;
  }
}

/** Whole-machine busy time from /proc/stat's "cpu" line, in ns; null where unreadable (not Linux). */
export function systemBusyNs(): number | null {
  return systemCpuNs()?.busyNs ?? null;
}
