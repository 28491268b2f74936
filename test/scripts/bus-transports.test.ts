// scripts/bus-transports.ts as a user runs it: real sending processes, a real ZeroMQ
// subscriber and TCP socket on loopback.
import { describe, expect, it } from "vitest";
import { runScript, type ScriptRun } from "./run-script.ts";

const run = (args: string[]): Promise<ScriptRun> => runScript("scripts/bus-transports.ts", args);

describe("scripts/bus-transports.ts", () => {
  it("times the same messages over perceptd's bus, bare zeromq.js and plain TCP, and sets each beside TCP", async () => {
    const r = await run(["--messages", "20", "--warmup", "5", "--rounds", "1", "--rate", "100"]);
    expect(r.code, `exit status; stderr: ${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^bus transports: 1 round\(s\) of 20 messages at 100\/s per transport, after 5 discarded/m);
    expect(r.stdout).toMatch(/^round 1: perceptd bus p50 [\d.]+ p99 [\d.]+ max [\d.]+; bare zeromq\.js p50 .*; plain TCP socket p50 /m);
    const bytes = /^all rounds, sender's tick to receipt, (\d+) bytes a message:$/m.exec(r.stdout);
    expect(bytes, `summary line missing from:\n${r.stdout}`).not.toBeNull();
    expect(Number(bytes![1]), "perceptd's detections message, topic frame included").toBeGreaterThan(100);
    const rows = r.stdout.split("\n").filter((l) => /^\| (perceptd bus|bare zeromq\.js|plain TCP socket) /.test(l));
    expect(rows, "one row per transport").toHaveLength(3);
    for (const row of rows) {
      const cells = row.split("|").slice(2, -1).map((c) => c.trim());
      expect(cells[0], `${row}: every timed message received`).toBe("20");
      const [p50, p99, max] = cells.slice(1, 4).map(Number);
      expect(p50, row).toBeGreaterThan(0);
      expect(p99, row).toBeGreaterThanOrEqual(p50);
      expect(max, row).toBeGreaterThanOrEqual(p99);
    }
    expect(rows[2], "TCP is the yardstick").toMatch(/\| +1\.00x \| +1\.00x \|$/);
  });

  it.each([
    [["--rate", "0"], /--rate must be messages\/s above 0 and at most 1000, got "0"/],
    [["--messages", "1"], /--messages must be an integer of at least 2, got "1"/],
    [["--warmup", "1.5"], /--warmup must be an integer of at least 0, got "1.5"/],
    [["--rounds", "x"], /--rounds must be a positive integer, got "x"/],
  ])("refuses %j, naming the flag", async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });
});

describe("scripts/bus-transports-sender.ts", () => {
  it.each([
    [["udp", "32", "300"], /transport must be one of zeromq, tcp, got \\"udp\\"/],
    [["tcp", "0", "300"], /rate must be messages\/s in \(0, 1000\], got \\"0\\"/],
    [["zeromq", "32", "4"], /bytes must be an integer in \[8, 1048576\], got \\"4\\"/],
  ])("refuses %j with a fatal log line", async (args, message) => {
    const r = await runScript("scripts/bus-transports-sender.ts", args);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/"level":"fatal"/);
    expect(r.stdout).toMatch(message);
  });
});
