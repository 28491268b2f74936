// `perceptd run` refusing a configuration before it starts anything, as a user runs it.
import { describe, expect, it } from "vitest";
import { perceptd } from "./run-cli.ts";

const literal = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("perceptd run: bus endpoints", () => {
  // Each of these passed --check-config before: libzmq bound 70000 as 4464, 131073 as 1 and
  // -5 as 65531, ignored "/extra", and failed the others only at bind (exit 1, one as EAGAIN).
  const bad = [
    "tcp://127.0.0.1:70000",
    "tcp://127.0.0.1:131073",
    "tcp://127.0.0.1:-5",
    "tcp://127.0.0.1:5613/extra",
    "tcp://",
    "ipc://",
    "tcp://127.0.0.1:abc",
    "tcp://127.0.0.1:65536",
  ];

  it.each(bad)("--check-config refuses %s with exit 78 naming bus.endpoints.0", async (endpoint) => {
    const r = await perceptd("run", "--config", "config/demo.yaml", "--check-config", "--set", `bus.endpoints=[${endpoint}]`);
    expect(r.code, r.stderr).toBe(78);
    expect(r.stderr).toMatch(new RegExp(`^  bus\\.endpoints\\.0: .*\\(got ${literal(JSON.stringify(endpoint))}\\)`, "m"));
    expect(r.stdout).toBe("");
  });

  it("a daemon started with one refuses it the same way, before binding anything", async () => {
    // A second, valid endpoint first: the daemon must not bind it and then fail on the next.
    const r = await perceptd("run", "--config", "config/demo.yaml", "--set", "metrics.enabled=false", "--set", "bus.endpoints=[tcp://127.0.0.1:0, tcp://127.0.0.1:70000]");
    expect(r.code, r.stderr).toBe(78);
    expect(r.stderr).toMatch(/bus\.endpoints\.1: tcp port 70000 is out of range: 1 to 65535 .*\(got "tcp:\/\/127\.0\.0\.1:70000"\)/);
    expect(r.stdout, "nothing started: no log line at all").toBe("");
  });
});

describe("perceptd run --check-config", () => {
  it("prints RTSP credentials masked, as the logs do, in a URL and inside an expert pipeline", async () => {
    const cameras = JSON.stringify([
      { id: "gate", source: { type: "rtsp", url: "rtsp://admin:s3cret-pw@10.0.0.2:554/live" } },
      { id: "yard", source: { type: "pipeline", pipeline: "rtspsrc location=rtsps://op:hunter2@cam.local/s ! decodebin" } },
    ]);
    const r = await perceptd("run", "--config", "config/demo.yaml", "--check-config", "--set", `cameras=${cameras}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/s3cret-pw|hunter2|admin|op:/);
    const printed = JSON.parse(r.stdout) as { cameras: { source: { url?: string; pipeline?: string } }[] };
    expect(printed.cameras[0].source.url).toBe("rtsp://***@10.0.0.2:554/live");
    expect(printed.cameras[1].source.pipeline).toBe("rtspsrc location=rtsps://***@cam.local/s ! decodebin");
  });
});
