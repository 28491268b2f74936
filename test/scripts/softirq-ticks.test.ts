// scripts/softirq-ticks.ts as a user runs it: a real ftrace instance where the machine
// allows one (root, tracefs mounted), its flag checks everywhere.
import { accessSync, constants, existsSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runScript, type ScriptRun } from "./run-script.ts";

const run = (args: string[]): Promise<ScriptRun> => runScript("scripts/softirq-ticks.ts", args);

const INSTANCES = "/sys/kernel/tracing/instances";
function canTrace(): boolean {
  try {
    accessSync(INSTANCES, constants.W_OK);
    return existsSync("/sys/kernel/tracing/events/irq/softirq_entry");
  } catch {
    return false;
  }
}

describe("scripts/softirq-ticks.ts", () => {
  it.runIf(canTrace())("traces softirq handlers and timer interrupts for --seconds, sets them beside /proc/stat, and removes its ftrace instance", async () => {
    const r = await run(["--seconds", "1"]);
    expect(r.code, `exit status; stderr: ${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^\/proc\/stat charged: softirq \d+ ms \(\d+\.\d\d % of a core\), hard interrupts \d+ ms$/m);
    expect(r.stdout).toMatch(/^softirq handlers, traced: \d+\.\d ms/m);
    // An idle second still has scheduler ticks, and their softirqs.
    expect(r.stdout).toMatch(/^timer interrupts: [1-9]\d*; \d+ found the CPU serving softirqs/m);
    expect(r.stdout).toMatch(/^ {2}SCHED +[1-9]\d* runs/m);
    expect(r.stdout).toMatch(/^so: /m);
    expect(readdirSync(INSTANCES).filter((n) => n.startsWith("perceptd-softirq-ticks-")), "instance left behind").toEqual([]);
  });

  it.each([
    [["--seconds", "x"], /--seconds must be a number above 0 and at most 600, got "x"/],
    [["--seconds", "0"], /--seconds must be a number above 0 and at most 600, got "0"/],
    [["--seconds", "601"], /--seconds must be a number above 0 and at most 600, got "601"/],
  ])("refuses %j, naming the flag", async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });
});
