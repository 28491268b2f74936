import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MAX_CAMERAS } from "../../src/config/schema.ts";
import { requiredThreadpoolSize, RUN_THREADPOOL_SIZE, threadpoolRefusal, threadpoolSize, threadpoolWarning } from "../../src/ingest/threadpool.ts";

describe("threadpool sizing", () => {
  it("bin/perceptd.js gives `run` a pool for the most cameras a config may list", () => {
    expect(RUN_THREADPOOL_SIZE).toBe(requiredThreadpoolSize(MAX_CAMERAS));
    const bin = readFileSync(new URL("../../bin/perceptd.js", import.meta.url), "utf8");
    expect(/process\.argv\[2\] === "run" \? "(\d+)"/.exec(bin)?.[1], "the number bin/perceptd.js spells out").toBe(String(RUN_THREADPOOL_SIZE));
  });

  it("refuses a pool set too small for the cameras, naming the size needed", () => {
    expect(threadpoolRefusal(8, { UV_THREADPOOL_SIZE: "36" })).toBeNull();
    expect(threadpoolRefusal(8, { UV_THREADPOOL_SIZE: "16" })).toBe(
      "cameras: 8 camera(s) need a libuv threadpool of 20 (2 per camera for GStreamer's bus poll and appsink pull, plus 4), but UV_THREADPOOL_SIZE=16 gives 16: " +
        "unset it (perceptd then sizes the pool for up to the most cameras a config may list) or set it to 20 or more",
    );
  });

  it("asks for two threads per camera plus Node's default four", () => {
    expect([0, 1, 2, 4, 8].map(requiredThreadpoolSize)).toEqual([4, 6, 8, 12, 20]);
    expect(requiredThreadpoolSize(1000)).toBe(1024);
    expect(() => requiredThreadpoolSize(-1)).toThrow(/cameras must be a non-negative integer, got -1/);
  });

  it("reads UV_THREADPOOL_SIZE as libuv does", () => {
    expect(threadpoolSize({})).toBe(4);
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: "12" })).toBe(12);
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: "0" })).toBe(4);
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: "lots" })).toBe(4);
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: "5000" })).toBe(1024);
  });

  it("warns with the value to set when the pool is too small", () => {
    expect(threadpoolWarning(2, { UV_THREADPOOL_SIZE: "8" })).toBeNull();
    expect(threadpoolWarning(3, {})).toMatch(
      /^UV_THREADPOOL_SIZE is unset, so libuv's default \(4 threads\), but 3 camera\(s\) need 10: .* set UV_THREADPOOL_SIZE=10 /,
    );
    expect(threadpoolWarning(3, { UV_THREADPOOL_SIZE: "6" })).toMatch(/is set to 6 \(6 threads\)/);
  });
});
