// bin/perceptd.js, the installed command, as a shell pipeline runs it.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";

describe("bin/perceptd.js", () => {
  it("ends quietly with status 0 when the reader of its stdout goes away (perceptd run --help | head -1)", async () => {
    const child = spawn(process.execPath, ["bin/perceptd.js", "run", "--help"], { stdio: ["ignore", "pipe", "pipe"] });
    // Closed before the CLI has started, so its first write meets a pipe nobody reads.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(stderr, "no stack trace on stderr").not.toMatch(/EPIPE|Error/);
    expect(code, `exit status; stderr: ${stderr}`).toBe(0);
  });
});
