import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
  benchModels,
  commandLineOf,
  latencyStats,
  modelBenchTable,
  percentile,
  spreadFrameIndices,
  type BenchProgress,
} from "../../../src/cli/bench/model-bench.ts";

const VTEST = resolve(".cache/fixtures/vtest.avi");
const HAVE_VTEST = existsSync(VTEST);
if (!HAVE_VTEST) console.warn(`skipping benchModels run: ${VTEST} is missing (run \`npm run setup\` to fetch it)`);

describe("helpers", () => {
  it("spreads frame positions over the clip from its start, once each", () => {
    expect(spreadFrameIndices(795, 3)).toEqual([0, 265, 530]);
    expect(spreadFrameIndices(10, 1)).toEqual([0]);
    // More frames asked for than the clip has: each position once.
    expect(spreadFrameIndices(3, 6)).toEqual([0, 1, 2]);
    // Unknown length: the first n frames.
    expect(spreadFrameIndices(undefined, 4)).toEqual([0, 1, 2, 3]);
    expect(() => spreadFrameIndices(10, 0)).toThrow(/frames must be a positive integer/);
  });

  it("interpolates percentiles between closest ranks", () => {
    const s = [1, 2, 3, 4];
    expect(percentile(s, 0.5)).toBe(2.5);
    expect(percentile(s, 0)).toBe(1);
    expect(percentile(s, 1)).toBe(4);
    expect(percentile([7], 0.99)).toBe(7);
    expect(() => percentile([], 0.5)).toThrow(/no samples/);
  });

  it("summarises samples whatever their order", () => {
    const st = latencyStats([4, 1, 3, 2]);
    expect(st).toMatchObject({ runs: 4, p50Ms: 2.5, meanMs: 2.5, minMs: 1, maxMs: 4, runsPerSec: 400 });
    expect(st.p99Ms).toBeCloseTo(3.97, 10);
  });

  it("quotes only the arguments a shell would split or expand", () => {
    expect(commandLineOf(["node", "bin/perceptd.js", "bench", "model", "--models", "a,b"])).toBe(
      "node bin/perceptd.js bench model --models a,b",
    );
    expect(commandLineOf(["--video", "my clip's.avi"])).toBe(`--video 'my clip'\\''s.avi'`);
  });
});

describe.skipIf(!HAVE_VTEST)("benchModels", () => {
  it("returns one row per runtime with sane latencies", async () => {
    const events: BenchProgress["kind"][] = [];
    const result = await benchModels({
      frames: 2,
      warmup: 1,
      models: ["nanodet-u8"],
      tfjs: false,
      threads: 2,
      video: VTEST,
      onProgress: (e) => events.push(e.kind),
    });

    expect(result.settings).toMatchObject({ frames: 2, warmup: 1, threads: 2, provider: "cpu", models: ["nanodet-u8"], tfjs: false });
    expect(result.settings.frameIndices).toHaveLength(2);
    // threads != 1, so the 1-thread row comes along for the like-for-like comparison.
    expect(result.rows.map((r) => [r.model, r.runtime, r.label, r.threads])).toEqual([
      ["nanodet-u8", "onnxruntime-cpu", "ORT", 2],
      ["nanodet-u8", "onnxruntime-cpu", "ORT 1 thread", 1],
    ]);
    for (const r of result.rows) {
      const { stats } = r;
      expect(stats.runs).toBe(2);
      expect(Number.isFinite(stats.p50Ms) && stats.p50Ms > 0).toBe(true);
      expect(Number.isFinite(stats.p99Ms)).toBe(true);
      expect(stats.p50Ms).toBeLessThanOrEqual(stats.p99Ms);
      expect(stats.runsPerSec).toBeGreaterThan(0);
      expect(r.input).toBe("uint8 NHWC 416x416");
      expect(r.speedupVsTfjs).toBeNull();
    }
    expect(result.skipped).toEqual([{ model: "nanodet", runtime: "tfjs-wasm", reason: "--no-tfjs" }]);
    expect(result.versions.tfjs).toBeNull();
    expect(result.versions.onnxruntime).toMatch(/^\d+\.\d+/);
    expect(events).toContain("group-done");

    const table = modelBenchTable(result).split("\n");
    expect(table[0]).toMatch(/^\| model +\| runtime +\| threads \| p50 ms \| p99 ms \| mean ms \| runs\/s \| speedup vs TF\.js \|$/);
    expect(table).toHaveLength(4);
  });

  it("times the asked-for provider only: a GPU provider that does not load fails the bench instead of falling back to the CPU", async () => {
    const { listSupportedBackends } = await import("onnxruntime-node");
    // Only meaningful where cuda cannot run: the stock x64 binding lists it but, with its CUDA
    // libraries not downloaded (ONNXRUNTIME_NODE_INSTALL=skip), cannot create a cuda session.
    const cudaListed = listSupportedBackends().some((b) => b.name === "cuda");
    const cudaLibs = existsSync(resolve("node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so"));
    if (cudaListed && cudaLibs) return;
    await expect(benchModels({ frames: 1, warmup: 0, models: ["nanodet-u8"], tfjs: false, provider: "cuda", video: VTEST })).rejects.toThrow(
      /cuda/,
    );
  });

  it("names the unknown model and the ones it knows", async () => {
    await expect(benchModels({ models: ["nope"], tfjs: false, video: VTEST })).rejects.toThrow(/model "nope" is not in .*known models: /);
  });
});
