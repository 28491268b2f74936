// The machine's busy time from /proc/stat, against CPU this test burns itself.
import { existsSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { interruptTimeAccounting, interruptTimeAccountingFromConfig, systemBusyNs, systemCpuNs } from "../../src/util/system-cpu.ts";

describe("systemBusyNs", () => {
  it.runIf(process.platform === "linux")("grows by at least the CPU time this process spends", () => {
    const before = systemBusyNs();
    const own0 = process.cpuUsage();
    const until = performance.now() + 300;
    while (performance.now() < until); // a core busy for 0.3 s
    const own = process.cpuUsage(own0);
    const ownNs = (own.user + own.system) * 1e3;
    const after = systemBusyNs();
    expect(before, "/proc/stat should be readable on Linux").not.toBeNull();
    expect(after).not.toBeNull();
    // /proc/stat ticks every 10 ms: allow two ticks of rounding.
    expect(after! - before!, `machine busy time grew less than this process's own ${ownNs / 1e6} ms`).toBeGreaterThanOrEqual(ownNs - 2e7);
  });
});

describe("systemCpuNs", () => {
  it.runIf(process.platform === "linux")("splits the kernel's interrupt time out of the busy time, never more than all of it", () => {
    const a = systemCpuNs();
    expect(a, "/proc/stat should be readable on Linux").not.toBeNull();
    expect(a!.interruptNs, "interrupt time is part of busy time").toBeLessThanOrEqual(a!.busyNs);
    expect(a!.interruptNs).toBeGreaterThanOrEqual(0);
    expect(a!.softirqNs, "softirq time is part of interrupt time").toBeLessThanOrEqual(a!.interruptNs);
    expect(a!.softirqNs).toBeGreaterThanOrEqual(0);
    const b = systemCpuNs();
    expect(b!.busyNs - a!.busyNs, "busy time never goes back").toBeGreaterThanOrEqual(0);
    expect(b!.interruptNs - a!.interruptNs, "interrupt time never goes back").toBeGreaterThanOrEqual(0);
    const busy = systemBusyNs();
    expect(busy, "systemBusyNs is systemCpuNs' busy time").toBeGreaterThanOrEqual(b!.busyNs);
  });
});

describe("interruptTimeAccountingFromConfig", () => {
  it("reads CONFIG_IRQ_TIME_ACCOUNTING from a kernel config", () => {
    expect(interruptTimeAccountingFromConfig("CONFIG_HAVE_IRQ_TIME_ACCOUNTING=y\nCONFIG_IRQ_TIME_ACCOUNTING=y\n")).toBe("precise");
    expect(interruptTimeAccountingFromConfig("CONFIG_TICK_CPU_ACCOUNTING=y\nCONFIG_HAVE_IRQ_TIME_ACCOUNTING=y\n# CONFIG_IRQ_TIME_ACCOUNTING is not set\n")).toBe("tick-sampled");
  });

  it("takes tick accounting without the option on offer as sampled, and says nothing when the config is silent", () => {
    expect(interruptTimeAccountingFromConfig("CONFIG_TICK_CPU_ACCOUNTING=y\n")).toBe("tick-sampled");
    expect(interruptTimeAccountingFromConfig("CONFIG_TICK_CPU_ACCOUNTING=y\nCONFIG_HAVE_IRQ_TIME_ACCOUNTING=y\n"), "option offered but its line missing").toBeNull();
    expect(interruptTimeAccountingFromConfig("CONFIG_HZ=250\n")).toBeNull();
    // a commented mention elsewhere is not the option's own line
    expect(interruptTimeAccountingFromConfig("# see CONFIG_IRQ_TIME_ACCOUNTING=y below\n")).toBeNull();
  });
});

describe("interruptTimeAccounting", () => {
  it.runIf(existsSync("/proc/config.gz"))("agrees with the running kernel's /proc/config.gz", () => {
    const config = gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
    expect(interruptTimeAccounting()).toBe(interruptTimeAccountingFromConfig(config));
    expect(interruptTimeAccounting(), "a kernel config that does not say").not.toBeNull();
  });
});
