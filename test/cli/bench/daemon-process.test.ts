// The bench's child-process helpers, on real child processes.
import { describe, expect, it } from "vitest";
import { runNodeProcess, waitForEndpoint } from "../../../src/cli/bench/daemon-process.ts";

/** A child that writes `line` as its JSON log line, then waits to be stopped. */
function childLogging(line: Record<string, unknown>) {
  return runNodeProcess("test child", ["-e", `console.log(${JSON.stringify(JSON.stringify(line))}); setInterval(() => {}, 1000);`]);
}

describe("waitForEndpoint", () => {
  it("returns the first endpoint the named log line carries", async () => {
    const proc = childLogging({ msg: "bound", endpoints: ["tcp://127.0.0.1:5555", "ipc:///tmp/x"] });
    try {
      expect(await waitForEndpoint(proc, "bound", 10_000)).toBe("tcp://127.0.0.1:5555");
    } finally {
      proc.kill();
    }
  });

  it("refuses a line without endpoints, naming the line and showing it", async () => {
    const proc = childLogging({ msg: "bound", endpoint: "tcp://127.0.0.1:5555" });
    try {
      await expect(waitForEndpoint(proc, "bound", 10_000)).rejects.toThrow(/^log line "bound" lacks endpoints: \{.*"endpoint":"tcp:\/\/127\.0\.0\.1:5555"/);
    } finally {
      proc.kill();
    }
  });
});
