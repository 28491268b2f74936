// scripts/cpu-gaps.ts as a user runs it: real worker threads spinning on the clock.
import { describe, expect, it } from "vitest";
import { runScript, type ScriptRun } from "./run-script.ts";

const run = (args: string[]): Promise<ScriptRun> => runScript("scripts/cpu-gaps.ts", args);

describe("scripts/cpu-gaps.ts", () => {
  it("spins one thread per --spinners for --seconds and prints a row of gap counts for each", async () => {
    const r = await run(["--seconds", "0.3", "--spinners", "2"]);
    expect(r.code, `exit status; stderr: ${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^2 spinner\(s\) on \d+ core\(s\) for 0\.3 s/);
    const rows = r.stdout.split("\n").filter((l) => /^\s+\d+\s/.test(l));
    expect(rows.map((l) => l.trim().split(/\s+/)[0]), "one row per spinner").toEqual(["1", "2"]);
    // 6 gap counts, max ms, lost ms, gaps per s: all numbers
    for (const row of rows) expect(row.trim().split(/\s+/).slice(1).map(Number).every(Number.isFinite), row).toBe(true);
    if (process.platform === "linux") expect(r.stdout).toMatch(/other processes and the kernel: about \d+\.\d % of one core/);
  });

  it.each([
    [["--seconds", "x"], /--seconds must be a positive number, got "x"/],
    [["--seconds", "0"], /--seconds must be a positive number, got "0"/],
    [["--spinners", "1.5"], /--spinners must be a positive integer, got "1.5"/],
  ])("refuses %j, naming the flag", async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });
});
