import { describe, expect, it } from "vitest";
import { createLogger, resolveLogFormat, setLevel } from "../../src/util/logger.ts";
import type { LogStream } from "../../src/util/logger.ts";

function capture(isTTY = false): LogStream & { lines: string[] } {
  const lines: string[] = [];
  return { isTTY, lines, write: (chunk: string) => void lines.push(...chunk.split("\n").filter((l) => l !== "")) };
}

function records(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("createLogger", () => {
  it("writes one JSON object per line with level name, epoch-ms time, message and bindings", () => {
    const out = capture();
    const log = createLogger({ level: "info", format: "json" }, out);
    const before = Date.now();
    log.child({ component: "ingest", camera: "front" }).info({ frames: 3 }, "started");
    log.warn("bare");

    expect(out.lines).toHaveLength(2);
    const [a, b] = records(out.lines);
    expect(a).toMatchObject({ level: "info", msg: "started", component: "ingest", camera: "front", frames: 3 });
    expect(typeof a.time).toBe("number");
    expect(a.time as number).toBeGreaterThanOrEqual(before);
    expect(b).toMatchObject({ level: "warn", msg: "bare" });
    expect(b.component).toBeUndefined();
  });

  it("writes synchronously, so the lines before a crash are not lost", () => {
    const out = capture();
    createLogger({ level: "info", format: "json" }, out).fatal("going down");
    expect(out.lines).toHaveLength(1);
  });

  it("serialises errors with message and stack", () => {
    const out = capture();
    createLogger({ level: "info", format: "json" }, out).error(new Error("boom"), "inference failed");
    const [r] = records(out.lines);
    expect(r).toMatchObject({ level: "error", msg: "inference failed", err: { type: "Error", message: "boom" } });
    expect(String((r.err as Record<string, unknown>).stack)).toContain("boom");
  });

  it("setLevel changes the level of the root and of children made before and after", () => {
    const out = capture();
    const log = createLogger({ level: "info", format: "json" }, out);
    const ingest = log.child({ component: "ingest" });
    const camera = ingest.child({ camera: "front" });

    ingest.debug("hidden");
    setLevel(log, "debug");
    ingest.debug("shown");
    camera.debug("shown too");
    log.child({ component: "bus" }).debug("new child");
    setLevel(log, "error");
    camera.warn("hidden again");
    log.error("still shown");

    expect(records(out.lines).map((r) => r.msg)).toEqual(["shown", "shown too", "new child", "still shown"]);
    expect(records(out.lines).map((r) => r.level)).toEqual(["debug", "debug", "debug", "error"]);
  });

  it("pretty format writes readable lines with the component and camera", () => {
    const out = capture();
    const log = createLogger({ level: "info", format: "pretty" }, out);
    log.child({ component: "ingest", camera: "front" }).info("started");
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[ingest\/front\] started$/);
  });

  it("auto: pretty on a terminal, JSON otherwise", () => {
    const tty = capture(true);
    createLogger({ level: "info", format: "auto" }, tty).info("hello");
    expect(() => JSON.parse(tty.lines[0]) as unknown).toThrow();
    expect(tty.lines[0]).toContain("hello");

    const pipe = capture(false);
    createLogger({ level: "info", format: "auto" }, pipe).info("hello");
    expect(records(pipe.lines)[0]).toMatchObject({ msg: "hello" });

    expect(resolveLogFormat("auto", true)).toBe("pretty");
    expect(resolveLogFormat("auto", false)).toBe("json");
    expect(resolveLogFormat("json", true)).toBe("json");
    expect(resolveLogFormat("pretty", false)).toBe("pretty");
  });
});
